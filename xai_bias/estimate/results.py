"""Result types of the estimator (frozen dataclasses; arrays are read-only numpy arrays).

Every interval is a 95 % (``1 - alpha``) percentile bootstrap interval over samples: ``[..., 2]``
holding (low, high). Columns over modalities always follow ``MODALITY_COLUMNS`` = the keys of
``types.MODALITIES`` (image, text, other, video, audio); "other" (sink + template) is always
reported but enters the shares only when ``include_other`` was set. A table measures the content
modalities its records hold (``ModalityTable.modalities``); the others are NaN. Δ = C(dominant) /
C(underutilized) among those (image vs text in an image-text study).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..types import MODALITIES

MODALITY_COLUMNS: tuple[str, ...] = tuple(MODALITIES)


def _ro(a) -> np.ndarray:
    arr = np.array(a, copy=True)
    arr.setflags(write=False)
    return arr


class _Frozen:
    """Mixin: make every ndarray field read-only after construction."""

    def __post_init__(self) -> None:
        for name, value in list(vars(self).items()):
            if isinstance(value, np.ndarray):
                object.__setattr__(self, name, _ro(value))


@dataclass(frozen=True)
class Overall(_Frozen):
    """The layer-free summary of one table (see ``ModalityTable.overall_rule``).

    contribution: [K] mean C(M) per modality column · contribution_ci: [K, 2]
    share: [K] C(M) / sum over the included modalities (NaN for excluded ones) · share_ci: [K, 2]
    delta: Δ = C(dominant) / C(underutilized) among the measured modalities (contributions clipped
    at 0; inf when the underutilized one is <= 0; NaN when not measurable) · delta_ci: [2]
    """

    contribution: np.ndarray  # [K]
    contribution_ci: np.ndarray  # [K, 2]
    share: np.ndarray  # [K]
    share_ci: np.ndarray  # [K, 2]
    delta: float
    delta_ci: np.ndarray  # [2]
    dominant: str  # a modality name, "" when not measurable
    underutilized: str


@dataclass(frozen=True)
class ModalityTable(_Frozen):
    """C(M_i), shares and Δ of one method × measure × condition × mode, per layer and overall.

    layers: [L'] int layer index of each row (-1 = the input embeddings row of IG); empty for
    layer-free methods (Shapley, ablation), which have only ``overall``.
    contribution: [L', K] · contribution_ci: [L', K, 2] · share: [L', K] · share_ci: [L', K, 2]
    delta: [L'] · delta_ci: [L', 2] · dominant: L' names (dominant per layer, by point estimate;
    the Δ interval keeps that orientation, so a lower bound below 1 means the ranking is uncertain).
    """

    method: str  # attention | ig | shapley | knockout | logit_lens | ablation
    measure: str  # e.g. "mass", "per_token", "|ig| share", "|phi|", "logprob drop"
    condition: str
    mode: str
    n_samples: int
    included: tuple[str, ...]  # modalities in the share denominator
    layers: np.ndarray  # [L']
    contribution: np.ndarray  # [L', K]
    contribution_ci: np.ndarray  # [L', K, 2]
    share: np.ndarray  # [L', K]
    share_ci: np.ndarray  # [L', K, 2]
    delta: np.ndarray  # [L']
    delta_ci: np.ndarray  # [L', 2]
    dominant: tuple[str, ...]  # [L']
    overall: Overall
    overall_rule: str  # how ``overall`` is formed (e.g. "mean over layers")
    definition: str  # what C(M) means for this method
    note: str = ""
    units: str = ""  # of the contributions (xai_bias.instruments.UNITS), e.g. "logprob_change"
    modalities: tuple[str, ...] = ()  # the content modalities measured (present in the records)

    @property
    def label(self) -> str:
        m = self.method if self.measure in ("", self.method) else f"{self.method} ({self.measure})"
        return f"{m} · {self.condition} · {self.mode}"


@dataclass(frozen=True)
class Suppression(_Frozen):
    """Where a modality's share fades (``modality``: the image, or video / audio): the first
    layer after that share's peak at which it falls below ``fraction`` × peak (None when it never
    does).

    interval: (low, high) percentile interval of that layer over the bootstrap resamples that
    show suppression (None when none does); no_suppression: fraction of resamples without one.
    """

    method: str
    measure: str
    condition: str
    mode: str
    fraction: float
    peak_layer: int
    peak_share: float
    layer: int | None
    interval: tuple[int, int] | None
    no_suppression: float
    n_resamples: int
    modality: str = "image"


@dataclass(frozen=True)
class LensCurve(_Frozen):
    """Logit lens: mean probability of the target letter per layer for one condition × mode
    (the target of the sample's ``complete`` record, so curves with and without a modality
    follow the same answer; a record without one follows its own).

    layers: [L] · prob: [L] · prob_ci: [L, 2]
    """

    condition: str
    mode: str
    n_samples: int
    layers: np.ndarray  # [L]
    prob: np.ndarray  # [L]
    prob_ci: np.ndarray  # [L, 2]


@dataclass(frozen=True)
class AblationRow(_Frozen):
    """Missing-modality ablation: ``complete`` vs one condition that removes a modality, paired
    by sample (same mode).

    logprob_drop: mean over samples of logp_complete(t) - logp_condition(t), t the target letter
    (the ``complete`` prediction, or the gold letter; see ``estimate(target=...)``).
    accuracy_*: accuracy on the paired samples; accuracy_drop = complete - condition.
    """

    mode: str
    condition: str
    removes: str  # the modality the condition removes (image, text, video, audio)
    n_pairs: int
    logprob_drop: float
    logprob_drop_ci: np.ndarray  # [2]
    accuracy_complete: float
    accuracy_condition: float
    accuracy_drop: float
    accuracy_drop_ci: np.ndarray  # [2]


@dataclass(frozen=True)
class Agreement:
    """Spearman correlation between two methods' image measures.

    kind "layers": over the layers of their per-layer image-share curves (n = layers compared);
    kind "samples": over samples of each method's per-sample overall image score (n = samples).
    """

    kind: str  # "layers" | "samples"
    condition: str
    mode: str
    method_a: str
    method_b: str
    n: int
    spearman: float


@dataclass(frozen=True)
class HeadMap(_Frozen):
    """Image share of the answer row's attention per layer × head for one condition × mode:
    Σ image mass / Σ (image + text) mass over the ``n_samples`` records holding image tokens
    (a ratio of means). share: [L, H] (NaN where a head attends to neither)."""

    method: str
    condition: str
    mode: str
    n_samples: int
    share: np.ndarray  # [L, H]


@dataclass(frozen=True)
class AccuracyStat:
    """Accuracy of one condition × mode over the ok records with a gold answer, with its 95 %
    Wilson score interval; ``diff``: accuracy minus that of ``complete`` (None without one)."""

    condition: str
    mode: str
    n: int
    correct: int
    accuracy: float
    ci: tuple[float, float]
    diff: float | None


@dataclass(frozen=True)
class Estimate:
    """Everything ``estimate`` computed from one trace.

    tables: one ModalityTable per method × measure × condition × mode (plus logit-lens and
    ablation tables built from ``complete`` vs the modality-removing conditions).
    """

    source: str
    schema_version: int
    model_id: str
    methods: tuple[str, ...]  # methods estimated
    skipped: tuple[str, ...]  # methods asked for via "all" but absent from the trace
    n_records: int
    n_excluded: int  # records whose status is not "ok"
    n_bootstrap: int
    seed: int
    alpha: float
    suppression_fraction: float
    include_other: bool
    target: str
    tables: tuple[ModalityTable, ...]
    suppression: tuple[Suppression, ...]
    lens: tuple[LensCurve, ...]
    ablation: tuple[AblationRow, ...]
    agreement: tuple[Agreement, ...]
    warnings: tuple[str, ...] = field(default=())
    heads: tuple[HeadMap, ...] = field(default=())
    accuracy: tuple[AccuracyStat, ...] = field(default=())
    #: Table 2 (``xai_bias.consistency.ConsistencyTable``) per mode: complete vs the first
    #: image-removing and the first text-removing condition present
    consistency: tuple[Any, ...] = field(default=())

    def table(self, method: str, condition: str = "complete", mode: str = "direct",
              measure: str | None = None) -> ModalityTable:
        """The table of ``method`` (and ``measure``, default: the first) for condition × mode."""
        for t in self.tables:
            if t.method == method and t.condition == condition and t.mode == mode and (
                measure is None or t.measure == measure
            ):
                return t
        raise KeyError(f"no table for method={method!r} measure={measure!r} "
                       f"condition={condition!r} mode={mode!r}")

    def suppression_of(self, method: str, condition: str = "complete", mode: str = "direct",
                       measure: str | None = None) -> Suppression:
        for s in self.suppression:
            if s.method == method and s.condition == condition and s.mode == mode and (
                measure is None or s.measure == measure
            ):
                return s
        raise KeyError(f"no suppression for method={method!r} condition={condition!r} mode={mode!r}")
