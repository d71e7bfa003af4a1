"""The only place the report learns about methods and conditions (their labels, colours, the
trace datasets a method writes, and how a method's rows become per-record modality
contributions). Everything else in ``xai_bias.report`` is generic over these.

Today the facts live in ``xai_bias.plots.style`` (labels, colours), ``xai_bias.estimate``
(``NEEDS``: datasets per method; ``contributions``: per-record contributions) and
``xai_bias.store._schema.ROLE_AXES``; once methods and conditions are registered plug-ins,
``catalog()`` and ``record_measures()`` read the registries instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..types import MODALITIES, ROLES


@dataclass(frozen=True)
class Catalog:
    """Names -> display facts. ``methods[name]`` = {"label", "color", "datasets"};
    ``conditions[name]`` = {"label", "color"}; ``modalities`` / ``roles``: name -> colour;
    ``role_of_modality``: role -> modality column; ``role_axes``: dataset -> role axis."""

    methods: dict[str, dict[str, Any]]
    conditions: dict[str, dict[str, Any]]
    modalities: dict[str, str]
    roles: dict[str, str]
    role_of_modality: dict[str, str]
    role_axes: dict[str, int]

    def method_of(self, dataset: str) -> str:
        """The method that writes ``dataset`` ("" when none claims it)."""
        for name, info in self.methods.items():
            if dataset in info["datasets"]:
                return name
        return ""

    def to_json(self) -> dict[str, Any]:
        return {"methods": self.methods, "conditions": self.conditions, "modalities": self.modalities,
                "roles": self.roles, "role_modality": self.role_of_modality}


def catalog() -> Catalog:
    """Labels and colours of methods, conditions, modalities and roles (repoint to the method and
    condition registries when they land)."""
    from ..estimate.estimator import NEEDS
    from ..plots import style as S
    from ..store._schema import ROLE_AXES

    okabe = S.OKABE_ITO
    methods = {
        name: {"label": S.METHOD_LABELS.get(name, name), "color": S.METHOD_COLORS.get(name, S.color_cycle(i)),
               "datasets": [d for d in datasets if not d.startswith("records/")]}
        for i, (name, datasets) in enumerate(NEEDS.items())
    }
    methods["attention"]["datasets"] += ["attention/maps", "attention/map_grid", "attention/mass_generated",
                                         "attention/flow"]
    methods["ig"]["datasets"] += ["attribution/ig_delta"]
    conditions = {name: {"label": S.CONDITION_LABELS.get(name, name), "color": color}
                  for name, color in S.CONDITION_COLORS.items()}
    role_colors = {"sink": okabe["grey"], "template": "#c8c8c8", "image": S.MODALITY_COLORS["image"],
                   "question": okabe["vermillion"], "options": okabe["orange"], "instruction": okabe["purple"],
                   "generated": okabe["green"]}
    role_mod = {r: m for m, rs in MODALITIES.items() for r in rs}
    return Catalog(methods=methods, conditions=conditions, modalities=dict(S.MODALITY_COLORS),
                   roles={r: role_colors.get(r, okabe["black"]) for r in ROLES}, role_of_modality=role_mod,
                   role_axes=dict(ROLE_AXES))


@dataclass(frozen=True)
class RecordMeasure:
    """One method × measure's per-record contributions (the estimator's definitions).

    layers: [L'] layer number of each row (-1 = input embeddings); X: [R, L', 3] per layer;
    Xo: [R, 3] overall; columns image, text, other; NaN where the record lacks the measurement.
    kind: "share" (image and text comparable: image share = image / (image + text)) or "effect".
    """

    method: str
    measure: str
    kind: str
    layers: np.ndarray
    X: np.ndarray
    Xo: np.ndarray

    @property
    def key(self) -> str:
        return self.method if self.measure in ("", self.method) else f"{self.method}:{self.measure}"


def record_measures(trace: Any) -> tuple[list[RecordMeasure], list[str]]:
    """Per-record contributions of every non-paired method the trace holds, and notes on what
    could not be read (repoint to the method registry's per-record contribution rule when it
    lands)."""
    from ..estimate import contributions as cb

    roles = list(trace.attrs.get("roles") or ROLES)
    out: list[Any] = []
    notes: list[str] = []
    if trace.has("attention/mass"):
        rt = np.asarray(trace["records/role_tokens"]) if trace.has("records/role_tokens") else None
        out += cb.attention_measures(np.asarray(trace["attention/mass"]), rt, roles, per_token=rt is not None)
    if trace.has("attribution/ig"):
        out += cb.ig_measures(np.asarray(trace["attribution/ig"]), roles, None)
    if trace.has("attribution/shapley"):
        groups = trace.dataset_attrs("attribution/shapley").get("groups")
        if groups:
            out += cb.shapley_measures(np.asarray(trace["attribution/shapley"]), [str(g) for g in groups])[0]
        else:
            notes.append("/attribution/shapley has no 'groups' attribute: no per-sample Shapley share")
    if trace.has("intervention/knockout"):
        out += cb.knockout_measures(np.asarray(trace["intervention/knockout"]))
    return [RecordMeasure(m.method, m.measure, m.kind, np.asarray(m.layers), np.asarray(m.X), np.asarray(m.Xo))
            for m in out], notes


def image_share(C: np.ndarray, kind: str) -> np.ndarray:
    """Image score of contributions ``C [..., 3]`` as the estimator scores samples: for "share"
    measures C⁺(image) / (C⁺(image) + C⁺(text)); for effects the image effect (minus the text
    effect where measured)."""
    C = np.asarray(C, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "share":
            P = np.clip(C, 0, None)
            return P[..., 0] / (P[..., 0] + P[..., 1])
        return np.where(np.isfinite(C[..., 1]), C[..., 0] - C[..., 1], C[..., 0])
