"""The study runner: samples × conditions × mode -> Records -> trace file.

``run_study(vlm, sample_set, config)`` walks the work items (one per sample × condition) in
batches: builds each prompt view, encodes it, runs the scoring forward pass under every
method's capture context, scores the option letters (or generates and parses in ``cot`` mode),
lets each method measure, and appends one Record per item to the trace, flushing after each.

Reliability: with ``resume`` the items already in the trace are skipped; SIGINT, SIGTERM and
SIGHUP stop after the batch in flight (the summary names the signal; the trace keeps
``partial=True`` until a run writes its last item); an item whose input is bad (unreadable
image, a prompt longer than the model's context) gets a Record with ``status`` naming the cause
(``on_error="skip"``) or stops the run with a SampleError (``"stop"``) — records already
written stay. The trace file appears with its first record: a run that fails before leaves
none (and an ``--overwrite`` leaves the old trace).
"""

from __future__ import annotations

import contextlib
import json
import platform
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .errors import SampleError, UsageError
from .instruments import METHODS, MethodSettings, Target, load_methods
from .types import LETTERS, MODES, N_ROLES, ROLES, PromptView, Record, Sample


@dataclass(frozen=True)
class RunConfig:
    """Settings of one run (what the CLI's ``attribute`` flags set)."""

    out: Path = Path("runs/demo.h5")
    conditions: tuple[str, ...] = ("complete",)
    mode: str = "direct"
    methods: tuple[str, ...] = ()
    limit: int | None = None
    batch_size: int = 8
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    on_error: str = "stop"  # "stop" | "skip"
    options: str = "all"  # "all" | "4" (reduce to k options)
    max_new_tokens: int = 512
    parse_fallback: str | None = None  # None | "random"
    shard: tuple[int, int] = (0, 1)  # (index, count)
    settings: MethodSettings = field(default_factory=MethodSettings)
    command: str = ""
    progress: bool = True
    prompt_style: str = "lmms_eval"  # xai_bias.prompt_styles: instructions and image layout

    def validate(self) -> None:
        from .conditions import check_condition
        from .prompt_styles import get_style

        for c in self.conditions:
            check_condition(c)
        get_style(self.prompt_style)
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.on_error not in ("stop", "skip"):
            raise UsageError("--on-error must be 'stop' or 'skip'")
        if self.options != "all" and not (self.options.isdigit() and int(self.options) >= 2):
            raise UsageError("--options must be 'all' or a number of options >= 2 (e.g. 4)")
        if self.batch_size < 1:
            raise UsageError("--batch-size must be at least 1")
        if self.limit is not None and self.limit < 0:
            raise UsageError(f"--limit must be 0 or more, got {self.limit}")
        if self.mode == "cot" and self.max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens must be at least 1 in cot mode, got {self.max_new_tokens}")
        i, n = self.shard
        if not (n >= 1 and 0 <= i < n):
            raise UsageError(f"--shard {i}/{n}: need 0 <= i < n")
        load_methods()
        for m in self.methods:
            if not METHODS.get(m).runnable:
                runnable = ", ".join(n for n, spec in METHODS.items() if spec.runnable)
                raise UsageError(f"method {m!r} is computed by 'estimate' from the records, not measured "
                                 f"by 'attribute' (instruments: {runnable})")


@dataclass(frozen=True)
class WorkItem:
    sample: Sample
    condition: str
    mode: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.sample.id, self.condition, self.mode)


