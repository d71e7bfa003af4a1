"""Benchmarks as researchers hold them: hub-layout folders, the offline HF cache, save_to_disk
folders and single parquet files in each benchmark's exact column schema, run end to end
(``attribute`` with a tiny model, then ``consistency``); MMMU-Pro's vision join; bad tables."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import cli
from xai_bias.conditions import make_view, render_question_image
from xai_bias.errors import SampleError, UsageError
from xai_bias.samples import DerivedIdWarning, load_samples
from xai_bias.store import open_trace
from xai_bias.types import ImageRef

from . import bench_tables as bt

MODEL = "tiny:qwen2_5_vl"
STD10 = "standard (10 options)"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty datasets cache of this test (the offline 'local HF cache')."""
    import datasets

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    return cache


@pytest.fixture
def mmmu_pro_hub(tmp_path, hf_cache):
    """MMMU/MMMU_Pro in the hub's folder layout: three configs, parquet shards, README table."""
    return bt.write_hub_layout(tmp_path / "mmmu_pro", {
        STD10: {"test": bt.mmmu_pro_standard_rows()},
        "standard (4 options)": {"test": bt.mmmu_pro_standard_rows(k=4)},
        "vision": {"test": bt.mmmu_pro_vision_rows()},
    })


def attribute(*extra: str) -> int:
    return cli.main(["attribute", "--model", MODEL, "--no-progress", "--methods", "attention", *extra])


def image_grid(trace, sample_id: str) -> tuple[int, int]:
    """(rows, cols) of vision tokens of the sample's image_only record (``--save-maps``)."""
    i = int(trace.find(sample_id=sample_id, condition="image_only")[0])
    return tuple(int(x) for x in trace["attention/map_grid"][i][0])


def test_hub_folder_mmmu_pro_with_vision_join(mmmu_pro_hub, tmp_path, capsys):
    s = load_samples(mmmu_pro_hub, subset=STD10, split="test")
    assert s.ids() == list(bt.PICK) and not s.problems
    multi = s.samples[2]  # validation_Music_1: five images, four of them the options
    assert len(multi.images) == 5 and all(isinstance(p, ImageRef) for p in multi.images)
    assert multi.options[:2] == ("<image 2>", "<image 3>") and multi.images[0].name == "validation_Music_1_1.png"
    assert all(isinstance(x.vision_image, ImageRef) and "[vision]" in x.vision_image.origin for x in s)
    p = s.provenance
    assert (p["config"], p["split"], p["schema"], p["num_rows"]) == (STD10, "test", "mmmu", 4)
    assert p["fingerprint"] and p["vision"]["joined"] == 4 and p["vision"]["config"] == "vision"
    # image_only shows the dataset's screenshot, not a rendering
    view = make_view(s.samples[0], "image_only")
    assert view.images[0].size == bt.SCREENSHOT_SIZE != render_question_image(s.samples[0]).size

    out = tmp_path / "std10.h5"
    assert attribute("--samples", str(mmmu_pro_hub), "--subset", STD10, "--split", "test", "--out", str(out),
                     "--conditions", "complete,text_white,image_only", "--batch-size", "4", "--save-maps") == 0
    with open_trace(out) as t:
        assert t.n_records == 12 and set(t["records/status"]) == {"ok"}
        prov = json.loads(t.attrs["sample_set"])
        assert (prov["config"], prov["split"], prov["vision"]["joined"]) == (STD10, "test", 4)
        assert json.loads(t.attrs["settings"])["prompt_style"] == "lmms_eval"
        for i in t.find(condition="image_only"):
            rec = t.record(int(i))
            assert rec.meta["vision_image"] == str(s.samples[[x.id for x in s].index(rec.sample_id)].vision_image)
        # the model saw the 200 x 420 screenshot: a portrait grid of vision tokens
        shot = image_grid(t, "validation_Music_11")
        assert shot[0] > shot[1]
    rendered_out = tmp_path / "rendered.h5"  # the same item from JSONL: no vision_image, rendered
    jsonl = tmp_path / "one.jsonl"
    jsonl.write_text((bt.SHARED / "data.jsonl").read_text().splitlines()[0] + "\n")
    (tmp_path / "static").symlink_to(bt.SHARED / "static")
    assert attribute("--samples", str(jsonl), "--out", str(rendered_out), "--conditions", "image_only",
                     "--save-maps") == 0
    with open_trace(rendered_out) as t:  # the rendering (896 px wide, wider than tall) gives another grid
        rendered = image_grid(t, "validation_Music_11")
        assert rendered[0] < rendered[1]
    capsys.readouterr()
    assert cli.main(["consistency", str(out)]) == 0
    text = capsys.readouterr().out
    assert "## Table 2" in text and "| All |" in text


