"""Per-record modality contributions of each method (internal).

Every method is turned into one or more ``Measure``s: per record r, ``X[r, l, m]`` the
contribution of modality column m (image, text, other) at layer row l, and ``Xo[r, m]`` its
overall (layer-free) contribution. Records a method did not measure hold NaN. The estimator
groups the records by condition × mode, averages over samples and bootstraps.

Definitions (C(M) is always the mean over samples of the per-sample value below):

* attention, "mass": attention mass of the answer row on the modality's tokens, summed over the
  modality's roles, averaged over heads; overall = mean over layers.
* attention, "per_token": the same mass divided by the modality's token count (sum of its roles'
  counts from /records/role_tokens): the average attention one token of that modality receives;
  a modality without tokens contributes 0.
* ig, "|ig| share": the stored |IG| share of the modality's roles, per row (row -1 = input
  embeddings, row l = decoder layer l); overall = the input-embeddings row (classic IG).
* shapley, "|phi|": |sum of the Shapley values of the groups that belong to the modality| (a group
  named after a modality or after one of its roles); shares are shares of these magnitudes;
  the signed means are given in the table's note.
* knockout, "logprob drop": image only — minus the stored change of the answer log-prob when the
  answer row's attention to image tokens is cut at layer l (positive = the image helped);
  overall = mean over layers. Knockout does not measure text, so it has no share and no Δ.
* ablation / logit_lens (paired, see ``paired``): drop of the target letter's log-prob
  (ablation) or probability per layer (logit lens) from ``complete`` to the condition that
  removes the modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import LETTERS, MODALITIES
from .results import MODALITY_COLUMNS

#: conditions that remove a modality, relative to ``complete``
REMOVES: dict[str, str] = {
    "text_only": "image",
    "text_white": "image",
    "text_black": "image",
    "text_noise": "image",
    "image_only": "text",
}


@dataclass
class Measure:
    method: str
    measure: str
    layers: np.ndarray  # [L'] int
    X: np.ndarray  # [R, L', 3]
    Xo: np.ndarray  # [R, 3]
    kind: str  # "share" (shares and Δ) | "effect" (signed effects; Δ of the clipped values)
    overall_rule: str
    definition: str
    suppression: bool = False
    note: str = ""
    paired: bool = False  # rows are ``complete`` records holding complete-vs-removal effects
    signed: np.ndarray | None = None  # [R, 3] Shapley: signed values per modality (for the note)


def modality_role_index(roles: list[str]) -> list[list[int]]:
    """For each modality column, the indices of its roles in the trace's role list."""
    out = []
    for mod in MODALITY_COLUMNS:
        out.append([roles.index(r) for r in MODALITIES[mod] if r in roles])
    return out


def _sum_roles(a: np.ndarray, idx: list[list[int]]) -> np.ndarray:
    """[..., n_roles] -> [..., 3] sums over each modality's roles (NaN stays NaN)."""
    cols = []
    for ix in idx:
        cols.append(a[..., ix].sum(-1) if ix else np.full(a.shape[:-1], np.nan))
    return np.stack(cols, -1)


