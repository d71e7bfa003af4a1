"""Instruments as registered plug-ins: the ``Method`` interface, its settings, the trace datasets
it writes, and the ``METHODS`` registry of ``MethodSpec`` entries.

A method's registration carries everything the rest of the toolkit needs (to add a method,
write one ``register_method(MethodSpec(...))`` — see docs/CONTRACTS.md):

- ``settings``: its own frozen settings dataclass (a subclass of ``Settings``); each field made
  with ``setting(default, help, ...)`` becomes a CLI flag of ``attribute`` with that help text
  (``--<prefix>-<field>``; ``flag=`` overrides the name), is validated on construction (choices,
  minimum) and is recorded in the trace's provenance.
- ``datasets``: the trace datasets it writes (``DatasetSpec``: row shape, role axis, layer axis,
  units as a machine-readable value from ``UNITS``); written as dataset attributes so that a trace
  describes itself (``inspect`` and the schema checks read them).
- ``kind``: ``"observational"`` (reads the forward pass: attention, gradients) or ``"causal"``
  (changes the input or the computation and measures the effect).
- ``contributions``: how its rows become per-modality contributions for the estimator
  (``xai_bias.estimate.contributions``: a function of an ``EstimatorView`` returning
  ``Contributions``).
- ``label`` / ``short_label`` / ``color``: how ``inspect``, ``estimate`` and the figures name it.
- ``instrument``: the ``Method`` subclass (or ``"module:Class"``, imported on first use, so that
  listing methods and parsing flags never imports torch); None for an estimator-only analysis
  computed from the records (``ablation``).

A run does, per batch::

    methods = [METHODS.get(name).build(vlm, settings) for name in names]
    with ExitStack() as stack:
        for m in methods: stack.enter_context(m.capture(batch))
        logits = forward(vlm, batch)            # the one scoring forward pass
    targets = ...                               # per item: answer position + target letter id
    rows = [m.measure(batch, targets) for m in methods]   # extra passes if a method needs them

``measure`` returns one dict per batch item: trace dataset path -> that record's row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping, Sequence

import numpy as np

from ..errors import UsageError
from ..registry import Registry

#: machine-readable units of a trace dataset's values
UNITS: tuple[str, ...] = (
    "probability",  # softmax probability mass (attention on roles / tokens)
    "share",  # a fraction of a total, per row (|IG| share per role)
    "logprob",  # log-probability, natural log (logit lens readouts)
    "logprob_change",  # a difference of log-probabilities, nats (knockout, Shapley values, IG error)
    "count",  # integer counts or grid sizes (map grids)
    "value",  # anything else (documented in the description)
)
KINDS = ("observational", "causal", "analysis")
TARGETS = ("predicted", "gold")


# --------------------------------------------------------------------------------------------
# settings


def setting(default: Any, help: str, *, flag: str | None = None, choices: Sequence[Any] | None = None,
            minimum: float | None = None, aliases: Sequence[str] = ()) -> Any:
    """A settings field: its default, help text (the CLI's), optional flag name override,
    allowed values and minimum (checked on construction)."""
    meta = {"help": help, "flag": flag, "choices": tuple(choices) if choices is not None else None,
            "minimum": minimum, "aliases": tuple(aliases)}
    if isinstance(default, (list, dict, set)):
        raise TypeError("settings defaults must be immutable")
    return field(default=default, metadata=meta)


def flag_name(settings: type, f: dataclasses.Field) -> str:
    """The CLI flag of settings field ``f`` (``--<prefix>-<field>`` unless the field names one)."""
    prefix = getattr(settings, "_flag_prefix", "")
    default = f"--{prefix}-{f.name}" if prefix else f"--{f.name}"
    return f.metadata.get("flag") or default.replace("_", "-")


@dataclass(frozen=True)
class Settings:
    """Base of every method's settings dataclass: validates its fields on construction (a bad
    value is a ``UsageError`` naming the CLI flag)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices, minimum = f.metadata.get("choices"), f.metadata.get("minimum")
            label = flag_name(type(self), f)
            if choices is not None and value not in choices:
                raise UsageError(f"{label} must be one of {', '.join(map(str, choices))}, got {value!r}")
            if minimum is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                        or value < minimum):
                raise UsageError(f"{label} must be a number >= {minimum:g}, got {value!r}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class NoSettings(Settings):
    """Settings of a method that has none."""


@dataclass(frozen=True)
class MethodSettings:
    """The settings of one run as every instrument sees them: the run-wide ``target`` (which
    letter is explained: the predicted or the gold one) and ``seed``, and each method's own
    settings (``per_method``: method name -> its settings instance; registered defaults for
    the others)."""

    target: str = "predicted"
    seed: int = 0
    per_method: Mapping[str, Settings] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise UsageError(f"--target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        object.__setattr__(self, "per_method", dict(self.per_method))

    @classmethod
    def build(cls, target: str = "predicted", seed: int = 0, **per_method: Mapping[str, Any] | Settings
              ) -> "MethodSettings":
        """``MethodSettings.build(ig={"steps": 8}, shapley={"groups": 3})``: each keyword is a
        method name with its settings (an instance or a dict of field values)."""
        load_methods()
        out: dict[str, Settings] = {}
        for name, value in per_method.items():
            spec = METHODS.get(name)
            out[name] = value if isinstance(value, Settings) else spec.settings(**dict(value))
        return cls(target=target, seed=seed, per_method=out)

    def of(self, name: str) -> Settings:
        """The settings of method ``name`` (its registered defaults when not given)."""
        got = self.per_method.get(name)
        return got if got is not None else load_methods().get(name).settings()

    def describe(self, names: Sequence[str]) -> dict[str, Any]:
        """JSON-ready settings of the methods ``names`` (for the trace's provenance)."""
        return {"target": self.target, "seed": int(self.seed),
                **{n: self.of(n).as_dict() for n in names}}


# --------------------------------------------------------------------------------------------
# datasets


@dataclass(frozen=True)
class DatasetSpec:
    """A trace dataset a method writes (one row per record).

    shape: the row's shape in words (``"[L, H, n_roles]"``). units: one of ``UNITS``.
    role_axis / layer_axis: axis of the *row* over token roles / decoder layers (None: none).
    first_layer: the layer number of row 0 along the layer axis (-1 when row 0 is the input
    embeddings, as for IG). optional: written only under some settings (e.g. ``--save-maps``).
    """

    name: str
    shape: str
    units: str
    description: str
    role_axis: int | None = None
    layer_axis: int | None = None
    first_layer: int = 0
    optional: bool = False

    def __post_init__(self) -> None:
        if self.units not in UNITS:
            raise ValueError(f"dataset {self.name!r}: units {self.units!r} not in {UNITS}")

    def attrs(self, method: str) -> dict[str, Any]:
        """What the writer stores as dataset attributes (the trace describes itself)."""
        out: dict[str, Any] = {"method": method, "shape": self.shape, "units": self.units,
                               "description": self.description}
        if self.role_axis is not None:
            out["role_axis"] = int(self.role_axis)
        if self.layer_axis is not None:
            out["layer_axis"] = int(self.layer_axis)
            out["first_layer"] = int(self.first_layer)
        return out


# --------------------------------------------------------------------------------------------
# the method interface


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
    """Base class: no capture, no measurement. Subclasses override what they need.

    ``self.settings`` is the run's ``MethodSettings``; ``self.options`` this method's own
    settings instance (``settings.of(self.name)``)."""

    name: str = ""

    def __init__(self, vlm: Any, settings: MethodSettings = MethodSettings()):
        self.vlm = vlm
        self.settings = settings
        self.options: Any = settings.of(self.name) if self.name in load_methods() else NoSettings()

    def prepare(self, modalities: Sequence[str]) -> None:
        """Called once by the runner before the first batch with the non-text modalities the run
        can show (``conditions.run_modalities``: e.g. ``("audio",)``); default: nothing."""

    def capture(self, batch: Any) -> ContextManager[Any]:
        """Context active during the scoring forward pass (hooks, attention override)."""
        return contextlib.nullcontext()

    def measure(self, batch: Any, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        raise NotImplementedError

    def dataset_attrs(self) -> dict[str, dict[str, Any]]:
        """Settings stored on each dataset (beyond what the ``DatasetSpec`` says)."""
        return {}


@dataclass(frozen=True)
class MethodSpec:
    """One registered method (see the module docstring)."""

    name: str
    label: str
    kind: str
    datasets: tuple[DatasetSpec, ...]
    contributions: Callable[[Any], Any] | None
    instrument: type | str | None = None
    settings: type = NoSettings
    short_label: str = ""
    color: str | None = None
    flag_prefix: str = ""
    description: str = ""
    #: trace datasets the estimator needs (default: the non-optional ``datasets``)
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"method {self.name!r}: kind {self.kind!r} not in {KINDS}")
        if not (isinstance(self.settings, type) and issubclass(self.settings, Settings)):
            raise TypeError(f"method {self.name!r}: settings must be a Settings subclass")
        if not self.short_label:
            object.__setattr__(self, "short_label", self.name)
        if not self.flag_prefix:
            object.__setattr__(self, "flag_prefix", self.name.replace("_", "-"))
        if not self.needs:
            object.__setattr__(self, "needs", tuple(d.name for d in self.datasets if not d.optional))
        self.settings._flag_prefix = self.flag_prefix  # validation messages name the CLI flag
        self.dataset(None)  # names are unique

    @property
    def runnable(self) -> bool:
        """True for methods that measure during ``attribute`` (False: estimator-only analyses)."""
        return self.instrument is not None

    def instrument_class(self) -> type:
        if self.instrument is None:
            raise UsageError(f"method {self.name!r} is computed by the estimator from the records; "
                             f"it is not an instrument of 'attribute'")
        if isinstance(self.instrument, str):
            module, _, attr = self.instrument.partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.instrument

    def build(self, vlm: Any, settings: MethodSettings | None = None) -> Method:
        """An instance of the instrument for ``vlm`` with the run's ``settings``."""
        return self.instrument_class()(vlm, settings or MethodSettings())

    def dataset(self, name: str | None) -> DatasetSpec | None:
        seen: dict[str, DatasetSpec] = {}
        for d in self.datasets:
            if d.name in seen:
                raise ValueError(f"method {self.name!r} declares dataset {d.name!r} twice")
            seen[d.name] = d
        return seen.get(name) if name is not None else None

    def flags(self) -> list[tuple[str, tuple[str, ...], dataclasses.Field]]:
        """(dest, option strings, field) of each settings field's CLI flag."""
        return [(f"{self.name}__{f.name}", (flag_name(self.settings, f), *f.metadata.get("aliases", ())), f)
                for f in dataclasses.fields(self.settings)]


METHODS: Registry[MethodSpec] = Registry("method")


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to ``METHODS`` (a name already registered is an error)."""
    return METHODS.register(spec.name, spec)


def dataset_spec(name: str) -> tuple[MethodSpec, DatasetSpec] | None:
    """The method and dataset spec that write trace dataset ``name`` (None if no method does)."""
    load_methods()
    for _, spec in METHODS.items():
        d = spec.dataset(name)
        if d is not None:
            return spec, d
    return None


def runnable_methods() -> list[str]:
    """Names of the methods ``attribute --methods`` accepts."""
    load_methods()
    return [n for n, s in METHODS.items() if s.runnable]


_LOADED = False


def load_methods() -> Registry[MethodSpec]:
    """Register the built-in methods (``xai_bias.instruments.catalog``) once; returns ``METHODS``."""
    global _LOADED
    if not _LOADED:
        importlib.import_module("xai_bias.instruments.catalog")
        _LOADED = True
    return METHODS
