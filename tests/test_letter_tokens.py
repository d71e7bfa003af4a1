"""Answer-letter tokens (``models.letters``) and the chain-of-thought answer row, on real subword
tokenizers (``tests/real_tokenizers.py``).

Real checkpoint vocabularies: Qwen2's BPE (qwen2_vl, qwen2_5_vl, llava_onevision, internvl) and
Llama 3's BPE (idefics3). No own vocabulary offline, tested with one of the same style
(``real_tokenizers.STAND_INS``): smolvlm (Llama 3's BPE for SmolLM2's), llava (Mistral's
SentencePiece for Llama 2's), gemma3 and paligemma (Mistral's SentencePiece without the dummy
prefix for Gemma's).

Proved here, for every registered family: the direct-mode scored id is the token the family's
published template + tokenizer produce for "<prompt><generation prompt>A" (``ĠA`` after
SmolVLM's / Idefics3's "Assistant:", ``▁A`` after LLaVA's "ASSISTANT:", the bare ``A`` after
Qwen's "<|im_start|>assistant\\n"); a generation "… Answer: B" puts the CoT answer row on the
``ĠB`` / ``▁B`` token (the bare-letter search found nothing there and fell back to the
end-of-turn row); the spellings ``(B``, ``B`` after "(" or a newline, markup, a later stray
letter, a letter glued to a word; the runner end to end (option log-probs read at that row in
the emitted spelling, ``meta["answer_token"]``, the ``letter_tokens`` root attribute, an
unparsed response measured by nothing); ``_target`` never falls back to option A.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers import write_samples
from tests.real_tokenizers import FAMILY_VOCAB, STAND_INS, base_tokenizer, real_tiny_vlm, reference_tokenizer
from xai_bias.generation import emitting_row, extend_batch, extend_encoded
from xai_bias.models import FAMILIES, collate, encode, forward, option_logprobs
from xai_bias.models.letters import answer_letter_ids, find_answer_token, letter_tokens
from xai_bias.types import PromptView

ARCHS = FAMILIES.names()
FAST = ("qwen2_5_vl", "idefics3", "llava")  # one per vocabulary style; the others are slow
FAMILY_PARAMS = [a if a in FAST else pytest.param(a, marks=pytest.mark.slow) for a in ARCHS]

# what each published template writes after its generation prompt when the assistant answers
# "A", and the token a real tokenizer of that style makes of it
ANSWER_TEXT = {"qwen2_vl": "A", "qwen2_5_vl": "A", "llava_onevision": "A", "internvl": "A", "gemma3": "A",
               "paligemma": "A", "idefics3": " A", "smolvlm": " A", "llava": " A", "qwen2_audio": "A"}
DIRECT_TOKEN = {"qwen2_vl": "A", "qwen2_5_vl": "A", "llava_onevision": "A", "internvl": "A", "gemma3": "A",
                "paligemma": "A", "idefics3": "ĠA", "smolvlm": "ĠA", "llava": "▁A", "qwen2_audio": "A"}
# issue 15b families: LLaVA-NeXT (Mistral) answers after " [/INST]" with a space; Gemma 4 after
# its empty thought channel "<|channel>thought\n<channel|>" without one; Aya Vision after <|CHATBOT_TOKEN|>;
# DeepSeek-VL and Janus after "<|Assistant|>:" with a space
ANSWER_TEXT.update({"llava_next": " A", "gemma4": "A", "aya_vision": "A", "deepseek_vl": " A", "janus": " A",
                    "ovis2": "A", "deepseek_vl_hybrid": " A"})
DIRECT_TOKEN.update({"llava_next": "▁A", "gemma4": "A", "aya_vision": "A", "deepseek_vl": "ĠA", "janus": "ĠA",
                     "ovis2": "A", "deepseek_vl_hybrid": "ĠA"})
SPACED_B = {"qwen2": "ĠB", "llama3": "ĠB", "sentencepiece": "▁B", "sentencepiece_no_prefix": "▁B"}


@functools.lru_cache(maxsize=None)
def vlm_of(arch: str):
    return real_tiny_vlm(arch)


def view(mode: str = "direct", arch: str | None = None) -> PromptView:
    from tests.helpers import family_view

    if arch is not None:
        return family_view(view(mode), arch)
    img = Image.new("RGB", (56, 56), (30, 90, 200))
    return PromptView("<image 1> What is shown?", ("a red circle", "a blue square", "a green triangle", "nothing"),
                      tuple("ABCD"), "Answer with the option's letter from the given choices directly.", (img,),
                      "s0", "complete", mode)


def test_every_family_has_a_real_vocabulary():
    assert set(FAMILY_VOCAB) == set(ARCHS)
    assert set(STAND_INS) <= set(ARCHS)


def test_real_vocabularies_have_the_published_ids():
    """Golden ids of the published tokenizers (Qwen2: "Hello world" = [9707, 1879], " A" = 362;
    Llama 3: [9906, 1917], " B" = 426; Mistral 7B: [22557, 1526], "▁A" = 330)."""
    q, l3, sp = base_tokenizer("qwen2"), base_tokenizer("llama3"), base_tokenizer("sentencepiece")
    assert q.encode("Hello world", add_special_tokens=False) == [9707, 1879]
    assert q.convert_tokens_to_ids(["A", "ĠA", "ĠB", "<|im_end|>", "<|image_pad|>"]) == [32, 362, 425, 151645, 151655]
    assert l3.encode("Hello world", add_special_tokens=False) == [9906, 1917]
    assert l3.convert_tokens_to_ids(["A", "ĠA", "ĠB", "<|begin_of_text|>"]) == [32, 362, 426, 128000]
    assert sp.encode("Hello world", add_special_tokens=False) == [22557, 1526]
    assert sp.convert_tokens_to_ids(["▁A", "A", "<s>"]) == [330, 28741, 1]
    assert len(q) == 151657 and len(l3) == 128256 and len(sp) == 32000


PARITY_TEXT = ("Hello world! The answer is (B).\nAnswer: B\n\n  x=12345, naïve café — 你好 'll\n"
               "**Answer:** C\tA) first\nB) second")


@pytest.mark.parametrize("vocab", ["sentencepiece"] + [pytest.param(v, marks=pytest.mark.slow)
                                                       for v in ("qwen2", "llama3", "qwen3_5", "llama4")])
def test_converted_vocabularies_match_their_reference_tokenizer(vocab):
    """The fast tokenizers equal the packages' own tiktoken / sentencepiece encoders."""
    ref = reference_tokenizer(vocab)
    want = ref.encode(PARITY_TEXT, bos=False, eos=False) if vocab.startswith("llama") else ref.encode(PARITY_TEXT)
    assert base_tokenizer(vocab).encode(PARITY_TEXT, add_special_tokens=False) == list(want)


