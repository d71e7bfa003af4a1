#!/usr/bin/env python
"""xai_bias command line: parses arguments and calls the library (see README and DESIGN.md).

    python cli.py attribute   [--model demo|tiny:ARCH|HF_ID|PATH] [--probe NAME | --samples PATH] ...
    python cli.py inspect     PATH.h5 [--record N | --sample ID] [--json]
    python cli.py estimate    PATH.h5 [--method NAME|all] [--condition C] [--bootstrap N] [--json]
    python cli.py consistency PATH.h5 | --predictions PRED.jsonl [--complete C --text T --image I]
    python cli.py figures     PATH.h5 [MORE.h5 ...] [--out DIR] [--format pdf,png] [--sample ID]
    python cli.py report      TRACE.h5 [MORE.h5 ...] [-o report.html]
    python cli.py merge       A.h5 B.h5 ... -o OUT.h5
    python cli.py models | probes
"""

from __future__ import annotations

import argparse
import sys

from xai_bias import commands
from xai_bias.errors import XaiBiasError
from xai_bias.instruments import runnable_methods
from xai_bias.invocation import command_line
from probes import load_probes

DEFAULT_OUT = "runs/demo.h5"
DEFAULT_CONDITIONS = ("complete", "text_white", "image_only")
DEFAULT_METHODS = ("attention", "shapley")