def test_offline_hf_cache_and_missing_dataset(mmmu_pro_hub, hf_cache, tmp_path, capsys):
    bt.cache_as_hub_download(mmmu_pro_hub, "MMMU/MMMU_Pro", [STD10, "vision"], "test", hf_cache)
    s = load_samples("hf:MMMU/MMMU_Pro", subset=STD10, split="test")
    assert len(s) == 4 and s.provenance["kind"] == "hub" and s.provenance["dataset"] == "MMMU/MMMU_Pro"
    assert s.provenance["vision"]["joined"] == 4  # the vision config came from the cache too
    with pytest.raises(SampleError) as ei:  # a config that was never downloaded
        load_samples("hf:MMMU/MMMU_Pro", subset="standard (4 options)", split="test")
    assert "not in the local Hugging Face cache" in ei.value.cause
    assert ("python -c \"import datasets; datasets.load_dataset('MMMU/MMMU_Pro', 'standard (4 options)', "
            "split='test')\"") in ei.value.cause
    assert attribute("--samples", "hf:Lin-Chen/MMStar", "--split", "val", "--out", str(tmp_path / "x.h5")) == 3
    err = capsys.readouterr().err
    assert "hf:Lin-Chen/MMStar" in err and "datasets.load_dataset('Lin-Chen/MMStar', split='val')" in err
    assert not (tmp_path / "x.h5").exists()


def test_mmmu_pro_prompt_style_end_to_end(mmmu_pro_hub, tmp_path):
    out = tmp_path / "std4.h5"
    assert attribute("--samples", str(mmmu_pro_hub), "--subset", "standard (4 options)", "--split", "test",
                     "--prompt-style", "mmmu_pro", "--conditions", "complete,image_only", "--out", str(out)) == 0
    with open_trace(out) as t:
        assert json.loads(t.attrs["settings"])["prompt_style"] == "mmmu_pro"
        assert np.isfinite(t["records/option_logprobs"]).sum(1).max() == 4
        assert set(t["records/condition"]) == {"complete", "image_only"}


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet", "hub"])
@pytest.mark.parametrize("bench", ["mmstar", "mmbench", "ai2d", "scienceqa"])
def test_benchmark_layouts_load(bench, layout, tmp_path, hf_cache):
    rows = getattr(bt, f"{bench}_rows")()
    if layout == "save_to_disk":
        path = tmp_path / bench
        bt.dataset(rows).save_to_disk(str(path))
    elif layout == "parquet":
        path = tmp_path / f"{bench}.parquet"
        bt.dataset(rows).to_parquet(str(path))
    else:
        path = bt.write_hub_layout(tmp_path / bench, {"default": {"test": rows}})
    s = load_samples(path)
    assert s.provenance["schema"] == bench and not s.problems
    assert all(len(x.images) == 1 and isinstance(x.images[0], ImageRef) and x.answer in x.letters for x in s)
    if bench == "mmstar":
        assert s.ids() == ["0", "1"] and len(s.samples[0].options) == 4 and "Options:" not in s.samples[0].question
    if bench == "mmbench":
        first, second = s.samples
        assert first.question.startswith("The score is in treble clef.\n") and first.meta["has_hint"]
        assert first.meta["hint_text"] == "The score is in treble clef." and not second.meta["has_hint"]
        assert (len(first.options), len(second.options)) == (4, 3) and s.ids() == ["1000", "1001"]
    if bench == "scienceqa":
        assert len(s) == 2 and s.provenance["skipped_rows"] == {"no image (a text-only ScienceQA item)": 1}
        assert s.samples[0].question.startswith("Context: A musical score.\n")
    if bench == "ai2d":
        assert s.ids() == ["0", "1"] and s.samples[0].meta["row"] == 0


@pytest.mark.parametrize("bench,layout", [("mmstar", "save_to_disk"), ("mmbench", "parquet"),
                                          ("scienceqa", "hub")])
def test_benchmark_attribute_and_consistency(bench, layout, tmp_path, hf_cache, capsys):
    rows = getattr(bt, f"{bench}_rows")()
    path = {"save_to_disk": tmp_path / bench, "parquet": tmp_path / f"{bench}.parquet", "hub": tmp_path / bench}[layout]
    if layout == "save_to_disk":
        bt.dataset(rows).save_to_disk(str(path))
    elif layout == "parquet":
        bt.dataset(rows).to_parquet(str(path))
    else:
        bt.write_hub_layout(path, {"default": {"test": rows}})
    out = tmp_path / "t.h5"
    assert attribute("--samples", str(path), "--out", str(out), "--conditions", "complete,text_white,image_only") == 0
    with open_trace(out) as t:
        assert t.n_records == 6 and json.loads(t.attrs["sample_set"])["schema"] == bench
    capsys.readouterr()
    assert cli.main(["consistency", str(out), "--format", "json"]) == 0
    tables = json.loads(capsys.readouterr().out)
    assert tables["consistency"][0]["n"] == 2


