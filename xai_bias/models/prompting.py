"""Multiple-choice prompts in MMMU-Pro style, in the model's chat template, with token roles.

Layout of the user turn (the ``lmms_eval`` prompt style): images where their ``<image N>``
placeholders stand in the question or the options (else before the text), the question, the
options lettered "A. ...", one per line, then the instruction; other styles
(``xai_bias.prompt_styles``, e.g. ``mmmu_pro``: images after the text) lay it out their way.

Roles come from character spans: the chat template is rendered with the real texts (the prompt,
exactly as ``apply_chat_template`` gives it) and once with a unique marker per text segment (the
segments' order and the template text between them); each segment is located in the real
rendering (``render``), the processor expands the image placeholders (we shift the spans by its
replacement offsets), and the tokenizer's offset mapping assigns each token the role of the
segment it overlaps most. Image tokens are found by id; everything else is ``template``;
position 0 is ``sink``.

Video and audio clips (``view.videos`` / ``view.audios``) go before the rest of the user turn,
videos first, as the model cards prompt them. Their placeholder tokens get the roles ``video``
/ ``audio``: a token with the family's video / audio token id, or a placeholder id (an image
token, SmolVLM's frames) inside the text the processor inserted for a video / an audio clip (its
replacement offsets). Audio is resampled to the feature extractor's rate; a clip longer than the
extractor's window (Whisper: 30 s) is an error, not cut.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from ..types import LETTERS, ROLE_INDEX, PromptView, TokenRoles
from .layout import image_tiles
from .spec import VLM

_PLACEHOLDER = re.compile(r"<image\s*(\d+)>")
_MARK = re.compile("\ue000(\\d+)\ue001")
_DROP_KEYS = ("offset_mapping", "text_replacement_offsets", "labels")


@dataclass(frozen=True)
class MediaLayout:
    """Where the video and audio of one prompt are in time (for per-frame / over-time maps and
    silence baselines). video_slots: temporal slots per video (its tokens split evenly among
    them, in order; Qwen pairs 2 frames per slot); video_frames / video_seconds: frames shown
    and the clip's duration; audio_seconds / audio_samples: each clip's duration and its number
    of samples at the feature extractor's rate."""

    video_slots: tuple[int, ...] = ()
    video_frames: tuple[int, ...] = ()
    video_seconds: tuple[float, ...] = ()
    audio_seconds: tuple[float, ...] = ()
    audio_samples: tuple[int, ...] = ()


@dataclass(frozen=True)
class Encoded:
    """One tokenized prompt.

    inputs: processor outputs, tensors with batch dim 1 (input_ids ``[1, T]``, pixel values...).
    roles: ``[T]`` role per token. image_grids: (rows, cols) of vision tokens per image.
    text: the prompt string given to the processor (before placeholder expansion).
    """

    inputs: Mapping[str, torch.Tensor]
    roles: TokenRoles
    image_grids: tuple[tuple[int, int], ...]
    text: str = ""
    n_images: int = 0
    media: MediaLayout = MediaLayout()
    image_tiles: tuple = ()  # models.layout.Tile per tile of every image (where each token sits)

    @property
    def input_ids(self) -> torch.Tensor:
        """``[T]``"""
        return self.inputs["input_ids"][0]

    def __len__(self) -> int:
        return int(self.inputs["input_ids"].shape[1])


def format_options(options: tuple[str, ...]) -> str:
    """ "A. first\\nB. second" (MMMU-Pro style)."""
    return "\n".join(f"{LETTERS[i]}. {opt}" for i, opt in enumerate(options))


def segments(view: PromptView, images_first: bool = False, style: str | None = None) -> list[tuple[str, Any]]:
    """The user turn as ("image", index) and (role, text) items, in order, laid out as the prompt
    style says (``xai_bias.prompt_styles``; ``style`` defaults to ``view.style``).

    Separators between segments carry the role "template".
    """
    from ..prompt_styles import get_style

    protocol = get_style(style or view.style)
    clips = [("video", k) for k in range(len(view.videos))] + [("audio", k) for k in range(len(view.audios))]
    if protocol.layout == "after_text":
        return clips + _after_text(view, images_first, protocol.placeholder)
    return clips + _inline(view, images_first)


