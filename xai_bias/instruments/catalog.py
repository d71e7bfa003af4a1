"""The built-in methods' registrations: settings, trace datasets, kind, contributions, labels.

Light to import (no torch, captum or nnsight): the instrument classes are named by
``"module:Class"`` and imported when a run builds them. Each entry is what a plug-in writes
(docs/CONTRACTS.md, "to add a method").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..estimate import methods as contrib
from .base import DatasetSpec, MethodSpec, NoSettings, Settings, register_method, setting

BASELINES = ("mean", "white", "black", "noise")


@dataclass(frozen=True)
class AttentionSettings(Settings):
    save_maps: bool = setting(False, "also store the answer row's head-mean attention on every image token "
                                     "(attention/maps, for overlays)", flag="--save-maps")
    flow: bool = setting(False, "also store the role-to-role attention flow over all query rows "
                                "(attention/flow)", flag="--attention-flow")
    map_width: int = setting(8192, "image tokens kept per attention map row (the rest is dropped with a "
                                   "warning)", minimum=1)
    map_max_images: int = setting(16, "images whose token grid is stored per record (attention/map_grid)",
                                  minimum=1)


@dataclass(frozen=True)
class IGSettings(Settings):
    steps: int = setting(32, "integration steps (Gauss-Legendre) per path", minimum=1)
    baseline: str = setting("mean", "IG baseline: the mean embedding, or the input with the image replaced "
                                    "by a white / black / noise image", choices=BASELINES)
    internal_batch_size: int = setting(8, "integration steps per forward+backward pass (memory vs speed)",
                                       flag="--ig-batch-size", minimum=1)


@dataclass(frozen=True)
class ShapleySettings(Settings):
    groups: str = setting("modalities", "Shapley players: modalities = one group per modality shown (image, "
                                        "video, audio) + text; split = the same with question / options; "
                                        "2 = image / text; 3 = image / question / options (at most 5 groups)",
                          flag="--groups", aliases=("--shapley-groups",), choices=("modalities", "split", "2", "3"))
    baseline: str = setting("black", "what an absent image or video is for Shapley (absent text is the mean "
                                     "embedding, absent audio is silence)", choices=BASELINES)
    value: str = setting("vocab", "explain the letter's log-prob over the vocabulary or among the option "
                                  "letters", choices=("vocab", "choice"))


    def __post_init__(self) -> None:
        if isinstance(self.groups, int) and not isinstance(self.groups, bool):
            object.__setattr__(self, "groups", str(self.groups))  # shapley={"groups": 3} as before
        super().__post_init__()


@dataclass(frozen=True)
class KnockoutSettings(Settings):
    window: int = setting(1, "layers knocked out together, starting at each layer", minimum=1)
    batch_size: int = setting(8, "knockout variants run through the decoder per batch (memory vs speed)",
                              minimum=1)
    modality: str = setting("auto", "whose tokens the answer row's attention is cut from (auto: the first "
                                    "of image, video, audio that the run shows)",
                            choices=("auto", "image", "video", "audio"))


ATTENTION = register_method(MethodSpec(
    name="attention", label="attention mass", short_label="attention", kind="observational",
    instrument="xai_bias.instruments.attention:AttentionMethod", settings=AttentionSettings,
    contributions=contrib.attention, color="#0072B2",
    description="attention of the answer query row on each token role, captured during sdpa",
    datasets=(
        DatasetSpec("attention/mass", "[L, H, n_roles]", "probability",
                    "attention of the answer row on each role per layer and head", role_axis=2, layer_axis=0),
        DatasetSpec("attention/mass_generated", "[L, H, n_roles]", "probability",
                    "mean over the rows of all generated tokens (cot mode)", role_axis=2, layer_axis=0,
                    optional=True),
        DatasetSpec("attention/maps", "[L, width]", "probability",
                    "head-mean attention of the answer row on each image token (NaN-padded)", layer_axis=0,
                    optional=True),
        DatasetSpec("attention/map_grid", "[max_images, 2]", "count",
                    "(rows, cols) of vision tokens per image", optional=True),
        DatasetSpec("attention/maps_video", "[L, width]", "probability",
                    "head-mean attention of the answer row on each video token (NaN-padded)", layer_axis=0,
                    optional=True),
        DatasetSpec("attention/video_grid", "[max_clips, 3]", "count",
                    "(temporal slots, tokens, frames) per video", optional=True),
        DatasetSpec("attention/maps_audio", "[L, width]", "probability",
                    "head-mean attention of the answer row on each audio token (NaN-padded)", layer_axis=0,
                    optional=True),
        DatasetSpec("attention/audio_grid", "[max_clips, 2]", "value",
                    "(tokens, milliseconds) per audio clip", optional=True),
        DatasetSpec("attention/map_tiles", "[max_tiles, 8]", "count",
                    "tiles of each image: (image, view, row0, col0, rows, cols, offset, stride); token (i, j) "
                    "of a tile is map entry offset + i*stride + j; view 0 = whole image, 1 = tiled view; "
                    "-1 rows after the last tile", optional=True),
        DatasetSpec("attention/flow", "[L, n_roles, n_roles]", "probability",
                    "role-to-role attention flow (query role, key role)", role_axis=2, layer_axis=0,
                    optional=True),
    ),
))

IG = register_method(MethodSpec(
    name="ig", label="integrated gradients", short_label="IG", kind="observational",
    instrument="xai_bias.instruments.ig:IntegratedGradientsMethod", settings=IGSettings,
    contributions=contrib.ig, color="#D55E00",
    description="Captum integrated gradients on the merged input embeddings and each layer's residual stream",
    datasets=(
        DatasetSpec("attribution/ig", "[L+1, n_roles]", "share",
                    "|IG| share per role; row 0 = merged input embeddings, row l = residual stream after "
                    "decoder layer l-1", role_axis=1, layer_axis=0, first_layer=-1),
        DatasetSpec("attribution/ig_delta", "[]", "logprob_change",
                    "IG convergence error of row 0: sum(attributions) - (f(x) - f(baseline))", optional=True),
    ),
))

SHAPLEY = register_method(MethodSpec(
    name="shapley", label="Shapley", short_label="Shapley", kind="causal",
    instrument="xai_bias.instruments.shapley:ShapleyMethod", settings=ShapleySettings,
    contributions=contrib.shapley, color="#009E73",
    description="exact Shapley values of the answer log-prob over modality groups",
    datasets=(DatasetSpec("attribution/shapley", "[n_groups]", "logprob_change",
                          "Shapley value of each group (attrs: groups)"),),
))

KNOCKOUT = register_method(MethodSpec(
    name="knockout", label="attention knockout", short_label="knockout", kind="causal",
    instrument="xai_bias.instruments.intervention:KnockoutMethod", settings=KnockoutSettings,
    contributions=contrib.knockout, color="#E69F00",
    description="change of the answer log-prob when the answer row's attention to the image is cut per layer",
    datasets=(DatasetSpec("intervention/knockout", "[L]", "logprob_change",
                          "logp(target | answer row cut from the image keys at layers l..l+window-1) - logp(target)",
                          layer_axis=0),),
))

LOGIT_LENS = register_method(MethodSpec(
    name="logit_lens", label="logit lens", short_label="logit lens", kind="observational",
    instrument="xai_bias.instruments.intervention:LogitLensMethod", settings=NoSettings,
    contributions=contrib.logit_lens, color="#CC79A7", flag_prefix="logit-lens",
    description="option-letter log-probs read from every layer's residual stream",
    datasets=(DatasetSpec("intervention/logit_lens", "[L, n_options]", "logprob",
                          "log-softmax over the vocabulary at the option letters' ids, after each layer",
                          layer_axis=0),),
))

ABLATION = register_method(MethodSpec(
    name="ablation", label="ablation", short_label="ablation", kind="causal", instrument=None,
    contributions=contrib.ablation, color="#000000",
    description="drop of the answer log-prob from 'complete' to the conditions removing a modality "
                "(from the records; no instrument)",
    datasets=(), needs=("records/option_logprobs",),
))
