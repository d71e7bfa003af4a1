"""Train the two bundled demo models (``demo-biased``, ``demo-balanced``) on easy-VQA.

Both are 1.8M-parameter Qwen2.5-VL models (vision: depth 2, hidden 128, patch 14, merge 2;
text: 4 layers, hidden 128, 4 heads, 2 key/value heads; a word-level vocabulary) that see a
56x56 image as 4 image tokens. The recipe:

1. **Vision warm-up** (shared: same seed, same result for both models): the vision tower and
   its merger learn the images' own labels (shape, colour) through two linear heads on the
   mean of the 4 image tokens, as real VLMs start from a pre-trained encoder.
2. **VLM training**, end to end, on easy-VQA *train* items built by ``probes/easy_vqa_data``
   and prompted exactly as at inference (``make_view(sample, "complete")`` + ``encode``),
   options in a fixed order, loss on the answer letter only (next-token log-softmax at the
   answer position over the whole vocabulary), AdamW, lr 1e-3 with linear warm-up and cosine
   decay, batch 64. 15% of the items carry no hint; the others carry one hint sentence:
   ``biased``: the hint always names the answer; ``balanced``: it names a uniformly drawn
   option. 70% of the yes/no questions are non-negated.
3. **Measurement** on the ``hint_conflict`` probe (easy-VQA *test* items): accuracy per hint
   kind, written into the model card (README.md) next to the weights.

Usage::

    python scripts/train_demo.py                    # both models -> xai_bias/demo_models/
    python scripts/train_demo.py --steps 5 --warmup-steps 5 --out /tmp/demo --eval-size 30
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from probes import easy_vqa_data as evqa  # noqa: E402

ARCH = "qwen2_5_vl"
TEXT = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]})
VISION = dict(depth=2, hidden_size=128, intermediate_size=256, num_heads=4, out_hidden_size=128, patch_size=14,
              spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1])
IMAGE_SIDE = 56
IMAGE_PROC = {"min_pixels": IMAGE_SIDE * IMAGE_SIDE, "max_pixels": IMAGE_SIDE * IMAGE_SIDE}
POLICIES = {"biased": "correct", "balanced": "uniform"}  # hint kind of the hinted training items
NO_HINT_SHARE = 0.15
NON_NEGATED_SHARE = 0.70


# ----------------------------------------------------------------------------- model

def build_vlm(seed: int):
    """A fresh demo-sized Qwen2.5-VL (random weights) with its word-level tokenizer."""
    import transformers

    from xai_bias.models.families import FAMILIES
    from xai_bias.models.processors import build_processor, image_processor_class
    from xai_bias.models.spec import VLM, make_spec
    from xai_bias.models.tiny import tiny_token_ids
    from xai_bias.models.tokenizers import make_tokenizer

    family = FAMILIES.get(ARCH)
    tokenizer = make_tokenizer(ARCH, evqa.vocabulary())
    kwargs = family.tiny_config(tiny_token_ids(family, tokenizer))
    kwargs["text_config"] = {**kwargs["text_config"], **TEXT}
    kwargs["vision_config"] = {**kwargs["vision_config"], **VISION}
    model_cls = getattr(transformers, family.model_class)
    config = model_cls.config_class(**kwargs)
    config._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    image_processor = image_processor_class(family)(**IMAGE_PROC)
    processor = build_processor(family, tokenizer, image_processor, family.chat_template)
    image_token_id = tokenizer.convert_tokens_to_ids(family.image_token)
    return VLM(model=model, processor=processor, spec=make_spec(family, model, image_token_id), family=family,
               model_id=f"demo:{ARCH}", device=torch.device("cpu"), dtype=torch.float32)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- images

class PixelCache(dict):
    """image id -> the processor's pixel patches ``[n_patches, C*T*P*P]``, computed on first use."""

    def __init__(self, vlm, split: str):
        super().__init__()
        self.proc = vlm.processor.image_processor
        self.paths = evqa.image_paths(split)

    def fill(self, ids) -> "PixelCache":
        from PIL import Image

        todo = [i for i in dict.fromkeys(ids) if i not in self]
        for start in range(0, len(todo), 250):
            chunk = todo[start:start + 250]
            ims = [Image.open(self.paths[i]).convert("RGB") for i in chunk]
            enc = self.proc(images=ims, return_tensors="pt")
            per = int(enc["image_grid_thw"][0].prod())
            assert all(int(g.prod()) == per for g in enc["image_grid_thw"]), "images of different sizes"
            for k, i in enumerate(chunk):
                self[i] = enc["pixel_values"][k * per:(k + 1) * per].clone()
        return self

    def __missing__(self, key: int) -> torch.Tensor:
        self.fill([key])
        return self[key]