def attention_measures(mass: np.ndarray, role_tokens: np.ndarray | None, roles: list[str],
                       per_token: bool) -> list[Measure]:
    mass = np.asarray(mass)  # [R, L, H, nr] float32
    L = mass.shape[1]
    head_mean = mass.mean(axis=2, dtype=np.float64)  # [R, L, nr], no float64 copy of the heads
    idx = modality_role_index(roles)
    C = _sum_roles(head_mean, idx)  # [R, L, 3]
    layers = np.arange(L)
    out = [Measure(
        "attention", "mass", layers, C, _nanmean_axis(C, 1), "share",
        overall_rule="mean over layers",
        definition="attention mass of the answer row on the modality's tokens (head mean)",
        suppression=True,
    )]
    if per_token and role_tokens is not None:
        counts = _sum_roles(np.asarray(role_tokens, dtype=np.float64), idx)  # [R, 3]
        cnt = counts[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            Cpt = np.where(cnt > 0, C / np.where(cnt > 0, cnt, 1.0), np.where(np.isfinite(C), 0.0, np.nan))
        out.append(Measure(
            "attention", "per_token", layers, Cpt, _nanmean_axis(Cpt, 1), "share",
            overall_rule="mean over layers",
            definition="attention mass per token: modality mass / modality token count (head mean)",
            suppression=True,
        ))
    return out


def ig_measures(ig: np.ndarray, roles: list[str], delta: np.ndarray | None) -> list[Measure]:
    ig = np.asarray(ig, dtype=np.float64)  # [R, L+1, nr]
    idx = modality_role_index(roles)
    C = _sum_roles(ig, idx)
    layers = np.arange(ig.shape[1]) - 1
    note = ""
    if delta is not None:
        d = np.abs(np.asarray(delta, dtype=np.float64))
        if np.isfinite(d).any():
            note = f"IG convergence error |delta|: mean {np.nanmean(d):.3g}, max {np.nanmax(d):.3g}"
    return [Measure(
        "ig", "|ig| share", layers, C, C[:, 0, :], "share",
        overall_rule="input-embeddings row (layer -1)",
        definition="|IG| share of the modality's roles (row -1 = input embeddings)",
        suppression=True, note=note,
    )]


def shapley_group_columns(groups: list[str]) -> tuple[list[int], list[str]]:
    """Modality column of each Shapley group (-1 = unknown), and the unknown group names."""
    col, unknown = [], []
    for g in groups:
        name = str(g)
        if name in MODALITY_COLUMNS:
            col.append(MODALITY_COLUMNS.index(name))
            continue
        for j, mod in enumerate(MODALITY_COLUMNS):
            if name in MODALITIES[mod]:
                col.append(j)
                break
        else:
            col.append(-1)
            unknown.append(name)
    return col, unknown


def shapley_measures(values: np.ndarray, groups: list[str]) -> tuple[list[Measure], list[str]]:
    v = np.asarray(values, dtype=np.float64)  # [R, G]
    cols, unknown = shapley_group_columns(groups)
    R = v.shape[0]
    signed = np.full((R, 3), np.nan)
    for j in range(3):
        members = [g for g, c in enumerate(cols) if c == j]
        if members:
            signed[:, j] = v[:, members].sum(1)
    mag = np.abs(signed)
    warn = []
    if unknown:
        warn.append(f"shapley: group(s) {', '.join(map(repr, unknown))} belong to no modality and are ignored")
    m = Measure(
        "shapley", "|phi|", np.arange(0), mag[:, None, :][:, :0, :], mag, "share",
        overall_rule="layer-free",
        definition="|Shapley value| of the modality's group(s) (groups: " + ", ".join(map(str, groups)) + ")",
        signed=signed,
    )
    return [m], warn


def knockout_measures(ko: np.ndarray) -> list[Measure]:
    ko = np.asarray(ko, dtype=np.float64)  # [R, L]
    R, L = ko.shape
    X = np.full((R, L, 3), np.nan)
    X[:, :, 0] = -ko
    return [Measure(
        "knockout", "logprob drop", np.arange(L), X, _nanmean_axis(X, 1), "effect",
        overall_rule="mean over layers",
        definition="drop of the answer log-prob when the answer row's attention to the image is cut "
                   "at the layer (image only: text is not knocked out, so no share and no Δ)",
    )]


def target_index(letters: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Letter index per record from ``letters`` (falling back to ``fallback`` where empty); -1 if
    neither is a letter."""
    out = np.full(len(letters), -1, dtype=np.int64)
    for i, (a, b) in enumerate(zip(letters, fallback)):
        for s in (a, b):
            s = str(s).strip().upper()
            if len(s) == 1 and s in LETTERS:
                out[i] = LETTERS.index(s)
                break
    return out


def take_letter(values: np.ndarray, rows: np.ndarray, letter: np.ndarray) -> np.ndarray:
    """values [R, ..., K] -> [len(rows), ...] at each row's letter index (NaN where -1 / out of range)."""
    values = np.asarray(values, dtype=np.float64)
    K = values.shape[-1]
    ok = (rows >= 0) & (letter >= 0) & (letter < K)
    shape = (len(rows),) + values.shape[1:-1]
    out = np.full(shape, np.nan)
    if ok.any():
        v = values[rows[ok]]
        li = letter[ok].reshape((-1,) + (1,) * (v.ndim - 1))
        out[ok] = np.take_along_axis(v, li, axis=-1)[..., 0]
    return out


def pair_index(sample_id: np.ndarray, condition: np.ndarray, mode: np.ndarray, ok: np.ndarray,
               conds: list[str]) -> dict[str, np.ndarray]:
    """For every record r: the index of the ok record with the same sample id and mode and
    condition c (for each c in ``conds``), or -1."""
    where: dict[tuple[str, str, str], int] = {}
    for i in np.flatnonzero(ok):
        where.setdefault((sample_id[i], mode[i], condition[i]), int(i))
    out = {}
    for c in conds:
        out[c] = np.array([where.get((s, m, c), -1) for s, m in zip(sample_id, mode)], dtype=np.int64)
    return out


def paired_effects(values: np.ndarray, complete_rows: np.ndarray, letter: np.ndarray,
                   partners: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Effects of removing each modality, per ``complete`` record.

    values: [R, ..., K] per-letter values (log-probs or probabilities); complete_rows: [R] bool;
    letter: [R] target letter index of each complete record; partners: condition -> [R] index.
    Returns (image drop [R, ...], text drop [R, ...], per-condition drop [R, ...]), NaN off the
    complete records. The image drop averages the image-removing conditions present per sample.
    """
    R = len(letter)
    rows = np.where(complete_rows, np.arange(R), -1)
    base = take_letter(values, rows, letter)
    per: dict[str, np.ndarray] = {}
    for c, idx in partners.items():
        j = np.where(complete_rows, idx, -1)
        per[c] = base - take_letter(values, j, letter)
    img = [per[c] for c in per if REMOVES[c] == "image"]
    shape = base.shape
    with np.errstate(invalid="ignore"):
        d_img = _nanmean_stack(img, shape)
    d_txt = per["image_only"] if "image_only" in per else np.full(shape, np.nan)
    return d_img, d_txt, per


def _nanmean_stack(arrs: list[np.ndarray], shape) -> np.ndarray:
    if not arrs:
        return np.full(shape, np.nan)
    s = np.stack(arrs, 0)
    fin = np.isfinite(s)
    cnt = fin.sum(0)
    return np.where(cnt > 0, np.where(fin, s, 0).sum(0) / np.maximum(cnt, 1), np.nan)


def _nanmean_axis(X: np.ndarray, axis: int) -> np.ndarray:
    fin = np.isfinite(X)
    cnt = fin.sum(axis)
    return np.where(cnt > 0, np.where(fin, X, 0).sum(axis) / np.maximum(cnt, 1), np.nan)
