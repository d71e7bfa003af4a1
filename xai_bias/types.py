"""Core types shared by every part of xai_bias (frozen dataclasses; no loose dicts).

Roles, in this fixed order, label every token of a prompt (see ``ROLES``):
``sink`` (first position), ``template`` (chat template, special tokens, system prompt, image
delimiters), ``image`` (vision placeholder tokens), ``question``, ``options``, ``instruction``,
``generated``, ``video`` and ``audio`` (their placeholder tokens; appended after the roles of
the first traces, so every role keeps its index). A trace stores its role list, so traces of 7
roles stay readable. Modalities group roles (``MODALITIES``).
"""

from __future__ import annotations

import types as _pytypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Mapping

import numpy as np

ROLES: tuple[str, ...] = ("sink", "template", "image", "question", "options", "instruction", "generated",
                          "video", "audio")
ROLE_INDEX: Mapping[str, int] = _pytypes.MappingProxyType({name: i for i, name in enumerate(ROLES)})
N_ROLES = len(ROLES)

#: modality -> its roles. "other" (sink, template) is reported on its own and enters shares only
#: on request. video and audio come after the first three so that every earlier column keeps its
#: index (as the roles do).
MODALITIES: Mapping[str, tuple[str, ...]] = _pytypes.MappingProxyType(
    {
        "image": ("image",),
        "text": ("question", "options", "instruction"),
        "other": ("sink", "template"),
        "video": ("video",),
        "audio": ("audio",),
    }
)

