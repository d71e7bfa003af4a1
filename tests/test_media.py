"""Video and audio: decoding and validation, conditions per modality, the PIL video processor's
layout, roles of clip placeholders, silence baselines, Shapley over 3-5 groups, knockout per
modality, the clip probes, and the audio run end to end (attribute -> estimate, consistency,
figures)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import moving_frames, tone
from xai_bias import media
from xai_bias.conditions import get_condition, make_view, run_modalities
from xai_bias.errors import SampleError
from xai_bias.media import AudioClip, VideoClip, decode_audio, decode_video, write_video, write_wav
from xai_bias.samples import load_samples
from xai_bias.types import ROLE_INDEX, PromptView, Sample

REPO = Path(__file__).resolve().parents[1]
INSTR = "Answer with the option's letter from the given choices directly."
_VLMS: dict = {}


def tiny(arch):
    from xai_bias.models import tiny_vlm

    if arch not in _VLMS:
        _VLMS[arch] = tiny_vlm(arch)
    return _VLMS[arch]


# ---------------------------------------------------------------------------------------------
# decoding and validation


def test_audio_decodes_mono_at_16k_from_wav_flac_mp3(tmp_path):
    import soundfile

    t = np.arange(44100) / 44100
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.1 * np.sin(2 * np.pi * 440 * t)], 1)
    for ext in ("wav", "flac", "mp3"):
        soundfile.write(tmp_path / f"a.{ext}", stereo, 44100)
        clip = decode_audio(tmp_path / f"a.{ext}")
        assert clip.rate == 16000 and clip.samples.dtype == np.float32
        assert clip.duration == pytest.approx(1.0, abs=0.06)
        # mono mix (0.3 + 0.1) / 2 = 0.2 peak, pitch kept: the spectrum peaks at 440 Hz
        assert np.abs(clip.samples).max() == pytest.approx(0.2, abs=0.02)
        spec = np.abs(np.fft.rfft(clip.samples[:16000]))
        assert abs(np.argmax(spec) * 16000 / 16000 - 440) < 3


def test_video_decodes_uniform_frames_and_folder(tmp_path):
    frames = np.zeros((12, 32, 48, 3), np.uint8)  # smooth content: the lossy codec keeps it closely
    for i in range(12):
        frames[i, 8:20, 3 * i : 3 * i + 10] = (220, 60, 30)
    write_video(tmp_path / "v.mp4", frames, fps=4)
    clip = decode_video(tmp_path / "v.mp4", 8)
    idx = media.sample_indices(12, 8)
    assert clip.frames.shape == (8, 32, 48, 3)
    assert np.abs(clip.frames.astype(int) - frames[idx]).mean() < 3  # lossy codec, same pictures
    assert clip.duration == pytest.approx(3.0) and clip.fps == pytest.approx(8 / 3)
    np.testing.assert_allclose(clip.times, idx / 4)
    folder = tmp_path / "frames"
    folder.mkdir()
    from PIL import Image

    for i, f in enumerate(frames[:5]):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    got = decode_video(folder, 8)
    np.testing.assert_array_equal(got.frames, frames[:5])  # PNG: exact; fewer frames than asked: all


@pytest.mark.parametrize("case, cause", [
    ("missing_audio", "audio not found"),
    ("empty_audio", "audio is empty (0 bytes)"),
    ("corrupt_audio", "audio is corrupt"),
    ("long_audio", "more than the 30 s audio encoders see"),
    ("missing_video", "video not found"),
    ("corrupt_video", "video is corrupt or not a video"),
    ("empty_folder", "video folder holds no frame images"),
])
def test_bad_clips_are_sample_errors(tmp_path, case, cause):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really")
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 64)
    (tmp_path / "frames").mkdir()
    write_wav(tmp_path / "long.wav", np.zeros(31 * 16000, np.float32))
    field = {"missing_audio": ("audio", "nope.wav"), "empty_audio": ("audio", "empty.wav"),
             "corrupt_audio": ("audio", "bad.wav"), "long_audio": ("audio", "long.wav"),
             "missing_video": ("video", "nope.mp4"), "corrupt_video": ("video", "bad.mp4"),
             "empty_folder": ("video", "frames")}[case]
    write_wav(tmp_path / "ok.wav", tone(0))
    lines = [{"id": "good", "question": "Pitch?", "options": ["high", "low"], "answer": "A", "audio": "ok.wav"},
             {"id": "bad", "question": "Pitch?", "options": ["high", "low"], "answer": "A", field[0]: field[1]}]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(SampleError, match="id bad") as err:
        load_samples(path)
    assert cause in str(err.value)
    kept = load_samples(path, on_error="skip")
    assert kept.ids() == ["good"] and cause in str(kept.problems[0])
    assert kept.samples[0].audios == (tmp_path / "ok.wav",)


def test_cli_exit_code_3_for_a_bad_clip(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"nope")
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"id": "x", "question": "Pitch?", "options": ["high", "low"], "audio": "bad.wav"}) + "\n")
    out = subprocess.run([sys.executable, "cli.py", "attribute", "--model", "tiny:qwen2_audio", "--samples", str(path),
                          "--out", str(tmp_path / "t.h5")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 3, out.stderr
    assert "audio is corrupt" in out.stderr and "id x" in out.stderr


def test_jsonl_fields_and_dataset_table_with_audio_and_video_features(tmp_path):
    import datasets

    write_wav(tmp_path / "a1.wav", tone(1))
    write_video(tmp_path / "v1.mp4", moving_frames(1))
    lines = [{"id": "n", "question": "Which?", "options": ["x", "y"], "audio_1": "a1.wav", "video_1": "v1.mp4",
              "subject": "toy"},
             {"id": "b", "question": "Which?", "options": ["x", "y"], "audio": "a1.wav", "audios": ["a1.wav"]}]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = load_samples(path, on_error="skip")
    assert got.ids() == ["n"] and "more than one of 'audio'" in str(got.problems[0])
    s = got.samples[0]
    assert s.audios == (tmp_path / "a1.wav",) and s.videos == (tmp_path / "v1.mp4",) and s.meta == {"subject": "toy"}
    # a parquet table with Audio / Video cells as datasets stores them (struct<bytes, path>; the
    # Audio / Video feature metadata itself needs torchcodec to encode), read lazily
    import pyarrow as pa
    import pyarrow.parquet as pq

    cell = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({
        "id": ["r0", "r1"], "question": ["Pitch?", "Pitch?"], "options": [["high", "low"]] * 2, "answer": [1, 0],
        "audio": pa.array([{"bytes": (tmp_path / "a1.wav").read_bytes(), "path": "a1.wav"},
                           {"bytes": b"junk", "path": "x.wav"}], cell),
        "video": pa.array([{"bytes": (tmp_path / "v1.mp4").read_bytes(), "path": "v1.mp4"}] * 2, cell)})
    pq.write_table(table, tmp_path / "t.parquet")
    del datasets
    table = load_samples(tmp_path / "t.parquet", on_error="skip")
    assert table.ids() == ["r0"] and table.samples[0].answer == "B"
    assert "row 1" in str(table.problems[0]) and "audio is corrupt" in str(table.problems[0])
    a = decode_audio(table.samples[0].audios[0])
    np.testing.assert_allclose(a.samples, decode_audio(tmp_path / "a1.wav").samples)
    assert decode_video(table.samples[0].videos[0]).frames.shape[0] == 4
    assert table.provenance["schema"] == "media_mc"


# ---------------------------------------------------------------------------------------------
# conditions


def _clip_sample(tmp_path) -> Sample:
    write_wav(tmp_path / "a.wav", tone(2, seconds=0.5))
    write_video(tmp_path / "v.mp4", moving_frames(3, n=6))
    return Sample("m", "Which way? <video 1>", ("left", "right"), "B", videos=(tmp_path / "v.mp4",),
                  audios=(tmp_path / "a.wav",))


def test_conditions_per_modality(tmp_path):
    s = _clip_sample(tmp_path)
    complete = make_view(s, "complete")
    assert complete.question == "Which way?" and len(complete.videos) == 1 and len(complete.audios) == 1
    v, a = complete.videos[0], complete.audios[0]
    silent = make_view(s, "audio_silent")
    assert not silent.audios[0].samples.any() and silent.audios[0].samples.shape == a.samples.shape
    np.testing.assert_array_equal(silent.videos[0].frames, v.frames)  # the video is kept
    noise = make_view(s, "audio_noise", seed=1).audios[0].samples
    rms = lambda x: float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))  # noqa: E731
    assert rms(noise) == pytest.approx(rms(a.samples), rel=0.1) and noise.shape == a.samples.shape
    np.testing.assert_array_equal(noise, make_view(s, "audio_noise", seed=1).audios[0].samples)
    assert not np.array_equal(noise, make_view(s, "audio_noise", seed=2).audios[0].samples)
    assert make_view(s, "audio_removed").audios == () and len(make_view(s, "audio_removed").videos) == 1
    frozen = make_view(s, "video_frozen").videos[0].frames
    assert (frozen == v.frames[0]).all()
    assert not make_view(s, "video_black").videos[0].frames.any()
    shuffled = make_view(s, "video_shuffled").videos[0].frames
    assert not np.array_equal(shuffled, v.frames)
    assert sorted(map(bytes, shuffled)) == sorted(map(bytes, v.frames))  # the same frames, reordered
    assert make_view(s, "video_removed").videos == ()
    assert make_view(s, "text_only").videos == () and make_view(s, "text_only").audios == ()
    for name, mod in (("audio_silent", "audio"), ("audio_noise", "audio"), ("audio_removed", "audio"),
                      ("video_frozen", "video"), ("video_black", "video"), ("video_shuffled", "video"),
                      ("video_removed", "video")):
        assert get_condition(name).removes == mod
    assert run_modalities([s], ["complete"]) == ("video", "audio")
    assert run_modalities([s], ["complete", "image_only"]) == ("image", "video", "audio")


# ---------------------------------------------------------------------------------------------
# the PIL video processor


def _torch_style_patchify(video: np.ndarray, tp=2, p=14, m=2) -> np.ndarray:
    """transformers' Qwen2VLVideoProcessor.patchify, in numpy: ``[T, C, H, W]`` -> rows."""
    T, C, H, W = video.shape
    if pad := -T % tp:
        video = np.concatenate([video, np.repeat(video[-1:], pad, 0)])
        T += pad
    gh, gw = H // p, W // p
    x = video.reshape(1, T // tp, tp, C, gh // m, m, p, gw // m, m, p).transpose(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return x.reshape(T // tp * gh * gw, C * tp * p * p)


def test_qwen_video_layout_matches_transformers_patchify():
    import transformers
    from PIL import Image

    from xai_bias.models.video_processors import QwenVideoProcessorPil

    vp = QwenVideoProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    frames = [Image.fromarray(f) for f in moving_frames(4, n=3, size=(80, 60))]
    out = vp([frames], return_tensors="np")
    ip = transformers.Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112)
    # each frame through the image pipeline (resize, rescale, normalise), then the video patchify
    per = []
    for f in frames:
        px = ip(images=[f], return_tensors="np")
        g = px["image_grid_thw"][0]
        rows = px["pixel_values"].reshape(int(np.prod(g)), 3, 2, 14, 14)[:, :, 0]  # [patches, C, P, P]
        # undo the image patchify: back to [C, H, W]
        gh, gw = int(g[1]), int(g[2])
        img = rows.reshape(gh // 2, gw // 2, 2, 2, 3, 14, 14).transpose(4, 0, 2, 5, 1, 3, 6).reshape(3, gh * 14, gw * 14)
        per.append(img)
    want = _torch_style_patchify(np.stack(per))
    np.testing.assert_allclose(out["pixel_values_videos"], want, rtol=0, atol=1e-6)
    assert out["video_grid_thw"].tolist() == [[2, g[1], g[2]]]
    # a still two-frame video is the image itself
    still = vp([[frames[0], frames[0]]], return_tensors="np")["pixel_values_videos"]
    np.testing.assert_array_equal(still, ip(images=[frames[0]], return_tensors="np")["pixel_values"])


def test_onevision_video_frames_are_the_image_base_patch():
    import transformers
    from PIL import Image

    from xai_bias.models.video_processors import OnevisionVideoProcessorPil

    frames = [Image.fromarray(f) for f in moving_frames(2, n=2, size=(56, 48))]
    got = OnevisionVideoProcessorPil(size={"height": 28, "width": 28})([frames], return_tensors="np")
    ip = transformers.LlavaOnevisionImageProcessorPil(size={"height": 28, "width": 28}, image_mean=[0.5] * 3,
                                                      image_std=[0.5] * 3,
                                                      image_grid_pinpoints=[[28, 28], [28, 56], [56, 28], [56, 56]])
    assert got["pixel_values_videos"].shape == (1, 2, 3, 28, 28)
    for t, f in enumerate(frames):  # the image path's first patch is the whole frame resized
        np.testing.assert_array_equal(got["pixel_values_videos"][0, t], ip(images=[f], return_tensors="np")["pixel_values"][0, 0])


# ---------------------------------------------------------------------------------------------
# roles, forward, silence


def _video_view(seed=0, n=4):
    return PromptView("Which way does it move?", ("left", "right"), ("A", "B"), INSTR,
                      videos=(VideoClip(moving_frames(seed, n=n), fps=2.0, duration=n / 2.0),))


def _audio_view(seed=0, seconds=0.5):
    return PromptView("Is the tone high or low?", ("high", "low"), ("A", "B"), INSTR,
                      audios=(AudioClip(tone(seed, seconds)),))


@pytest.mark.parametrize("arch, kind", [("qwen2_5_vl", "video"), ("qwen2_vl", "video"), ("llava_onevision", "video"),
                                        ("qwen2_audio", "audio")])
def test_clip_roles_are_the_inserted_placeholders_and_the_clip_counts(arch, kind):
    from xai_bias.models import collate, encode, forward

    vlm = tiny(arch)
    view = _video_view() if kind == "video" else _audio_view()
    enc = encode(vlm, view)
    ids = enc.input_ids.numpy()
    own = getattr(vlm.sites, f"{kind}_token_ids")
    assert set(enc.roles.positions(kind)) == set(np.flatnonzero(np.isin(ids, own)))
    if arch == "llava_onevision":  # 4 frames of 1 pooled token (28 px / 14, pooled 2x2) + the newline
        assert enc.media.video_slots == (4,) and enc.roles.counts()[ROLE_INDEX["video"]] == 4 + 1
    elif kind == "video":  # 4 frames -> 2 temporal slots of (56/28)^2 merged patches
        assert enc.media.video_slots == (2,) and enc.roles.counts()[ROLE_INDEX["video"]] == 2 * 4
    else:  # 0.5 s -> 50 mel frames -> 25 after the stride-2 conv -> 12 after the stride-2 pooling
        assert enc.roles.counts()[ROLE_INDEX["audio"]] == 12 and enc.media.audio_samples == (8000,)
    # the model reads the clip: another clip changes the answer distribution
    other = _video_view(seed=5) if kind == "video" else _audio_view(seed=5)
    a = forward(vlm, collate(vlm, [enc]))[0, -1]
    b = forward(vlm, collate(vlm, [encode(vlm, other)]))[0, -1]
    assert (a - b).abs().max() > 1e-4


def test_audio_longer_than_the_window_is_an_error_not_cut():
    from xai_bias.models import encode

    with pytest.raises(ValueError, match="more than the 2 s the model's feature extractor sees"):
        encode(tiny("qwen2_audio"), _audio_view(seconds=2.5))


def test_silence_baseline_is_what_a_silent_clip_produces():
    from xai_bias.models import collate, decoder_call, encode
    from xai_bias.models.silence import silent_features

    vlm = tiny("qwen2_audio")
    views = [_audio_view(1, 0.5), _audio_view(2, 1.0)]
    batch = collate(vlm, [encode(vlm, v) for v in views])
    silent_views = [PromptView(**{**v.__dict__, "audios": (AudioClip(np.zeros_like(v.audios[0].samples)),)})
                    for v in views]
    want = collate(vlm, [encode(vlm, v) for v in silent_views])
    got = silent_features(vlm, batch)
    torch.testing.assert_close(got["input_features"], want.inputs["input_features"], rtol=0, atol=0)
    e1 = decoder_call(vlm, want).embeds
    e2 = decoder_call(vlm, batch, got).embeds
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# Shapley over 3-5 groups, knockout per modality


def _items(vlm, views, method="shapley", baseline="black", **settings):
    from xai_bias.instruments import load_methods
    from xai_bias.instruments.base import MethodSettings, Target
    from xai_bias.models import collate, encode, forward

    METHODS = load_methods()
    batch = collate(vlm, [encode(vlm, v) for v in views])
    with torch.no_grad():
        logp = torch.log_softmax(forward(vlm, batch).float(), -1)
    targets = []
    for b, v in enumerate(views):
        ids = tuple(vlm.letter_token_ids(v.letters))
        targets.append(Target(batch.answer_pos, ids[int(torch.argmax(logp[b, -1, list(ids)]))], ids))
    m = METHODS.get(method).build(vlm, MethodSettings.build(**{method: {"baseline": baseline, **settings}}
                                                            if method == "shapley" else {method: settings}))
    return m, batch, targets, logp


@pytest.mark.parametrize("form, names", [
    ("modalities", ("image", "video", "text")),
    ("split", ("image", "video", "question", "options")),
])
def test_shapley_efficiency_over_3_and_4_groups_image_and_video(form, names):
    from PIL import Image

    from xai_bias.instruments.shapley import modality_shapley

    vlm = tiny("qwen2_5_vl")
    view = PromptView("What <image 1> moves which way?", ("left", "right", "up"), tuple("ABC"), INSTR,
                      images=(Image.fromarray(moving_frames(7, n=1)[0]),), videos=_video_view().videos)
    m, batch, targets, logp = _items(vlm, [view], groups=form)
    m.prepare(("image", "video"))
    assert tuple(n for n, _ in m.groups) == names
    item = m.items(batch, targets, "black")[0]
    res = modality_shapley(vlm, item, m.groups, "black")
    assert res.values.shape == (1 << len(names),)
    assert res.phi.sum() == pytest.approx(res.values[-1] - res.values[0], abs=1e-5)  # efficiency
    assert res.values[-1] == pytest.approx(float(logp[0, -1, targets[0].token_id]), abs=1e-4)
    assert abs(res.phi[1]) > 1e-6  # the video matters to the tiny model
    assert m.measure(batch, targets)[0]["attribution/shapley"].shape == (len(names),)
    assert m.dataset_attrs()["attribution/shapley"]["groups"] == list(names)


def test_shapley_five_groups_efficiency():
    """Five players, 32 coalitions in batched passes: efficiency and the full / empty ends."""
    from xai_bias.instruments.shapley import modality_shapley

    vlm = tiny("qwen2_5_vl")
    m, batch, targets, _ = _items(vlm, [_video_view()], groups="split")
    item = m.items(batch, targets, "black")[0]
    groups = (("video", ("video",)), ("question", ("question",)), ("options", ("options",)),
              ("instruction", ("instruction",)), ("template", ("template",)))
    res = modality_shapley(vlm, item, groups, "black", batch_size=7)
    assert res.values.shape == (32,)
    assert res.phi.sum() == pytest.approx(res.values[31] - res.values[0], abs=1e-5)
    with pytest.raises(ValueError, match="need 1..5 Shapley groups"):
        modality_shapley(vlm, item, groups + (("sink", ("sink",)),), "black")


def test_shapley_audio_groups_and_silent_audio_is_worth_nothing():
    vlm = tiny("qwen2_audio")
    views = [_audio_view(1), PromptView(**{**_audio_view(1).__dict__,
                                           "audios": (AudioClip(np.zeros(8000, np.float32)),)})]
    m, batch, targets, _ = _items(vlm, views)
    m.prepare(("audio",))
    assert [n for n, _ in m.groups] == ["audio", "text"]
    rows = m.measure(batch, targets)
    assert abs(rows[0]["attribution/shapley"][0]) > 1e-5
    assert rows[1]["attribution/shapley"][0] == 0.0  # a silent clip against the silence baseline


def test_knockout_per_modality():
    vlm = tiny("qwen2_audio")
    for modality, nonzero in (("audio", True), ("image", False)):
        m, batch, targets, _ = _items(vlm, [_audio_view(3)], method="knockout", modality=modality)
        delta = m.measure(batch, targets)[0]["intervention/knockout"]
        assert delta.shape == (vlm.spec.n_layers,)
        assert (np.abs(delta) > 1e-6).any() == nonzero
        assert m.dataset_attrs()["intervention/knockout"]["modality"] == modality


# ---------------------------------------------------------------------------------------------
# probes


@pytest.mark.parametrize("name", ["audio_hint", "video_hint"])
def test_clip_probes_are_balanced_and_deterministic(name, tmp_path):
    from probes import load_probes

    build = load_probes().get(name)
    a = build(limit=12, seed=0, path=str(tmp_path / "a"))
    b = build(limit=12, seed=0, path=str(tmp_path / "b"))
    assert a.sha256 == b.sha256 and a.ids() == b.ids()
    kinds = [s.meta["hint"] for s in a]
    truths = [s.meta["truth"] for s in a]
    assert {k: kinds.count(k) for k in set(kinds)} == {"correct": 4, "conflicting": 4, "none": 4}
    assert len(set(truths)) == 2 and truths.count(truths[0]) == 6
    for s in a:
        assert s.answer == "AB"[s.options.index(s.meta["truth"])]
        hinted = s.meta["hinted"]
        assert (f" {hinted}." in s.question) == bool(hinted)
        clip = (s.audios or s.videos)[0]
        if name == "audio_hint":
            c = decode_audio(clip)
            spec = np.abs(np.fft.rfft(c.samples))
            pitch = np.argmax(spec) * c.rate / c.samples.size
            assert pitch == pytest.approx(s.meta["pitch_hz"], abs=2)
            assert (pitch > 600) == (s.meta["truth"] == "high")
        else:
            v = decode_video(clip)
            xs = [np.flatnonzero(f.max(-1).max(0) > 140).mean() for f in v.frames]
            assert (xs[-1] > xs[0]) == (s.meta["truth"] == "right")
    assert build(limit=3, seed=1, path=str(tmp_path / "c")).sha256 != a.sha256


# ---------------------------------------------------------------------------------------------
# end to end


@pytest.mark.slow
def test_audio_run_end_to_end(tmp_path):
    """attribute on tiny:qwen2_audio with the audio probe and conditions, then estimate,
    consistency and figures (fig8_audio among them)."""
    out = tmp_path / "a.h5"
    run = [sys.executable, "cli.py"]
    r = subprocess.run(run + ["attribute", "--model", "tiny:qwen2_audio", "--probe", "audio_hint", "--limit", "3",
                              "--conditions", "complete,audio_silent,audio_noise,audio_removed",
                              "--methods", "attention,shapley,knockout", "--knockout-modality", "audio",
                              "--save-maps", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    from xai_bias.store import open_trace

    t = open_trace(out)
    assert t.n_records == 12 and (t.column("records/status") == "ok").all()
    assert t.dataset_attrs("attribution/shapley")["groups"] == ["audio", "text"]
    roles = t.column("records/role_tokens")
    cond = t.column("records/condition")
    assert (roles[cond != "audio_removed", ROLE_INDEX["audio"]] > 0).all()
    assert (roles[cond == "audio_removed", ROLE_INDEX["audio"]] == 0).all()
    for cmd in (["estimate", str(out)], ["consistency", str(out)]):
        r = subprocess.run(run + cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    r = subprocess.run(run + ["figures", str(out), "--out", str(tmp_path / "f")], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "f" / "fig8_audio.png").stat().st_size > 10_000


@pytest.mark.slow
def test_video_run_and_frame_figure(tmp_path):
    from xai_bias.plots.clips import video_frames
    from xai_bias.plots.render import open_sources
    from xai_bias.run import RunConfig, run_study
    from probes import load_probes

    samples = load_probes().get("video_hint")(limit=3, path=str(tmp_path / "clips"))
    config = RunConfig(out=tmp_path / "v.h5", conditions=("complete", "video_frozen", "video_shuffled"),
                       methods=("attention", "shapley"), progress=False,
                       settings=__import__("xai_bias.instruments", fromlist=["MethodSettings"]).MethodSettings.build(
                           attention={"save_maps": True}))
    run_study(tiny("qwen2_5_vl"), samples, config)
    src = open_sources([tmp_path / "v.h5"], n_bootstrap=10)[0]
    assert src.trace.dataset_attrs("attribution/shapley")["groups"] == ["video", "text"]
    grid = np.asarray(src.trace["attention/video_grid"][0])
    assert grid[0].tolist() == [4, 4 * 4, 8]  # 8 frames of 64x64 -> 4 slots of 2x2 merged patches
    fig = video_frames(src)
    assert len(fig.axes) >= 4 * 2 + 1
    fig.savefig(tmp_path / "fig9.png")
    assert math.isfinite((tmp_path / "fig9.png").stat().st_size)