def _inline(view: PromptView, images_first: bool) -> list[tuple[str, Any]]:
    """Images at the first placeholder that mentions them (question, then options); images no
    placeholder mentions go first. With ``images_first`` every image goes first: the question's
    placeholders are dropped, the options keep theirs as text ("A. <image 2>")."""
    n = len(view.images)
    question = view.question.strip()
    pieces: list[tuple[str, Any]] = []
    used: set[int] = set()
    pos = 0
    for m in _PLACEHOLDER.finditer(question):
        k = int(m.group(1)) - 1
        if not 0 <= k < n or (k in used and not images_first):
            continue  # a placeholder without an image, or a later mention, stays as question text
        pieces.append(("question", question[pos:m.start()]))
        if not images_first:
            pieces.append(("image", k))
        used.add(k)
        pos = m.end()
    pieces.append(("question", question[pos:]))
    if images_first:
        joined = "".join(t for r, t in pieces if r == "question")
        pieces = [("question", re.sub(r"(?<=\S)[ \t]{2,}(?=\S)", " ", joined))]
    # trim question pieces at the ends, drop empty ones
    text_idx = [i for i, (r, _) in enumerate(pieces) if r == "question"]
    if text_idx:
        first, last = text_idx[0], text_idx[-1]
        pieces[first] = ("question", pieces[first][1].lstrip())
        pieces[last] = ("question", pieces[last][1].rstrip())
    pieces = [p for p in pieces if not (p[0] == "question" and p[1] == "")]
    tail: list[list[tuple[str, Any]]] = []
    if view.options:
        text = format_options(tuple(view.options))
        tail.append([("options", text)] if images_first else _split_options(text, n, used))
    leading = [("image", k) for k in range(n) if images_first or k not in used]
    items = leading + pieces
    if view.instruction.strip():
        tail.append([("instruction", view.instruction.strip())])
    for seg in tail:
        if any(r != "image" for r, _ in items):
            items.append(("template", "\n"))
        items.extend(seg)
    return items


def _split_options(text: str, n: int, used: set[int]) -> list[tuple[str, Any]]:
    """The lettered options with each image not shown yet at its placeholder ("A. ", image 2, ...)."""
    out: list[tuple[str, Any]] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        k = int(m.group(1)) - 1
        if not 0 <= k < n or k in used:
            continue
        out += [("options", text[pos:m.start()]), ("image", k)]
        used.add(k)
        pos = m.end()
    out.append(("options", text[pos:]))
    return [p for p in out if p != ("options", "")]


def _after_text(view: PromptView, images_first: bool, placeholder: str) -> list[tuple[str, Any]]:
    """MMMU-Pro's official layout: every ``<image N>`` becomes ``placeholder``; question, options
    and instruction on their own lines; then the images in mention order (repeats kept), then
    the images no placeholder mentions (before the text when ``images_first``)."""
    n = len(view.images)
    question = view.question.strip()
    options = format_options(tuple(view.options)) if view.options else ""
    order = [k for m in _PLACEHOLDER.finditer(f"{question}\n{options}") if 0 <= (k := int(m.group(1)) - 1) < n]
    order += [k for k in range(n) if k not in order]
    texts = [(role, text) for role, text in (("question", _PLACEHOLDER.sub(placeholder, question)),
                                               ("options", _PLACEHOLDER.sub(placeholder, options)),
                                               ("instruction", view.instruction.strip())) if text]
    items: list[tuple[str, Any]] = []
    for i, seg in enumerate(texts):
        items += ([("template", "\n")] if i else []) + [seg]
    images = [("image", k) for k in order]
    return images + items if images_first else items + images


def _content(items: list[tuple[str, Any]], marked: bool) -> tuple[list[dict], list[tuple[str, str]]]:
    """Chat content list and the text segments [(role, text)] in order; ``marked``: each segment
    written as a unique marker instead of its text."""
    content: list[dict] = []
    segs: list[tuple[str, str]] = []
    run = ""
    for role, val in items:
        if role in ("image", "video", "audio"):
            if run:
                content.append({"type": "text", "text": run})
                run = ""
            # video / audio items also carry their key: some published templates test `'audio' in content`
            content.append({"type": role} if role == "image" else {"type": role, role: ""})
        elif role == "template":
            run += val
        else:
            run += f"\ue000{len(segs)}\ue001" if marked else val
            segs.append((role, val))
    if run:
        content.append({"type": "text", "text": run})
    return content, segs


def _apply_template(vlm: VLM, content: list[dict]) -> str:
    if vlm.family.render:
        return vlm.family.render(vlm.processor, content)
    return vlm.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                             add_generation_prompt=True)


