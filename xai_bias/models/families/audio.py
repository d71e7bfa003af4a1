"""Audio-language families: Qwen2-Audio (and, added below by the families issues, the Qwen2.5-Omni
thinker, Gemma 3n / Gemma 4 audio).

Their audio placeholder tokens (``audio_token``) get the role ``audio``; the audio features are
``input_features`` (log-mel, Whisper's feature extractor, padded to the extractor's window) with
``feature_attention_mask``, declared as the family's ``SiteSpec(audio_keys=...)`` so that an
absent-audio baseline replaces them by the features of silence.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..sites import SiteSpec
from ..templates import QWEN2_AUDIO_TEMPLATE
from .base import FAMILIES, TINY_TEXT, Family

# ------------------------------------------------------------------------------- Qwen2-Audio

#: a tiny Whisper front end: 16 mel bins, a 2 s window (200 frames of 10 ms -> 50 audio tokens)
TINY_WHISPER = {"feature_size": 16, "sampling_rate": 16000, "hop_length": 160, "chunk_length": 2, "n_fft": 400}


def _qwen2_audio_tiny(ids: Mapping[str, int]) -> dict[str, Any]:
    return dict(
        text_config=dict(TINY_TEXT, model_type="qwen2", vocab_size=ids["vocab_size"],
                         eos_token_id=ids["eos_token_id"], pad_token_id=ids["pad_token_id"]),
        audio_config=dict(model_type="qwen2_audio_encoder", d_model=32, encoder_layers=2, encoder_attention_heads=2,
                          encoder_ffn_dim=64, num_mel_bins=TINY_WHISPER["feature_size"],
                          max_source_positions=TINY_WHISPER["chunk_length"] * 50),
        audio_token_index=ids["<|AUDIO|>"],
    )


QWEN2_AUDIO_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
                        "<|audio_eos|>", "<unk>")

FAMILIES.register("qwen2_audio", Family(
    name="qwen2_audio",
    description="Qwen2-Audio (e.g. Qwen/Qwen2-Audio-7B-Instruct)",
    model_types=("qwen2_audio",),
    model_class="Qwen2AudioForConditionalGeneration",
    processor_class="Qwen2AudioProcessor",
    image_processor_class="",
    image_token="",
    special_tokens=QWEN2_AUDIO_SPECIALS,
    named_tokens={"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"},
    chat_template=QWEN2_AUDIO_TEMPLATE,
    tiny_config=_qwen2_audio_tiny,
    modalities=("audio",),
    audio_token="<|AUDIO|>",
    feature_extractor_class="WhisperFeatureExtractor",
    tiny_feature_extractor=TINY_WHISPER,
    sites=SiteSpec(pixel_keys=(), audio_keys=("input_features",)),
))
