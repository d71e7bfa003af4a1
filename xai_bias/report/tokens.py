"""Prompt tokens as text: the trace stores token ids (``/records/input_ids``), the report needs
the tokenizer to show them.

The tokenizer is found offline only, never downloaded: ``--tokenizer`` (a folder, a
``tokenizer.json`` or a hub id already in the local cache), else the trace's ``model_id`` as a
local folder, a bundled demo model, or a hub id in the local cache. Without one the tokens are
shown as ids, with a note saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..errors import UsageError


def load_tokenizer(spec: str) -> Any:
    """A tokenizer from a folder, a tokenizer.json file, a demo model name or a cached hub id
    (offline; raises UsageError naming the cause)."""
    from ..demo import DEMO_MODELS

    try:
        import transformers

        p = Path(spec).expanduser()
        if p.is_file():
            return transformers.PreTrainedTokenizerFast(tokenizer_file=str(p))
        name = spec if p.is_dir() or spec not in DEMO_MODELS else str(DEMO_MODELS[spec])
        return transformers.AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:  # transformers raises OSError / ValueError / EnvironmentError variants
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise UsageError(f"cannot load a tokenizer from {spec!r} offline ({type(exc).__name__}: {first})") from None


def trace_tokenizer(model_id: str, explicit: str | None = None) -> tuple[Any | None, str]:
    """(tokenizer or None, note): ``explicit`` must load; the trace's model id may not."""
    if explicit:
        return load_tokenizer(explicit), ""
    from ..demo import DEMO_MODELS

    candidates = [model_id]
    name = Path(model_id).name
    if name in DEMO_MODELS and not Path(model_id).is_dir():  # a demo model written elsewhere
        candidates.append(name)
    for cand in candidates:
        if not cand:
            continue
        try:
            return load_tokenizer(cand), ""
        except UsageError:
            continue
    return None, (f"prompt tokens are shown as ids: no tokenizer for model {model_id!r} on this machine (not a "
                  "local folder, a bundled demo model or a hub id in the local cache); pass --tokenizer PATH")


def decode_vocab(tokenizer: Any, ids: Iterable[int]) -> dict[int, str]:
    """Text of each token id, decoded one token at a time (special tokens kept)."""
    out = {}
    for i in sorted(set(int(x) for x in ids)):
        try:
            out[i] = tokenizer.decode([i], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        except Exception:  # an id outside the vocabulary
            out[i] = f"<{i}?>"
    return out
