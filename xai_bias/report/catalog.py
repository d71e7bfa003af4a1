"""The only place the report learns about methods and conditions (their labels, colours, the
trace datasets a method writes, and how a method's rows become per-record modality
contributions). Everything else in ``xai_bias.report`` is generic over these.

The facts come from the registries: ``xai_bias.instruments.METHODS`` (each ``MethodSpec``'s
label, colour, datasets with their role axes, and its contribution function, applied per record
by ``xai_bias.estimate.per_record_measures``) and ``xai_bias.conditions.CONDITION_REGISTRY``
(labels, colours). A registered plug-in appears in the report without any change here.
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
    """Labels and colours of methods, conditions, modalities and roles, from the registries."""
    from ..conditions import CONDITION_REGISTRY
    from ..instruments.base import load_methods
    from ..plots import style as S
    from ..store._schema import ROLE_AXES

    okabe = S.OKABE_ITO
    methods, role_axes = {}, dict(ROLE_AXES)  # (legacy traces' role axes, then the registered ones)
    for i, (name, spec) in enumerate(load_methods().items()):
        methods[name] = {"label": spec.label, "color": S.method_color(name, i),
                         "datasets": [d.name for d in spec.datasets]}
        role_axes.update({d.name: d.role_axis + 1 for d in spec.datasets if d.role_axis is not None})
    conditions = {name: {"label": c.label, "color": S.condition_color(name, i)}
                  for i, (name, c) in enumerate(CONDITION_REGISTRY.items())}
    role_colors = {"sink": okabe["grey"], "template": "#c8c8c8", "image": S.MODALITY_COLORS["image"],
                   "question": okabe["vermillion"], "options": okabe["orange"], "instruction": okabe["purple"],
                   "generated": okabe["green"]}
    role_mod = {r: m for m, rs in MODALITIES.items() for r in rs}
    return Catalog(methods=methods, conditions=conditions, modalities=dict(S.MODALITY_COLORS),
                   roles={r: role_colors.get(r, okabe["black"]) for r in ROLES}, role_of_modality=role_mod,
                   role_axes=role_axes)


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
    """Per-record contributions of every non-paired method the trace holds (each method's
    registered contribution function, ``estimate.per_record_measures``), and notes on what could
    not be read."""
    from ..estimate import per_record_measures

    measures, notes = per_record_measures(trace, per_token=trace.has("records/role_tokens"))
    return [RecordMeasure(m.method, m.measure, m.kind, np.asarray(m.layers), np.asarray(m.X), np.asarray(m.Xo))
            for m in measures if not m.paired], notes


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
