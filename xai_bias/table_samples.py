"""Sample sets from dataset tables (Hugging Face datasets, hub folders, save_to_disk, parquet).

``load_table_samples(spec, subset, split, on_error, limit, schema=None)`` opens the table
(``xai_bias.hf_data``), finds its column schema (``xai_bias.schemas``; ``schema`` names it
explicitly), and turns each row into a Sample through the JSONL validation of
``xai_bias.samples.sample_from_dict``. Images stay lazy ``ImageRef``s; at load only their headers
are read (format and size; a cell whose bytes are not an image is a problem naming the row and
id, skipped under ``on_error="skip"``), the pixels are decoded when a condition shows them.

MMMU-Pro's vision join: for a ``standard (...)`` config read from the hub (``hf:``) or a hub
folder, the ``vision`` config of the same split is opened and each item's screenshot joined by
id as its ``vision_image`` (so ``image_only`` shows the real screenshot; ``meta["vision_image"]``
says which). When the vision config is not there, a warning says so, the items keep no
``vision_image`` (``image_only`` then renders question + options) and the provenance records it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import SampleError, UsageError
from .hf_data import Table, open_table
from .schemas import detect_schema


class VisionJoinWarning(UserWarning):
    """The MMMU-Pro vision config could not be joined (image_only renders instead)."""


def _vision_images(spec: str, split: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """id -> screenshot ImageRef of MMMU-Pro's ``vision`` config, and the join's provenance."""
    try:
        vision = open_table(spec, "vision", split)
    except (SampleError, UsageError) as exc:
        return {}, {"joined": 0, "absent": str(exc)}
    if "id" not in vision.columns or "image" not in vision.columns:
        return {}, {"joined": 0, "absent": f"{vision.origin} has no id / image columns"}
    ids = vision.text_columns(["id"])["id"]
    refs = {str(sid): vision.image(j, "image") for j, sid in enumerate(ids)}
    return refs, {**vision.provenance, "rows": len(ids)}


def _set_name(table: Table) -> str:
    p = table.provenance
    base = Path(str(p["dataset"])).name or str(p["dataset"])
    return "-".join(x for x in (base, str(p.get("config") or ""), str(p.get("split") or "")) if x and x != "default")


def load_table_samples(spec: str | Path, subset: str | None = None, split: str | None = None,
                       on_error: str = "stop", limit: int | None = None, schema: str | None = None,
                       join_vision: bool = True) -> Any:
    """Load and validate one split of a dataset table as a ``SampleSet`` (see module doc)."""
    from .samples import SampleSet, sample_from_dict

    table = open_table(spec, subset, split)
    sch = detect_schema(table.columns, table.origin, schema)
    image_cols = [c for c in sch.image_columns if c in table.columns]
    media_cols = [c for c in sch.media_columns if c in table.columns]
    text_cols = [c for c, kind in table.columns.items()
                 if kind not in ("Image", "Audio", "Video") and c not in image_cols + media_cols]
    cols = table.text_columns(text_cols)

    vision: dict[str, Any] = {}
    vision_prov: dict[str, Any] | None = None
    config = str(table.provenance.get("config") or "")
    if join_vision and sch.name == "mmmu" and config.startswith("standard") and table.provenance["kind"] in (
            "hub", "hub_folder"):
        vision, vision_prov = _vision_images(str(spec), split)
        if not vision:
            warnings.warn(f"{table.origin}: MMMU-Pro's vision config could not be joined "
                          f"({vision_prov.get('absent')}); image_only renders question + options instead",
                          VisionJoinWarning, stacklevel=2)

    samples, problems, skipped = [], [], Counter()
    seen: dict[str, int] = {}
    digest = hashlib.sha256(str(table.provenance.get("fingerprint", "")).encode())
    for i in range(len(table)):
        if limit is not None and len(samples) >= limit:
            break
        row = {c: v[i] for c, v in cols.items()}
        sid = row.get("id", row.get("index", i))
        where = f"{table.origin} row {i} (id {sid})"
        try:
            item = sch.to_item(row, lambda c, i=i: table.image(i, c) if c in image_cols else (
                table.media(i, c) if c in media_cols else None), i)
            if isinstance(item, str):
                skipped[item] += 1
                continue
            shot = vision.get(str(item["id"]))
            if shot is not None:
                item["vision_image"] = shot
                item["meta"] = {**item.get("meta", {}), "vision_image": str(shot)}
            sample = sample_from_dict(item, Path("."), check_images=True)
            if sample.id in seen:
                raise ValueError(f"duplicate id (first in row {seen[sample.id]})")
        except ValueError as exc:
            err = SampleError(where, str(exc))
            if on_error == "stop":
                raise err from None
            problems.append(err)
            continue
        seen[sample.id] = i
        samples.append(sample)
        content = [sample.id, sample.question, list(sample.options), sample.answer,
                   [getattr(p, "name", "") for p in sample.images]]
        if sample.videos or sample.audios:  # (image-only items keep the digest they had)
            content.append([str(p) for p in sample.videos + sample.audios])
        digest.update(json.dumps(content, default=str).encode() + b"\n")
    provenance = {**table.provenance, "schema": sch.name, "skipped_rows": dict(skipped)}
    if vision_prov is not None:
        provenance["vision"] = {**vision_prov, "joined": sum(s.vision_image is not None for s in samples)}
    return SampleSet(tuple(samples), tuple(problems), _set_name(table), digest.hexdigest(), None, provenance)


__all__ = ["load_table_samples", "VisionJoinWarning"]
