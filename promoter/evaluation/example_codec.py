"""Decode TFRecord files of `tf.train.Example` into columns, in compiled loops (numba).

Why not tf.data: on a 2-core machine `TFRecordDataset` delivers at most about 0.5-0.7 M
records/s (per-record bookkeeping in its iterator and `batch`), and `tf.io.parse_example`
decodes a 32-feature Example at about 1-3 µs; a small MLP scores several million rows/s, so
the gate would spend most of its time waiting for records. These kernels do the same work:

- `frame_records` (`tfrecord_framing`) walks the TFRecord framing and verifies both checksums
  of every record, as TensorFlow's RecordReader does;
- `decode_examples` fills column arrays with the wanted features of each record. A record is
  first compared with *templates* (`example_templates`): byte images of earlier records with
  the value bytes masked out. A record that equals a template outside the masked bytes has the
  same protobuf structure, so its values are copied from the template's slots, without
  parsing. Any other record is parsed by `example_parse.decode_one`, a full protobuf reader of
  the Example schema with protobuf's merge rules, and, if it is written canonically, becomes a
  template for the records after it.

Writers emit one layout per file in practice (TensorFlow, protobuf-python and -java write
map entries in a fixed order), so nearly every record takes the template path: a masked
comparison at memory speed instead of a byte-by-byte parse.

The input is untrusted: every length and offset is checked against the record's bounds before
it is read (`example_wire`), and a malformed record is a status code that the caller turns into
a HoldoutError naming the record; nothing here raises or reads out of bounds. The tests check
the decoder against protobuf's own parser on generated valid and malformed encodings, also
with numba's bounds checking on. The kernels release the GIL (`nogil`) and are compiled once
per machine and cached on disk (`cache=True`, in the directory `kernel_cache` chooses).
"""

from __future__ import annotations

import numpy as np

from promoter.evaluation.example_parse import Outputs, Schema, Scratch, decode_one, new_scratch
from promoter.evaluation.example_templates import Templates, learn, match, new_templates
from promoter.evaluation.example_wire import (
    BAD_DATA_CRC,
    BAD_LENGTH,
    BAD_LENGTH_CRC,
    KIND_BYTES,
    KIND_FLOAT,
    KIND_INT64,
    KIND_NAMES,
    MALFORMED,
    MISSING,
    OK,
    WRONG_COUNT,
    WRONG_KIND,
)
from promoter.evaluation.kernel_cache import kernel
from promoter.evaluation.tfrecord_framing import CRC_TABLES, frame_records

__all__ = ["BAD_DATA_CRC", "BAD_LENGTH", "BAD_LENGTH_CRC", "CRC_TABLES", "KIND_BYTES",
           "KIND_FLOAT", "KIND_INT64", "KIND_NAMES", "MALFORMED", "MISSING", "OK",
           "WRONG_COUNT", "WRONG_KIND", "Outputs", "Schema", "Templates", "compile_kernels",
           "decode_examples", "frame_records", "new_templates", "parsed_records"]

_LEARN_FAILURES = 64
"""After this many records that cannot become templates, stop trying (it costs a parse)."""


@kernel
def _matched(buf: np.ndarray, start: int, length: int, column: int, tm: Templates,
             out: Outputs) -> bool:
    """Whether the record matches a template (the last matched first); its values copied."""
    last = tm.state[0]
    if last >= 0 and match(buf, start, length, last, column, tm, out):
        return True
    for t in range(tm.lengths.shape[0]):
        if t != last and tm.lengths[t] == length and match(buf, start, length, t, column, tm,
                                                           out):
            tm.state[0] = t
            return True
    return False


@kernel
def _remember(buf: np.ndarray, start: int, length: int, schema: Schema, tm: Templates,
              scratch: Scratch) -> None:
    """Make a parsed, valid record a template, replacing the oldest, unless too many failed."""
    if tm.state[2] >= _LEARN_FAILURES:
        return
    t = tm.state[1]
    tm.lengths[t] = 0
    if learn(buf, start, length, t, schema, tm, scratch):
        tm.state[0] = t
        tm.state[1] = (t + 1) % tm.lengths.shape[0]
    else:
        tm.lengths[t] = 0
        tm.state[2] += 1


@kernel
def _failure(status: int, row: int, f: int, scratch: Scratch
             ) -> tuple[int, int, int, int, int]:
    if f < 0:
        return status, row, f, 0, 0
    return status, row, f, scratch.kind[f], scratch.values[f]


def decode_examples(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, count: int,
                    column0: int, schema: Schema, out: Outputs, tm: Templates
                    ) -> tuple[int, int, int, int, int]:
    """Decode the `count` records buf[starts[r]:starts[r]+lengths[r]] (framed, checksums
    verified) into columns column0.. of `out`, as `schema` places them; `tm` persists between
    calls for one schema.

    Returns (status, record, feature, found kind, found count): status OK, or the first
    record (index into starts) that is malformed, lacks a wanted feature, or has one of
    another kind or width.
    """
    scratch = new_scratch(schema.kinds.shape[0])
    return _decode(buf, starts, lengths, count, column0, schema, out, tm, scratch)


@kernel
def _decode(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, count: int,
            column0: int, schema: Schema, out: Outputs, tm: Templates, scratch: Scratch
            ) -> tuple[int, int, int, int, int]:
    for row in range(count):
        start = starts[row]
        length = lengths[row]
        column = column0 + row
        if _matched(buf, start, length, column, tm, out):
            continue
        status, f = decode_one(buf, start, length, column, schema, out, scratch)
        tm.state[3] += 1
        if status != OK:
            return _failure(status, row, f, scratch)
        _remember(buf, start, length, schema, tm, scratch)
    return OK, count, -1, 0, 0


def parsed_records(tm: Templates) -> int:
    """Records that took the parsing path so far (the rest matched a template)."""
    return int(tm.state[3])


def compile_kernels() -> None:
    """Compile (or load from the cache) every kernel by decoding one tiny record; for images
    that should not pay the compile on their first evaluation."""
    # Example{features{feature{key: "x", float_list: [1.5]}, feature{key: "l", int64: [1]}}}
    record = bytes.fromhex("0a1b0a0d0a0178120812060a040000c03f0a0a0a016c12051a030a0101")
    length = len(record).to_bytes(8, "little")
    buf = np.frombuffer(length + bytes(4) + record + bytes(4), dtype=np.uint8).copy()
    starts, lengths = np.zeros(1, np.int64), np.zeros(1, np.int64)
    frame_records(buf, 0, len(buf), starts, lengths, CRC_TABLES)  # (zero checksums: refused)
    templates = new_templates()
    schema = Schema(names=np.frombuffer(b"x", dtype=np.uint8).copy(),
                    name_starts=np.array([0, 1], np.int64),
                    kinds=np.array([KIND_FLOAT], np.int64),
                    layout=np.array([[0, 1, 1]], np.int64), widths=np.array([1], np.int64))
    empty = np.zeros(1, np.int64)
    for _ in range(2):  # the parsing path, then the template path
        out = Outputs(np.zeros(1, np.uint32), empty.copy(), empty.copy(), empty.copy())
        status = decode_examples(buf, np.array([12], np.int64),
                                 np.array([len(record)], np.int64), 1, 0, schema, out,
                                 templates)[0]
        if status != OK or out.floats.view(np.float32)[0] != 1.5:
            raise RuntimeError(f"the TFRecord decoder fails its self-test (status {status})")
