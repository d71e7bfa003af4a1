"""Loading MMMU-Pro at its real size: time to first record and peak memory.

Synthesises a 1,730-item MMMU-Pro (the size of every released config) from the shared items
(``../shared/data/mmmu_pro_tool``: the 199 usable items cycled, ids made unique) in two forms:

- ``jsonl``: the JSONL layout (images as files), read by today's JSONL loader (the baseline);
- ``hub``: the Hugging Face hub folder layout (``standard (10 options)`` and ``vision`` configs,
  parquet shards with the images embedded, the README's configs table), read through
  ``datasets``: ``hub_first`` with an empty datasets cache (parquet -> Arrow conversion
  included), ``hub_cached`` with the cache already built (a second run).

Each measurement is a fresh process (``--child``) that loads the whole set (validation
included; the standard config joined with the vision config by id), then runs the first record
(``complete`` condition, no instrument, the tiny Qwen2.5-VL) through ``run_study``. It reports
the load time, the time from its start to the first record written, and its peak RSS
(``VmHWM``) after loading and at the end. Cases are interleaved in a shuffled order on every
repetition; medians are reported.

Usage::

    python benchmarks/load_mmmu_pro.py [--items 1730] [--reps 3] [--workdir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "mmmu_pro_tool"
CONFIG = "standard (10 options)"


def _status_mib(key: str = "VmHWM") -> float:
    """A /proc/self/status memory figure in MiB: VmHWM (peak RSS), RssAnon (private memory
    now), RssFile (file pages mapped now: the memory-mapped Arrow cache counts here)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


_hwm_mib = _status_mib


