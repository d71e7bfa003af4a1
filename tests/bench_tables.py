"""Offline dataset tables in each benchmark's exact column schema, built from the shared MMMU-Pro
items and their images (``../shared/data/mmmu_pro_tool``), for the loader tests.

Each ``*_rows`` function returns (features, rows) for ``datasets.Dataset.from_dict``; the
writers lay them out as the hub does (config folders of parquet shards plus the README's
``configs`` table), as ``save_to_disk`` does, or as one parquet file. The MMMU-Pro ``vision``
config gets a screenshot of a size the renderer never makes (300 x 200, a solid colour per
item), so a test can tell it from ``render_question_image``.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmmu_pro_tool"
ITEMS = SHARED / "data.jsonl"
# a single-image item, a two-image item, and items whose options are images
PICK = ("validation_Music_11", "validation_Music_29", "validation_Music_1", "test_Music_251")
SINGLE = ("validation_Music_11", "validation_Music_15")  # one image each: the one-image benchmarks
SCREENSHOT_SIZE = (200, 420)


def shared_items(ids=PICK) -> list[dict]:
    if not ITEMS.is_file():
        raise FileNotFoundError(f"the loader tests need the shared MMMU-Pro items at {ITEMS}")
    by_id = {d["id"]: d for d in map(json.loads, ITEMS.read_text().splitlines())}
    return [by_id[i] for i in ids]


def image_cell(rel: str) -> dict:
    path = SHARED / "static" / rel
    return {"bytes": path.read_bytes(), "path": path.name}


def untagged(question: str) -> str:
    """The question without its <image N> tags (single-image benchmarks have none)."""
    return re.sub(r"\s*<image \d+>\s*", " ", question).strip()


def png_bytes(size=(32, 24), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _features(spec: dict):
    from datasets import Features, Image as HFImage, Sequence, Value

    kinds = {"str": Value("string"), "int": Value("int64"), "int8": Value("int8"), "img": HFImage(),
             "strs": Sequence(Value("string"))}
    return Features({k: kinds[v] for k, v in spec.items()})


def mmmu_pro_standard_rows(items=None, k: int | None = None):
    """MMMU/MMMU_Pro ``standard (10 options)`` (or ``k`` options): options as a string list."""
    items = items or shared_items()
    spec = {"id": "str", "question": "str", "options": "str", "explanation": "str",
            **{f"image_{n}": "img" for n in range(1, 8)}, "image_type": "str", "answer": "str",
            "topic_difficulty": "str", "subject": "str"}
    rows = []
    for d in items:
        opts, ans = list(d["options"]), d["answer"]
        if k is not None and len(opts) > k:  # keep the answer and the first other options
            a = ord(ans) - 65
            keep = sorted([a] + [i for i in range(len(opts)) if i != a][: k - 1])
            ans, opts = chr(65 + keep.index(a)), [opts[i] for i in keep]
        row = {"id": d["id"], "question": d["question"], "options": str(opts), "explanation": "",
               "image_type": "['Sheet Music']", "answer": ans, "topic_difficulty": "Medium", "subject": "Music"}
        for n in range(1, 8):
            row[f"image_{n}"] = image_cell(d[f"image_{n}"]) if d.get(f"image_{n}") else None
        rows.append(row)
    return _features(spec), rows


def screenshot(i: int) -> bytes:
    return png_bytes(SCREENSHOT_SIZE, (20 + 40 * i % 200, 120, 200 - 30 * i % 150))


def mmmu_pro_vision_rows(items=None):
    items = items or shared_items()
    spec = {"id": "str", "image": "img", "options": "str", "answer": "str", "subject": "str"}
    rows = [{"id": d["id"], "image": {"bytes": screenshot(i), "path": None}, "options": str(list(d["options"])),
             "answer": d["answer"], "subject": "Music"} for i, d in enumerate(items)]
    return _features(spec), rows


def mmstar_rows(items=None):
    """Lin-Chen/MMStar: options inline in the question ("Options: A: ..., B: ...")."""
    items = items or shared_items(SINGLE)
    spec = {"index": "int", "question": "str", "image": "img", "answer": "str", "category": "str",
            "l2_category": "str"}
    rows = []
    for i, d in enumerate(items):
        opts = d["options"][:4]
        ans = d["answer"] if ord(d["answer"]) - 65 < 4 else "A"
        q = untagged(d["question"])
        q += "\nOptions: " + ", ".join(f"{chr(65 + j)}: {o}" for j, o in enumerate(opts))
        rows.append({"index": i, "question": q, "image": image_cell(d["image_1"]), "answer": ans,
                     "category": "coarse perception", "l2_category": "image scene and topic"})
    return _features(spec), rows


def mmbench_rows(items=None):
    """lmms-lab/MMBench ``en``: options in columns A-D (empty past the last), a hint column."""
    items = items or shared_items(SINGLE)
    spec = {"index": "int", "question": "str", "hint": "str", "A": "str", "B": "str", "C": "str", "D": "str",
            "answer": "str", "category": "str", "image": "img", "source": "str", "L2-category": "str",
            "comment": "str", "split": "str"}
    rows = []
    for i, d in enumerate(items):
        opts = (d["options"][:3] if i % 2 else d["options"][:4]) + [None] * 4
        ans = d["answer"] if ord(d["answer"]) - 65 < (3 if i % 2 else 4) else "A"
        rows.append({"index": 1000 + i, "question": untagged(d["question"]),
                     "hint": "The score is in treble clef." if i % 2 == 0 else None,
                     **{chr(65 + j): opts[j] for j in range(4)}, "answer": ans, "category": "music",
                     "image": image_cell(d["image_1"]), "source": "MMMU-Pro", "L2-category": "knowledge",
                     "comment": None, "split": "dev"})
    return _features(spec), rows


def ai2d_rows(items=None):
    """lmms-lab/ai2d: no id; answer is the option's index as a string."""
    items = items or shared_items(SINGLE)
    spec = {"question": "str", "options": "strs", "answer": "str", "image": "img"}
    rows = [{"question": untagged(d["question"]), "options": d["options"][:4],
             "answer": str(min(ord(d["answer"]) - 65, 3)), "image": image_cell(d["image_1"])} for d in items]
    return _features(spec), rows