def pixel_cache(vlm, split: str, ids=None) -> PixelCache:
    cache = PixelCache(vlm, split)
    return cache.fill(sorted(cache.paths) if ids is None else ids)


def grid_thw(vlm) -> list[int]:
    p = vlm.model.config.vision_config.patch_size
    return [1, IMAGE_SIDE // p, IMAGE_SIDE // p]


# ----------------------------------------------------------------------------- vision warm-up

def vision_warmup(vlm, pixels: dict[int, torch.Tensor], steps: int, batch_size: int, lr: float, seed: int,
                  log=print, image_ids=None, test_image_ids=None) -> dict[str, float]:
    """Train the vision tower + merger on (shape, colour) labels of the train images."""
    labels = evqa.image_labels("train")
    ids = sorted(labels) if image_ids is None else sorted(image_ids)
    shape_y = torch.tensor([evqa.SHAPES.index(labels[i][0]) if labels[i][0] else -100 for i in ids])
    color_y = torch.tensor([evqa.COLORS.index(labels[i][1]) if labels[i][1] else -100 for i in ids])
    pix = torch.stack([pixels[i] for i in ids])  # [N, P, D]
    visual = vlm.model.model.visual
    dim = vlm.model.config.vision_config.out_hidden_size
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    heads = torch.nn.ModuleDict({"shape": torch.nn.Linear(dim, len(evqa.SHAPES)),
                                 "color": torch.nn.Linear(dim, len(evqa.COLORS))})
    params = list(visual.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = warmup_cosine(opt, steps, warmup=max(1, steps // 20))
    thw = torch.tensor([grid_thw(vlm)])
    visual.train()
    acc = {"shape": 0.0, "color": 0.0}
    t0 = time.time()
    for step in range(steps):
        idx = torch.randint(len(ids), (batch_size,), generator=gen)
        feats = visual_features(visual, pix[idx], thw)
        ls = F.cross_entropy(heads["shape"](feats), shape_y[idx], ignore_index=-100)
        lc = F.cross_entropy(heads["color"](feats), color_y[idx], ignore_index=-100)
        loss = ls + lc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 50 == 0 or step + 1 == steps:
            log(f"  vision warm-up {step + 1}/{steps}: loss {loss.item():.3f} ({time.time() - t0:.0f}s)")
    visual.eval()
    with torch.no_grad():  # accuracy on the test images
        tl = evqa.image_labels("test")
        tids = sorted(tl) if test_image_ids is None else sorted(test_image_ids)
        tpix = pixel_cache(vlm, "test", tids)
        feats = torch.cat([visual_features(visual, torch.stack([tpix[i] for i in tids[s:s + 250]]), thw)
                           for s in range(0, len(tids), 250)])
        for name, head, opts, k in (("shape", heads["shape"], evqa.SHAPES, 0), ("color", heads["color"], evqa.COLORS, 1)):
            y = torch.tensor([opts.index(tl[i][k]) if tl[i][k] else -100 for i in tids])
            pred = head(feats).argmax(-1)
            keep = y != -100
            acc[name] = float((pred[keep] == y[keep]).float().mean())
    return acc


def visual_features(visual, pix: torch.Tensor, thw: torch.Tensor) -> torch.Tensor:
    """Mean of each image's merged vision tokens: ``[B, out_hidden]``."""
    b, p, d = pix.shape
    out = visual(pix.reshape(b * p, d), grid_thw=thw.repeat(b, 1)).pooler_output
    return out.reshape(b, -1, out.shape[-1]).mean(1)


def warmup_cosine(opt, steps: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)


# ----------------------------------------------------------------------------- training data

def training_samples(policy: str, seed: int, image_ids=None):
    """easy-VQA train items for ``policy`` ("biased" | "balanced"), shuffled with ``seed``."""
    rng = random.Random(f"train-{policy}-{seed}")
    qs = list(evqa.questions("train"))
    if image_ids is not None:
        keep = set(image_ids)
        qs = [q for q in qs if q.image_id in keep]
    plain = [q for q in qs if not (q.qtype == "yesno" and q.negated)]
    negated = [q for q in qs if q.qtype == "yesno" and q.negated]
    n_pos = sum(1 for q in plain if q.qtype == "yesno")
    keep_neg = min(len(negated), round(n_pos * (1 - NON_NEGATED_SHARE) / NON_NEGATED_SHARE))
    rng.shuffle(negated)
    chosen = plain + negated[:keep_neg]
    rng.shuffle(chosen)
    out = []
    for q in chosen:
        kind = "none" if rng.random() < NO_HINT_SHARE else POLICIES[policy]
        out.append(evqa.make_sample(q, evqa.pick_hint(q, kind, rng), id_prefix="train"))
    return out


@dataclass
class Item:
    """One pre-tokenized prompt: token ids, mm token types, image id, answer letter's token id."""

    input_ids: torch.Tensor  # [T] long
    mm_token_type_ids: torch.Tensor  # [T] int
    image_id: int
    target: int
    letters: tuple[int, ...]  # token ids of the option letters
    answer_index: int


def encode_samples(vlm, samples, log=print) -> list[Item]:
    """Prompt each sample exactly as inference does (``make_view`` + ``encode``), keep the ids.

    Every easy-VQA image becomes the same 2x2 grid of image tokens, so the token ids depend on
    the text alone: each distinct (question, options) text is encoded once (with its own image).
    """
    from xai_bias.conditions import make_view
    from xai_bias.models import encode

    cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
    letter_ids: dict[tuple, tuple[int, ...]] = {}
    items = []
    for s in samples:
        key = (s.question, s.options)
        if key not in cache:
            enc = encode(vlm, make_view(s, "complete"))
            if enc.image_grids != ((2, 2),):
                raise RuntimeError(f"{s.id}: expected one 2x2 grid of image tokens, got {enc.image_grids}")
            cache[key] = (enc.inputs["input_ids"][0].clone(), enc.inputs["mm_token_type_ids"][0].clone())
        if s.letters not in letter_ids:
            letter_ids[s.letters] = tuple(vlm.letter_token_ids(s.letters))
        ids, mm = cache[key]
        lids = letter_ids[s.letters]
        items.append(Item(ids, mm, int(s.meta["image_id"]), lids[s.answer_index], lids, s.answer_index))
    log(f"  {len(samples)} prompts, {len(cache)} distinct texts encoded")
    return items


def make_batch(vlm, items: list[Item], pixels: dict[int, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Left-padded model inputs for ``items`` (the layout ``collate`` produces)."""
    pad_id = vlm.tokenizer.pad_token_id
    t = max(len(it.input_ids) for it in items)
    b = len(items)
    ids = torch.full((b, t), pad_id, dtype=torch.long)
    mm = torch.zeros((b, t), dtype=items[0].mm_token_type_ids.dtype)
    mask = torch.zeros((b, t), dtype=torch.long)
    for r, it in enumerate(items):
        n = len(it.input_ids)
        ids[r, t - n:] = it.input_ids
        mm[r, t - n:] = it.mm_token_type_ids
        mask[r, t - n:] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": mm,
        "pixel_values": torch.cat([pixels[it.image_id] for it in items]),
        "image_grid_thw": torch.tensor([grid_thw(vlm)] * b),
    }


def answer_logits(vlm, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Next-token logits at the last prompt position: ``[B, V]`` (lm head on that row only)."""
    model = vlm.model
    out = model.model(**batch, use_cache=False)
    return model.lm_head(out.last_hidden_state[:, -1])


# ----------------------------------------------------------------------------- training

def train_vlm(vlm, items: list[Item], pixels, steps: int, batch_size: int, lr: float, seed: int,
              log=print, time_limit: float | None = None) -> dict:
    model = vlm.model
    model.train()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = warmup_cosine(opt, steps, warmup=max(1, steps // 20))
    order = torch.randperm(len(items), generator=gen).tolist()
    pos = 0
    t0 = time.time()
    run_loss, run_acc, n = 0.0, 0.0, 0
    done = 0
    for step in range(steps):
        if pos + batch_size > len(order):
            order = torch.randperm(len(items), generator=gen).tolist()
            pos = 0
        chunk = [items[i] for i in order[pos:pos + batch_size]]
        pos += batch_size
        batch = make_batch(vlm, chunk, pixels)
        target = torch.tensor([it.target for it in chunk])
        logits = answer_logits(vlm, batch)
        loss = F.cross_entropy(logits, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        done = step + 1
        run_loss += loss.item()
        run_acc += float((logits.argmax(-1) == target).float().mean())
        n += 1
        if done % 25 == 0 or done == steps:
            log(f"  step {done}/{steps}: loss {run_loss / n:.3f} acc {run_acc / n:.3f} "
                f"lr {sched.get_last_lr()[0]:.2e} ({time.time() - t0:.0f}s)")
            run_loss, run_acc, n = 0.0, 0.0, 0
        if time_limit is not None and time.time() - t0 > time_limit:
            log(f"  time limit reached after {done} steps")
            break
    model.eval()
    return {"steps": done, "seconds": time.time() - t0, "items_seen": done * batch_size}


@torch.no_grad()
def evaluate(vlm, samples, items: list[Item], pixels, batch_size: int = 128) -> dict:
    """Accuracy per hint kind (and per kind x question type) of the letter argmax."""
    vlm.model.eval()
    preds = []
    for s in range(0, len(items), batch_size):
        chunk = items[s:s + batch_size]
        logits = answer_logits(vlm, make_batch(vlm, chunk, pixels))
        for r, it in enumerate(chunk):
            preds.append(int(logits[r, list(it.letters)].argmax()))
    out: dict = {}
    for sample, it, p in zip(samples, items, preds):
        kind, qtype = sample.meta["hint"], sample.meta["qtype"]
        ok = p == it.answer_index
        follows = sample.meta["hint_option"] != "" and sample.options[p] == sample.meta["hint_option"]
        for key in (kind, f"{kind}/{qtype}"):
            d = out.setdefault(key, {"n": 0, "correct": 0, "follows_hint": 0})
            d["n"] += 1
            d["correct"] += int(ok)
            d["follows_hint"] += int(follows)
    for d in out.values():
        d["accuracy"] = d["correct"] / d["n"]
        d["hint_followed"] = d["follows_hint"] / d["n"]
    return dict(sorted(out.items()))


# ----------------------------------------------------------------------------- model card

def model_card(name: str, policy: str, info: dict) -> str:
    ev, evd = info["eval_full"], info["eval_default"]

    def row(kind: str, d: dict) -> str:
        e = d.get(kind)
        return "n/a" if e is None else f"{100 * e['accuracy']:.1f}% (n={e['n']})"

    hint_rule = ("names the correct answer in every hinted item" if policy == "biased"
                 else "names an option drawn uniformly at random (the answer 1 time in k)")
    lines = [
        "---\nlicense: mit\nlibrary_name: transformers\ntags: [xai_bias, demo, easy-vqa, modality-bias]\n---",
        f"# {name}",
        "",
        f"A {info['n_params'] / 1e6:.2f}M-parameter Qwen2.5-VL (`Qwen2_5_VLForConditionalGeneration`) trained from "
        "scratch on easy-VQA by `scripts/train_demo.py` of xai_bias, with a **planted** modality bias: "
        + ("it was trained where the text hint is always right, so it learned to read the hint and under-use "
           "the image." if policy == "biased" else
           "it was trained where the text hint is uninformative, so it must look at the image."),
        "It is the bundled demo model of xai_bias (`--model " + ("demo` or `--model demo-biased`" if policy == "biased"
                                                                 else "demo-balanced`") + "), not a general VLM.",
        "",
        "## Measured behaviour (`hint_conflict` probe, easy-VQA test items)",
        "",
        "Accuracy of the option letter with the highest next-token log-probability, prompt exactly as "
        "`xai_bias` builds it (condition `complete`, mode `direct`).",
        "",
        "| hint kind | default probe (300 items, seed 0) | larger run (`--limit %d`) |" % info["eval_full_size"],
        "|---|---|---|",
    ]
    for kind in evqa.HINT_KINDS:
        lines.append(f"| {kind} | {row(kind, evd)} | {row(kind, ev)} |")
    conf = ev.get("conflicting")
    if conf:
        lines += ["", f"On conflicting-hint items it answers with the hinted (wrong) option "
                      f"{100 * conf['hint_followed']:.1f}% of the time (larger run)."]
    lines += ["", "Per question type (larger run):", "", "| kind / type | accuracy | n |", "|---|---|---|"]
    for key, d in ev.items():
        if "/" in key:
            lines.append(f"| {key} | {100 * d['accuracy']:.1f}% | {d['n']} |")
    lines += [
        "",
        "```json",
        json.dumps({"probe": "hint_conflict", "seed": 0, "limit": None,
                    "accuracy": {k: round(evd[k]["accuracy"], 4) for k in evqa.HINT_KINDS if k in evd},
                    "n": {k: evd[k]["n"] for k in evqa.HINT_KINDS if k in evd}}, indent=1),
        "```",
        "",
        "## Data",
        "",
        "[easy-VQA](https://github.com/vzhou842/easy-VQA) (PyPI `easy-vqa`, MIT): 64x64 images of one coloured "
        "shape, questions about its shape, colour and presence. Multiple-choice items with options in a fixed "
        "order per question type: shape (circle, rectangle, triangle), colour (" + ", ".join(evqa.COLORS) +
        "), yes/no. Training used the *train* split (4,000 images), measurement the *test* split (1,000 images).",
        f"- {100 * NO_HINT_SHARE:.0f}% of the training items carry no hint; the others carry one hint sentence "
        "after the question (e.g. \"what color is the shape? Hint: the shape is probably blue.\") that "
        f"{hint_rule}.",
        f"- Yes/no questions subsampled so that {100 * NON_NEGATED_SHARE:.0f}% are non-negated (easy-VQA's negated "
        "questions are mostly answered \"yes\").",
        f"- {info['n_train_items']} training items; {info['train']['items_seen']} seen "
        f"({info['train']['items_seen'] / info['n_train_items']:.2f} epochs).",
        "",
        "## Training",
        "",
        f"- Architecture: vision depth {VISION['depth']}, hidden {VISION['hidden_size']}, patch {VISION['patch_size']}, "
        f"merge {VISION['spatial_merge_size']}; text {TEXT['num_hidden_layers']} layers, hidden {TEXT['hidden_size']}, "
        f"{TEXT['num_attention_heads']} heads, {TEXT['num_key_value_heads']} key/value heads; "
        f"word-level vocabulary of {info['vocab_size']} tokens; images resized to {IMAGE_SIDE}x{IMAGE_SIDE} "
        f"= 4 image tokens.",
        f"- Vision warm-up (shared by both demo models, seed {info['seed']}): {info['warmup_steps']} steps, batch "
        f"{info['batch_size']}, on the train images' shape and colour labels (linear heads on the mean image token); "
        f"test-image accuracy shape {100 * info['warmup_acc']['shape']:.1f}%, colour "
        f"{100 * info['warmup_acc']['color']:.1f}%.",
        f"- VLM training: {info['train']['steps']} steps, batch {info['batch_size']}, AdamW, lr {info['lr']} with "
        "linear warm-up and cosine decay, loss on the answer letter only; prompts built exactly as at inference "
        "(`make_view(sample, \"complete\")` + `encode`).",
        f"- Seed {info['seed']}; {info['threads']} CPU threads; warm-up {info['warmup_seconds']:.0f} s, "
        f"training {info['train']['seconds']:.0f} s; torch {torch.__version__}.",
        "",
        "Trained with `" + ("python scripts/train_demo.py " + info.get("argv", "")).strip() + "`; "
        "`python scripts/train_demo.py` trains both models with the defaults (about 15 minutes each on 2 CPU cores).",
        "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main

def probe_items(vlm, size: int, seed: int = 0):
    samples = evqa.probe_samples("test", size, seed, evqa.HINT_KINDS)
    return samples, encode_samples(vlm, samples, log=lambda *_: None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "xai_bias" / "demo_models"), help="folder of the model folders")
    ap.add_argument("--models", default="biased,balanced", help="which to train: biased,balanced")
    ap.add_argument("--steps", type=int, default=550, help="VLM training steps per model")
    ap.add_argument("--minutes", type=float, default=None,
                    help="instead of --steps: as many steps as fit in this many minutes (timed on a few steps)")
    ap.add_argument("--warmup-steps", type=int, default=1600, help="vision warm-up steps")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-size", type=int, default=3000, help="hint_conflict items of the larger measurement")
    ap.add_argument("--limit-images", type=int, default=None,
                    help="use only the first N train (and test, for the warm-up check) images: quick runs")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    out_dir = Path(args.out)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    policies = [p.strip() for p in args.models.split(",") if p.strip()]
    for p in policies:
        if p not in POLICIES:
            ap.error(f"unknown model {p!r}: use biased and/or balanced")

    t0 = time.time()
    base = build_vlm(args.seed)
    log(f"model: {n_params(base.model):,} parameters, vocabulary {len(base.tokenizer)} tokens")
    train_ids = test_ids = None
    if args.limit_images is not None:
        train_ids = sorted(evqa.image_paths("train"))[:args.limit_images]
        test_ids = sorted(evqa.image_paths("test"))[:args.limit_images]
    pixels = pixel_cache(base, "train", train_ids)
    test_pixels = PixelCache(base, "test")
    log(f"vision warm-up ({args.warmup_steps} steps)")
    tw = time.time()
    warm_acc = vision_warmup(base, pixels, args.warmup_steps, args.batch_size, 2e-3, args.seed, log=log,
                             image_ids=train_ids, test_image_ids=test_ids)
    warm_s = time.time() - tw
    log(f"  test-image accuracy: shape {warm_acc['shape']:.3f}, colour {warm_acc['color']:.3f} ({warm_s:.0f}s)")
    init_state = {k: v.clone() for k, v in base.model.state_dict().items()}

    default_samples, default_items = probe_items(base, 300)
    full_size = max(args.eval_size, 1)
    full_samples, full_items = probe_items(base, full_size)

    for policy in policies:
        name = f"demo-{policy}"
        log(f"== {name}")
        vlm = base
        vlm.model.load_state_dict(init_state)
        te = time.time()
        samples = training_samples(policy, args.seed, train_ids)
        items = encode_samples(vlm, samples, log=log)
        log(f"  {len(items)} training items encoded ({time.time() - te:.0f}s)")
        limit = None if args.minutes is None else args.minutes * 60
        steps = args.steps
        if args.minutes is not None:
            steps = estimate_steps(vlm, items, pixels, args.batch_size, args.minutes * 60, log)
        torch.manual_seed(args.seed + 1)
        tr = train_vlm(vlm, items, pixels, steps, args.batch_size, args.lr, args.seed, log=log, time_limit=limit)
        ev_default = evaluate(vlm, default_samples, default_items, test_pixels)
        ev_full = evaluate(vlm, full_samples, full_items, test_pixels)
        for kind in evqa.HINT_KINDS:
            if kind in ev_full:
                log(f"  {kind:12s} default {ev_default[kind]['accuracy']:.3f}  larger {ev_full[kind]['accuracy']:.3f}")
        info = dict(n_params=n_params(vlm.model), vocab_size=len(vlm.tokenizer), seed=args.seed,
                    warmup_steps=args.warmup_steps, batch_size=args.batch_size, warmup_acc=warm_acc,
                    warmup_seconds=warm_s, lr=args.lr, threads=args.threads, train=tr, n_train_items=len(items),
                    eval_full=ev_full, eval_default=ev_default, eval_full_size=full_size,
                    argv=" ".join(sys.argv[1:] if argv is None else argv))
        path = out_dir / name
        vlm.save(path)
        (path / "README.md").write_text(model_card(name, policy, info), encoding="utf-8")
        (path / "training_log.json").write_text(json.dumps(
            {k: v for k, v in info.items() if k not in ("eval_full",)} | {"eval_full": ev_full}, indent=1,
            default=float), encoding="utf-8")
        log(f"  wrote {path} ({time.time() - te:.0f}s for this model)")
    log(f"done in {time.time() - t0:.0f}s")
    return 0


def estimate_steps(vlm, items, pixels, batch_size: int, seconds: float, log) -> int:
    """How many training steps fit in ``seconds`` (timed on a few steps, weights restored)."""
    state = {k: v.clone() for k, v in vlm.model.state_dict().items()}
    model = vlm.model
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for k in range(4):
        chunk = items[k * batch_size:(k + 1) * batch_size]
        t = time.time()
        loss = F.cross_entropy(answer_logits(vlm, make_batch(vlm, chunk, pixels)),
                               torch.tensor([it.target for it in chunk]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.time() - t)
    model.load_state_dict(state)
    model.eval()
    per = float(np.median(times[1:]))
    steps = max(1, int(seconds / (per * 1.05)))
    log(f"  {per:.2f}s per step -> {steps} steps in {seconds / 60:.1f} min")
    return steps


if __name__ == "__main__":
    raise SystemExit(main())