def test_tiny_model_uses_the_real_vocabulary():
    vlm = vlm_of("qwen2_5_vl")
    assert vlm.spec.vocab_size == len(vlm.tokenizer) == 151657
    assert vlm.model.get_input_embeddings().weight.shape == (151657, vlm.spec.hidden_size)


@pytest.mark.parametrize("arch", FAMILY_PARAMS)
def test_direct_letter_is_the_templates_answer_token(arch):
    vlm = vlm_of(arch)
    tok = vlm.tokenizer
    enc = encode(vlm, view(arch=arch))
    prompt = tok(enc.text, add_special_tokens=False)["input_ids"]
    expected = []
    for letter in "ABCD":
        full = tok(enc.text + ANSWER_TEXT[arch].replace("A", letter), add_special_tokens=False)["input_ids"]
        assert full[: len(prompt)] == prompt
        expected.append(full[len(prompt)])
    scored = vlm.letter_token_ids("ABCD")
    assert scored == expected
    assert tok.convert_ids_to_tokens(scored[0]) == DIRECT_TOKEN[arch]
    if DIRECT_TOKEN[arch] == "ĠA":  # the defect: the bare letter is another token
        assert tok.encode("A", add_special_tokens=False)[0] != scored[0]
    # direct scoring reads exactly those ids from the last prompt row
    batch = collate(vlm, [enc])
    row = forward(vlm, batch, last_only=True)[0, -1]
    want = torch.log_softmax(row.float(), -1)[scored].numpy()
    np.testing.assert_allclose(option_logprobs(vlm, batch, [tuple("ABCD")])[0], want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("arch", FAMILY_PARAMS)
def test_cot_answer_row_is_the_spaced_letter(arch):
    vlm = vlm_of(arch)
    tok = vlm.tokenizer
    enc = encode(vlm, view("cot", arch=arch))
    gen = np.array(tok("The picture shows a blue square.\nAnswer: B", add_special_tokens=False)["input_ids"])
    answer = find_answer_token(vlm, gen, "B", "ABCD")
    assert answer.offset == len(gen) - 1
    assert answer.token == SPACED_B[FAMILY_VOCAB[arch]]
    assert tok.convert_ids_to_tokens(list(answer.letter_ids)) == [answer.token.replace("B", x) for x in "ABCD"]
    full = extend_batch(vlm, [enc], [gen])
    row = emitting_row(full, 0, len(enc), gen, answer.offset)
    assert int(full.inputs["input_ids"][0, row + 1]) == answer.token_id
    # before: the bare letter's id never occurs, so the row fell back to the last one
    bare = tok.encode("B", add_special_tokens=False)[-1]
    if bare != answer.token_id:
        assert bare not in gen.tolist()
    assert emitting_row(full, 0, len(enc), gen, None) == row + 1


@pytest.mark.parametrize("vocab_arch", ["qwen2_5_vl", "llava", "gemma3"])
@pytest.mark.parametrize("text, token, at", [
    ("Answer: (B)", "B", "last"),                 # " (" then a bare B
    ("**Answer:** B", "▁B|ĠB", "last"),           # markup before the letter
    ("Answer:\nB", "B", "last"),                  # after a newline: bare
    ("Answer: B. Because B is", "▁B|ĠB", "statement"),  # the statement, not the later stray B
    ("Answer: B\nBird", "▁B|ĠB", "statement"),    # "Bird" never counts
])
def test_find_answer_token_spellings(vocab_arch, text, token, at):
    vlm = vlm_of(vocab_arch)
    tok = vlm.tokenizer
    gen = tok(text, add_special_tokens=False)["input_ids"]
    answer = find_answer_token(vlm, gen, "B", "ABCD")
    pieces = tok.convert_ids_to_tokens(gen)
    assert answer.token in token.split("|")
    assert pieces[answer.offset] == answer.token
    if at == "last":
        assert answer.offset == max(i for i, p in enumerate(pieces) if p == answer.token)
    else:
        assert answer.offset == min(i for i, p in enumerate(pieces) if p == answer.token)


def test_find_answer_token_fused_and_glued_and_absent():
    vlm = vlm_of("qwen2_5_vl")
    tok = vlm.tokenizer
    # Qwen2 fuses "(B" into one token; the other options are respelled "(A", "(C", "(D"
    gen = tok("(B)", add_special_tokens=False)["input_ids"]
    answer = find_answer_token(vlm, gen, "B", "ABCD")
    assert answer.offset == 0 and answer.token == "(B"
    assert tok.convert_ids_to_tokens(list(answer.letter_ids)) == ["(A", "(B", "(C", "(D"]
    # a "B" glued to a word ("A" + "B" = "AB") is not the answer; nothing else stands for B
    glued = tok.convert_tokens_to_ids(["Answer", ":", "ĠA", "B"])
    absent = find_answer_token(vlm, glued, "B", "ABCD")
    assert absent.offset is None
    # not emitted: the after-"Answer:" spelling, for the last generated row
    assert absent.token == "ĠB" and list(absent.letter_ids) == vlm.letter_token_ids("ABCD", "after_answer_prefix")
    with pytest.raises(ValueError, match="not among the options"):
        find_answer_token(vlm, glued, "E", "ABCD")


def test_letter_tables_are_cached_and_checked():
    vlm = vlm_of("idefics3")
    a = letter_tokens(vlm, "ABCD")
    assert letter_tokens(vlm, "ABCD") is a and a.answer_text == " A"
    assert answer_letter_ids(vlm, "AB", "after_answer_prefix") == [362, 426]
    with pytest.raises(ValueError, match="unknown letter context"):
        letter_tokens(vlm, "AB", "after_question")


@pytest.mark.parametrize("arch", ["qwen2_5_vl", pytest.param("smolvlm", marks=pytest.mark.slow)])
def test_runner_cot_reads_the_answer_row_and_skips_unparsed(arch, tmp_path, monkeypatch):
    """Generation forced to a parsed and an unparsed response (one batch, left padded)."""
    import xai_bias.generation as generation
    from xai_bias.run import RunConfig, run_study
    from xai_bias.samples import load_samples
    from xai_bias.store import open_trace

    vlm = vlm_of(arch)
    tok = vlm.tokenizer
    responses = ["The picture shows a blue square.\nAnswer: B", "I cannot tell."]

    def scripted(vlm_, batch, max_new_tokens):  # noqa: ARG001
        ids = [np.array(tok(r, add_special_tokens=False)["input_ids"], np.int64) for r in responses[: len(batch)]]
        return responses[: len(batch)], ids

    monkeypatch.setattr(generation, "generate", scripted)
    samples = load_samples(write_samples(tmp_path, n=2))
    out = tmp_path / "cot.h5"
    run_study(vlm, samples, RunConfig(out=out, mode="cot", methods=("attention", "logit_lens"), batch_size=2,
                                      progress=False))
    with open_trace(out) as t:
        attrs = t.attrs
        parsed, unparsed = t.record(0), t.record(1)
    assert attrs["letter_tokens"]["direct"]["tokens"] == [DIRECT_TOKEN[arch].replace("A", x) for x in "ABCD"]
    assert attrs["letter_tokens"]["after_answer_prefix"]["tokens"] == ["ĠA", "ĠB", "ĠC", "ĠD"]

    assert parsed.prediction == "B"
    meta = parsed.meta["answer_token"]
    assert meta["token"] == "ĠB" and meta["emitted"] and meta["measured"]
    pos = meta["position"]
    assert int(parsed.input_ids[pos]) == tok.convert_tokens_to_ids("ĠB")
    # option log-probs: the ĠA..ĠD ids at the row emitting ĠB, recomputed alone (no padding)
    prompt_len = pos - meta["offset"]
    enc = encode_like(vlm, samples.samples[0])
    assert len(enc) == prompt_len and enc.input_ids.tolist() == parsed.input_ids[:prompt_len].tolist()
    logits = forward(vlm, collate(vlm, [extend_encoded(vlm, enc, parsed.input_ids[prompt_len:])]))
    want = torch.log_softmax(logits[0, pos - 1].float(), -1)[tok.convert_tokens_to_ids(["ĠA", "ĠB", "ĠC", "ĠD"])]
    np.testing.assert_allclose(parsed.option_logprobs, want.numpy(), rtol=0, atol=1e-4)
    assert {"attention/mass", "intervention/logit_lens"} <= set(parsed.measurements)

    # unparsed: scored wrong, no answer row, nothing measured, no option log-probs
    assert unparsed.prediction == "" and not unparsed.correct
    assert unparsed.meta["answer_token"]["measured"] is False
    assert set(unparsed.measurements) == {"generation/answer_row"}
    assert int(unparsed.measurements["generation/answer_row"]) == -1
    assert np.isnan(unparsed.option_logprobs).all()


def encode_like(vlm, sample):
    """The cot prompt of ``sample`` (condition complete), as the runner encodes it."""
    from xai_bias.conditions import make_view

    return encode(vlm, make_view(sample, "complete", "cot"))


def test_target_never_explains_option_a_for_a_missing_letter(tmp_path):
    from xai_bias.instruments import MethodSettings
    from xai_bias.run import RunConfig, Runner, WorkItem
    from xai_bias.samples import load_samples

    vlm = vlm_of("qwen2_5_vl")
    sample = load_samples(write_samples(tmp_path, n=1)).samples[0]
    ids = vlm.letter_token_ids(sample.letters)
    item, v = WorkItem(sample, "complete", "direct"), view()
    runner = Runner(vlm, RunConfig(out=tmp_path / "x.h5"))
    with pytest.raises(ValueError, match="no option letter to explain"):
        runner._target(item, v, "", 7, ids)
    assert runner._target(item, v, "C", 7, ids).token_id == ids[2]
    gold = Runner(vlm, RunConfig(out=tmp_path / "x.h5", settings=MethodSettings(target="gold")))
    assert gold._target(item, v, "C", 7, ids).token_id == ids["ABCD".index(sample.answer)]
    unknown = WorkItem(type(sample)(sample.id, sample.question, sample.options, None, sample.images), "complete", "direct")
    with pytest.raises(ValueError, match="no option letter to explain"):
        gold._target(unknown, v, "", 7, ids)