@dataclass(frozen=True)
class RunSummary:
    out: Path
    written: int
    skipped_done: int
    failed: int
    interrupted: bool
    resume_command: str = ""
    stop_signal: int = 0  # the signal that stopped the run (SIGINT, SIGTERM, SIGHUP), 0 if none

    @property
    def exit_code(self) -> int:
        """0, or 128 + the signal for a run stopped by one (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
        return 128 + (self.stop_signal or signal.SIGINT) if self.interrupted else 0


def work_items(samples: Sequence[Sample], config: RunConfig) -> list[WorkItem]:
    """All (sample, condition) items of this shard, in a fixed order: samples outer.

    Shard ``i`` of ``n`` is the ``i``-th of ``n`` contiguous blocks of nearly equal size, so the
    shards concatenated in order are the unsharded run's items in its order."""
    from .options import reduce_options

    items = []
    for s in samples:
        if config.options != "all":
            s = reduce_options(s, k=int(config.options), seed=config.seed)
        for c in config.conditions:
            items.append(WorkItem(s, c, config.mode))
    i, n = config.shard
    bounds = [len(items) * k // n for k in range(n + 1)]
    return items[bounds[i] : bounds[i + 1]]


def provenance(vlm: Any, sample_set: Any, config: RunConfig) -> dict[str, Any]:
    """Root attributes of the trace: model, data, settings, package versions."""
    import h5py
    import torch
    import transformers

    from . import __version__

    spec = vlm.spec
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "h5py": h5py.__version__,
        "numpy": np.__version__,
        "xai_bias": __version__,
    }
    settings = {
        "conditions": list(config.conditions),
        "mode": config.mode,
        "methods": list(config.methods),
        "options": config.options,
        "max_new_tokens": config.max_new_tokens if config.mode == "cot" else 0,
        "batch_size": config.batch_size,
        "parse_fallback": config.parse_fallback or "",
        "prompt_style": config.prompt_style,
        "method_settings": config.settings.describe(config.methods),
    }
    return {
        "model_id": vlm.model_id,
        "model_arch": spec.arch,
        "model_family": spec.family,
        "dtype": str(vlm.dtype).replace("torch.", ""),
        "device": str(vlm.device),
        "package_versions": json.dumps(versions),
        "command": config.command,
        "sample_set": json.dumps({"name": sample_set.name, "sha256": sample_set.sha256,
                                  **dict(getattr(sample_set, "provenance", None) or {})}, default=str),
        "seed": config.seed,
        "roles": list(ROLES),
        "n_layers": spec.n_layers,
        "n_heads": spec.n_heads,
        "settings": json.dumps(settings, sort_keys=True),
        "skipped_samples": [str(p) for p in getattr(sample_set, "problems", ())],
        "letter_tokens": _letter_tokens(vlm, sample_set),
    }


def _letter_tokens(vlm: Any, sample_set: Any) -> dict[str, Any]:
    """Which token stands for each option letter (direct mode, and after "Answer:")."""
    from .models.letters import describe_letter_tokens

    n = max([len(s.options) for s in sample_set.samples] + [1])
    return describe_letter_tokens(vlm, LETTERS[:n])


#: Signals that stop a run after the batch in flight: Ctrl-C, and what schedulers and closing
#: terminals send before a kill.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _StopFlag:
    """The first stop signal asks the loop to stop after the batch in flight; a second one more
    than ``REPEAT_S`` later stops at once. Signals within that window count as one: a launcher
    (torchrun) forwards the terminal's Ctrl-C to ranks that got it already."""

    REPEAT_S = 1.0

    def __init__(self) -> None:
        self.stop = False
        self.signal = 0
        self._since = 0.0

    @contextlib.contextmanager
    def installed(self) -> Iterator["_StopFlag"]:
        previous = {}
        try:
            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread
            pass
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        now = time.monotonic()
        if self.stop:
            if now - self._since > self.REPEAT_S:  # asked again: stop now
                raise KeyboardInterrupt
            return
        self.stop, self.signal, self._since = True, int(signum), now
        name = signal.Signals(signum).name
        print(f"\n{name}: finishing the record(s) in flight, then stopping "
              "(Ctrl-C again, a second later, to abort now).", file=sys.stderr, flush=True)


def _record_meta(sample: Sample) -> dict[str, Any]:
    """The sample's metadata plus where its images (and video / audio clips) are (figures lay
    attention over them)."""
    meta = dict(sample.meta)
    meta.setdefault("images", [str(p) for p in sample.images])
    if sample.videos:
        meta.setdefault("videos", [str(p) for p in sample.videos])
    if sample.audios:
        meta.setdefault("audios", [str(p) for p in sample.audios])
    return meta