def scienceqa_rows(items=None):
    """derek-thomas/ScienceQA: ``choices`` and an int8 index answer; one text-only row (no image)."""
    items = items or shared_items(SINGLE)
    spec = {"image": "img", "question": "str", "choices": "strs", "answer": "int8", "hint": "str", "task": "str",
            "grade": "str", "subject": "str", "topic": "str", "category": "str", "skill": "str",
            "lecture": "str", "solution": "str"}
    rows = []
    for i, d in enumerate(items + [items[0]]):
        rows.append({"image": image_cell(d["image_1"]) if i < len(items) else None,
                     "question": untagged(d["question"]), "choices": d["options"][:5],
                     "answer": min(ord(d["answer"]) - 65, 4), "hint": "A musical score." if i == 0 else "",
                     "task": "closed choice", "grade": "grade8", "subject": "language science", "topic": "music",
                     "category": "notation", "skill": "read notes", "lecture": "...", "solution": "..."})
    return _features(spec), rows


def dataset(features_rows):
    from datasets import Dataset

    features, rows = features_rows
    return Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)


def write_hub_layout(root: Path, configs: dict[str, dict[str, tuple]], shards: int = 2) -> Path:
    """``root/<config>/<split>-0000i-of-0000n.parquet`` and the README's configs table."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, fr in splits.items():
            ds = dataset(fr)
            folder = root / config
            folder.mkdir(parents=True, exist_ok=True)
            n = min(shards, len(ds))
            for s in range(n):
                ds.shard(n, s, contiguous=True).to_parquet(folder / f"{split}-{s:05d}-of-{n:05d}.parquet")
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (root / "README.md").write_text("\n".join(lines + ["---", ""]))
    return root


def cache_as_hub_download(local: Path, repo: str, configs: list[str], split: str, cache: Path) -> None:
    """Put ``local`` (a hub-layout folder named like the repo) into the datasets cache as a
    ``datasets.load_dataset(repo, ...)`` download would have: ``ORG___name/<config>/...``."""
    import datasets

    for config in configs:
        datasets.load_dataset(str(local), config, split=split, cache_dir=str(cache))
    org, name = repo.split("/")
    os.rename(cache / local.name, cache / f"{org}___{local.name}")
