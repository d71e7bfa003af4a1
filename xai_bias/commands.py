"""What each CLI subcommand does, as library calls (``cli.py`` only parses arguments).

Every function takes the parsed ``argparse.Namespace`` and returns the exit code. The probe
registry is passed in by the caller (``xai_bias`` never imports ``probes``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import UsageError

DEFAULT_PROBE = "hint_conflict"


def dispatch(args: Any, probes: Callable[[], Any]) -> int:
    handler = globals()[f"cmd_{args.command}"]
    return handler(args, probes) if args.command in ("attribute", "probes") else handler(args)


def silence_stdout() -> None:
    """After a broken pipe (``| head``): send what is left of stdout to /dev/null, so that the
    interpreter's final flush raises nothing."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured output)
        pass


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# -- attribute ------------------------------------------------------------------------------
def sample_set_from_args(args: Any, probes: Callable[[], Any]) -> Any:
    """The sample set named by --samples, or --probe (default: the hint_conflict probe)."""
    from .samples import load_samples

    if args.samples:
        return load_samples(args.samples, on_error=args.on_error, limit=args.limit,
                            subset=getattr(args, "subset", None), split=getattr(args, "split", None))
    if getattr(args, "subset", None) or getattr(args, "split", None):
        raise UsageError("--subset / --split go with --samples (a probe knows its own config and split)")
    registry = probes()
    build = registry.get(args.probe or DEFAULT_PROBE)
    return build(limit=args.limit, seed=args.seed, path=args.probe_path)


def load_model_from_args(args: Any) -> Any:
    from .distributed import rank_device
    from .resolve import load_model

    return load_model(args.model, device=rank_device(args.device), dtype=args.dtype,
                      trust_remote_code=args.trust_remote_code,
                      device_map=getattr(args, "device_map", None))


def add_method_flags(parser: Any) -> None:
    """One flag per settings field of every registered instrument (``MethodSpec.flags``), with
    the field's help text, default, type and choices (the registry is the only source)."""
    import argparse

    from .instruments import load_methods

    for name, spec in load_methods().items():
        if not spec.runnable or not spec.flags():
            continue
        group = parser.add_argument_group(f"{name} ({spec.label})")
        for dest, options, f in spec.flags():
            meta, default = f.metadata, f.default
            help_text = f"{meta.get('help', '')} (default {default})"
            if isinstance(default, bool):
                action = argparse.BooleanOptionalAction if default else "store_true"
                group.add_argument(*options, dest=dest, action=action, default=default, help=help_text)
                continue
            choices = meta.get("choices")
            group.add_argument(*options, dest=dest, type=type(default), default=default, help=help_text,
                               choices=choices, metavar=None if choices else type(default).__name__.upper())


def method_settings_from_args(args: Any) -> Any:
    """``MethodSettings`` from the parsed flags: every instrument's settings are built (and so
    validated: a bad value is a UsageError before any data or model is loaded)."""
    from .instruments import MethodSettings, load_methods

    per_method = {}
    for name, spec in load_methods().items():
        if spec.runnable:
            values = {f.name: getattr(args, dest, f.default) for dest, _, f in spec.flags()}
            per_method[name] = spec.settings(**values)
    return MethodSettings(target=args.target, seed=args.seed, per_method=per_method)


def run_config_from_args(args: Any) -> Any:
    from .run import RunConfig

    settings = method_settings_from_args(args)
    return RunConfig(
        out=Path(args.out), conditions=tuple(args.conditions), mode=args.mode,
        methods=tuple(args.methods), limit=args.limit, batch_size=args.batch_size, seed=args.seed,
        resume=args.resume, overwrite=args.overwrite, on_error=args.on_error, options=args.options,
        max_new_tokens=args.max_new_tokens, parse_fallback=args.parse_fallback,
        shard=args.shard or (0, 1), settings=settings, command=args.command_line,
        progress=not args.no_progress, prompt_style=args.prompt_style,
    )


def check_before_loading(args: Any, config: Any) -> None:
    """Every check that needs no model, before one loads: the flags, the device, the output."""
    from .distributed import check_outputs, rank_device
    from .models import resolve_device

    config.validate()
    resolve_device(rank_device(args.device))
    check_outputs(config)


def cmd_attribute(args: Any, probes: Callable[[], Any]) -> int:
    from .distributed import run_distributed
    from .errors import SampleError

    config = run_config_from_args(args)
    check_before_loading(args, config)  # a typo fails before any data or model is loaded
    sample_set = sample_set_from_args(args, probes)
    for problem in sample_set.problems:
        print(f"skipped {problem}", file=sys.stderr)
    if not sample_set.samples:
        where = getattr(sample_set, "path", None) or sample_set.name
        raise SampleError(str(where), f"no usable samples ({len(sample_set.problems)} skipped): nothing to run")
    vlm = load_model_from_args(args)
    summary = run_distributed(vlm, sample_set, config)
    if summary is None:  # a non-zero rank: rank 0 reports
        return 0
    print(f"wrote {summary.written} record(s) to {summary.out}"
          + (f" ({summary.skipped_done} already there)" if summary.skipped_done else "")
          + (f"; {summary.failed} failed (see status)" if summary.failed else ""))
    if summary.interrupted:
        print(f"stopped early; resume with:\n  {summary.resume_command}")
        return summary.exit_code
    print(f"look at it with:\n  python cli.py inspect {summary.out}\n"
          f"  python cli.py estimate {summary.out}\n  python cli.py figures {summary.out}"
          f"   # into {default_figures_dir(summary.out)}/")
    return 0


