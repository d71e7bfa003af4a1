"""Inputs that look fine but are not (issue 13.6 / 13.8): 16-bit, int32 and float images, extreme
aspect ratios, directories and device files given as images, duplicate prediction lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cli
from xai_bias.errors import SampleError
from xai_bias.samples import load_samples

from .test_scale import _cmd


def _item_file(tmp_path: Path, image: str, sid: str = "img1") -> Path:
    p = tmp_path / "s.jsonl"
    p.write_text(json.dumps({"id": sid, "question": "<image 1> Which?", "options": ["dark", "light"],
                             "answer": "A", "image_1": image}) + "\n")
    return p


def _complete_pixels(samples: Path) -> np.ndarray:
    from xai_bias.conditions import condition_images

    (im,) = condition_images(load_samples(samples).samples[0], "complete")
    assert im.mode == "RGB"
    return np.asarray(im)


def test_16_bit_gradient_is_scaled_not_clipped(tmp_path):
    """Today convert("RGB") clips a 16-bit gradient: 99.6% of it becomes white."""
    gradient = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    Image.fromarray(gradient).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode == "I;16"
    px = _complete_pixels(_item_file(tmp_path, "g16.png"))
    np.testing.assert_array_equal(px[0, :, 0], np.round(np.linspace(0, 65535, 256) / 257).astype(np.uint8))
    assert (px == 255).all(-1).mean() < 0.01


def test_float_image_in_0_1_is_scaled(tmp_path):
    """Today a float image in [0, 1] becomes black."""
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (16, 1))
    Image.fromarray(ramp, "F").save(tmp_path / "f.tif")
    px = _complete_pixels(_item_file(tmp_path, "f.tif"))
    assert px[0, -1, 0] == 255 and px[0, 32, 0] == round(32 / 63 * 255)


def test_int32_image_in_16_bit_range_is_scaled_and_outside_is_refused(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64).astype(np.int32), (16, 1))
    Image.fromarray(ramp, "I").save(tmp_path / "i.tif")
    px = _complete_pixels(_item_file(tmp_path, "i.tif"))
    assert px[0, 0, 0] == 0 and px[0, -1, 0] == 255 and 120 < px[0, 32, 0] < 135
    Image.fromarray(ramp * 1000 - 5, "I").save(tmp_path / "wide.tif")
    with pytest.raises(SampleError, match=r"32-bit.*range.*wide\.tif"):
        load_samples(_item_file(tmp_path, "wide.tif"))


def test_float_image_outside_0_255_is_refused_with_the_reason(tmp_path):
    Image.fromarray(np.full((8, 8), 1e6, np.float32), "F").save(tmp_path / "big.tif")
    with pytest.raises(SampleError, match=r"float.*range.*big\.tif"):
        load_samples(_item_file(tmp_path, "big.tif"))


def test_extreme_aspect_ratio_is_found_during_validation(tmp_path, capsys):
    """Today the 1x20000 image passes validation and fails in the processor mid-run."""
    Image.new("RGB", (20000, 1), (1, 2, 3)).save(tmp_path / "strip.png")
    samples = _item_file(tmp_path, "strip.png")
    with pytest.raises(SampleError, match=r"aspect ratio 20000:1.*200.*strip\.png"):
        load_samples(samples)
    out = tmp_path / "t.h5"
    assert cli.main(_cmd(samples, out)) == 3
    assert "aspect ratio" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("what, needle", [("dir", "is a directory"), ("/dev/null", "character device")])
def test_image_that_is_a_directory_or_a_device_says_what_it_is(what, needle, tmp_path):
    if what == "dir":
        (tmp_path / "pics").mkdir()
        image = "pics"
    else:
        image = what
    with pytest.raises(SampleError, match=needle) as e:
        load_samples(_item_file(tmp_path, image))
    assert "not found" not in str(e.value)


# ---------------------------------------------------------------- duplicate predictions
def _pred_file(path: Path, lines) -> Path:
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _preds(tmp_path):
    return _pred_file(tmp_path / "p.jsonl", [
        {"id": "q1", "condition": "complete", "prediction": "A", "answer": "A"},
        {"id": "q1", "condition": "text_white", "prediction": "A", "answer": "A"},
        {"id": "q1", "condition": "complete", "prediction": "B", "answer": "A"},
    ])


def test_duplicate_prediction_lines_are_refused_naming_them(tmp_path, capsys):
    """Today the last line silently wins, which can flip accuracy between 0% and 100%."""
    from xai_bias.consistency import load_predictions

    p = _preds(tmp_path)
    with pytest.raises(SampleError, match=r"p\.jsonl:3.*q1.*complete.*p\.jsonl:1"):
        load_predictions(p)
    assert cli.main(["consistency", "--predictions", str(p)]) == 3
    assert "p.jsonl:1" in capsys.readouterr().err
    first = {x.condition: x.prediction for x in load_predictions(p, on_duplicate="first")}
    last = {x.condition: x.prediction for x in load_predictions(p, on_duplicate="last")}
    assert first == {"complete": "A", "text_white": "A"} and last == {"complete": "B", "text_white": "A"}
    assert cli.main(["consistency", "--predictions", str(p), "--on-duplicate", "last", "--format", "json"]) == 0
    rows = {r["condition"]: r for r in json.loads(capsys.readouterr().out)["accuracy"]["rows"]}
    assert rows["complete"]["accuracy"] == 0.0 and rows["text_white"]["accuracy"] == 1.0


def test_the_same_predictions_file_given_twice_is_refused(tmp_path, capsys):
    p = _pred_file(tmp_path / "c.jsonl", [{"id": "q1", "prediction": "A", "answer": "A"}])
    assert cli.main(["consistency", "--predictions", f"{p}=complete", f"{p}=complete"]) == 3
    err = capsys.readouterr().err
    assert err.count("c.jsonl:1") == 2 and "q1" in err
