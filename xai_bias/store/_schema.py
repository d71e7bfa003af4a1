"""Schema constants and attribute encoding shared by the trace writer and reader (internal).

Only numpy and h5py. Nothing here is ever pickled: strings are utf-8 variable-length strings,
structured values (dicts, mixed lists, None) are JSON strings whose keys are listed in the
object's ``json_attrs`` attribute.
"""

from __future__ import annotations

import fnmatch
import json
import math
from typing import Any, Mapping

import h5py
import numpy as np

SCHEMA_VERSION = 1

#: Root attribute holding the committed record count. Only the first ``n_records`` rows of a
#: dataset belong to committed records; rows beyond are left-overs of a record in flight.
N_RECORDS_ATTR = "n_records"
#: Root attribute: True while a writer has the file open; False once it was closed cleanly. A
#: file left True was not closed (killed): resume rebuilds it from its committed records.
IN_PROGRESS_ATTR = "in_progress"
#: Per-object attribute listing the attribute names stored as JSON strings.
JSON_ATTRS = "json_attrs"

STR = h5py.string_dtype("utf-8")
VLEN_INT32 = h5py.vlen_dtype(np.dtype("int32"))
VLEN_INT8 = h5py.vlen_dtype(np.dtype("int8"))

#: The fixed ``/records`` datasets: name -> kind.
#: kinds: "str" (utf-8 vlen string), "json" (utf-8 JSON string), "bool", "int32" (scalar per row),
#: "logprobs" ([R, max_options] float32, NaN-padded), "roles" ([R, n_roles] int32),
#: "vint32" / "vint8" (variable-length per row).
RECORD_DATASETS: dict[str, str] = {
    "sample_id": "str",
    "condition": "str",
    "mode": "str",
    "answer": "str",
    "prediction": "str",
    "correct": "bool",
    "status": "str",
    "option_logprobs": "logprobs",
    "n_options": "int32",
    "role_tokens": "roles",
    "meta": "json",
    "input_ids": "vint32",
    "token_roles": "vint8",
    "response": "str",
}

#: Datasets (besides records/*) that must have one record's row per row: required ones.
REQUIRED_RECORD_DATASETS = (
    "sample_id", "condition", "mode", "answer", "prediction", "correct", "status",
    "option_logprobs", "role_tokens", "meta", "input_ids", "token_roles",
)

#: Datasets with an axis over roles (axis index in the full [R, ...] shape) in traces written
#: before datasets carried their own ``role_axis`` attribute (the axis of the *row*, written from
#: the method's DatasetSpec). The reader checks that this axis has len(roles) entries.
ROLE_AXES: dict[str, int] = {
    "records/role_tokens": 1,
    "attention/mass": 3,
    "attribution/ig": 2,
}


def role_axis(name: str, attrs: Any) -> int | None:
    """The role axis of dataset ``name`` in its full ``[R, ...]`` shape: its ``role_axis``
    attribute (+1 for the record axis), else the legacy table ``ROLE_AXES``; None if none."""
    if "role_axis" in attrs:
        return int(attrs["role_axis"]) + 1
    return ROLE_AXES.get(name)


#: Root attribute: True while a run has not done all its work items (set by the runner when it
#: starts, False once every item is written): a run stopped by a signal or an error stays True.
PARTIAL_ATTR = "partial"

#: Provenance that does not change a record's values. Every other root attribute (model,
#: dtype, sample set, seed, roles, ``settings`` key by key, ...) must be equal for a
#: ``--resume``; these may differ, and a resume records each difference in its ``resumes``
#: entry. Patterns (fnmatch) matched against every part of a dotted key: "*batch_size" covers
#: ``settings.batch_size`` and ``settings.method_settings.ig_internal_batch_size``.
RECORD_NEUTRAL_KEYS = (
    "created", "xai_bias_version", "package_versions", "command", "device", "device_map",
    "skipped_samples", "*batch_size", "progress", N_RECORDS_ATTR, IN_PROGRESS_ATTR, PARTIAL_ATTR,
    "resumes", "merged_from",
)
#: Traces merged into one may also come from other sample files (each source's ``sample_set``
#: is kept in ``merged_from``); everything else that changes records must agree.
MERGE_FREE_KEYS = RECORD_NEUTRAL_KEYS + ("sample_set",)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # Path, dtype, torch.dtype, ... -> their string form