def _error_record(item: WorkItem, cause: str) -> Record:
    s = item.sample
    return Record(
        sample_id=s.id, condition=item.condition, mode=item.mode, answer=s.answer or "",
        prediction="", correct=False, status=f"error: {cause}",
        option_logprobs=np.full(len(s.options), np.nan, np.float32),
        role_tokens=np.zeros(N_ROLES, np.int32), meta=_record_meta(s),
    )


def _chunks(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), n):
        yield seq[start : start + n]


class Runner:
    """Runs work items through one model with a set of methods (see module docstring)."""

    def __init__(self, vlm: Any, config: RunConfig):
        config.validate()
        self.vlm = vlm
        self.config = config
        self.methods = [METHODS.get(name).build(vlm, config.settings) for name in config.methods]

    # -- one batch ------------------------------------------------------------------------
    def _encode(self, items: Sequence[WorkItem]) -> tuple[list[tuple[WorkItem, PromptView, Any]], list[Record]]:
        from .conditions import make_view
        from .models import encode

        ok, failed = [], []
        for item in items:
            try:
                view = make_view(item.sample, item.condition, item.mode, seed=self.config.seed,
                                 style=self.config.prompt_style)
                enc = encode(self.vlm, view)
                self._check_length(len(enc.input_ids))
                ok.append((item, view, enc))
            except (SampleError, OSError, ValueError) as exc:
                cause = exc.cause if isinstance(exc, SampleError) else f"{type(exc).__name__}: {exc}"
                if self.config.on_error == "stop":
                    raise SampleError(f"sample {item.sample.id!r} ({item.condition})", cause) from exc
                failed.append(_error_record(item, cause))
        return ok, failed

    def _check_length(self, n_tokens: int) -> None:
        """A prompt (plus the tokens cot may generate) longer than the model's context is the
        sample's error, found before the forward pass."""
        limit = _context_length(self.vlm)
        extra = self.config.max_new_tokens if self.config.mode == "cot" else 0
        if limit and n_tokens + extra > limit:
            plus = f" + {extra} new tokens" if extra else ""
            raise ValueError(f"the prompt has {n_tokens} tokens{plus}, longer than the model's context of "
                             f"{limit} tokens (max_position_embeddings)")

    def run_batch(self, items: Sequence[WorkItem]) -> list[Record]:
        """Records for a batch of items, in the items' order (failed ones with their cause)."""
        ok, failed = self._encode(items)
        records = {r.key: r for r in failed}
        if ok:
            for rec in self._score(ok):
                records[rec.key] = rec
        return [records[it.key] for it in items]

    def _score(self, encoded: Sequence[tuple[WorkItem, PromptView, Any]]) -> list[Record]:
        from .models import collate

        batch = collate(self.vlm, [e for _, _, e in encoded])
        if self.config.mode == "cot":
            return self._score_cot(encoded, batch)
        return self._score_direct(encoded, batch)

    def _score_direct(self, encoded, batch) -> list[Record]:
        from .models import option_logprobs

        letters = [view.letters for _, view, _ in encoded]
        with contextlib.ExitStack() as stack:  # the one scoring forward pass, instrumented
            for m in self.methods:
                stack.enter_context(m.capture(batch))
            logprobs = option_logprobs(self.vlm, batch, letters)
        predictions = [_argmax_letter(lp, view.letters) for lp, (_, view, _) in zip(logprobs, encoded)]
        targets = [self._target(item, view, pred, batch.answer_pos, self.vlm.letter_token_ids(view.letters))
                   for (item, view, _), pred in zip(encoded, predictions)]
        rows = self._measure(batch, targets)
        return [
            self._record(item, view, enc, pred, lp, row)
            for (item, view, enc), pred, lp, row in zip(encoded, predictions, logprobs, rows)
        ]

    def _score_cot(self, encoded, batch) -> list[Record]:
        from .answers import parse_choice
        from .generation import emitting_row, extend_batch, generate, logprobs_at
        from .models import forward
        from .models.letters import find_answer_token

        encs = [e for _, _, e in encoded]
        texts, gen_ids = generate(self.vlm, batch, max_new_tokens=self.config.max_new_tokens)
        preds = [
            parse_choice(text, list(item.sample.options), fallback=self.config.parse_fallback,
                         seed=self.config.seed)
            for text, (item, _, _) in zip(texts, encoded)
        ]
        full = extend_batch(self.vlm, encs, gen_ids)
        # the answer letter's token: the last generated token standing for the parsed letter,
        # in the spelling emitted (models.letters); none for an unparsed response
        answers = [find_answer_token(self.vlm, ids, p, view.letters) if p else None
                   for ids, p, (_, view, _) in zip(gen_ids, preds, encoded)]
        rows_at = [
            emitting_row(full, i, len(enc), ids, a.offset if a else None)
            for i, (enc, ids, a) in enumerate(zip(encs, gen_ids, answers))
        ]
        with contextlib.ExitStack() as stack:
            for m in self.methods:
                stack.enter_context(m.capture(full))
            logits = forward(self.vlm, full)
        letters = [view.letters for _, view, _ in encoded]
        letter_ids = [a.letter_ids if a else self.vlm.letter_token_ids(view.letters, "after_answer_prefix")
                      for a, (_, view, _) in zip(answers, encoded)]
        logprobs = logprobs_at(self.vlm, logits, rows_at, letters, letter_ids)
        # an unparsed response has no answer row: its instruments still run with the batch (the
        # argmax letter at the last generated row) but their rows are dropped (NaN in the trace)
        targets = [
            self._target(item, view, pred or _argmax_letter(lp, view.letters), pos, ids)
            for (item, view, _), pred, lp, pos, ids in zip(encoded, preds, logprobs, rows_at, letter_ids)
        ]
        # an unparsed response has no answer row: its instrument rows are dropped (NaN in the trace);
        # /generation/answer_row is the row that emits the answer letter, in the record's own
        # tokens (-1: unparsed)
        rows = [{**(row if pred else {}), "generation/answer_row": np.int32(pos - full.pad[i] if pred else -1)}
                for i, (row, pred, pos) in enumerate(zip(self._measure(full, targets), preds, rows_at))]
        logprobs = [lp if pred else np.full_like(lp, np.nan) for lp, pred in zip(logprobs, preds)]
        from .generation import extend_encoded

        return [
            self._record(item, view, extend_encoded(self.vlm, enc, ids), pred, lp, row, response=text,
                         extra_meta={"answer_token": _answer_meta(a, len(enc))})
            for (item, view, enc), ids, pred, lp, row, text, a
            in zip(encoded, gen_ids, preds, logprobs, rows, texts, answers)
        ]

    def _target(self, item: WorkItem, view: PromptView, letter: str, pos: int, letter_ids: Sequence[int]) -> Target:
        """Explain ``letter`` (the prediction; the gold letter under ``--target gold`` when the
        sample has one) at row ``pos``; ``letter_ids``: the option letters' token ids there."""
        if self.config.settings.target == "gold" and item.sample.answer:
            letter = item.sample.answer
        if letter not in view.letters:
            raise ValueError(f"sample {item.sample.id!r} ({item.condition}): no option letter to explain "
                             f"(got {letter!r}; options {''.join(view.letters)})")
        ids = tuple(int(i) for i in letter_ids)
        return Target(answer_pos=pos, token_id=ids[view.letters.index(letter)], letter_ids=ids)

    def _measure(self, batch, targets: Sequence[Target]) -> list[dict[str, np.ndarray]]:
        rows: list[dict[str, np.ndarray]] = [{} for _ in targets]
        for m in self.methods:
            for row, got in zip(rows, m.measure(batch, targets)):
                row.update(got)
        return rows

    def _record(self, item, view, enc, prediction, logprobs, measurements, response="", extra_meta=None) -> Record:
        s = item.sample
        answer = s.answer or ""
        return Record(
            sample_id=s.id, condition=item.condition, mode=item.mode, answer=answer,
            prediction=prediction, correct=bool(answer) and prediction == answer, status="ok",
            option_logprobs=np.asarray(logprobs, np.float32), role_tokens=enc.roles.counts(),
            meta={**_record_meta(s), **(extra_meta or {})}, input_ids=np.asarray(enc.input_ids, np.int32),
            token_roles=np.asarray(enc.roles.role, np.int8), response=response,
            measurements=measurements,
        )


