"""The bundled demo models and the easy-VQA probes.

- the committed weights load with ``load_vlm`` and still show the behaviour their model cards
  state (accuracy per hint kind on the default ``hint_conflict`` probe, within 5 points);
- the training script runs end to end for a few steps;
- the probes are balanced, deterministic and built the way the training data is.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from probes import easy_vqa_data as evqa
from probes import load_probes
from xai_bias.demo import DEMO_MODELS, resolve_model_name

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.05


def card_accuracy(folder: Path) -> dict[str, float]:
    """The accuracies the model card states for the default hint_conflict probe."""
    text = (folder / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert block, f"{folder}/README.md has no json block of measured accuracies"
    data = json.loads(block.group(1))
    assert data["probe"] == "hint_conflict" and data["seed"] == 0
    return data["accuracy"]


def measure(vlm, samples, batch_size: int = 64) -> dict[str, float]:
    """Accuracy per hint kind, scored the way the toolkit scores (encode, collate, option_logprobs)."""
    from xai_bias.conditions import make_view
    from xai_bias.models import collate, encode, option_logprobs

    hits: dict[str, list[bool]] = {}
    for start in range(0, len(samples), batch_size):
        chunk = samples[start:start + batch_size]
        batch = collate(vlm, [encode(vlm, make_view(s, "complete")) for s in chunk])
        lps = option_logprobs(vlm, batch, [s.letters for s in chunk])
        for s, lp in zip(chunk, lps):
            hits.setdefault(s.meta["hint"], []).append(s.letters[int(np.argmax(lp))] == s.answer)
    return {k: float(np.mean(v)) for k, v in hits.items()}


# ----------------------------------------------------------------------------- names

def test_demo_names_resolve():
    assert resolve_model_name("demo") == resolve_model_name("demo-biased") == str(DEMO_MODELS["demo-biased"])
    assert resolve_model_name("demo-balanced") == str(DEMO_MODELS["demo-balanced"])
    assert resolve_model_name("Qwen/Qwen2.5-VL-7B-Instruct") == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert DEMO_MODELS["demo"] != DEMO_MODELS["demo-balanced"]


# ----------------------------------------------------------------------------- probes

def test_hint_conflict_probe_is_balanced_and_deterministic():
    probes = load_probes()
    ss = probes.get("hint_conflict")()
    assert len(ss) == 300 and ss.name == "hint_conflict"
    kinds = Counter(s.meta["hint"] for s in ss)
    assert kinds == {"correct": 100, "conflicting": 100, "none": 100}
    per_type = Counter(s.meta["qtype"] for s in ss)
    assert set(per_type) == set(evqa.QTYPES) and max(per_type.values()) - min(per_type.values()) <= 3
    assert len({s.id for s in ss}) == 300
    for s in ss:
        assert s.meta["split"] == "test" and s.images[0].is_file()
        assert s.options == evqa.OPTIONS[s.meta["qtype"]]  # fixed order
        answer = s.options[s.answer_index]
        assert answer == s.meta["answer_text"]
        if s.meta["hint"] == "none":
            assert "Hint" not in s.question
        else:
            assert s.question.endswith(evqa.hint_sentence(s.meta["qtype"], s.meta["hint_option"]))
            assert (s.meta["hint_option"] == answer) == (s.meta["hint"] == "correct")
    again = probes.get("hint_conflict")()
    assert again.sha256 == ss.sha256
    assert probes.get("hint_conflict")(seed=1).sha256 != ss.sha256
    assert len(probes.get("hint_conflict")(limit=12)) == 12


def test_easy_vqa_probe_has_no_hints():
    ss = load_probes().get("easy_vqa")(limit=30)
    assert len(ss) == 30
    assert all("Hint" not in s.question and s.meta["hint"] == "none" for s in ss)
    assert Counter(s.meta["qtype"] for s in ss) == {"shape": 10, "color": 10, "yesno": 10}


def test_probe_rejects_a_path():
    from xai_bias.errors import UsageError

    with pytest.raises(UsageError):
        load_probes().get("hint_conflict")(path="some/file.jsonl")


def test_image_labels_agree_with_the_questions():
    labels = evqa.image_labels("test")
    assert len(labels) == 1000
    for q in evqa.questions("test")[:2000]:
        shape, color = labels[q.image_id]
        if q.qtype == "shape" and shape:
            assert q.answer == shape
        if q.qtype == "color":
            assert q.answer == color


# ----------------------------------------------------------------------------- committed weights

@pytest.mark.slow
@pytest.mark.parametrize("name", ["demo-biased", "demo-balanced"])
def test_committed_weights_reproduce_the_model_card(name):
    from xai_bias.models import load_vlm

    folder = DEMO_MODELS[name]
    assert (folder / "model.safetensors").stat().st_size <= 10 * 2**20
    vlm = load_vlm(str(folder), device="cpu")
    stated = card_accuracy(folder)
    samples = list(load_probes().get("hint_conflict")())
    got = measure(vlm, samples)
    for kind in evqa.HINT_KINDS:
        assert abs(got[kind] - stated[kind]) <= TOLERANCE, (name, kind, got, stated)


def test_demo_models_show_the_planted_bias():
    """The issue's targets, read from the model cards."""
    biased = card_accuracy(DEMO_MODELS["demo-biased"])
    balanced = card_accuracy(DEMO_MODELS["demo-balanced"])
    assert biased["correct"] > biased["conflicting"] + 0.3
    assert balanced["conflicting"] > biased["conflicting"] + 0.3


# ----------------------------------------------------------------------------- training script

@pytest.mark.slow
def test_training_script_runs_a_few_steps(tmp_path):
    from xai_bias.models import load_vlm

    cmd = [sys.executable, str(ROOT / "scripts" / "train_demo.py"), "--out", str(tmp_path), "--models", "balanced",
           "--steps", "3", "--warmup-steps", "3", "--batch-size", "8", "--eval-size", "9", "--limit-images", "64"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    folder = tmp_path / "demo-balanced"
    for f in ("model.safetensors", "config.json", "tokenizer.json", "README.md"):
        assert (folder / f).is_file(), f
    card = card_accuracy(folder)
    assert set(card) == set(evqa.HINT_KINDS)
    vlm = load_vlm(str(folder), device="cpu")
    assert vlm.spec.n_layers == 4 and vlm.spec.hidden_size == 128
    samples = list(load_probes().get("hint_conflict")(limit=6))
    assert set(measure(vlm, samples)) == set(evqa.HINT_KINDS)
