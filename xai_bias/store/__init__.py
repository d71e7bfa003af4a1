"""The trace file: one HDF5 file per study, one row per Record (schema_version 1).

Needs only numpy and h5py (never torch or models). Nothing is pickled: strings are utf-8
variable-length strings, structured values (the sample metadata, dict attributes) are JSON
strings, every other dataset is numeric.

Layout (R = committed records, L = layers, H = heads, n_roles = len(roles), default
``xai_bias.types.ROLES`` = sink, template, image, question, options, instruction, generated)::

    /                        attrs: schema_version (=1), created (ISO-8601 UTC), xai_bias_version,
                                    n_records (committed record count, see below), and the
                                    writer's provenance: model_id, model_arch, dtype, device,
                                    package versions, command, sample_set (name, sha256), seed,
                                    roles (list of str), n_layers, n_heads, settings (JSON),
                                    letter_tokens (the option letters' token ids and strings:
                                    "direct" and "after_answer_prefix", see models.letters), ...;
                                    "partial" (True until a run has written all its work items;
                                    True in a merge of partial sources); "resumes" (list of
                                    {time, n_records, command, after_crash, changed}) after a
                                    --resume; "merged_from" (list of the sources) in a merged trace.
    /records/sample_id       [R]                 utf-8 string
    /records/condition       [R]                 utf-8 string (complete, text_white, ...)
    /records/mode            [R]                 utf-8 string (direct, cot)
    /records/answer          [R]                 utf-8 string (gold letter, "" if unknown)
    /records/prediction      [R]                 utf-8 string ("" if unparsed)
    /records/correct         [R]                 bool
    /records/status          [R]                 utf-8 string ("ok" or the error)
    /records/option_logprobs [R, max_options]    float32, NaN-padded (the second dim grows when a
                                                 record has more options than any before)
    /records/n_options       [R]                 int32: number of options of the record (the
                                                 unpadded length of its option_logprobs row)
    /records/role_tokens     [R, n_roles]        int32: prompt token count per role
    /records/meta            [R]                 utf-8 JSON object: the sample's metadata; in cot
                                                 mode also "answer_token" (offset in the
                                                 generation, position in input_ids, id, token,
                                                 emitted, measured: which token was the answer)
    /records/input_ids       [R]                 variable-length int32: the prompt as the model saw
                                                 it (image placeholders expanded)
    /records/token_roles     [R]                 variable-length int8: role index of each token
    /records/response        [R]                 utf-8 string: generated text in cot mode, ""
                                                 otherwise

Instruments add datasets outside /records, one row per record, settings as dataset attributes
(set with ``TraceWriter.set_dataset_attrs``)::

    /attention/mass          [R, L, H, n_roles]  float32: attention of the answer query row(s) on
                                                 each role
    /attention/maps          [R, L, width]       float32: head-mean attention of the answer row on
                                                 each image token, NaN-padded (--save-maps)
    /attention/map_grid      [R, max_images, 2]  int32: (rows, cols) of vision tokens per image
    /attention/map_tiles     [R, max_tiles, 8]   int32: one row per tile of each image, (image,
                                                 view, row0, col0, rows, cols, offset, stride):
                                                 token (i, j) of the tile is map entry offset +
                                                 i*stride + j; view 0 covers the whole image, view
                                                 1 is the tiled high-resolution view; rows with
                                                 rows <= 0 are padding (-1, or 0 in a record
                                                 written without tiles)
    /attribution/ig          [R, L+1, n_roles]   float32: |IG| share per role, row 0 = input
                                                 embeddings (attrs: steps, baseline, ...)
    /attribution/ig_delta    [R]                 float32: IG convergence error
    /attention/maps_video    [R, L, width]       float32: head-mean attention of the answer row on
    /attention/maps_audio    [R, L, width]       each video / audio token, NaN-padded (--save-maps,
                                                 families that take video / audio)
    /attention/video_grid    [R, max_clips, 3]   int32: (temporal slots, tokens, frames) per video
    /attention/audio_grid    [R, max_clips, 2]   int32: (tokens, milliseconds) per audio clip
    /attribution/shapley     [R, n_groups]       float32 (attrs: groups, baseline; groups may be
                                                 image, video, audio, text, question, options)
    /intervention/knockout   [R, L]              float32: change in the answer log-prob when the
                                                 answer row's attention to image tokens (attr
                                                 modality: or video / audio tokens) is cut at
                                                 layer l
    /intervention/logit_lens [R, L, ...]         float32: per-layer readout of the answer letters
    /generation/answer_row   [R]                 int32 (cot mode, written by the runner): index in the
                                                 record's input_ids of the row whose logits emit the
                                                 parsed answer letter (the row the instruments read);
                                                 -1 for an unparsed response (no answer row)

A measurement dataset is created on first use with the dtype and row shape of the first row;
rows of records that lack it are filled (NaN for floats, 0 for ints, False for bools), so every
dataset has one row per record. Float rows of two or more axes may differ in their last axis
between records (e.g. the logit lens's ``[L, n_options]``): the dataset's last axis grows to the
widest row and shorter rows are NaN-padded, as ``option_logprobs`` is. New datasets may be added; existing names keep their meaning.
The reader checks the role axis of /records/role_tokens, /attention/mass and /attribution/ig.

Datasets are chunked along R (chunks of about 128 KiB, one record per chunk for large rows)
and appended record by record. They are not compressed by default: a compressed chunk moves in
the file each time a row is added to it, and a process killed mid-flush could then leave
committed rows pointing at reused space; uncompressed chunks are rewritten in place, so the
bytes of committed records never change (``TraceWriter(..., compression="gzip")`` and
``merge_traces(..., compression="gzip")`` exist for files written in one go). Fixed-size chunks
carry a fletcher32 checksum (it keeps a chunk's size, so chunks are still rewritten in place):
a changed byte is reported when read. The one chunk a writer was rewriting when it was killed
(or while a reader reads along) may fail its checksum although its committed rows are intact;
in a file marked ``in_progress`` that chunk's committed rows are read without the checksum.
Variable-length datasets (strings, token ids) cannot be filtered by HDF5 and have none.

Commit protocol: a record's rows land in every dataset and are flushed; then the root
attribute ``n_records`` is incremented and the file flushed again. Readers see only the first
``n_records`` rows. The root attribute ``in_progress`` is True while a writer has the file open
and False after a clean close. ``TraceWriter(..., resume=True)`` on a cleanly closed file
truncates longer datasets back to ``n_records`` (a record in flight leaves nothing behind) and
continues in place; on a file left ``in_progress`` (the writer was killed) it first rebuilds
the file from its committed records (written to a temporary file, then renamed over it), so
that nothing the killed process left half-written is built upon. Either way it skips
``done_keys()``. A trace can be read (``open_trace``) while another process is writing it.

A new trace is written under a temporary name in its folder and replaces the target at its
first committed record (a merge or a rebuild: when complete), never while another process holds
the target open for writing; a writer that fails before leaves the target as it was. Before
each commit the device's free space is checked; a write that fails anyway (disk full, a file
size limit) raises OutputError and leaves the file marked in progress, and a resume rebuilds
it from its committed records (reading past a superblock that such a failed write left behind).
``--resume`` refuses a run whose provenance differs in anything that changes records
(``_schema.RECORD_NEUTRAL_KEYS`` lists what may differ). ``open_trace`` refuses, before
reading data, links to other files, virtual datasets, external raw storage, dtypes a dataset
name does not allow, declared shapes / record counts larger than the bytes stored, and
malformed attributes (exit 4 naming the dataset). See docs/GUARANTEES.md.

Attributes: str, int, float, bool and lists of str are native HDF5 attributes; dicts, mixed
lists and None are JSON strings whose names are listed in the object's ``json_attrs``
attribute. ``Trace.attrs`` / ``Trace.dataset_attrs`` return them decoded.

API: ``TraceWriter``, ``open_trace`` -> ``Trace``, ``merge_traces``, ``describe``,
``describe_record``, ``format_description``, ``format_record``, ``check_target`` (can a trace be
written here with these flags? before a model loads), ``check_resumable`` (would a run with this
provenance mix records into that trace?), ``exit_now_if_unclosed`` (end a process whose HDF5
file could not be closed after a failed write without HDF5's crashing shutdown).
"""

from __future__ import annotations

from ._files import exit_now_if_unclosed
from ._resume import check_resumable, check_target
from ._schema import RECORD_DATASETS, SCHEMA_VERSION
from .inspect import describe, describe_record, format_description, format_record
from .merge import merge_traces
from .reader import Trace, open_trace
from .writer import TraceWriter

__all__ = [
    "SCHEMA_VERSION",
    "RECORD_DATASETS",
    "Trace",
    "TraceWriter",
    "open_trace",
    "merge_traces",
    "describe",
    "describe_record",
    "format_description",
    "format_record",
    "exit_now_if_unclosed",
    "check_target",
    "check_resumable",
]
