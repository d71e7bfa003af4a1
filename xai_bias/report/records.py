"""The explorer's data for one trace: its records, samples, per-record measurements, images and
token texts, within a byte budget (internal).

Records are kept by whole samples (every condition of a sample, so conditions can be compared
side by side). When the trace's records do not fit the budget, a seeded random subset of the
samples is shown, and the payload says so (``note``); the overview always uses every record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .catalog import Catalog, image_share, record_measures
from .encode import dumps, floats
from .images import ImageStore, image_paths
from .series import Series, classify, read_rows, record_rows
from .tokens import decode_vocab

PROBE_RECORDS = 48  # records encoded to estimate the cost of one record
MAX_FACET_VALUES = 40  # a metadata key with more distinct values is shown, not offered as a filter
MAX_META_TEXT = 300  # characters of one metadata value shown


def _scalar_meta(meta: Any) -> dict[str, Any]:
    out = {}
    if not isinstance(meta, Mapping):
        return out
    for k, v in meta.items():
        if isinstance(v, bool) or isinstance(v, (int, float)) and np.isfinite(v):
            out[str(k)] = v
        elif isinstance(v, str):
            out[str(k)] = v if len(v) <= MAX_META_TEXT else v[:MAX_META_TEXT] + "…"
    return out


def _token_runs(ids: np.ndarray, roles: np.ndarray, image_role: int) -> tuple[list[int], str]:
    """Token ids with each run of image tokens collapsed to -(run length); roles as one digit
    (role index) per entry."""
    out_ids, out_roles = [], []
    i, n = 0, len(ids)
    while i < n:
        if roles[i] == image_role:
            j = i
            while j < n and roles[j] == image_role:
                j += 1
            out_ids.append(-(j - i))
            out_roles.append(str(image_role))
            i = j
        else:
            out_ids.append(int(ids[i]))
            out_roles.append(str(int(roles[i])))
            i += 1
    return out_ids, "".join(out_roles)


class ExplorerData:
    """Builds the explorer payload of one trace (see ``build``)."""

    def __init__(self, trace: Any, cat: Catalog, images: ImageStore, tokenizer: Any | None, seed: int = 0):
        self.t, self.cat, self.images, self.tok, self.seed = trace, cat, images, tokenizer, seed
        self.R = trace.n_records
        self.roles = list(trace.attrs.get("roles") or [])
        self.sid = np.asarray(trace["records/sample_id"]).astype(str)
        self.meta = trace["records/meta"]
        self.series, self.notes = classify(trace, cat)
        self.measures, notes = record_measures(trace)
        self.notes += notes
        self.base = Path(trace.path).parent
        self.missing: dict[str, str] = {}  # image path -> why it is not embedded

    # ------------------------------------------------------------------ per record
    def _records(self, rows: np.ndarray) -> dict[str, Any]:
        t = self.t
        col = {k: np.asarray(t[f"records/{k}"]) for k in
               ("condition", "mode", "answer", "prediction", "correct", "status")}
        lp = np.asarray(t["records/option_logprobs"])
        n_opt = np.asarray(t["records/n_options"]) if t.has("records/n_options") else None
        ids = dict(zip(rows.tolist(), read_rows(t, "records/input_ids", rows)))
        troles = dict(zip(rows.tolist(), read_rows(t, "records/token_roles", rows)))
        resp = np.asarray(t["records/response"]) if t.has("records/response") else None
        image_role = self.roles.index("image") if "image" in self.roles else -1
        out: dict[str, Any] = {k: [] for k in ("index", "sample", "condition", "mode", "answer", "prediction",
                                               "correct", "status", "logprobs", "images", "tokens", "roles")}
        out["response"] = []
        for i in rows:
            i = int(i)
            out["index"].append(i)
            out["sample"].append(str(self.sid[i]))
            for k in ("condition", "mode", "answer", "prediction", "status"):
                out[k].append(str(col[k][i]))
            out["correct"].append(bool(col["correct"][i]))
            k = int(n_opt[i]) if n_opt is not None else int(np.isfinite(lp[i]).sum())
            out["logprobs"].append(floats(lp[i, :k]))
            found = []
            for name in image_paths(self.meta[i]):
                found.append(self.images.add(name, self.base))
                if found[-1] is None:
                    self.missing[name] = self.images.missing[name]
            out["images"].append(found)
            tok, rl = _token_runs(np.asarray(ids[i]), np.asarray(troles[i]), image_role)
            out["tokens"].append(tok)
            out["roles"].append(rl)
            out["response"].append(str(resp[i]) if resp is not None else "")
        if not any(out["response"]):
            del out["response"]
        out["series"] = record_rows(self.t, self.series, rows)
        out["scores"] = {m.key: floats(image_share(m.Xo[rows], m.kind)) for m in self.measures}
        out["layer_scores"] = {m.key: floats(image_share(m.X[rows], m.kind)) for m in self.measures
                               if len(m.layers) >= 2}
        return out

    def _samples(self, ids: list[str]) -> dict[str, Any]:
        first = {}
        for i, s in enumerate(self.sid):
            first.setdefault(str(s), i)
        metas = [_scalar_meta(self.meta[first[s]]) for s in ids]
        keys: dict[str, None] = {}
        for m in metas:
            keys.update(dict.fromkeys(m))
        facets = []
        for k in keys:
            values = {m.get(k) for m in metas if isinstance(m.get(k), (str, bool, int))}
            if 2 <= len(values) <= min(MAX_FACET_VALUES, len(ids) / 2) and all(k in m for m in metas):
                facets.append(k)
        return {"id": ids, "meta": metas, "facets": facets}

    # ------------------------------------------------------------------ selection
    def _estimated_fit(self, budget: int, n_samples: int) -> int:
        """How many samples fit ``budget`` bytes, from the cost of a probe of evenly spaced records."""
        if not self.R:
            return n_samples
        probe = np.unique(np.linspace(0, self.R - 1, min(self.R, PROBE_RECORDS)).round().astype(int))
        shared, self.images = self.images, ImageStore(self.images.max_side)  # probe images are not kept
        try:
            cost = (len(dumps(self._records(probe))) + self.images.n_bytes) / len(probe)
        finally:
            self.images = shared
            self.missing.clear()
        return int(budget // max(cost * self.R / max(n_samples, 1), 1.0))

    def build(self, budget: int, max_samples: int | None = None) -> dict[str, Any]:
        """The payload (records as columns, samples, series headers, measure keys, vocab, notes)
        of as many whole samples as fit ``budget`` bytes (its images included) and
        ``max_samples``; a seeded random subset when not all fit."""
        order = list(dict.fromkeys(self.sid.tolist()))
        n_all = len(order)
        perm = [order[j] for j in np.random.default_rng(self.seed).permutation(n_all)]
        cap = n_all if max_samples is None else min(n_all, max_samples)
        limit = max(min(cap, self._estimated_fit(budget, n_all)), min(1, n_all))
        mark = self.images.checkpoint()
        for _ in range(4):  # the estimate is close; shrink until the real size fits
            payload = self._payload(set(perm[:limit]), order)
            size = len(dumps(payload)) + self.images.n_bytes_since(mark)
            if size <= budget or limit <= 1:
                break
            limit = max(1, int(limit * budget / size * 0.97))
            self.images.rollback(mark)
            self.missing.clear()
        if limit < n_all:
            why = (f"--max-samples {max_samples}" if limit == cap and cap < n_all and max_samples is not None
                   else f"the explorer's share of the size budget ({budget / 1e6:.1f} MB)")
            payload["notes"].insert(0, f"The explorer shows {limit} of {n_all} samples, a random subset (seed "
                                       f"{self.seed}) chosen to fit {why}; the overview uses every record. Raise "
                                       f"--max-mb or --max-samples to see more.")
        return payload

    def _payload(self, keep: set[str], order: list[str]) -> dict[str, Any]:
        ids = [s for s in order if s in keep]
        rows = np.array([i for i in range(self.R) if self.sid[i] in keep], dtype=np.int64)
        records = self._records(rows)
        vocab = None
        if self.tok is not None:
            used = {x for toks in records["tokens"] for x in toks if x >= 0}
            vocab = {str(k): v for k, v in decode_vocab(self.tok, used).items()}
        missing = [f"{p} ({why})" for p, why in self.missing.items()]
        notes = list(self.notes)
        if missing:
            notes.append(f"{len(missing)} image file(s) could not be embedded, their overlays are drawn without "
                         f"the image: " + "; ".join(missing[:5]) + (" …" if len(missing) > 5 else ""))
        return {
            "n_records": self.R, "n_samples": len(order), "n_samples_shown": len(ids),
            "n_layers": int(self.t.attrs.get("n_layers") or 0), "roles": self.roles,
            "series": [s.header() for s in self.series],
            "measures": [{"key": m.key, "method": m.method, "measure": m.measure, "kind": m.kind,
                          "layers": [int(x) for x in m.layers]} for m in self.measures],
            "records": records, "samples": self._samples(ids), "vocab": vocab, "notes": notes,
        }


__all__ = ["ExplorerData", "Series"]