def render(vlm: VLM, items: list[tuple[str, Any]]) -> tuple[str, list[tuple[str, int, int]], int]:
    """Prompt string with the real texts, spans [(role, start, end)], number of images shown.

    The prompt is the chat template rendered with the real texts, exactly what
    ``apply_chat_template`` gives (a template may change a text: Gemma 3 / 4 ``| trim`` every
    text item). A second rendering with one marker per segment gives the segments' order and the
    template text between them; each segment is then found in the real rendering after the
    previous one (its text without the whitespace the template may have dropped, widened to the
    whitespace it kept), and the template text skipped on the way must be the marked rendering's.
    """
    content, segs = _content(items, marked=False)
    n_images = sum(1 for c in content if c["type"] == "image")
    prompt = _apply_template(vlm, content)
    marked = _apply_template(vlm, _content(items, marked=True)[0])
    pieces = _MARK.split(marked)  # template, index, template, index, ..., template
    between, order = pieces[0::2], [int(i) for i in pieces[1::2]]
    if order != list(range(len(segs))):
        raise RuntimeError(f"chat template of {vlm.model_id} dropped or reordered text segments "
                           f"(rendered {order}, expected {list(range(len(segs)))})")
    spans, cursor = [], 0
    for i, (role, text) in enumerate(segs):
        core = text.strip()
        start = prompt.find(core, cursor) if core else cursor
        while start >= 0 and prompt[cursor:start].split() != between[i].split():
            start = prompt.find(core, start + 1)  # an earlier occurrence inside template text
        if start < 0:
            raise RuntimeError(f"cannot locate the {role} text {core[:40]!r} in the chat template rendering of "
                               f"{vlm.model_id} (the template changes it beyond trimming whitespace)")
        end = start + len(core)
        lead = text[: len(text) - len(text.lstrip())] if core else ""
        trail = text[len(text.rstrip()):] if core else ""
        if lead and prompt[start - len(lead):start] == lead and start - len(lead) >= cursor:
            start -= len(lead)
        if trail and prompt[end:end + len(trail)] == trail:
            end += len(trail)
        spans.append((role, start, end))
        cursor = end
    if prompt[cursor:].split() != between[-1].split():
        raise RuntimeError(f"the chat template rendering of {vlm.model_id} does not end as its marked rendering")
    return prompt, spans, n_images


def _shift(spans, replacements) -> list[tuple[str, int, int]]:
    """Move char spans from the unexpanded prompt to the processor's expanded text."""
    deltas = sorted((r["span"][1], (r["new_span"][1] - r["new_span"][0]) - (r["span"][1] - r["span"][0]))
                    for r in replacements)

    def move(p: int) -> int:
        return p + sum(d for end, d in deltas if end <= p)

    return [(role, move(a), move(b)) for role, a, b in spans]


