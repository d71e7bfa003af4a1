"""Opening a Hugging Face dataset table through the ``datasets`` library, images left encoded.

``open_table(spec, subset=None, split=None) -> Table`` reads

- ``hf:ORG/NAME``: the hub dataset, from the local ``datasets`` cache when ``HF_HUB_OFFLINE=1``
  (``datasets.load_dataset(NAME, subset, split=split)``); not in the cache -> ``SampleError``
  (exit 3) with the exact command that downloads it;
- a folder in the hub's layout (config folders of parquet shards and the README's ``configs``
  table, as ``huggingface-cli download ORG/NAME --repo-type dataset --local-dir DIR`` writes
  it), read with ``datasets.load_dataset(DIR, subset, split=split)``;
- a ``save_to_disk`` folder (``datasets.load_from_disk``; a DatasetDict needs ``split`` when it
  holds several);
- a single ``.parquet`` file (``datasets.load_dataset("parquet", data_files=FILE)``).

The rows come back as a memory-mapped Arrow table (datasets' cache): text columns are read as
Python values, image cells stay on disk until ``Table.image(row, column)``'s ``ImageRef`` is
opened (a zero-copy view of the cell's bytes). ``Table.provenance`` records the dataset,
config, split, revision (the hub commit the cache was built from, when known), the datasets
fingerprint and the row count, for the trace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import SampleError, UsageError
from .types import ImageRef, MediaRef

HF_PREFIX = "hf:"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def is_table_spec(spec: str | Path) -> bool:
    """True for what ``open_table`` reads: ``hf:...``, a folder, a ``.parquet`` file."""
    text = str(spec)
    return text.startswith(HF_PREFIX) or Path(text).suffix == ".parquet" or Path(text).is_dir()


@dataclass(frozen=True)
class Table:
    """One split of a dataset: ``columns`` (name -> datasets feature type, as text), ``origin``
    (names it in messages), ``provenance`` (for the trace) and the Arrow table itself."""

    arrow: Any = field(repr=False)  # pyarrow.Table, memory-mapped
    columns: Mapping[str, str]
    origin: str
    provenance: Mapping[str, Any]
    _images: dict = field(default_factory=dict, repr=False, compare=False)  # column -> _ImageColumn

    def __len__(self) -> int:
        return int(self.arrow.num_rows)

    def text_columns(self, names: list[str]) -> dict[str, list[Any]]:
        """The given (non-image) columns as Python lists; image columns are never read here."""
        return {n: self.arrow.column(n).to_pylist() for n in names if n in self.columns}

    def image(self, row: int, column: str) -> ImageRef | None:
        """A lazy reference to the image in ``column`` of ``row`` (None for an empty cell)."""
        if column not in self._images:
            self._images[column] = _ImageColumn(self.arrow.column(column))
        col = self._images[column]
        if not col.valid(row):
            return None
        return ImageRef(f"{self.origin} row {row} {column}", col.name(row), _CellReader(col, row))

    def media(self, row: int, column: str) -> MediaRef | None:
        """A lazy reference to the clip in an ``Audio`` / ``Video`` column of ``row`` (the same
        ``struct<bytes, path>`` cells as images; None for an empty cell)."""
        if column not in self._images:
            self._images[column] = _ImageColumn(self.arrow.column(column))
        col = self._images[column]
        if not col.valid(row):
            return None
        return MediaRef(f"{self.origin} row {row} {column}", col.name(row), _CellReader(col, row))


class _ImageColumn:
    """Zero-copy access to the encoded bytes of an image column (datasets' ``struct<bytes,
    path>`` or plain binary). The bytes are sliced out of the column's data buffer by its
    offsets: making a pyarrow scalar of a cell would read the whole image from the memory map."""

    def __init__(self, chunked: Any):
        import numpy as np
        import pyarrow as pa

        self.parts = []  # (first row, binary child, path child or None, validity [n] bool)
        first = 0
        for chunk in chunked.chunks:
            if pa.types.is_struct(chunk.type):
                fields = {chunk.type.field(k).name: arr for k, arr in enumerate(chunk.flatten())}
                data, paths = fields["bytes"], fields.get("path")
                valid = chunk.is_valid().to_numpy(zero_copy_only=False) & data.is_valid().to_numpy(zero_copy_only=False)
            else:
                data, paths = chunk, None
                valid = chunk.is_valid().to_numpy(zero_copy_only=False)
            wide = pa.types.is_large_binary(data.type)
            offsets = np.frombuffer(data.buffers()[1], dtype=np.int64 if wide else np.int32)
            self.parts.append((first, data, paths, valid, offsets))
            first += len(chunk)

    def _at(self, row: int) -> tuple[Any, Any, Any, int, Any]:
        for first, data, paths, valid, offsets in reversed(self.parts):
            if row >= first:
                return data, paths, valid, row - first, offsets
        raise IndexError(row)

    def valid(self, row: int) -> bool:
        _, _, valid, k, _ = self._at(row)
        return bool(valid[k])

    def name(self, row: int) -> str:
        _, paths, _, k, _ = self._at(row)
        value = paths[k].as_py() if paths is not None else None
        return Path(str(value)).name if value else ""

    def buffer(self, row: int) -> Any:
        data, _, _, k, offsets = self._at(row)
        j = k + data.offset
        start, end = int(offsets[j]), int(offsets[j + 1])
        return data.buffers()[2].slice(start, end - start)


@dataclass(frozen=True)
class _CellReader:
    """Opens one image cell: a file object over its bytes (zero-copy on the memory map)."""

    column: _ImageColumn = field(repr=False)
    row: int

    def __call__(self):
        import pyarrow as pa

        buf = self.column.buffer(self.row)
        if buf.size == 0:
            raise ValueError("image cell holds no bytes")
        return pa.BufferReader(buf)


def download_command(repo: str, subset: str | None, split: str | None) -> str:
    """The command that puts ``repo`` (config, split) into the local datasets cache."""
    args = [repr(repo)] + ([repr(subset)] if subset else []) + ([f"split={split!r}"] if split else [])
    return f'python -c "import datasets; datasets.load_dataset({", ".join(args)})"'


def _datasets():
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise UsageError("reading Hugging Face datasets needs the 'datasets' package: pip install datasets") from exc
    return datasets


def _pick_split(obj: Any, split: str | None, origin: str) -> Any:
    """A Dataset from a Dataset or DatasetDict (``split`` chooses; one split is taken as is)."""
    if not hasattr(obj, "keys"):
        if split and str(getattr(obj, "split", "") or split) != split:
            raise UsageError(f"{origin} holds split {obj.split!r}, not {split!r}")
        return obj
    names = list(obj.keys())
    if split is None:
        if len(names) == 1:
            return obj[names[0]]
        raise UsageError(f"{origin} has splits {', '.join(names)}: pick one with --split")
    if split not in obj:
        raise UsageError(f"{origin} has no split {split!r}; it has {', '.join(names)}")
    return obj[split]


def _load(spec: str, subset: str | None, split: str | None) -> tuple[Any, str, str]:
    """(Dataset, origin, kind) for ``spec``; errors mapped to UsageError / SampleError."""
    datasets = _datasets()
    if spec.startswith(HF_PREFIX):
        repo = spec[len(HF_PREFIX):].strip("/")
        origin = f"{spec}" + (f" [{subset}]" if subset else "")
        try:
            obj = datasets.load_dataset(repo, subset, split=split)
        except (ConnectionError, FileNotFoundError, ValueError) as exc:
            text = str(exc)
            if isinstance(exc, ValueError) and "Couldn't find cache" not in text and "Unknown split" not in text:
                raise UsageError(f"{origin}: {text}") from None
            offline = datasets.config.HF_HUB_OFFLINE
            raise SampleError(origin, ("not in the local Hugging Face cache (HF_HUB_OFFLINE=1)" if offline
                                       else f"cannot be loaded ({type(exc).__name__}: {text.splitlines()[0]})")
                              + f"; download it once with:\n  {download_command(repo, subset, split)}") from None
        return _pick_split(obj, split, origin), origin, "hub"
    path = Path(spec)
    if not path.exists():
        raise UsageError(f"sample source not found: {path}")
    if path.is_file():
        origin = str(path)
        try:
            obj = datasets.load_dataset("parquet", data_files=str(path), split="train")
        except Exception as exc:  # pyarrow raises several kinds for a file that is not parquet
            raise SampleError(origin, f"not a readable parquet file ({type(exc).__name__}: {exc})") from None
        return obj, origin, "parquet"
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        origin = str(path)
        return _pick_split(datasets.load_from_disk(str(path)), split, origin), origin, "save_to_disk"
    origin = str(path) + (f" [{subset}]" if subset else "")
    try:
        obj = datasets.load_dataset(str(path), subset, split=split)
    except ValueError as exc:  # config missing / unknown, unknown split: datasets lists the choices
        raise UsageError(f"{origin}: {exc}") from None
    except FileNotFoundError as exc:
        raise SampleError(origin, f"no data files in the hub layout ({exc})") from None
    return _pick_split(obj, split, origin), origin, "hub_folder"


def open_table(spec: str | Path, subset: str | None = None, split: str | None = None) -> Table:
    """Open one split of a dataset (see the module docstring)."""
    ds, origin, kind = _load(str(spec), subset, split)
    if getattr(ds, "_indices", None) is not None:  # a selection view: materialise the rows
        ds = ds.flatten_indices()
    files = [c.get("filename", "") for c in ds.cache_files]
    builder_hash = Path(files[0]).parent.name if files else ""
    info = ds.info
    provenance = {
        "source": str(spec), "kind": kind,
        "dataset": str(spec)[len(HF_PREFIX):] if kind == "hub" else str(Path(spec).resolve()),
        "config": info.config_name or subset or "",
        "split": (split or "") if kind == "parquet" else str(ds.split or split or ""),
        "revision": builder_hash if _COMMIT.match(builder_hash) else "",
        "builder_hash": builder_hash, "fingerprint": getattr(ds, "_fingerprint", ""),
        "num_rows": ds.num_rows,
    }
    columns = {name: type(feat).__name__ for name, feat in ds.features.items()}
    return Table(ds.data.table, columns, origin, provenance)


__all__ = ["HF_PREFIX", "Table", "open_table", "is_table_spec", "download_command"]