def build(workdir: Path, n_items: int, shard_rows: int = 250) -> tuple[Path, Path, dict]:
    """The JSONL file and the hub folder of ``n_items`` items; returns their paths and facts."""
    import datasets
    from datasets import Features, Image, Value

    sys.path.insert(0, str(REPO))
    from xai_bias.images import image_size
    from xai_bias.samples import load_samples

    usable = load_samples(SHARED / "data.jsonl", on_error="skip")
    raw = {d["id"]: d for d in map(json.loads, (SHARED / "data.jsonl").read_text().splitlines())}
    items = [raw[s.id] for s in usable]
    rows = []
    for k in range(n_items):
        d = dict(items[k % len(items)])
        d["id"] = f"{d['id']}__{k // len(items)}"
        rows.append(d)
    jsonl = workdir / "mmmu_pro.jsonl"
    with jsonl.open("w") as fh:
        for d in rows:
            fh.write(json.dumps({**d, **{key: str(SHARED / "static" / v) for key, v in d.items()
                                         if key.startswith("image_")}}) + "\n")
    hub = workdir / "mmmu_pro"
    std_features = Features({"id": Value("string"), "question": Value("string"), "options": Value("string"),
                             "explanation": Value("string"), **{f"image_{n}": Image() for n in range(1, 8)},
                             "image_type": Value("string"), "answer": Value("string"),
                             "topic_difficulty": Value("string"), "subject": Value("string")})
    vis_features = Features({"id": Value("string"), "image": Image(), "options": Value("string"),
                             "answer": Value("string"), "subject": Value("string")})

    def cell(rel):
        p = SHARED / "static" / rel
        return {"bytes": p.read_bytes(), "path": p.name}

    n_images, decoded = 0, 0
    for config, features in ((CONFIG, std_features), ("vision", vis_features)):
        folder = hub / config
        folder.mkdir(parents=True, exist_ok=True)
        n_shards = -(-n_items // shard_rows)
        for s in range(n_shards):
            chunk = rows[s * shard_rows:(s + 1) * shard_rows]
            if config == CONFIG:
                cols = {"id": [d["id"] for d in chunk], "question": [d["question"] for d in chunk],
                        "options": [str(d["options"]) for d in chunk], "explanation": [""] * len(chunk),
                        **{f"image_{n}": [cell(d[f"image_{n}"]) if d.get(f"image_{n}") else None for d in chunk]
                           for n in range(1, 8)},
                        "image_type": ["[]"] * len(chunk), "answer": [d["answer"] for d in chunk],
                        "topic_difficulty": ["Medium"] * len(chunk), "subject": ["?"] * len(chunk)}
            else:  # a stand-in screenshot: the item's first image (a real size and format)
                cols = {"id": [d["id"] for d in chunk], "image": [cell(d["image_1"]) for d in chunk],
                        "options": [str(d["options"]) for d in chunk], "answer": [d["answer"] for d in chunk],
                        "subject": ["?"] * len(chunk)}
            datasets.Dataset.from_dict(cols, features=features).to_parquet(
                str(folder / f"test-{s:05d}-of-{n_shards:05d}.parquet"))
    (hub / "README.md").write_text("---\nconfigs:\n" + "".join(
        f"- config_name: {c}\n  data_files:\n  - split: test\n    path: {c}/test-*\n" for c in (CONFIG, "vision"))
        + "---\n")
    for d in rows:
        for key, v in d.items():
            if key.startswith("image_") and v:
                w, h = image_size(SHARED / "static" / v)
                n_images += 1
                decoded += w * h * 3
    size = sum(p.stat().st_size for p in hub.rglob("*.parquet"))
    return jsonl, hub, {"items": n_items, "images": n_images, "decoded_rgb_mib": decoded / 2**20,
                        "parquet_mib": size / 2**20}


def child(case: str, source: str, out: str) -> dict:
    t0 = time.perf_counter()
    sys.path.insert(0, str(REPO))
    from xai_bias.samples import load_samples

    kwargs = {} if case == "jsonl" else {"subset": CONFIG, "split": "test"}
    s = load_samples(source, **kwargs)
    t_load = time.perf_counter() - t0
    hwm_load, anon_load, file_load = _status_mib(), _status_mib("RssAnon"), _status_mib("RssFile")
    from xai_bias.models import tiny_vlm
    from xai_bias.run import RunConfig, run_study

    vlm = tiny_vlm("qwen2_5_vl")
    first: dict[str, float] = {}
    config = RunConfig(out=Path(out), conditions=("complete",), methods=(), limit=1, batch_size=1,
                       overwrite=True, progress=False)
    run_study(vlm, s, config, on_record=lambda r: first.setdefault("t", time.perf_counter() - t0))
    vision = s.provenance.get("vision", {}).get("joined", 0) if hasattr(s, "provenance") else 0
    return {"case": case, "n": len(s), "vision_joined": vision, "load_s": t_load, "first_record_s": first["t"],
            "peak_rss_after_load_mib": hwm_load, "anon_rss_after_load_mib": anon_load,
            "file_rss_after_load_mib": file_load, "peak_rss_mib": _hwm_mib(), "anon_rss_end_mib": _status_mib("RssAnon")}


def run_child(case: str, source: Path, cache: Path, out: Path) -> dict:
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    res = subprocess.run([sys.executable, __file__, "--child", case, "--source", str(source), "--out", str(out)],
                         env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child {case} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1730)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--workdir")
    ap.add_argument("--json")
    ap.add_argument("--child")
    ap.add_argument("--source")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.source, args.out)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="xai-bias-load-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    jsonl, hub, facts = build(work, args.items)
    facts["build_s"] = time.perf_counter() - t
    warm = work / "cache-warm"
    run_child("hub_cached", hub, warm, work / "warm.h5")  # builds the Arrow cache once
    results: dict[str, list[dict]] = {"jsonl": [], "hub_first": [], "hub_cached": []}
    rng = random.Random(0)
    for rep in range(args.reps):
        cases = list(results)
        rng.shuffle(cases)
        for case in cases:
            cache = work / f"cache-{rep}" if case == "hub_first" else warm
            source = jsonl if case == "jsonl" else hub
            results[case].append(run_child(case, source, cache, work / f"{case}.h5"))
            if case == "hub_first":
                shutil.rmtree(cache, ignore_errors=True)
    summary = {}
    for case, runs in results.items():
        summary[case] = {k: statistics.median(r[k] for r in runs)
                         for k in ("load_s", "first_record_s", "peak_rss_after_load_mib", "anon_rss_after_load_mib",
                                   "file_rss_after_load_mib", "peak_rss_mib", "anon_rss_end_mib")}
        summary[case].update(n=runs[0]["n"], vision_joined=runs[0]["vision_joined"])
    base = summary["jsonl"]
    print(f"{facts['items']} items, {facts['images']} images; parquet {facts['parquet_mib']:.0f} MiB; all images "
          f"decoded as RGB would take {facts['decoded_rgb_mib']:.0f} MiB")
    print("| source | items | vision joined | load (s) | first record (s) | × jsonl | after load: peak RSS / "
          "private / mapped file (MiB) | end: peak RSS (MiB) | × jsonl | end: private (MiB) | × jsonl |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for case, r in summary.items():
        print(f"| {case} | {r['n']} | {r['vision_joined']} | {r['load_s']:.2f} | {r['first_record_s']:.2f} | "
              f"{r['first_record_s'] / base['first_record_s']:.2f} | {r['peak_rss_after_load_mib']:.0f} / "
              f"{r['anon_rss_after_load_mib']:.0f} / {r['file_rss_after_load_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
              f"{r['peak_rss_mib'] / base['peak_rss_mib']:.2f} | {r['anon_rss_end_mib']:.0f} | "
              f"{r['anon_rss_end_mib'] / base['anon_rss_end_mib']:.2f} |")
    if args.json:
        import datasets

        Path(args.json).write_text(json.dumps({
            "facts": facts, "summary": summary, "runs": results, "reps": args.reps,
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "datasets": datasets.__version__,
                        "platform": platform.platform()}}, indent=2))


if __name__ == "__main__":
    main()
