"""The one hook primitive: run the model, keep or edit some modules' inputs / outputs, or run
something else in their place, optionally stopping the forward pass after the last one.

    with trace({"decoder": vlm.decoder}, inputs=True, stop=True) as seen:
        vlm.model(**batch.inputs)     # ends at the decoder's input: the decoder does not run
    args, kwargs = seen["decoder"].args, seen["decoder"].kwargs

Modelled on baukit's ``TraceDict(model, layers, stop=True)``. For every traced module, in call
order: ``edit_input(name, args, kwargs) -> (args, kwargs)`` (a forward pre-hook), the input kept
(``inputs=True``), ``replace(name, args, kwargs) -> output`` run *instead of* the module's own
forward, ``edit_output(name, output) -> output`` (a forward hook), the output kept
(``outputs=True``). With ``stop=True`` the pass ends at the *last listed* module as soon as what
was asked of it is done — at its input when neither its output nor an output edit is wanted,
else right after its output: the trace raises its own :class:`StopForward` there and swallows
it on exit (another trace's stop passes through). Kept values are detached (``detach=False``
keeps the autograd graph) and copied with ``clone=True``; edits and replacements are not
detached, so gradients flow through them.

Every hook is removed, and every replaced forward put back, when the block exits — on error
too — so the model is left exactly as it was. Traces nest (each one's hooks are its own).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import torch

EditInput = Callable[[str, tuple, dict], "tuple[tuple, dict]"]
EditOutput = Callable[[str, Any], Any]
Replace = Callable[[str, tuple, dict], Any]


class StopForward(Exception):
    """Ends a forward pass at a traced module (``trace(..., stop=True)``); swallowed by the trace
    that raised it."""

    def __init__(self, owner: object):
        super().__init__("forward pass stopped by a trace")
        self.owner = owner


@dataclass
class Seen:
    """What one traced module received and returned (its last call; ``calls`` counts them)."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    output: Any = None
    calls: int = 0

    @property
    def hidden(self) -> Any:
        """The hidden-state input (the first positional argument, or ``hidden_states``)."""
        return hidden_input(self.args, self.kwargs)


def hidden_input(args: tuple, kwargs: Mapping[str, Any]) -> Any:
    """A layer's hidden-state input: its first positional argument, or the ``hidden_states`` keyword."""
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise TypeError("the module was called without a positional input or hidden_states=")


def with_hidden_input(args: tuple, kwargs: dict, value: Any) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the hidden-state input replaced by ``value``."""
    if args:
        return (value, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": value}


def passthrough(as_tuple: bool) -> Replace:
    """A ``replace`` function that returns the module's hidden input unchanged (a skipped layer;
    wrapped in a 1-tuple when the layer returns tuples)."""

    def skip(name: str, args: tuple, kwargs: dict) -> Any:
        h = hidden_input(args, kwargs)
        return (h,) if as_tuple else h

    return skip


def _keep(value: Any, detach: bool, clone: bool) -> Any:
    if isinstance(value, torch.Tensor):
        if detach:
            value = value.detach()
        return value.clone() if clone else value
    if isinstance(value, tuple):
        kept = [_keep(v, detach, clone) for v in value]
        return type(value)(*kept) if hasattr(value, "_fields") else tuple(kept)
    if isinstance(value, list):
        return [_keep(v, detach, clone) for v in value]
    if isinstance(value, dict):
        return {k: _keep(v, detach, clone) for k, v in value.items()}
    return value


@contextlib.contextmanager
def _replaced_forward(module: torch.nn.Module, name: str, fn: Replace) -> Iterator[None]:
    """``module``'s forward is ``fn(name, args, kwargs)`` for the block (hooks still run); the
    instance attribute it shadows (e.g. an accelerate wrapper), if any, is put back after."""
    had = "forward" in vars(module)
    before = vars(module).get("forward")
    module.forward = lambda *args, **kwargs: fn(name, args, kwargs)
    try:
        yield
    finally:
        if had:
            module.forward = before
        else:
            del module.forward


@contextlib.contextmanager
def trace(modules: Mapping[str, torch.nn.Module], *, inputs: bool = False, outputs: bool = False,
          edit_input: EditInput | None = None, edit_output: EditOutput | None = None,
          replace: Replace | None = None, stop: bool = False, detach: bool = True,
          clone: bool = False) -> Iterator[dict[str, Seen]]:
    """Trace ``modules`` (name -> module) during the block (module docstring). Yields
    name -> :class:`Seen`, filled as the modules run."""
    names = list(modules)
    if not names:
        raise ValueError("trace needs at least one module")
    seen = {name: Seen() for name in names}
    last = names[-1]
    stop_at_input = stop and not (outputs or edit_output)
    handles = []
    owner = object()

    def pre_hook(name: str):
        def hook(module, args, kwargs):
            if edit_input is not None:
                args, kwargs = edit_input(name, args, kwargs)
            rec = seen[name]
            rec.calls += 1
            if inputs:
                rec.args, rec.kwargs = _keep(args, detach, clone), _keep(kwargs, detach, clone)
            if stop_at_input and name == last:
                raise StopForward(owner)
            return (args, kwargs) if edit_input is not None else None

        return hook

    def post_hook(name: str):
        def hook(module, args, output):
            if edit_output is not None:
                output = edit_output(name, output)
            if outputs:
                seen[name].output = _keep(output, detach, clone)
            if stop and name == last:
                raise StopForward(owner)
            return output if edit_output is not None else None

        return hook

    with contextlib.ExitStack() as stack:
        for name, module in modules.items():
            handles.append(module.register_forward_pre_hook(pre_hook(name), with_kwargs=True))
            if outputs or edit_output is not None or stop:
                handles.append(module.register_forward_hook(post_hook(name)))
            if replace is not None:
                stack.enter_context(_replaced_forward(module, name, replace))
        try:
            yield seen
        except StopForward as exc:
            if exc.owner is not owner:
                raise
        finally:
            for handle in handles:
                handle.remove()
