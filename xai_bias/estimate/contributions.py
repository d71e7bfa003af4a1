"""How a method's trace rows become per-modality contributions: the plug-in interface of the
estimator and the helpers the built-in methods use (numpy only).

A method's registration (``xai_bias.instruments.base.MethodSpec.contributions``) is a function
``fn(view: EstimatorView) -> Contributions``. It reads the trace through the view and returns one
or more ``Measure``s: per record r, ``X[r, l, m]`` the contribution of modality column m
(``MODALITY_COLUMNS``: image, text, other, video, audio) at layer row l, and ``Xo[r, m]`` its overall
(layer-free) contribution; records a method did not measure hold NaN. The estimator groups the
records by condition × mode, averages over samples, bootstraps, derives shares, Δ, suppression
and agreement — the same way for every method. A function may also return logit-lens curves,
ablation rows and head maps (built with the view's ``groups`` / ``boot_ci``), and warnings; it
raises ``NotApplicable`` when the trace cannot support it (e.g. the ablation without a condition
that removes a modality).

C(M) is always the mean over samples of the per-sample value a Measure defines; the built-in
definitions are in ``xai_bias.estimate.methods``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..types import LETTERS, MODALITIES
from .results import MODALITY_COLUMNS, AblationRow, HeadMap, LensCurve


class NotApplicable(Exception):
    """The trace holds the method's datasets but cannot support its estimate (the message says
    why); skipped under ``methods="all"``, an error when the method was asked for by name."""


@dataclass
class Measure:
    """One per-record contribution measure of a method (see the module docstring).

    kind: "share" (shares and Δ from C⁺) or "effect" (signed effects; Δ of the clipped values).
    paired: rows are ``complete`` records holding complete-vs-removal effects.
    signed: ``[R, 3]`` signed values per modality (Shapley), reported in the table's note.
    """

    method: str
    measure: str
    layers: np.ndarray  # [L'] int
    X: np.ndarray  # [R, L', n_mod]
    Xo: np.ndarray  # [R, n_mod]
    kind: str
    overall_rule: str
    definition: str
    suppression: bool = False
    note: str = ""
    paired: bool = False
    signed: np.ndarray | None = None
    observational: bool = False  # compared against the causal methods' verdict
    units: str = ""  # of the contributions (instruments.base.UNITS)


@dataclass
class Contributions:
    """What one method's contribution function returns."""

    measures: list[Measure] = field(default_factory=list)
    lens: list[LensCurve] = field(default_factory=list)
    ablation: list[AblationRow] = field(default_factory=list)
    heads: list[HeadMap] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class EstimatorView(Protocol):
    """What a contribution function may read (implemented by the estimator).

    Record columns as arrays over all R records: ``sample_id``, ``condition``, ``mode``,
    ``answer``, ``prediction`` (str objects), ``correct`` (bool), ``ok`` (status "ok"), ``sel``
    (ok and in the selected conditions × modes), ``mode_sel`` (ok and in the selected modes).
    """

    R: int
    roles: list[str]
    source: str
    per_token: bool
    include_other: bool
    sample_id: np.ndarray
    condition: np.ndarray
    mode: np.ndarray
    answer: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray
    ok: np.ndarray
    sel: np.ndarray
    mode_sel: np.ndarray

    def has(self, name: str) -> bool: ...
    def column(self, name: str) -> np.ndarray: ...
    def dataset_attrs(self, name: str) -> dict[str, Any]: ...
    def letters(self) -> np.ndarray: ...  # [R] target letter index (-1 none)
    def removal_conditions(self) -> list[str]: ...
    def paired_possible(self) -> bool: ...
    def pairs(self) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...
    def groups(self, mask: np.ndarray) -> list[tuple[tuple[str, str], np.ndarray]]: ...
    def boot_ci(self, X: np.ndarray, key: tuple[str, ...]) -> np.ndarray: ...
    def removes(self, condition: str) -> str | None: ...


# --------------------------------------------------------------------------------------------
# helpers


def modality_role_index(roles: Sequence[str]) -> list[list[int]]:
    """For each modality column, the indices of its roles in the trace's role list."""
    roles = list(roles)
    return [[roles.index(r) for r in MODALITIES[mod] if r in roles] for mod in MODALITY_COLUMNS]


