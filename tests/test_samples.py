"""Sample loader: the format, MMMU-Pro names, every kind of bad line, and the real 200 items."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from xai_bias.errors import SampleError, UsageError
from xai_bias.samples import MAX_IMAGE_PIXELS, SampleSet, load_samples, parse_options

from .conftest import require_shared, require_tool  # noqa: F401

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MMMU = SHARED / "data" / "mmmu_pro_tool" / "data.jsonl"


def png(path: Path, size=(8, 6), color=(10, 200, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def huge_png_header(path: Path, w: int, h: int) -> Path:
    """A PNG whose header claims w x h pixels (no real pixel data: the loader must not decode)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def item(i="q1", **kw):
    d = {"id": i, "question": "What is shown in <image 1>?", "options": ["cat", "dog", "cow"], "answer": "B",
         "image_1": "images/a.png"}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not ...}


def write(tmp_path: Path, rows, name="set.jsonl") -> Path:
    p = tmp_path / name
    lines = [r if isinstance(r, (str, bytes)) else json.dumps(r) for r in rows]
    p.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return p


@pytest.fixture()
def folder(tmp_path):
    png(tmp_path / "images" / "a.png")
    png(tmp_path / "static" / "images" / "s.png", size=(5, 4))
    return tmp_path


def test_good_file_mmmu_names(folder):
    rows = [
        item(),
        item("q2", options="['1', '2', \"it's 3\", '4']", answer="D", image_1="images/s.png",  # static/ layout
             question="<image 1> and <image 2>", image_2="images/a.png", subject="Art", topic_difficulty="Easy"),
        item("q3", question="", answer=None),  # empty question allowed: the image carries it
        {"id": "q4", "question": "No image here", "options": ["x", "y"], "images": [], "meta": {"kind": "t"}},
        item("q5", vision_image="images/a.png", image_1=...),
    ]
    rows[4]["question"] = "Look"
    s = load_samples(write(folder, rows))
    assert isinstance(s, SampleSet) and len(s) == 5 and not s.problems
    q1, q2, q3, q4, q5 = s.samples
    assert q1.options == ("cat", "dog", "cow") and q1.answer == "B" and q1.images == (folder / "images" / "a.png",)
    assert q1.question == "What is shown in <image 1>?"  # placeholders kept
    assert q2.options == ("1", "2", "it's 3", "4") and q2.answer == "D"
    assert q2.images == (folder / "static" / "images" / "s.png", folder / "images" / "a.png")
    assert q2.meta["subject"] == "Art" and q2.meta["topic_difficulty"] == "Easy"
    assert q3.answer is None and q3.question == ""
    assert q4.images == () and q4.meta == {"kind": "t"}
    assert q5.vision_image == folder / "images" / "a.png"
    assert s.name == "set" and len(s.sha256) == 64


def test_limit_and_skip(folder):
    p = write(folder, [item("a"), "{bad", item("b"), item("c")])
    assert load_samples(p, on_error="skip", limit=2).ids() == ["a", "b"]
    s = load_samples(p, on_error="skip")
    assert s.ids() == ["a", "b", "c"] and len(s.problems) == 1 and ":2" in s.problems[0].where
    with pytest.raises(SampleError):
        load_samples(p)  # stop is the default
    assert load_samples(p, limit=1).ids() == ["a"]  # the bad line is never reached
    with pytest.raises(UsageError):
        load_samples(p, on_error="ignore")