def test_table_of_another_schema(tmp_path, hf_cache, capsys):
    import datasets

    path = tmp_path / "other.parquet"
    datasets.Dataset.from_dict({"question": ["q"], "label": [1]}).to_parquet(str(path))
    with pytest.raises(SampleError) as ei:
        load_samples(path)
    assert str(path) in ei.value.where and "missing column(s)" in ei.value.cause
    assert "image" in ei.value.cause.split("missing column(s)")[1]
    with pytest.raises(SampleError, match="not in the mmstar schema.*missing column\\(s\\) index, image, answer"):
        load_samples(path, schema="mmstar")
    assert attribute("--samples", str(path), "--out", str(tmp_path / "x.h5")) == 3
    assert "missing column(s)" in capsys.readouterr().err


def test_corrupt_image_bytes_are_reported_and_skipped(tmp_path, hf_cache, capsys):
    features, rows = bt.mmstar_rows()
    rows[0]["image"] = {"bytes": b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, "path": "broken.png"}
    path = tmp_path / "mmstar.parquet"
    bt.dataset((features, rows)).to_parquet(str(path))
    with pytest.raises(SampleError) as ei:
        load_samples(path)
    assert "row 0 (id 0)" in ei.value.where and "corrupt" in ei.value.cause
    s = load_samples(path, on_error="skip")
    assert s.ids() == ["1"] and len(s.problems) == 1
    out = tmp_path / "t.h5"
    assert attribute("--samples", str(path), "--on-error", "skip", "--out", str(out), "--conditions", "complete") == 0
    assert "skipped" in capsys.readouterr().err
    with open_trace(out) as t:
        assert list(t["records/sample_id"]) == ["1"] and "corrupt" in t.attrs["skipped_samples"][0]


def test_official_jsonl_without_ids(tmp_path):
    """The official repository's current data.jsonl has no id: stable ids derived, one warning."""
    lines = [json.loads(x) for x in (bt.SHARED / "data.jsonl").read_text().splitlines()]
    real = [d.pop("id") for d in lines]
    (tmp_path / "static").symlink_to(bt.SHARED / "static")
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in lines + [{"question": "No image?", "options": ["a", "b"]}]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = load_samples(path, on_error="skip")
    derived = [w for w in caught if issubclass(w.category, DerivedIdWarning)]
    assert len(derived) == 1 and "201 item(s)" in str(derived[0].message)
    assert len(s) == 200 and len(s.problems) == 1  # every usable item (one lacks its image file)
    assert s.ids()[:199] == [i for i in real if i != "validation_Clinical_Medicine_26"]  # ids from image names
    assert s.ids()[-1] == "data.jsonl:201" and s.samples[0].meta["id_derived"] is True
    assert s.provenance["derived_ids"] == 201
    with pytest.warns(DerivedIdWarning):
        again = load_samples(path, on_error="skip")
    assert again.ids() == s.ids()  # stable


def test_subset_on_jsonl_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--subset"):
        load_samples(bt.SHARED / "data.jsonl", subset=STD10)


def test_benchmark_probes_listed_and_built_from_a_local_copy(tmp_path, hf_cache, capsys):
    from probes import load_probes

    assert cli.main(["probes"]) == 0
    listing = capsys.readouterr().out
    for name, count in (("mmmu_pro_standard10", "1,730"), ("mmmu_pro_standard4", "1,730"), ("mmmu_pro_vision", "1,730"),
                        ("mmmu", "900"), ("mmstar", "1,500"), ("mmbench", "4,329"), ("ai2d", "3,088"),
                        ("scienceqa", "2,017")):
        line = listing.split(f"\n{name} ")[1].split("\n")[1]
        assert count in line and "arXiv" in line and "options" in line, (name, line)
    path = tmp_path / "mmstar.parquet"
    bt.dataset(bt.mmstar_rows()).to_parquet(str(path))
    s = load_probes().get("mmstar")(path=str(path))
    assert s.name == "mmstar" and s.ids() == ["0", "1"] and s.provenance["schema"] == "mmstar"
    assert attribute("--probe", "mmstar", "--probe-path", str(path), "--out", str(tmp_path / "p.h5"),
                     "--conditions", "complete") == 0
    with pytest.raises(SampleError, match="not in the local Hugging Face cache"):
        load_probes().get("ai2d")()  # hf:lmms-lab/ai2d was never downloaded here