def _answer_meta(answer: Any, prompt_len: int) -> dict[str, Any]:
    """The record's ``meta["answer_token"]``: which generated token was the answer (CoT)."""
    if answer is None:
        return {"emitted": False, "measured": False, "reason": "unparsed response: no answer row"}
    out = answer.as_dict()
    out["position"] = None if answer.offset is None else prompt_len + answer.offset  # in input_ids
    out["measured"] = True
    if answer.offset is None:
        out["reason"] = "letter not emitted as a token: measured at the last generated row"
    return out


def _context_length(vlm: Any) -> int | None:
    """The language model's context length from its config (``max_position_embeddings``)."""
    config = getattr(getattr(vlm, "model", None), "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    n = getattr(text, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def _argmax_letter(logprobs: np.ndarray, letters: Sequence[str]) -> str:
    from .models import predict

    return predict(logprobs, letters)


def run_study(vlm: Any, sample_set: Any, config: RunConfig,
              on_record: Callable[[Record], None] | None = None,
              done_elsewhere: frozenset[tuple[str, str, str]] = frozenset()) -> RunSummary:
    """Run ``config`` over ``sample_set`` with ``vlm`` and write the trace (see module doc).

    ``done_elsewhere``: keys of records another trace holds already (a resumed distributed
    run's merged output); they are skipped like the trace's own."""
    from tqdm.auto import tqdm

    from .store import TraceWriter

    from .conditions import run_modalities

    runner = Runner(vlm, config)
    items = work_items(sample_set.samples[: config.limit] if config.limit else sample_set.samples, config)
    # from the whole sample set, so that every shard of a distributed run agrees
    shown = run_modalities(sample_set.samples, config.conditions)
    for method in runner.methods:
        method.prepare(shown)
    out = Path(config.out)
    written = failed = 0
    stop = _StopFlag()
    with TraceWriter(out, provenance(vlm, sample_set, config), resume=config.resume,
                     overwrite=config.overwrite) as writer:
        for name, attrs in dataset_attrs(config.methods, runner.methods).items():
            writer.set_dataset_attrs(name, **attrs)
        writer.set_attrs(partial=True)  # until the last item is written
        done = (writer.done_keys() if config.resume else set()) | set(done_elsewhere)
        # batches are cut from the full item list, so a resumed run computes every record in
        # the same batch as an uninterrupted run (bit-identical values); a partly done batch
        # is recomputed and only its missing records are written
        todo = [chunk for chunk in _chunks(items, config.batch_size)
                if any(it.key not in done for it in chunk)]
        n_todo = sum(it.key not in done for chunk in todo for it in chunk)
        bar = tqdm(total=n_todo, desc=f"attribute {out.name}", unit="rec",
                   disable=not config.progress, file=sys.stderr)
        with stop.installed(), bar:
            for chunk in todo:
                for rec in runner.run_batch(chunk):
                    if rec.key in done:
                        continue
                    writer.append(rec)
                    written += 1
                    failed += rec.status != "ok"
                    bar.update(1)
                    if on_record:
                        on_record(rec)
                if stop.stop:
                    break
        if written == n_todo:
            writer.set_attrs(partial=False)
    interrupted = written < n_todo  # only a stop signal ends the loop early without an error
    resume_cmd = _resume_command(config.command) if interrupted else ""
    return RunSummary(out, written, len(items) - n_todo, failed, interrupted, resume_cmd,
                      stop.signal if interrupted else 0)


def dataset_attrs(names: Sequence[str], methods: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Attributes of every dataset the methods may write: what each ``DatasetSpec`` declares
    (method, units, role / layer axes) plus the method's own settings attributes."""
    out: dict[str, dict[str, Any]] = {}
    for name, method in zip(names, methods):
        for d in METHODS.get(name).datasets:
            out[d.name] = d.attrs(name)
        for ds, attrs in method.dataset_attrs().items():
            out.setdefault(ds, {}).update(attrs)
    return out


def _resume_command(command: str) -> str:
    parts = [p for p in shlex.split(command) if p not in ("--overwrite", "--resume")]
    return shlex.join(parts + ["--resume"]) if parts else "--resume"