def image_grids(inputs, replacements, vlm: VLM) -> tuple[tuple[int, int], ...]:
    """(rows, cols) of vision tokens per image."""
    thw = inputs.get("image_grid_thw")
    if thw is not None:
        merge = getattr(vlm.processor.image_processor, "merge_size", 1)
        return tuple((int(h) // merge, int(w) // merge) for _, h, w in thw.tolist())
    grids = []
    tok = vlm.family.image_token
    for r in replacements:
        if r["type"] != "image":
            continue
        n = r["replacement"].count(tok)
        s = math.isqrt(n)
        grids.append((s, s) if s * s == n else (1, n))
    return tuple(grids)


def _rgb(image):
    """PIL images in RGB (grayscale / RGBA / palette images would break some processors)."""
    return image.convert("RGB") if getattr(image, "mode", "RGB") != "RGB" else image


def _check_modalities(vlm: VLM, view: PromptView) -> None:
    for kind, shown in (("image", view.images), ("video", view.videos), ("audio", view.audios)):
        if shown and not vlm.family.takes(kind):
            raise ValueError(f"{vlm.model_id} ({vlm.family.name}) takes no {kind} input, but the prompt shows "
                             f"{len(shown)} {kind}(s); choose conditions without {kind}")


def _audio_inputs(vlm: VLM, clips) -> tuple[list[np.ndarray], tuple[float, ...]]:
    """The clips at the feature extractor's rate; ValueError for one longer than its window."""
    fe = getattr(vlm.processor, "feature_extractor", None)
    rate = int(getattr(fe, "sampling_rate", 16000))
    window = getattr(fe, "n_samples", None)
    out = []
    for k, clip in enumerate(clips):
        samples = clip.at_rate(rate).samples
        if window and samples.shape[0] > window:
            raise ValueError(f"audio {k + 1} is {samples.shape[0] / rate:.2f} s long, more than the "
                             f"{window / rate:g} s the model's feature extractor sees (it would be cut)")
        out.append(samples)
    return out, tuple(float(c.duration) for c in clips)


def _video_inputs(clips) -> tuple[list[list], dict[str, Any]]:
    from transformers.video_utils import VideoMetadata

    videos = [c.pil_frames() for c in clips]
    meta = [VideoMetadata(total_num_frames=len(c), fps=float(c.fps), duration=float(c.duration),
                          frames_indices=list(range(len(c))), video_backend="xai_bias.media") for c in clips]
    return videos, ({"video_metadata": meta} if clips else {})


def _clip_roles(ids, offsets, replacements, vlm: VLM) -> dict[int, str]:
    """Position -> "video" / "audio" for the clips' placeholder tokens (module docstring)."""
    sites = vlm.sites
    own = {"video": set(sites.video_token_ids), "audio": set(sites.audio_token_ids)}
    placeholders = set(sites.image_token_ids) | own["video"] | own["audio"]
    spans = [(r["type"], *r["new_span"]) for r in replacements if r["type"] in own]
    out: dict[int, str] = {}
    for i, (tid, (a, b)) in enumerate(zip(ids, offsets)):
        for kind in ("video", "audio"):
            if tid in own[kind]:
                out[i] = kind
        if i in out or tid not in placeholders:
            continue
        for kind, s, e in spans:
            if s <= a and b <= e and b > a:
                out[i] = kind
                break
    return out


def encode(vlm: VLM, view: PromptView) -> Encoded:
    """Tokenize ``view`` in the model's chat template; inputs with batch dim 1 and roles."""
    _check_modalities(vlm, view)
    items = segments(view, images_first=vlm.family.images_first)
    text, spans, n_images = render(vlm, items)
    images = [_rgb(view.images[k]) for r, k in items if r == "image"]
    audio, audio_seconds = _audio_inputs(vlm, [view.audios[k] for r, k in items if r == "audio"])
    videos, video_kwargs = _video_inputs([view.videos[k] for r, k in items if r == "video"])
    bos = vlm.tokenizer.bos_token
    add_special = not (bos and bos in text)
    media_kwargs = dict(video_kwargs)
    if videos:
        media_kwargs["videos"] = videos
    if audio:
        media_kwargs["audio"] = audio
        media_kwargs["sampling_rate"] = int(getattr(vlm.processor.feature_extractor, "sampling_rate", 16000))
    out = vlm.processor(
        text=[text],
        images=images or None,
        return_tensors="pt",
        return_offsets_mapping=True,
        return_text_replacement_offsets=True,
        add_special_tokens=add_special,
        **media_kwargs,
    )
    replacements = out.get("text_replacement_offsets")
    # an empty list may come back as an empty tensor (PaliGemma re-wraps its outputs)
    replacements = replacements[0] if isinstance(replacements, list) and replacements else []
    spans = _shift(spans, replacements)
    ids = out["input_ids"][0].tolist()
    offsets = out["offset_mapping"][0].tolist()
    image_ids = set(vlm.sites.image_token_ids)
    clip_roles = _clip_roles(ids, offsets, replacements, vlm) if (videos or audio) else {}
    role = np.full(len(ids), ROLE_INDEX["template"], dtype=np.int8)
    for i, (tid, (a, b)) in enumerate(zip(ids, offsets)):
        if i in clip_roles:
            role[i] = ROLE_INDEX[clip_roles[i]]
        elif tid in image_ids:
            role[i] = ROLE_INDEX["image"]
        elif b > a:
            # the segment the token overlaps most: a token may carry a leading space or a
            # trailing newline of the template (SentencePiece "▁word", BPE "?\n")
            best, name = 0, None
            for seg, s, e in spans:
                overlap = min(b, e) - max(a, s)
                if overlap > best:
                    best, name = overlap, seg
            if name is not None:
                role[i] = ROLE_INDEX[name]
    role[0] = ROLE_INDEX["sink"]
    inputs = {k: v for k, v in out.items() if k not in _DROP_KEYS and isinstance(v, torch.Tensor)}
    clips = [view.videos[k] for r, k in items if r == "video"]
    media = MediaLayout(video_slots=_video_slots(inputs, clips), video_frames=tuple(len(c) for c in clips),
                        video_seconds=tuple(float(c.duration) for c in clips), audio_seconds=audio_seconds,
                        audio_samples=tuple(int(a.shape[0]) for a in audio))
    grids = image_grids(inputs, replacements, vlm)
    image_reps = [r["replacement"] for r in replacements if r["type"] == "image"]
    counts = [sum(rep.count(t) for t in vlm.family.image_tokens) for rep in image_reps]
    tiles = image_tiles(vlm, counts if len(counts) == len(grids) else [r * c for r, c in grids], grids,
                        image_reps if len(image_reps) == len(grids) else [""] * len(grids),
                        [(im.height, im.width) for im in images], inputs)
    return Encoded(inputs=inputs, roles=TokenRoles(role), image_grids=grids, text=text, n_images=len(images),
                   image_tiles=tiles, media=media)


def _video_slots(inputs, clips) -> tuple[int, ...]:
    """Temporal slots per video: ``video_grid_thw``'s t (Qwen), else one per frame."""
    thw = inputs.get("video_grid_thw")
    if thw is not None:
        return tuple(int(t) for t, _, _ in thw.tolist())
    return tuple(len(c) for c in clips)