def _csv(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = text.split("/")
        return int(i), int(n)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard wants i/n (e.g. 0/4), got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xai-bias", description="Measure modality bias in multimodal LLMs.")
    sub = p.add_subparsers(dest="command")

    a = sub.add_parser("attribute", help="run a model over a sample set and write a trace")
    a.add_argument("--model", default="demo", help="demo | demo-balanced | tiny:ARCH | HF hub id | local folder")
    src = a.add_mutually_exclusive_group()
    src.add_argument("--probe", help="a registered probe suite (see `probes`); default hint_conflict")
    src.add_argument("--samples", help="a JSONL sample file (MMMU-Pro field names accepted), hf:ORG/NAME "
                                       "(Hugging Face dataset), a folder in the hub's layout or save_to_disk's, "
                                       "or a .parquet file")
    a.add_argument("--subset", help="dataset config of --samples, e.g. 'standard (10 options)'")
    a.add_argument("--split", help="dataset split of --samples, e.g. test")
    a.add_argument("--prompt-style", default="lmms_eval",
                   help="prompt protocol: lmms_eval (default; images at their placeholders) or mmmu_pro "
                        "(the official MMMU-Pro inference: [image] placeholders, images after the text)")
    a.add_argument("--probe-path", help="data path for probes that read one (e.g. mmmu_pro)")
    a.add_argument("--conditions", type=_csv, default=DEFAULT_CONDITIONS,
                   help=f"comma list (default {','.join(DEFAULT_CONDITIONS)}: the study's three)")
    a.add_argument("--mode", default="direct", choices=("direct", "cot"))
    a.add_argument("--methods", type=_csv, default=DEFAULT_METHODS,
                   help=f"comma list of {','.join(runnable_methods())} (default "
                        f"{','.join(DEFAULT_METHODS)}); --methods '' for predictions only")
    a.add_argument("--out", default=DEFAULT_OUT)
    a.add_argument("--limit", type=int)
    a.add_argument("--batch-size", type=int, default=8)
    a.add_argument("--device", default="auto")
    a.add_argument("--device-map", help="accelerate device map, e.g. auto (models larger than one GPU)")
    a.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    a.add_argument("--seed", type=int, default=0)
    g = a.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue an interrupted run")
    g.add_argument("--overwrite", action="store_true", help="replace an existing trace")
    a.add_argument("--on-error", default="stop", choices=("stop", "skip"))
    a.add_argument("--options", default="all", help="all | 4 (the 'standard 4' setting)")
    a.add_argument("--max-new-tokens", type=int, default=512)
    a.add_argument("--parse-fallback", choices=("random",), default=None)
    a.add_argument("--target", default="predicted", choices=("predicted", "gold"),
                   help="which letter the instruments explain: the predicted one or the gold one")
    a.add_argument("--shard", type=_shard, default=None, help="i/n: run the i-th of n contiguous blocks of the work items (job arrays; merge after)")
    a.add_argument("--trust-remote-code", action="store_true")
    a.add_argument("--no-progress", action="store_true")
    commands.add_method_flags(a)  # one flag per setting of every registered instrument

    i = sub.add_parser("inspect", help="show a trace's provenance, schema, records")
    i.add_argument("path")
    w = i.add_mutually_exclusive_group()
    w.add_argument("--record", type=int)
    w.add_argument("--sample")
    i.add_argument("--json", action="store_true")

    e = sub.add_parser("estimate", help="modality contributions C(M_i), imbalance ratio, suppression layer")
    e.add_argument("path")
    e.add_argument("--method", default="all")
    e.add_argument("--condition")
    e.add_argument("--mode")
    e.add_argument("--bootstrap", type=int, default=1000)
    e.add_argument("--include-other", action="store_true", help="count sink and template tokens")
    e.add_argument("--fraction", type=float, default=0.5, help="suppression threshold (fraction of peak)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--format", default="text", choices=("text", "latex"))
    e.add_argument("--json", action="store_true")

    c = sub.add_parser("consistency", help="the ablation study's Tables 1 and 2")
    c.add_argument("path", nargs="?")
    c.add_argument("--predictions", nargs="+", metavar="PRED[=CONDITION]",
                   help="prediction files: xai_bias / official MMMU-Pro JSONL, lmms-eval --log_samples JSONL, "
                        "VLMEvalKit .xlsx/.tsv/.csv (recognised by content); PATH=NAME labels a file whose "
                        "lines carry no condition")
    c.add_argument("--complete", default="complete")
    c.add_argument("--text", help="the condition without the image (default text_white, else the first "
                                   "registered one present that removes the image)")
    c.add_argument("--image", help="the condition without the text (default image_only, else the first "
                                    "registered one present that removes the text)")
    c.add_argument("--format", default="md", choices=("md", "latex", "csv", "json"))
    c.add_argument("--decimals", type=int, default=2,
                   help="decimals of the percentages (default 2, the paper's precision: 56.53)")
    c.add_argument("--on-duplicate", default="error", choices=("error", "first", "last"),
                   help="a second prediction for the same (id, condition): refuse it naming both lines "
                        "(default), or keep the first / the last")

    f = sub.add_parser("figures", help="render paper figures from traces")
    f.add_argument("paths", nargs="+")
    f.add_argument("--out", help="output folder (default: next to the first trace, runs/demo.h5 -> runs/demo-figures/)")
    f.add_argument("--format", type=_csv, default=("pdf", "png"))
    f.add_argument("--sample")
    f.add_argument("--bootstrap", type=int, default=1000)
    f.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")

    r = sub.add_parser("report", help="one self-contained interactive HTML report (overview + sample explorer)")
    r.add_argument("paths", nargs="+", metavar="TRACE.h5", help="one or more traces (overlaid in the overview)")
    r.add_argument("-o", "--out", default="report.html")
    r.add_argument("--bootstrap", type=int, default=1000, help="the estimator's bootstrap resamples")
    r.add_argument("--seed", type=int, default=0, help="the estimator's seed; also picks the explorer's subset")
    r.add_argument("--max-mb", type=float, default=9.5, help="size budget of the file: past it the explorer "
                   "shows a seeded random subset of the samples (default 9.5)")
    r.add_argument("--max-samples", type=int, help="at most this many samples per trace in the explorer")
    r.add_argument("--tokenizer", help="where to read token texts (folder, tokenizer.json or cached hub id; "
                   "default: the trace's model, offline)")
    r.add_argument("--image-side", type=int, default=256, help="longest side of the embedded images (pixels)")

    m = sub.add_parser("merge", help="merge traces (shards) into one")
    m.add_argument("paths", nargs="+")
    m.add_argument("-o", "--out", required=True)
    m.add_argument("--overwrite", action="store_true")
    m.add_argument("--allow-partial", action="store_true",
                   help="also merge traces of runs that did not finish (the result is marked partial)")

    sub.add_parser("models", help="list the supported model families and demo models")
    sub.add_parser("probes", help="list the probe suites")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        argv = ["attribute"]  # the embedded default
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.command_line = command_line(argv)  # the resume hint repeats what the user ran
    try:
        return commands.dispatch(args, probes=load_probes)
    except XaiBiasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`| head`): stop quietly, as SIGPIPE would
        commands.silence_stdout()
        return 141


def run() -> None:
    """The console script: ``main``'s exit code (without HDF5's shutdown after a failed close)."""
    from xai_bias.store import exit_now_if_unclosed

    code = main()
    exit_now_if_unclosed(code)
    raise SystemExit(code)


if __name__ == "__main__":
    run()
