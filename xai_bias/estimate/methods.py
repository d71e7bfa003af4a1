"""The built-in methods' contribution functions (registered with each method in
``xai_bias.instruments.catalog``). Definitions (C(M) is the mean over samples of the per-sample
value below):

* attention, "mass": attention mass of the answer row on the modality's tokens, summed over the
  modality's roles, averaged over heads; overall = mean over layers. Also the head map: per
  layer × head, the image share of the image + text mass (ratio of means over the records that
  hold image tokens).
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
  overall = mean over layers; records without image tokens are not measured (NaN). Knockout
  does not measure text, so it has no share and no Δ.
* ablation / logit_lens (paired): drop of the target letter's log-prob (ablation) or
  probability per layer (logit lens) from ``complete`` to the conditions that remove the
  modality (registered ``Condition.removes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .bootstrap import nan_mean
from .contributions import (Contributions, Measure, NotApplicable, modality_role_index, nanmean_axis,
                            pair_index, paired_effects, role_share_contributions, sum_roles, take_letter)
from .results import MODALITY_COLUMNS, AblationRow, HeadMap, LensCurve


def _modality_tokens(view: Any, modality: str = "image") -> np.ndarray | None:
    """[R] number of tokens of ``modality``'s roles per record (None without role counts)."""
    from ..types import MODALITIES

    idx = [view.roles.index(r) for r in MODALITIES[modality] if r in view.roles]
    if not view.has("records/role_tokens") or not idx:
        return None
    return np.asarray(view.column("records/role_tokens"))[:, idx].sum(1)


def attention(view: Any) -> Contributions:
    mass = np.asarray(view.column("attention/mass"))  # [R, L, H, nr] float32
    L = mass.shape[1]
    idx = modality_role_index(view.roles)
    head_mean = mass.mean(axis=2, dtype=np.float64)  # [R, L, nr]
    C = sum_roles(head_mean, idx)  # [R, L, n_mod]
    layers = np.arange(L)
    out = Contributions([Measure(
        "attention", "mass", layers, C, nanmean_axis(C, 1), "share", overall_rule="mean over layers",
        definition="attention mass of the answer row on the modality's tokens (head mean)",
        suppression=True, observational=True, units="probability")])
    rt = view.column("records/role_tokens") if view.has("records/role_tokens") else None
    if view.per_token and rt is None:
        out.warnings.append("attention: /records/role_tokens absent, per-token mass not reported")
    if view.per_token and rt is not None:
        cnt = sum_roles(np.asarray(rt, dtype=np.float64), idx)[:, None, :]  # [R, 1, n_mod]
        with np.errstate(invalid="ignore", divide="ignore"):
            Cpt = np.where(cnt > 0, C / np.where(cnt > 0, cnt, 1.0), np.where(np.isfinite(C), 0.0, np.nan))
        out.measures.append(Measure(
            "attention", "per_token", layers, Cpt, nanmean_axis(Cpt, 1), "share", overall_rule="mean over layers",
            definition="attention mass per token: modality mass / modality token count (head mean)",
            suppression=True, observational=True, units="probability"))
    out.heads = _head_maps(view, mass, idx)
    return out


def _head_maps(view: Any, mass: np.ndarray, idx: list[list[int]]) -> list[HeadMap]:
    img_tokens = _modality_tokens(view, "image")
    keep = view.sel.copy()
    if img_tokens is not None:
        keep &= img_tokens > 0
    out = []
    for (c, m), rows in view.groups(keep):
        img = mass[rows][..., idx[0]].sum(-1).astype(np.float64)  # [n, L, H]
        txt = mass[rows][..., idx[1]].sum(-1).astype(np.float64)
        ok = np.isfinite(img) & np.isfinite(txt)
        if not ok.any():
            continue
        a, b = np.where(ok, img, 0).sum(0), np.where(ok, txt, 0).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(a + b > 0, a / (a + b), np.nan)
        out.append(HeadMap("attention", c, m, len(rows), share))
    return out