BAD = {
    "malformed_json": ('{"id": "x", "question": ', "malformed JSON"),
    "non_utf8": (b'{"id": "x", "question": "caf\xe9", "options": ["a", "b"]}', "not valid UTF-8"),
    "not_object": ("[1, 2]", "not an object"),
    "id_not_text": (item(i=["x"]), "'id' must be a non-empty string"),
    "missing_question": (item(question=...), "missing 'question'"),
    "empty_question_no_image": (item(question=" ", image_1=...), "empty question and no image"),
    "missing_options": (item(options=...), "missing 'options'"),
    "one_option": (item(options=["only"], answer="A"), "at least 2 options"),
    "too_many_options": (item(options=[str(i) for i in range(27)], answer="A"), "more than the 26 letters"),
    "options_not_list": (item(options="not a list"), "not a list literal"),
    "answer_outside": (item(answer="D"), "answer 'D' is not one of the option letters A-C"),
    "answer_not_letter": (item(answer=2), "'answer' must be a letter"),
    "missing_image": (item(image_1="images/nope.png"), "image_1 not found"),
    "placeholder_without_image": (item(question="See <image 2>"), "refers to <image 2>"),
    "duplicate_id": (None, "duplicate id (first on line 1)"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_each_bad_line_kind(folder, kind):
    line, cause = BAD[kind]
    rows = [item("first"), item("first") if kind == "duplicate_id" else line]
    p = write(folder, rows)
    with pytest.raises(SampleError) as ei:
        load_samples(p, on_error="stop")
    err = ei.value
    assert f"{p}:2" in err.where, err.where
    assert cause in err.cause, err.cause
    if kind in ("missing_question", "missing_image", "duplicate_id", "answer_outside"):
        assert "id " in err.where  # the id is named where it is known
    s = load_samples(p, on_error="skip")
    assert s.ids() == ["first"] and len(s.problems) == 1


def test_bad_images(folder):
    (folder / "images" / "empty.png").write_bytes(b"")
    (folder / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    huge_png_header(folder / "images" / "huge.png", 10_000, 10_000)  # 100 MP: over the limit
    huge_png_header(folder / "images" / "bomb.png", 100_000, 100_000)  # PIL's own bomb error
    full = folder / "images" / "trunc.png"
    png(full, size=(64, 64), color=(1, 2, 3))
    (folder / "images" / "trunc2.png").write_bytes(full.read_bytes()[:60])
    rows = [item("e", image_1="images/empty.png"), item("c", image_1="images/corrupt.png"),
            item("h", image_1="images/huge.png"), item("t", image_1="images/trunc2.png"),
            item("b", image_1="images/bomb.png"), item("ok")]
    s = load_samples(write(folder, rows), on_error="skip")
    assert s.ids() == ["ok"]
    causes = [p.cause for p in s.problems]
    assert "empty (0 bytes)" in causes[0]
    assert "corrupt" in causes[1]
    assert "too large: 10000x10000" in causes[2] and f"limit {MAX_IMAGE_PIXELS // 10**6}" in causes[2]
    assert "corrupt" in causes[3]
    assert "too large" in causes[4]
    assert [p.where.split(" ")[0].rsplit(":", 1)[1] for p in s.problems] == ["1", "2", "3", "4", "5"]


def test_parse_options_forms():
    assert parse_options(["a", 2, 3.5]) == ("a", "2", "3.5")
    assert parse_options("['x', 'y']") == ("x", "y")
    assert parse_options("[['A', 'B', 'Not enough information']]") == ("A", "B", "Not enough information")
    with pytest.raises(ValueError):
        parse_options("__import__('os').system('true')")  # literal_eval, never eval
    with pytest.raises(ValueError):
        parse_options([None, "a"])


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(SampleError, match="no data files"):
        load_samples(tmp_path)  # a folder is read as a dataset in the hub's layout
    with pytest.raises(UsageError, match="not found"):
        load_samples(tmp_path / "nope.jsonl")


def test_real_mmmu_pro_items():
    s = load_samples(require_shared(MMMU), on_error="skip")
    assert len(s) == 199 and s.name == "mmmu_pro_tool"
    assert [(p.where.split(" ")[0].rsplit(":", 1)[1], "validation_Clinical_Medicine_26" in p.where) for p in s.problems] == [("129", True)]
    assert "image_1 not found" in s.problems[0].cause
    assert all(2 <= len(x.options) <= 10 and x.answer in x.letters and x.images for x in s)
    assert sum(len(x.images) > 1 for x in s) == 16
    with pytest.raises(SampleError, match="validation_Clinical_Medicine_26"):
        load_samples(MMMU)  # stop: raised before any model work


def test_probe_mmmu_pro():
    from probes import load_probes

    require_shared(MMMU)
    build = load_probes().get("mmmu_pro")
    s = build(limit=3)
    assert s.name == "mmmu_pro" and len(s) == 3
    with pytest.raises(UsageError, match="--samples"):
        build(path="/nonexistent/data.jsonl")
