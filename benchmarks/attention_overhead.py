"""Cost of the attention capture: plain sdpa vs ``capture_attention`` vs eager + output_attentions.

A mid-size random Qwen2.5-VL (8 decoder layers, hidden 512, 8 heads / 2 kv heads, a small
2-block vision tower) runs one forward pass over a prompt with one image of about 600 and about
2,400 image tokens. Modes, interleaved in a shuffled order on every repetition, medians reported:

- ``sdpa``      the model as loaded (text decoder on sdpa);
- ``capture``   the same inside ``capture_attention`` on the answer row (what ``--methods
                attention`` does in direct mode);
- ``capture+maps+flow``  also the answer-row maps and the chunk-wise role-to-role flow;
- ``eager``     text decoder on eager attention with ``output_attentions=True`` (what
                TransformerLens / nnsight / LVLM-Interpret style tools need).

The capture also reports its own cost: the process CPU time spent inside the attention function
computing the selected rows (``AttentionCapture.observe_cpu_seconds``), a figure that the
machine's noise barely touches; its share of the pass is the overhead that the time ratio
estimates.

Time: on CPU the process's CPU time per pass (``time.process_time``, with ``--threads 1``) is the
primary figure, since wall time on a shared machine mostly measures the other tenants; the wall
time is reported next to it. On CUDA, wall time after synchronisation.

Memory (CPU): torch allocations are invisible to tracemalloc, so we measure the process's peak
resident set during each forward pass: the script re-executes itself with
``MALLOC_MMAP_THRESHOLD_=65536`` (large tensors are mmapped and returned to the OS when freed,
so RSS follows live memory), resets the kernel's high-water mark before each pass
(``echo 5 > /proc/self/clear_refs``) and reads ``VmHWM`` after it. Reported: the pass's peak
minus the RSS just before it (the memory the pass itself needed), and the process peak.
On CUDA, ``torch.cuda.max_memory_allocated`` deltas are used instead.

Usage::

    python benchmarks/attention_overhead.py [--reps 5] [--threads 1] [--sizes 600,2400]
        [--modes sdpa,capture,capture+maps+flow,eager] [--device cpu|cuda] [--dtype float32] [--json OUT]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import statistics
import sys
import time

MMAP_ENV = "MALLOC_MMAP_THRESHOLD_"


def _reexec_with_malloc_env() -> None:
    if os.environ.get(MMAP_ENV) is None and sys.platform.startswith("linux"):
        env = dict(os.environ, **{MMAP_ENV: "65536"})
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def build_model(device, dtype):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(
            hidden_size=512, intermediate_size=1376, num_hidden_layers=8, num_attention_heads=8,
            num_key_value_heads=2, vocab_size=8192, max_position_embeddings=8192,
            rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]},
        ),
        vision_config=dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=4, out_hidden_size=512,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[1]),
        image_token_id=8000, video_token_id=8001, vision_start_token_id=8002, vision_end_token_id=8003,
        attn_implementation="sdpa",
    )
    model = Qwen2_5_VLForConditionalGeneration(cfg).eval().to(device=device, dtype=dtype)
    return model


def make_inputs(model, n_image_tokens: int, device, dtype, n_text: int = 120):
    """One prompt: sink + template + image (~n_image_tokens) + question text; returns (inputs, roles)."""
    import numpy as np
    import torch

    cfg = model.config
    merge = cfg.vision_config.spatial_merge_size
    side = int(round(n_image_tokens ** 0.5))
    h, w = side, max(1, round(n_image_tokens / side))  # merged-token grid
    n_img = h * w
    gh, gw = h * merge, w * merge  # patch grid
    patch_dim = 3 * cfg.vision_config.temporal_patch_size * cfg.vision_config.patch_size ** 2
    g = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(gh * gw, patch_dim, generator=g)
    head = torch.randint(10, 7990, (6,), generator=g)
    text = torch.randint(10, 7990, (n_text,), generator=g)
    ids = torch.cat([head, torch.tensor([cfg.vision_start_token_id]),
                     torch.full((n_img,), cfg.image_token_id), torch.tensor([cfg.vision_end_token_id]), text])
    mm = (ids == cfg.image_token_id).long()
    roles = np.full(ids.shape[0], 1, np.int8)  # template
    roles[0] = 0
    roles[mm.numpy().astype(bool)] = 2  # image
    roles[-n_text:-20] = 3  # question
    roles[-20:-8] = 4  # options
    roles[-8:-1] = 5  # instruction
    inputs = {
        "input_ids": ids[None].to(device),
        "attention_mask": torch.ones(1, ids.shape[0], dtype=torch.long, device=device),
        "mm_token_type_ids": mm[None].to(device),
        "pixel_values": pixel_values.to(device=device, dtype=dtype),
        "image_grid_thw": torch.tensor([[1, gh, gw]], device=device),
    }
    return inputs, roles[None], n_img


class Meter:
    """Peak memory of one pass (bytes above the level just before it)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        import torch

        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.base = _status_kb("VmRSS") * 1024
        self.t0 = time.perf_counter()
        self.c0 = time.process_time()
        return self

    def __exit__(self, *exc):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self.t0
        self.cpu_seconds = time.process_time() - self.c0
        if self.cuda:
            self.peak_total = torch.cuda.max_memory_allocated()
        else:
            self.peak_total = _status_kb("VmHWM") * 1024
        self.peak = self.peak_total - self.base
        return False