def sum_roles(a: np.ndarray, idx: list[list[int]]) -> np.ndarray:
    """[..., n_roles] -> [..., n_mod] sums over each modality's roles (NaN for a modality whose
    roles the trace lacks)."""
    cols = [a[..., ix].sum(-1) if ix else np.full(a.shape[:-1], np.nan) for ix in idx]
    return np.stack(cols, -1)


def nanmean_axis(X: np.ndarray, axis: int) -> np.ndarray:
    fin = np.isfinite(X)
    cnt = fin.sum(axis)
    return np.where(cnt > 0, np.where(fin, X, 0).sum(axis) / np.maximum(cnt, 1), np.nan)


def role_share_contributions(dataset: str, method: str, measure: str, definition: str,
                             overall: str = "mean", first_layer: int = 0, suppression: bool = True,
                             units: str = "share") -> Callable[[Any], Contributions]:
    """A contribution function for a dataset of per-layer role values ``[R, L', n_roles]``
    (shares or masses per role): C(M) at row l = the sum over the modality's roles.
    overall: ``"mean"`` (mean over the rows) or ``"first"`` (row 0, e.g. the input embeddings).
    first_layer: the layer number of row 0 (-1 for an input-embeddings row)."""

    def contributions(view: Any) -> Contributions:
        values = np.asarray(view.column(dataset), dtype=np.float64)
        if values.ndim != 3:
            raise NotApplicable(f"/{dataset} has shape {values.shape}, expected [R, layers, roles]")
        C = sum_roles(values, modality_role_index(view.roles))
        layers = np.arange(values.shape[1]) + int(first_layer)
        Xo = C[:, 0, :] if overall == "first" else nanmean_axis(C, 1)
        rule = f"row {first_layer} (layer {first_layer})" if overall == "first" else "mean over layers"
        return Contributions([Measure(method, measure, layers, C, Xo, "share", overall_rule=rule,
                                      definition=definition, suppression=suppression, observational=True,
                                      units=units)])

    return contributions


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
    return {c: np.array([where.get((s, m, c), -1) for s, m in zip(sample_id, mode)], dtype=np.int64)
            for c in conds}


def paired_effects(values: np.ndarray, complete_rows: np.ndarray, letter: np.ndarray,
                   partners: dict[str, np.ndarray], removes: Callable[[str], str | None]
                   ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Effects of removing each modality, per ``complete`` record.

    values: [R, ..., K] per-letter values (log-probs or probabilities); complete_rows: [R] bool;
    letter: [R] target letter index of each complete record; partners: condition -> [R] index;
    removes: condition -> the modality it removes. Returns (drops ``[R, ..., n_mod]``: per
    modality column the drop, averaged over the conditions present per sample that remove it,
    NaN for a modality no condition removes and off the complete records; per-condition drop
    ``{condition: [R, ...]}``).
    """
    R = len(letter)
    rows = np.where(complete_rows, np.arange(R), -1)
    base = take_letter(values, rows, letter)
    per: dict[str, np.ndarray] = {}
    for c, idx in partners.items():
        j = np.where(complete_rows, idx, -1)
        per[c] = base - take_letter(values, j, letter)
    with np.errstate(invalid="ignore"):
        drops = np.stack([nanmean_stack([per[c] for c in per if removes(c) == mod], base.shape)
                          for mod in MODALITY_COLUMNS], -1)
    return drops, per


def nanmean_stack(arrs: list[np.ndarray], shape) -> np.ndarray:
    if not arrs:
        return np.full(shape, np.nan)
    s = np.stack(arrs, 0)
    fin = np.isfinite(s)
    cnt = fin.sum(0)
    return np.where(cnt > 0, np.where(fin, s, 0).sum(0) / np.maximum(cnt, 1), np.nan)


__all__ = ["Measure", "Contributions", "NotApplicable", "EstimatorView", "modality_role_index", "sum_roles",
           "nanmean_axis", "role_share_contributions", "target_index", "take_letter", "pair_index",
           "paired_effects", "nanmean_stack"]
