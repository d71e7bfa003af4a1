"""What the figures read: opened traces with their estimates (internal to ``xai_bias.plots``).

A ``Source`` is one trace, its label (the model id) and its ``Estimate``
(``xai_bias.estimate.estimate``, the one estimator: figures never compute statistics of their
own; per-sample views, such as the image overlays, read the trace's rows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..types import MODALITIES, ROLES


class MissingData(Exception):
    """A figure's data is absent from the trace(s); the message is the note shown to the user."""


@dataclass
class Source:
    """One trace as the figures see it."""

    path: Path
    label: str  # model id, made unique across the sources
    trace: Any  # xai_bias.store.Trace
    estimate: Any = None  # xai_bias.estimate.results.Estimate
    notes: list[str] = field(default_factory=list)

    # ---------------------------------------------------------------- record helpers
    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(getattr(self.trace, "roles", ()) or self.trace.attrs.get("roles") or ROLES)

    def modality_index(self) -> dict[str, list[int]]:
        roles = self.roles
        return {m: [roles.index(r) for r in rs if r in roles] for m, rs in MODALITIES.items()}

    def ok(self) -> np.ndarray:
        """Boolean [R]: records whose status is "ok"."""
        return np.asarray(self.trace["records/status"]) == "ok"

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.trace[name])

    def conditions(self) -> list[str]:
        from ..conditions import condition_order

        return condition_order(self.column("records/condition")[self.ok()].tolist())

    def modes(self) -> list[str]:
        have = set(self.column("records/mode")[self.ok()].tolist())
        return [m for m in ("direct", "cot") if m in have] + sorted(have - {"direct", "cot"})

    def modalities(self) -> tuple[str, ...]:
        """The non-text modalities the estimate measured, in column order (("image",) when none)."""
        from ..estimate.results import MODALITY_COLUMNS

        seen = {m for t in getattr(self.estimate, "tables", ()) for m in getattr(t, "modalities", ())}
        return tuple(m for m in MODALITY_COLUMNS if m in seen and m not in ("text", "other")) or ("image",)

    def main_mode(self) -> str:
        modes = self.modes()
        return modes[0] if modes else "direct"

    def rows(self, condition: str | None = None, mode: str | None = None) -> np.ndarray:
        """Indices of the ok records of ``condition`` × ``mode``."""
        mask = self.ok()
        if condition is not None:
            mask &= self.column("records/condition") == condition
        if mode is not None:
            mask &= self.column("records/mode") == mode
        return np.flatnonzero(mask)


def unique_labels(labels: Sequence[str], paths: Sequence[Path]) -> list[str]:
    """Model ids, disambiguated by file stem where two traces share one."""
    out = []
    for i, (lab, p) in enumerate(zip(labels, paths)):
        if sum(1 for x in labels if x == lab) > 1:
            lab = f"{lab} ({Path(p).stem})" if lab else Path(p).stem
        out.append(lab or Path(p).stem)
    return out


def short_label(label: str) -> str:
    """Last path component of a model id ("org/name" -> "name")."""
    return label.rstrip("/").split("/")[-1] if "/" in label else label