def run_mode(mode, model, inputs, roles, device):
    import torch

    from xai_bias.instruments.attention import capture_attention

    T = roles.shape[1]
    text_cfg = model.config.get_text_config()
    with torch.no_grad():
        if mode == "sdpa":
            with Meter(device) as m:
                out = model(**inputs, use_cache=False).logits
        elif mode.startswith("capture"):
            extra = mode != "capture"
            with Meter(device) as m:
                with capture_attention(model, [T - 1], roles, maps=extra, flow=extra) as cap:
                    out = model(**inputs, use_cache=False).logits
            assert cap.row_mass is not None
            m.observe = cap.observe_cpu_seconds
        elif mode == "eager":
            before = text_cfg._attn_implementation
            model.set_attn_implementation({"text_config": "eager"})
            try:
                with Meter(device) as m:
                    o = model(**inputs, use_cache=False, output_attentions=True)
                    out = o.logits
                    assert len(o.attentions) == text_cfg.num_hidden_layers
                    del o
            finally:
                model.set_attn_implementation({"text_config": before})
        else:
            raise ValueError(mode)
    del out
    return (m.cpu_seconds if device.type == "cpu" else m.seconds, m.peak, m.peak_total, m.seconds,
            getattr(m, "observe", float("nan")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="600,2400")
    ap.add_argument("--modes", default="sdpa,capture,eager",
                    help="comma list of sdpa, capture, capture+maps+flow, eager")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.device == "cpu":
        _reexec_with_malloc_env()

    import numpy as np  # noqa: F401
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    model = build_model(device, dtype)
    modes = args.modes.split(",")
    rng = random.Random(0)
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        inputs, roles, n_img = make_inputs(model, size, device, dtype)
        T = roles.shape[1]
        for mode in modes:  # warm-up
            run_mode(mode, model, inputs, roles, device)
        samples = {m: [] for m in modes}
        for rep in range(args.reps):
            order = modes[:]
            rng.shuffle(order)
            for mode in order:
                samples[mode].append(run_mode(mode, model, inputs, roles, device))
            print(f"  size {size} rep {rep + 1}/{args.reps}", file=sys.stderr, flush=True)
        med = {m: {"seconds": statistics.median(s[0] for s in v),
                   "wall_seconds": statistics.median(s[3] for s in v),
                   "peak_bytes": statistics.median(s[1] for s in v),
                   "peak_total_bytes": statistics.median(s[2] for s in v),
                   "seconds_all": [round(s[0], 4) for s in v],
                   "wall_seconds_all": [round(s[3], 4) for s in v],
                   "observe_cpu_seconds": statistics.median(s[4] for s in v)} for m, v in samples.items()}
        base = med["sdpa"]
        for m in modes:
            med[m]["time_ratio"] = med[m]["seconds"] / base["seconds"]
            med[m]["wall_ratio"] = med[m]["wall_seconds"] / base["wall_seconds"]
            # the capture's own work (rows computed inside the attention function) over the pass
            med[m]["observe_share"] = med[m]["observe_cpu_seconds"] / med[m]["seconds"]
            med[m]["peak_ratio"] = med[m]["peak_bytes"] / base["peak_bytes"]
            med[m]["peak_total_ratio"] = med[m]["peak_total_bytes"] / base["peak_total_bytes"]
        results[str(size)] = {"image_tokens": n_img, "seq_len": T, "modes": med}
    info = {
        "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
        "cpu_count": os.cpu_count(),
        "load_avg_end": os.getloadavg(),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "threads": args.threads, "device": str(device), "dtype": args.dtype, "reps": args.reps,
        "memory_method": ("CUDA max_memory_allocated delta" if device.type == "cuda" else
                          "VmHWM after clear_refs minus VmRSS before, MALLOC_MMAP_THRESHOLD_=65536"),
    }
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    report = {"info": info, "results": results}
    print(_table(report))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def _table(report) -> str:
    cpu = report["info"]["device"] == "cpu"
    t = "CPU time" if cpu else "time"
    lines = [f"| image tokens | seq len | mode | median {t} (s) | {t} × sdpa | median wall (s) | wall × sdpa "
             "| pass peak (MiB) | pass peak × sdpa | process peak × sdpa | capture's own CPU share |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"].values():
        for m, v in r["modes"].items():
            lines.append(f"| {r['image_tokens']} | {r['seq_len']} | {m} | {v['seconds']:.3f} | "
                         f"{v['time_ratio']:.3f} | {v['wall_seconds']:.3f} | {v['wall_ratio']:.3f} | "
                         f"{v['peak_bytes'] / 2**20:.1f} | {v['peak_ratio']:.3f} | "
                         f"{v['peak_total_ratio']:.3f} | "
                         + (f"{v['observe_share']:.4f} |" if v['observe_share'] == v['observe_share'] else "– |"))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
