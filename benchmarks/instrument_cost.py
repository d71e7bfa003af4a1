"""Time per record of the attribution and intervention instruments.

Methods, each timed as ``Method.measure`` on a batch of one record (the decoder call captured
in a forward pass stopped at the decoder, as when ``measure`` runs without the scoring pass'
capture), medians over repetitions, interleaved in a shuffled order on every repetition:

- ``ig``          IG on the merged embeddings + layer IG on every layer (``--ig-steps``, default
                  32 steps, internal batch 8; (L+1) x steps forward+backward passes);
- ``ig_input``    row 0 only (IG on the merged embeddings; for scale);
- ``shapley2`` / ``shapley3``  exact Shapley over 2 / 3 groups (4 / 8 coalitions, one batch);
- ``knockout``    attention knockout at every layer (window 1: L+1 batched rows, nnsight);
- ``logit_lens``  option log-probs from every layer (one nnsight trace);
- ``forward``     one plain scoring forward pass of the whole model (reference).

Models: ``tiny`` = ``tiny_vlm("qwen2_5_vl")`` (2 layers, hidden 64); ``mid`` = a random
Qwen2.5-VL built through the same adapter with 8 decoder layers, hidden 512, 8 heads / 2 kv heads
(vision tower 2 blocks, hidden 128) and an image of about 256 vision tokens; ``demo`` = the
bundled ``demo-biased`` model if its weights are present.

Usage::

    python benchmarks/instrument_cost.py [--models tiny,mid,demo] [--reps 3] [--threads 1]
                                         [--ig-steps 32] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def mid_vlm(seed: int = 0):
    """A random mid-size Qwen2.5-VL through the model adapter (its tokenizer, processor, roles)."""
    import torch
    import transformers

    from xai_bias.models import FAMILIES, tiny_vlm
    from xai_bias.models.spec import VLM, make_spec
    from xai_bias.models.tiny import tiny_config

    base = tiny_vlm("qwen2_5_vl")
    family = FAMILIES.get("qwen2_5_vl")
    config = tiny_config(family, base.tokenizer)
    tc = config.text_config
    tc.hidden_size, tc.intermediate_size, tc.num_hidden_layers = 512, 1376, 8
    tc.num_attention_heads, tc.num_key_value_heads = 8, 2
    tc.layer_types = ["full_attention"] * 8
    tc.rope_parameters = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [8, 12, 12]}
    vc = config.vision_config
    vc.hidden_size, vc.intermediate_size, vc.num_heads, vc.out_hidden_size = 128, 256, 4, 512
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = getattr(transformers, family.model_class)(config).eval()
    proc = base.processor
    proc.image_processor.size = {"shortest_edge": 56 * 56, "longest_edge": 448 * 448}
    return VLM(model=model, processor=proc, spec=make_spec(family, model, base.spec.image_token_id),
               family=family, model_id="mid:qwen2_5_vl-8x512", device=torch.device("cpu"), dtype=torch.float32)


def demo_vlm():
    from xai_bias.demo import DEMO_MODELS
    from xai_bias.models import load_vlm

    path = DEMO_MODELS["demo-biased"]
    if not (path / "config.json").exists():
        return None
    return load_vlm(str(path), device="cpu", dtype="float32")


def record_batch(vlm, image_size):
    import numpy as np
    from PIL import Image

    from xai_bias.models import collate, encode
    from xai_bias.types import PromptView

    rng = np.random.RandomState(0)
    img = Image.fromarray((rng.rand(image_size, image_size, 3) * 255).astype("uint8"))
    view = PromptView(
        question="Which shape is shown in the picture, and what is its colour? Look closely at the image.",
        options=("a red circle", "a blue square", "a green triangle", "a yellow star"),
        letters=tuple("ABCD"),
        instruction="Answer with the option's letter from the given choices directly.",
        images=(img,))
    return collate(vlm, [encode(vlm, view)])


def bench_model(label, vlm, image_size, reps, ig_steps, ibs):
    import torch

    from xai_bias.instruments import METHODS, MethodSettings, Target, load_methods
    from xai_bias.instruments.ig import integrated_gradients
    from xai_bias.models import forward

    load_methods()
    batch = record_batch(vlm, image_size)
    ids = tuple(vlm.letter_token_ids("ABCD"))
    with torch.no_grad():
        logp = torch.log_softmax(forward(vlm, batch)[0, -1].float(), -1)
    pred = ids[int(torch.argmax(logp[list(ids)]))]
    targets = [Target(batch.answer_pos, pred, ids)]
    roles = batch.role_matrix()[0]
    settings = MethodSettings.build(ig={"steps": ig_steps, "internal_batch_size": ibs})

    def run_method(name, **kw):
        s = MethodSettings.build(ig=settings.of("ig"), **({name: kw} if kw else {}))
        return lambda: METHODS.get(name).build(vlm, s).measure(batch, targets)

    def ig_input():
        m = METHODS.get("ig").build(vlm, settings)
        item = m.items(batch, targets, "mean")[0]
        integrated_gradients(vlm, item, "mean", ig_steps, ibs, layers=False)

    def plain():
        with torch.no_grad():
            forward(vlm, batch)

    jobs = {
        "forward": plain,
        "ig": run_method("ig"),
        "ig_input": ig_input,
        "shapley2": run_method("shapley", groups=2),
        "shapley3": run_method("shapley", groups=3),
        "knockout": run_method("knockout", window=1, batch_size=ibs),
        "logit_lens": run_method("logit_lens"),
    }
    for fn in jobs.values():  # warm-up (nnsight import, captum import, allocator)
        fn()
    times = {k: [] for k in jobs}
    order = list(jobs)
    for rep in range(reps):
        random.Random(rep).shuffle(order)
        for k in order:
            t = time.perf_counter()
            jobs[k]()
            times[k].append(time.perf_counter() - t)
    info = {
        "model": label, "n_layers": vlm.spec.n_layers, "hidden": vlm.spec.hidden_size,
        "params_M": round(sum(p.numel() for p in vlm.model.parameters()) / 1e6, 2),
        "tokens": int(batch.seq_len), "image_tokens": int((roles == 2).sum()),
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "all_s": times,
    }
    return info


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tiny,mid,demo")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ig-steps", type=int, default=32)
    ap.add_argument("--ig-batch-size", type=int, default=8)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    results = []
    for label in args.models.split(","):
        if label == "tiny":
            from xai_bias.models import tiny_vlm

            vlm, size = tiny_vlm("qwen2_5_vl"), 112
        elif label == "mid":
            vlm, size = mid_vlm(), 448
        elif label == "demo":
            vlm, size = demo_vlm(), 56
            if vlm is None:
                print("demo: weights not present, skipped", file=sys.stderr)
                continue
        else:
            raise SystemExit(f"unknown model {label!r} (tiny, mid, demo)")
        info = bench_model(label, vlm, size, args.reps, args.ig_steps, args.ig_batch_size)
        results.append(info)
        print(f"{label}: {info['n_layers']} layers, hidden {info['hidden']}, {info['params_M']}M params, "
              f"{info['tokens']} tokens ({info['image_tokens']} image)", flush=True)
        for k, v in info["median_s"].items():
            print(f"  {k:11s} {v * 1000:10.1f} ms", flush=True)
    meta = {"torch": torch.__version__, "threads": args.threads, "reps": args.reps, "ig_steps": args.ig_steps,
            "ig_internal_batch_size": args.ig_batch_size, "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version()}
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