def dumps(value: Any) -> str:
    """Strict JSON (NaN/inf -> null; numpy values, paths -> plain values / strings)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(_jsonable(value), ensure_ascii=False, allow_nan=False)


def encode_attrs(attrs: Any, values: Mapping[str, Any]) -> None:
    """Write ``values`` into the h5py AttributeManager ``attrs`` without pickling anything."""
    json_keys = set(_json_keys(attrs))
    for key, value in values.items():
        key = str(key)
        native = _native(value)
        if native is None:
            attrs[key] = dumps(value)
            json_keys.add(key)
        else:
            attrs[key] = native
            json_keys.discard(key)
    if json_keys:
        attrs[JSON_ATTRS] = np.array(sorted(json_keys), dtype=STR)
    elif JSON_ATTRS in attrs:
        del attrs[JSON_ATTRS]


def _native(value: Any) -> Any:
    """The value as a native HDF5 attribute, or None when it must go as JSON."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return np.bool_(value)
    if isinstance(value, (int, np.integer)):
        return np.int64(value)
    if isinstance(value, (float, np.floating)):
        return np.float64(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return np.array(list(value), dtype=STR)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf" and value.size:
        return value
    return None


def _json_keys(attrs: Any) -> list[str]:
    if JSON_ATTRS not in attrs:
        return []
    raw = attrs[JSON_ATTRS]
    return [_to_str(v) for v in np.atleast_1d(raw).tolist()]


def _to_str(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


class AttrError(ValueError):
    """An attribute listed in ``json_attrs`` whose value is not JSON."""

    def __init__(self, key: str, cause: str):
        self.key, self.cause = key, cause
        super().__init__(f"attribute {key!r}: {cause}")


def decode_attrs(attrs: Any) -> dict[str, Any]:
    """Read an h5py AttributeManager into a plain, JSON-serialisable dict."""
    json_keys = set(_json_keys(attrs))
    out: dict[str, Any] = {}
    for key in attrs.keys():
        if key == JSON_ATTRS:
            continue
        value = attrs[key]
        if key in json_keys:
            try:
                out[key] = json.loads(_to_str(value))
            except (ValueError, TypeError) as e:
                raise AttrError(key, f"not valid JSON: {e}") from None
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OSU":
            return [_to_str(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def chunk_rows(row_shape: tuple[int, ...], itemsize: int, target_bytes: int = 128 * 1024) -> int:
    """Rows per chunk along R so that a chunk holds about ``target_bytes``."""
    row_bytes = max(1, int(np.prod(row_shape, dtype=np.int64)) * max(1, itemsize))
    return int(min(1024, max(1, target_bytes // row_bytes)))


def fill_value(dtype: np.dtype) -> Any:
    """Fill value of rows a record does not have: NaN for floats, 0 for ints, False for bools."""
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "b":
        return False
    return 0


def decode_roundtrip(value: Any) -> Any:
    """What ``decode_attrs`` returns for ``value`` once written (to compare settings)."""
    native = _native(value)
    if native is None:
        return json.loads(dumps(value))
    return _plain(native)


_ABSENT = object()


def flat_settings(attrs: Mapping[str, Any], free: tuple[str, ...] = RECORD_NEUTRAL_KEYS) -> dict[str, Any]:
    """Root attributes as ``{dotted key: value}`` without the ``free`` ones: JSON objects
    (``settings``, ``sample_set``, ... whether stored as JSON attributes or as JSON strings) are
    opened key by key, so that a difference names the setting ("settings.methods")."""
    flat: dict[str, Any] = {}

    def walk(key: str, value: Any) -> None:
        if isinstance(value, str) and value[:1] == "{":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if isinstance(value, Mapping) and value:
            for k, v in value.items():
                walk(f"{key}.{k}", v)
        elif not _is_free(key, free):
            flat[key] = value

    for key, value in attrs.items():
        if key != JSON_ATTRS and not _is_free(key, free):
            walk(str(key), decode_roundtrip(value))
    return flat


def _is_free(key: str, free: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(part, pattern) for part in key.split(".") for pattern in free)


def setting_differences(a: Mapping[str, Any], b: Mapping[str, Any],
                        free: tuple[str, ...] = RECORD_NEUTRAL_KEYS) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for every record-relevant setting that differs
    (a key missing on one side counts; it shows as ``absent``)."""
    fa, fb = flat_settings(a, free), flat_settings(b, free)
    out = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, _ABSENT), fb.get(key, _ABSENT)
        if va != vb:
            out.append((key, va, vb))
    return out


def neutral_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The record-neutral settings that differ (``{key: {"file": a's, "run": b's}}``); the
    file's own bookkeeping (created, n_records, resumes, ...) and the command are left out."""
    own = ("created", "command", N_RECORDS_ATTR, IN_PROGRESS_ATTR, PARTIAL_ATTR, "resumes", "merged_from")
    fa, fb = flat_settings(a, own), flat_settings(b, own)
    keep = {k for k in set(fa) | set(fb) if _is_free(k, RECORD_NEUTRAL_KEYS)}
    return {k: {"file": _shown(fa.get(k, _ABSENT)), "run": _shown(fb.get(k, _ABSENT))}
            for k in sorted(keep) if k in fb and fa.get(k, _ABSENT) != fb.get(k, _ABSENT)}


def _shown(value: Any) -> Any:
    return None if value is _ABSENT else value


def show_value(value: Any) -> str:
    return "absent" if value is _ABSENT else repr(value)