CONDITIONS: tuple[str, ...] = ("complete", "text_white", "text_black", "text_noise", "image_only", "text_only")
MODES: tuple[str, ...] = ("direct", "cot")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _frozen_mapping(meta: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _pytypes.MappingProxyType(dict(meta or {}))


@dataclass(frozen=True)
class ImageRef:
    """An image kept inside a data file (a parquet / Arrow cell), read only when opened, so that
    a sample set never holds its decoded images (1,730 items x up to 7 images) in memory.

    ``origin``: where the image is, for messages and record meta (e.g.
    ``"…/test-00000.parquet row 12 image_1"``); ``name``: the image's own file name when the
    data set records one (``"test_Art_113_1.png"``), else ""; ``opener``: returns a fresh
    binary file object over the encoded bytes (PNG, JPEG, …) at each call.
    """

    origin: str
    name: str = ""
    opener: Callable[[], IO[bytes]] | None = field(default=None, compare=False, hash=False, repr=False)

    def open(self):
        """The image as a lazily decoded ``PIL.Image`` (only the header is parsed until used)."""
        from PIL import Image

        if self.opener is None:
            raise ValueError(f"image {self.origin} has no reader")
        return Image.open(self.opener())

    def read_bytes(self) -> bytes:
        if self.opener is None:
            raise ValueError(f"image {self.origin} has no reader")
        return self.opener().read()

    def __str__(self) -> str:
        return self.origin


def _image(value: Any) -> "Path | ImageRef":
    return value if isinstance(value, ImageRef) else Path(value)


@dataclass(frozen=True)
class MediaRef:
    """A video or audio clip kept inside a data file (a parquet / Arrow cell of a datasets
    ``Audio`` / ``Video`` feature), read only when decoded (``xai_bias.media``).

    ``origin``: where it is, for messages and record meta; ``name``: the clip's own file name when
    the data set records one (its extension tells the decoder the format), else "";
    ``opener``: returns a fresh binary file object over the encoded bytes at each call.
    """

    origin: str
    name: str = ""
    opener: Callable[[], IO[bytes]] | None = field(default=None, compare=False, hash=False, repr=False)

    def open_binary(self) -> IO[bytes]:
        if self.opener is None:
            raise ValueError(f"clip {self.origin} has no reader")
        return self.opener()

    def __str__(self) -> str:
        return self.origin


def _media(value: Any) -> "Path | MediaRef":
    return value if isinstance(value, MediaRef) else Path(value)


@dataclass(frozen=True)
class Sample:
    """One multiple-choice item.

    ``answer`` is a letter (A, B, ...) or None when unknown. ``images`` are shown in the order
    of the question's ``<image N>`` placeholders; ``vision_image`` is a screenshot holding the
    question and options (MMMU-Pro "vision" setting), used by the ``image_only`` condition.
    An image is a file ``Path`` or an ``ImageRef`` into a data file (opened with
    ``xai_bias.images.open_image``). ``videos`` (a video file or a folder of frame images) and
    ``audios`` (wav / flac / mp3 / ogg) are file ``Path``s or ``MediaRef``s into a data file,
    decoded when a condition shows them (``xai_bias.media``); they go before the text.
    """

    id: str
    question: str
    options: tuple[str, ...]
    answer: str | None
    images: tuple[Path | ImageRef, ...] = ()
    vision_image: Path | ImageRef | None = None
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    videos: tuple[Path | MediaRef, ...] = ()
    audios: tuple[Path | MediaRef, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "images", tuple(_image(p) for p in self.images))
        object.__setattr__(self, "videos", tuple(_media(p) for p in self.videos))
        object.__setattr__(self, "audios", tuple(_media(p) for p in self.audios))
        if self.vision_image is not None:
            object.__setattr__(self, "vision_image", _image(self.vision_image))
        object.__setattr__(self, "meta", _frozen_mapping(self.meta))

    @property
    def letters(self) -> tuple[str, ...]:
        return tuple(LETTERS[: len(self.options)])

    @property
    def answer_index(self) -> int | None:
        return None if not self.answer else LETTERS.index(self.answer)


@dataclass(frozen=True)
class TokenRoles:
    """Role of each token of one tokenized prompt.

    role: int8 array ``[T]`` of indices into ``ROLES``.
    """

    role: np.ndarray  # [T] int8

    def __post_init__(self) -> None:
        arr = np.asarray(self.role, dtype=np.int8)
        arr.setflags(write=False)
        object.__setattr__(self, "role", arr)

    def __len__(self) -> int:
        return int(self.role.shape[0])

    def mask(self, *names: str) -> np.ndarray:
        """Boolean ``[T]`` mask of the tokens whose role is one of ``names``."""
        idx = [ROLE_INDEX[n] for n in names]
        return np.isin(self.role, idx)

    def positions(self, *names: str) -> np.ndarray:
        """Token positions ``[k]`` of the given roles."""
        return np.flatnonzero(self.mask(*names))

    def counts(self) -> np.ndarray:
        """Token count per role ``[n_roles]`` (int32)."""
        return np.bincount(self.role.astype(np.int64), minlength=N_ROLES).astype(np.int32)


@dataclass(frozen=True)
class Record:
    """One (sample, condition, mode) run.

    option_logprobs: ``[n_options]`` float32 (log-probs of the option letters, NaN if not scored).
    role_tokens: ``[n_roles]`` int32 token count per role.
    input_ids / token_roles: ``[T]`` the prompt exactly as the model saw it, and each token's role.
    measurements: dataset path in the trace (e.g. ``"attention/mass"``) -> this record's row
    (e.g. ``[L, H, n_roles]``). Instruments add entries; the store writes them.
    """

    sample_id: str
    condition: str
    mode: str
    answer: str
    prediction: str
    correct: bool
    status: str = "ok"
    option_logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    role_tokens: np.ndarray = field(default_factory=lambda: np.zeros(N_ROLES, np.int32))
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    input_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    token_roles: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    response: str = ""
    measurements: Mapping[str, np.ndarray] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", _frozen_mapping(self.meta))
        object.__setattr__(self, "measurements", _frozen_mapping(self.measurements))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.sample_id, self.condition, self.mode)


@dataclass(frozen=True)
class PromptView:
    """What the model is shown for one (sample, condition, mode): built by ``conditions``.

    ``question`` may hold ``<image N>`` placeholders (1-based) marking where ``images[N-1]``
    stands; images without a placeholder go before the text. ``options`` are the option texts
    shown (lettered A, B, ... by the prompt builder; empty for ``image_only``), ``letters`` the
    answer letters scored (always one per option of the sample). ``instruction`` is the last
    text segment ("Answer with the option's letter from the given choices directly.").
    ``style`` names the prompt protocol (``xai_bias.prompt_styles``) whose layout the prompt
    builder follows (e.g. ``mmmu_pro``: ``[image]`` placeholders, images after the text).
    ``videos`` / ``audios``: decoded clips (``xai_bias.media.VideoClip`` / ``AudioClip``), shown
    before the text in this order (videos, then audio).
    """

    question: str
    options: tuple[str, ...]
    letters: tuple[str, ...]
    instruction: str
    images: tuple[Any, ...] = ()  # PIL.Image.Image, in placeholder order
    sample_id: str = ""
    condition: str = "complete"
    mode: str = "direct"
    style: str = "lmms_eval"  # the prompt protocol (xai_bias.prompt_styles): layout + instructions
    videos: tuple[Any, ...] = ()  # xai_bias.media.VideoClip, in order
    audios: tuple[Any, ...] = ()  # xai_bias.media.AudioClip, in order