_ig_shares = role_share_contributions(
    "attribution/ig", "ig", "|ig| share", "|IG| share of the modality's roles (row -1 = input embeddings)",
    overall="first", first_layer=-1)


def ig(view: Any) -> Contributions:
    out = _ig_shares(view)
    if view.has("attribution/ig_delta"):
        d = np.abs(np.asarray(view.column("attribution/ig_delta"), dtype=np.float64))
        if np.isfinite(d).any():
            out.measures[0].note = f"IG convergence error |delta|: mean {np.nanmean(d):.3g}, max {np.nanmax(d):.3g}"
    out.measures[0].overall_rule = "input-embeddings row (layer -1)"
    return out


def shapley_group_columns(groups: list[str]) -> tuple[list[int], list[str]]:
    """Modality column of each Shapley group (-1 = unknown), and the unknown group names."""
    from ..types import MODALITIES

    col, unknown = [], []
    for g in map(str, groups):
        if g in MODALITY_COLUMNS:
            col.append(MODALITY_COLUMNS.index(g))
            continue
        j = next((j for j, mod in enumerate(MODALITY_COLUMNS) if g in MODALITIES[mod]), -1)
        col.append(j)
        if j < 0:
            unknown.append(g)
    return col, unknown


def _shapley_groups(view: Any, width: int) -> list[str]:
    from ..errors import TraceError

    groups = view.dataset_attrs("attribution/shapley").get("groups")
    if groups is None:
        raise TraceError(f"{view.source}: /attribution/shapley lacks its 'groups' attribute "
                         "(which modality each column belongs to)")
    if isinstance(groups, str):
        groups = [g.strip() for g in groups.replace(",", " ").split()]
    groups = [g.decode() if isinstance(g, bytes) else str(g) for g in groups]
    if len(groups) != width:
        raise TraceError(f"{view.source}: /attribution/shapley has {width} columns but "
                         f"{len(groups)} group names ({groups})")
    return groups


def shapley(view: Any) -> Contributions:
    v = np.asarray(view.column("attribution/shapley"), dtype=np.float64)  # [R, G]
    groups = _shapley_groups(view, v.shape[1])
    cols, unknown = shapley_group_columns(groups)
    signed = np.full((v.shape[0], len(MODALITY_COLUMNS)), np.nan)
    for j in range(len(MODALITY_COLUMNS)):
        members = [g for g, c in enumerate(cols) if c == j]
        if members:
            signed[:, j] = v[:, members].sum(1)
    mag = np.abs(signed)
    out = Contributions([Measure(
        "shapley", "|phi|", np.arange(0), mag[:, None, :][:, :0, :], mag, "share", overall_rule="layer-free",
        definition="|Shapley value| of the modality's group(s) (groups: " + ", ".join(groups) + ")",
        signed=signed, units="logprob_change")])
    if unknown:
        out.warnings.append(f"shapley: group(s) {', '.join(map(repr, unknown))} belong to no modality and are ignored")
    return out


def knockout(view: Any) -> Contributions:
    ko = np.asarray(view.column("intervention/knockout"), dtype=np.float64)  # [R, L]
    R, L = ko.shape
    modality = str(view.dataset_attrs("intervention/knockout").get("modality", "image"))  # which keys were cut
    if modality not in MODALITY_COLUMNS:
        raise NotApplicable(f"/intervention/knockout cut the keys of {modality!r}, not a modality")
    X = np.full((R, L, len(MODALITY_COLUMNS)), np.nan)
    X[:, :, MODALITY_COLUMNS.index(modality)] = -ko
    tokens = _modality_tokens(view, modality)
    if tokens is not None:
        X[tokens == 0] = np.nan  # nothing to knock out: not a measurement
    return Contributions([Measure(
        "knockout", "logprob drop", np.arange(L), X, nanmean_axis(X, 1), "effect", overall_rule="mean over layers",
        definition=f"drop of the answer log-prob when the answer row's attention to the {modality} is cut "
                   f"at the layer ({modality} only: text is not knocked out, so no share and no Δ)",
        units="logprob_change")])


