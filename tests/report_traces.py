"""Small hand-made traces for the report tests: every dataset the explorer shows, images on
disk, a word-level tokenizer whose vocabulary holds a ``<script>`` token, and sample text that
tries to break out of the page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xai_bias.types import LETTERS, N_ROLES, ROLE_INDEX, Record

L, H, GRID = 4, 2, (4, 4)
XSS = "<script>window.__xss=1</script>"
EVIL_ID = "s</script><script>window.__xss=2</script>"
CONDITIONS = ("complete", "text_white", "image_only")

# token id -> text; the prompt of every record is built from these
VOCAB = ["<s>", "<|user|>", "<|image|>", "What", " colour", " is", " this", "?", " " + XSS,
         " A.", " red", " B.", " blue", " C.", " green", " Answer", " with", " a", " letter", ".",
         "<|assistant|>", " Answer:", " B"]
TOK = {t: i for i, t in enumerate(VOCAB)}
R = ROLE_INDEX


def write_tokenizer(path: Path) -> Path:
    """A word-level tokenizer.json over VOCAB (no normaliser, decoding a token gives its text)."""
    from tokenizers import Tokenizer, models

    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(VOCAB)}, unk_token="<s>"))
    tok.save(str(path))
    return path


def _prompt(has_image: bool) -> tuple[np.ndarray, np.ndarray]:
    parts = [("<s>", "sink"), ("<|user|>", "template")]
    parts += [("<|image|>", "image")] * (GRID[0] * GRID[1] if has_image else 0)
    parts += [(t, "question") for t in ("What", " colour", " is", " this", "?", " " + XSS)]
    parts += [(t, "options") for t in (" A.", " red", " B.", " blue", " C.", " green")]
    parts += [(t, "instruction") for t in (" Answer", " with", " a", " letter", ".")]
    parts += [("<|assistant|>", "template")]
    return (np.array([TOK[t] for t, _ in parts], np.int32), np.array([R[r] for _, r in parts], np.int8))


def write_image(path: Path, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    a = np.zeros((48, 64, 3), np.uint8)
    a[:] = rng.integers(0, 256, 3)
    y, x = rng.integers(4, 30), rng.integers(4, 40)
    a[y:y + 14, x:x + 20] = 255 - a[0, 0]
    Image.fromarray(a).save(path)
    return path


def write_trace(path: Path, n: int = 10, seed: int = 0, model_id: str = "org/tiny-report-model",
                image_bias: float = 1.0, evil: bool = True) -> Path:
    """A trace of ``n`` samples × CONDITIONS (direct mode) with attention mass + maps, IG,
    Shapley, knockout and logit lens; sample 1 (when ``evil``) has a sample id and metadata that
    try to close the script element."""
    from xai_bias.store import TraceWriter

    rng = np.random.default_rng(seed)
    folder = path.parent
    attrs = {"model_id": model_id, "model_arch": "synthetic", "n_layers": L, "n_heads": H, "seed": seed,
             "command": "tests/report_traces.py"}
    with TraceWriter(path, attrs) as w:
        w.set_dataset_attrs("attribution/shapley", groups=["image", "text"], baseline="black")
        w.set_dataset_attrs("intervention/logit_lens", value="log-softmax over the vocabulary at the option letters' ids")
        for s in range(n):
            sid = EVIL_ID if (evil and s == 1) else f"s{s:03d}"
            answer = LETTERS[s % 3]
            img = write_image(folder / f"img{s}.png", seed * 1000 + s)
            subject = ("<b>art</b> & " + XSS) if (evil and s == 1) else ("math", "art")[s % 2]
            meta = {"subject": subject, "kind": ("plain", "hint")[(s // 2) % 2], "images": [img.name]}
            for cond in CONDITIONS:
                has_img = cond != "text_only"
                share = np.clip(image_bias * np.array([0.1, 0.3, 0.5, 0.35]) * (0.5 if cond == "text_white" else 1.0)
                                + rng.normal(0, 0.03, L), 0.02, 0.9)
                mass = np.zeros((L, H, N_ROLES), np.float32)
                for h in range(H):
                    im = np.clip(share * (0.7 + 0.6 * h), 0, 0.95)
                    mass[:, h, R["image"]] = im
                    mass[:, h, R["sink"]] = 0.4 * (1 - im)
                    mass[:, h, R["question"]] = 0.3 * (1 - im)
                    mass[:, h, R["options"]] = 0.2 * (1 - im)
                    mass[:, h, R["instruction"]] = 0.1 * (1 - im)
                gy, gx = np.mgrid[: GRID[0], : GRID[1]]
                maps = np.full((L, 40), np.nan, np.float32)
                for layer in range(L):  # a blob that moves with the layer and the sample
                    blob = np.exp(-((gy - (s + layer) % 4) ** 2 + (gx - (2 * s + layer) % 4) ** 2) / 1.2).ravel()
                    maps[layer, :16] = blob / blob.sum() * share[layer]
                grid = np.zeros((2, 2), np.int32)
                grid[0] = GRID
                ig = np.zeros((L + 1, N_ROLES), np.float32)
                ig_img = np.clip(np.r_[0.2, share], 0, 0.9)
                ig[:, R["image"]] = ig_img
                ig[:, R["question"]] = 0.6 * (1 - ig_img)
                ig[:, R["options"]] = 0.4 * (1 - ig_img)
                p_ans = np.clip(np.linspace(0.3, 0.9, L) + rng.normal(0, 0.02, L), 0.05, 0.95)
                lens = np.repeat(((1 - p_ans) / 2)[:, None], 3, 1)
                lens[:, LETTERS.index(answer)] = p_ans
                correct = bool(rng.random() < (0.8 if cond == "complete" else 0.5))
                pred = answer if correct else LETTERS[(LETTERS.index(answer) + 1) % 3]
                lp = np.log(np.full(3, 0.15, np.float32))
                lp[LETTERS.index(pred)] = np.log(0.7)
                ids, roles = _prompt(has_img)
                meas = {"attention/mass": mass, "attribution/ig": ig,
                        "attribution/ig_delta": np.float32(rng.normal(0, 0.01)),
                        "attribution/shapley": np.array([share.mean() * 2, 1.0 - share.mean()], np.float32),
                        "intervention/knockout": (-share + rng.normal(0, 0.02, L)).astype(np.float32),
                        "intervention/logit_lens": np.log(lens).astype(np.float32)}
                if has_img:
                    meas["attention/maps"] = maps
                    meas["attention/map_grid"] = grid
                w.append(Record(
                    sample_id=sid, condition=cond, mode="direct", answer=answer, prediction=pred, correct=correct,
                    option_logprobs=lp, role_tokens=np.bincount(roles, minlength=N_ROLES).astype(np.int32),
                    meta=meta, input_ids=ids, token_roles=roles, measurements=meas))
    return path


def report_data(html: str) -> dict:
    """The JSON embedded in a report page."""
    start = html.index('<script type="application/json" id="report-data">') + len(
        '<script type="application/json" id="report-data">')
    return json.loads(html[start:html.index("</script>", start)])