# -- inspect --------------------------------------------------------------------------------
def cmd_inspect(args: Any) -> int:
    from .store import open_trace
    from .store.inspect import describe, describe_record, format_description, format_record

    with open_trace(args.path) as trace:
        if args.record is not None or args.sample is not None:
            if args.sample is not None:
                idx = trace.find(sample_id=args.sample)
                if len(idx) == 0:
                    raise UsageError(f"{args.path}: no record of sample {args.sample!r}")
                indices = [int(i) for i in idx]
            else:
                if not 0 <= args.record < trace.n_records:
                    raise UsageError(f"{args.path}: record {args.record} out of range "
                                     f"(the trace holds {trace.n_records})")
                indices = [args.record]
            descs = [describe_record(trace, i) for i in indices]
            if args.json:
                _print_json(descs if len(descs) > 1 else descs[0])
            else:
                print("\n\n".join(format_record(d) for d in descs))
        else:
            d = describe(trace)
            _print_json(d) if args.json else print(format_description(d))
    return 0


# -- estimate -------------------------------------------------------------------------------
def cmd_estimate(args: Any) -> int:
    from .estimate import estimate, estimate_to_json, format_estimate
    from .store import open_trace

    with open_trace(args.path) as trace:
        est = estimate(trace, methods=args.method, condition=args.condition, mode=args.mode,
                       include_other=args.include_other, n_bootstrap=args.bootstrap,
                       seed=args.seed, suppression_fraction=args.fraction)
    if args.json:
        _print_json(estimate_to_json(est))
    elif args.format == "latex":
        from .estimate import format_estimate_latex

        print(format_estimate_latex(est))
    else:
        print(format_estimate(est))
    return 0


# -- consistency ----------------------------------------------------------------------------
def cmd_consistency(args: Any) -> int:
    from . import consistency as cons

    if bool(args.path) == bool(args.predictions):
        raise UsageError("give either a trace PATH.h5 or --predictions PRED.jsonl")
    if args.predictions:
        files = []
        for spec in args.predictions:
            path, _, label = spec.rpartition("=") if "=" in spec else (spec, "", "")
            files.append((path, label or None))
        rows = cons.load_prediction_files(files, on_duplicate=args.on_duplicate)  # any harness's format
    else:
        from .store import open_trace

        with open_trace(args.path) as trace:
            rows = cons.rows_from_trace(trace)
    print(cons.report(rows, complete=args.complete, text=args.text, image=args.image, fmt=args.format,
                      decimals=args.decimals))
    return 0


# -- figures --------------------------------------------------------------------------------
def default_figures_dir(trace: str | Path) -> Path:
    """Where ``figures`` writes by default: next to the (first) trace, ``runs/demo.h5`` ->
    ``runs/demo-figures/`` (the repository's ``figures/`` is written only by the script that
    makes the README's figures)."""
    trace = Path(trace)
    return trace.with_name(f"{trace.stem}-figures")


def cmd_figures(args: Any) -> int:
    from .plots import render_all

    out = Path(args.out) if args.out else default_figures_dir(args.paths[0])
    result = render_all(args.paths, out=out, formats=tuple(args.format), sample=args.sample,
                        n_bootstrap=args.bootstrap, seed=args.seed)
    for path in result.written:
        print(f"wrote {path}")
    for note in result.notes:
        print(f"note: {note}")
    return 0


# -- report ---------------------------------------------------------------------------------
def cmd_report(args: Any) -> int:
    from .report import build_report

    result = build_report(args.paths, Path(args.out), n_bootstrap=args.bootstrap, seed=args.seed,
                          max_mb=args.max_mb, max_samples=args.max_samples, tokenizer=args.tokenizer,
                          image_side=args.image_side)
    for note in result.notes:
        print(f"note: {note}")
    print(f"wrote {result.path} ({result.n_bytes / 1e6:.2f} MB); open it in a browser")
    return 0


# -- merge ----------------------------------------------------------------------------------
def cmd_merge(args: Any) -> int:
    from .store import merge_traces

    out = merge_traces([Path(p) for p in args.paths], Path(args.out), overwrite=args.overwrite,
                       allow_partial=args.allow_partial)
    print(f"merged {len(args.paths)} trace(s) into {out}")
    return 0


# -- listings -------------------------------------------------------------------------------
def cmd_models(args: Any) -> int:  # noqa: ARG001
    from .resolve import describe_models

    print(describe_models())
    return 0


def cmd_probes(args: Any, probes: Callable[[], Any]) -> int:  # noqa: ARG001
    registry = probes()
    for name, build in registry.items():
        doc = (build.__doc__ or "").strip().splitlines()
        print(f"{name:20s} {doc[0] if doc else ''}")
        if getattr(build, "listing", ""):  # a published benchmark: counts, source, citation
            print(f"{'':20s} {build.listing}")
    return 0
