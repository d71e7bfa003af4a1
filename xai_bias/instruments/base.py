"""The Method interface every instrument implements, and the ``METHODS`` registry.

A run does, per batch::

    methods = [METHODS.get(name)(vlm, settings) for name in names]
    with ExitStack() as stack:
        for m in methods: stack.enter_context(m.capture(batch))
        logits = forward(vlm, batch)            # the one scoring forward pass
    targets = ...                               # per item: answer position + target letter id
    rows = [m.measure(batch, targets) for m in methods]   # extra passes if a method needs them

``measure`` returns one dict per batch item: trace dataset path (e.g. ``"attention/mass"``)
-> that record's row (e.g. ``[L, H, n_roles]``). ``dataset_attrs`` gives the settings stored on
each dataset (steps, baseline, groups, window...).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, ContextManager, Iterator, Mapping, Sequence

import numpy as np

from ..registry import Registry


@dataclass(frozen=True)
class MethodSettings:
    """User settings shared by all instruments (CLI flags)."""

    target: str = "predicted"  # "predicted" | "gold": which letter's log-prob is explained
    ig_steps: int = 32
    ig_baseline: str = "mean"  # "mean" | "white" | "black" | "noise"
    ig_internal_batch_size: int = 8
    shapley_groups: int = 2  # 2: image/text · 3: image/question/options
    shapley_baseline: str = "black"  # absent image = a black image's features; absent text = mean
    shapley_value: str = "vocab"  # "vocab" | "choice": log-prob over the vocabulary / the option letters
    knockout_window: int = 1
    save_maps: bool = False
    attention_flow: bool = False
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """What one batch item's measurement explains.

    answer_pos: index, in the padded batch sequence, of the query row that emits the answer
    letter (the last prompt position in direct mode). token_id: the explained letter's id.
    letter_ids: ids of all option letters (for logit lens).
    """

    answer_pos: int
    token_id: int
    letter_ids: tuple[int, ...]


class Method:
    """Base class: no capture, no measurement. Subclasses override what they need."""

    name: str = ""
    #: trace dataset paths this method writes
    datasets: tuple[str, ...] = ()

    def __init__(self, vlm: Any, settings: MethodSettings = MethodSettings()):
        self.vlm = vlm
        self.settings = settings

    def capture(self, batch: Any) -> ContextManager[Any]:
        """Context active during the scoring forward pass (hooks, attention override)."""
        return contextlib.nullcontext()

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        return {}


METHODS: Registry = Registry("method")
