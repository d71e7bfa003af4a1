"""``load_vlm``: a local folder or a hub id (same code path) -> ``VLM``."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers

from ..errors import UsageError
from .devices import resolve_device, resolve_dtype
from .families import Family, family_for_model_type
from .processors import load_processor
from .spec import VLM, make_spec, placeholder_id

_FILES = ["*.json", "*.jinja", "*.safetensors", "*.model", "*.txt", "*.py"]


def local_folder(name_or_path: str | Path, trust_remote_code: bool = False) -> Path:
    """The checkpoint folder: ``name_or_path`` itself, or a hub snapshot (network needed)."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        _check_safetensors(p)
        return p
    if p.exists() or str(name_or_path).startswith((".", "/", "~")):
        raise UsageError(f"model path {name_or_path!r} is not a checkpoint folder")
    from huggingface_hub import snapshot_download

    patterns = _FILES if trust_remote_code else [f for f in _FILES if f != "*.py"]
    try:
        return Path(snapshot_download(str(name_or_path), allow_patterns=patterns))
    except Exception as exc:  # offline, unknown repo, gated ...
        raise UsageError(f"cannot fetch model {name_or_path!r} from the hub: {exc}") from exc


def _check_safetensors(folder: Path) -> None:
    """A folder whose weights are only pickles (pytorch_model.bin, *.pt) is refused, saying why."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(f.name for pattern in ("*.bin", "*.pt", "*.pth", "*.ckpt") for f in folder.glob(pattern))
    if pickles:
        raise UsageError(
            f"{folder} holds its weights only as {', '.join(pickles)}: xai_bias loads safetensors only, "
            "because a .bin/.pt file is a Python pickle that can run arbitrary code when it is loaded. "
            "Convert it once where you trust it (transformers: model.save_pretrained(folder, "
            "safe_serialization=True)) or use a checkpoint that ships *.safetensors")


def read_family(folder: Path) -> Family:
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise UsageError(f"{folder} has no config.json")
    model_type = json.loads(cfg_file.read_text(encoding="utf-8")).get("model_type", "")
    return family_for_model_type(model_type)


def load_vlm(name_or_path: str | Path, device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
             trust_remote_code: bool = False, device_map: str | dict | None = None) -> VLM:
    """Load a supported VLM (eval mode, sdpa attention, safetensors weights only).

    ``device_map`` (e.g. "auto") spreads a large model over the visible GPUs via accelerate;
    ``vlm.device`` is then where the inputs go (the embeddings' device).
    """
    folder = local_folder(name_or_path, trust_remote_code)
    family = read_family(folder)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **remote)
    processor = load_processor(family, folder, tokenizer)
    model_cls = getattr(transformers, family.model_class)
    placement = {"device_map": device_map} if device_map is not None else {}
    model = model_cls.from_pretrained(folder, dtype=dt, attn_implementation="sdpa", use_safetensors=True,
                                      **placement, **remote)
    if device_map is None:
        model = model.to(dev)
    else:
        dev = model.get_input_embeddings().weight.device
    model = model.eval()
    image_token_id = placeholder_id(tokenizer, family.image_token)
    return VLM(model=model, processor=processor, spec=make_spec(family, model, image_token_id), family=family,
               model_id=str(name_or_path), device=dev, dtype=dt)