def _removal_text(view: Any, partners: dict) -> str:
    """"image: mean over text_white, text_only; text: image_only" (the modalities removed)."""
    parts = []
    for mod in MODALITY_COLUMNS:
        conds = [c for c in partners if view.removes(c) == mod]
        if conds:
            parts.append(f"{mod}: {'mean over ' if len(conds) > 1 else ''}{', '.join(conds)}")
    if "text" not in [view.removes(c) for c in partners]:
        parts.append("text: not measured")
    return "; ".join(parts)


def logit_lens(view: Any) -> Contributions:
    values = view.column("intervention/logit_lens").astype(np.float64)  # [R, L, K] log-probs
    if values.ndim != 3:
        raise NotApplicable(f"/intervention/logit_lens has shape {values.shape}, expected [R, layers, options]")
    values = np.exp(values)  # the dataset's units are "logprob" (its DatasetSpec): -> probability
    letter = view.letters()
    # every condition follows the letter of its sample's ``complete`` record (the same answer
    # with and without a modality); records without one follow their own
    comp = pair_index(view.sample_id, view.condition, view.mode, view.ok, ["complete"])["complete"]
    curve_letter = np.where(comp >= 0, letter[np.maximum(comp, 0)], letter)
    L = values.shape[1]
    p = take_letter(values, np.arange(view.R), curve_letter)  # [R, L]
    out = Contributions()
    for (c, m), rows in view.groups(view.sel & np.isfinite(p).any(1)):
        X = p[rows]
        out.lens.append(LensCurve(c, m, len(rows), np.arange(L), nan_mean(X),
                                  view.boot_ci(X, ("logit_lens", "curve", c, m))))
    if view.paired_possible():
        complete, partners = view.pairs()
        X, _ = paired_effects(values, complete, letter, partners, view.removes)  # [R, L, n_mod]
        out.measures.append(Measure(
            "logit_lens", "prob drop", np.arange(L), X, nanmean_axis(X, 1), "effect", overall_rule="mean over layers",
            definition="drop of the target letter's logit-lens probability at the layer from 'complete' to "
                       f"the condition removing the modality ({_removal_text(view, partners)})",
            paired=True, units="probability"))
    return out


def ablation(view: Any) -> Contributions:
    if not view.paired_possible():
        have = sorted(set(view.condition[view.mode_sel]))
        raise NotApplicable(
            "method 'ablation' needs records of condition 'complete' and of at least one condition that "
            f"removes a modality in the same mode; the selected records hold: {', '.join(have) or 'none'}")
    lp = view.column("records/option_logprobs").astype(np.float64)
    if lp.ndim == 1:
        lp = lp[:, None]
    letter = view.letters()
    complete, partners = view.pairs()
    Xo, per = paired_effects(lp, complete, letter, partners, view.removes)  # [R, n_mod]
    out = Contributions([Measure(
        "ablation", "logprob drop", np.arange(0), Xo[:, None, :][:, :0, :], Xo, "effect", overall_rule="layer-free",
        definition="drop of the target letter's log-prob from 'complete' to the condition removing the modality "
                   f"({_removal_text(view, partners)})",
        paired=True, units="logprob_change")])
    correct = view.correct.astype(np.float64)
    for m in sorted(set(view.mode[complete]), key=view.mode_order):
        for c, idx in partners.items():
            i = np.flatnonzero(complete & (view.mode == m) & (idx >= 0))
            if not len(i):
                continue
            acc_c, acc_x = correct[i], correct[idx[i]]
            X = np.stack([per[c][i], acc_c - acc_x], 1)
            pt, ci = nan_mean(X), view.boot_ci(X, ("ablation", c, m))
            out.ablation.append(AblationRow(
                mode=m, condition=c, removes=view.removes(c) or "", n_pairs=len(i),
                logprob_drop=float(pt[0]), logprob_drop_ci=ci[0], accuracy_complete=float(acc_c.mean()),
                accuracy_condition=float(acc_x.mean()), accuracy_drop=float(pt[1]), accuracy_drop_ci=ci[1]))
    return out
