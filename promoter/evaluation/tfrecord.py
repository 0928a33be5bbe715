"""Read a TFRecord holdout of `tf.train.Example`s (TFX's format) in bounded-memory batches.

Features are matched to the signature's inputs, the label, the weight and slice columns by
name. The first record decides each feature's kind (int64, float or bytes) and must hold as
many values as the input takes (one, or d for a [None, d] input); a later record with another
kind or width, or without the feature, is a HoldoutError naming the record and the feature,
as is a truncated or corrupt file (both checksums of every record are verified).

The bytes are decoded by the compiled kernels of `example_codec`, not by tf.data (which tops
out far below what a small model scores). A background thread reads the file in large chunks,
hashes them (sha256, the report's digest of exactly the bytes evaluated), frames and decodes
records into column arrays, and hands over finished batches through a queue of two; the
kernels and the hash release the GIL, so reading overlaps with scoring. Memory holds the read
buffer and a few batches whatever the file size.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import ColumnRequest, HoldoutBatch, open_holdout_file
from promoter.evaluation.prefetch import prefetched
from promoter.evaluation.tfrecord_buffers import _Layout, _RecordStream

_FIX = "write the holdout with one scalar feature per model input, plus the label"


class TFRecordHoldoutReader:
    """Iterate over a TFRecord holdout in batches; `digest` and `rows` are set once read."""

    chunk_bytes = 16 << 20
    """Bytes read at a time (the buffer grows for a record longer than this)."""

    def __init__(self, path: Path, *, label_column: str, columns: Sequence[ColumnRequest],
                 batch_size: int, label_kind: str = "binary", weight_column: str | None = None,
                 slice_columns: Sequence[str] = (), fd: int | None = None) -> None:
        """`fd`: a descriptor of `path` open for reading, read instead of opening `path`
        (`open_holdout_file`)."""
        self.path = path
        self.fd = fd
        self.label_column = label_column
        self.columns: dict[str, ColumnRequest] = {}
        for column in columns:
            self.columns.setdefault(column.name, column)
        self.batch_size = batch_size
        self.label_kind = label_kind
        self.weight_column = weight_column
        self.slice_columns = list(slice_columns)
        self.rows = 0
        self.digest: str | None = None
        self.parsed_records = 0
        """Records that did not match a template and were parsed (for benchmarks)."""

    def _kinds(self, record: bytes) -> dict[str, str]:
        from tensorflow.core.example import example_pb2

        example = example_pb2.Example()
        try:
            example.ParseFromString(record)
        except Exception as exc:  # protobuf's DecodeError
            raise HoldoutError(f"{self.path}, record 1: not a tf.train.Example ({exc})",
                               fix=_FIX) from exc
        features = example.features.feature
        present = ", ".join(repr(k) for k in sorted(features)) or "none"
        kinds: dict[str, str] = {}
        wanted = ([(self.label_column, "the label", False)]
                  + [(c.name, c.needed_by, c.text) for c in self.columns.values()]
                  + ([(self.weight_column, "the model's weightColumn", False)]
                     if self.weight_column else [])
                  + [(c, "a slice of the policy", True) for c in self.slice_columns])
        for name, needed_by, text in wanted:
            if name not in features:
                raise HoldoutError(f"holdout {self.path}, record 1 has no feature {name!r}, "
                                   f"which feeds {needed_by}; its features: {present}",
                                   fix=f"add a {name!r} feature to every example")
            kind = features[name].WhichOneof("kind")
            if text and kind != "bytes_list" and name not in self.slice_columns:
                raise HoldoutError(f"holdout {self.path}, feature {name!r} is {kind}, but "
                                   f"{needed_by} takes strings (bytes_list)", fix=_FIX)
            if not text and kind == "bytes_list":
                raise HoldoutError(f"holdout {self.path}, feature {name!r} is bytes_list, but "
                                   f"{needed_by} takes numbers (int64_list or float_list)",
                                   fix=_FIX)
            width = self._width(name)
            count = len(getattr(features[name], kind).value) if kind else 0
            if count != width:
                raise HoldoutError(f"holdout {self.path}, record 1, feature {name!r} has {count} "
                                   f"values, but {needed_by} takes {width} per example", fix=_FIX)
            kinds[name] = kind or "missing"
        return kinds

    def _width(self, name: str) -> int:
        return self.columns[name].width if name in self.columns else 1

    def __iter__(self) -> Iterator[HoldoutBatch]:
        if self.fd is None and not self.path.is_file():
            raise HoldoutError(f"holdout {self.path} not found", fix="check the path")
        return prefetched(self._batches, depth=2, name="tfrecord-reader")

    def _batches(self) -> Iterator[HoldoutBatch]:
        with open_holdout_file(self.path, fd=self.fd) as handle:
            stream = _RecordStream(handle, self.chunk_bytes, self.batch_size)
            try:
                yield from self._decoded(stream)
            finally:
                stream.close()

    def _decoded(self, stream: _RecordStream) -> Iterator[HoldoutBatch]:
        from promoter.evaluation import example_codec as codec

        stream.fill()
        first = stream.first_record()
        if first is None:
            raise HoldoutError(f"holdout {self.path} is empty (no records)",
                               fix="write at least one tf.train.Example")
        if isinstance(first, int):
            if first == codec.OK:  # the file ends inside the first record
                raise HoldoutError(
                    f"{self.path} is truncated or corrupt: its {stream.filled} bytes are "
                    "not one complete record", fix="copy the file again; a TFRecord file "
                    "must end on a complete record")
            self._framing_error(first, record=1)
        layout = _Layout(self._kinds(first), self._width, self.batch_size)
        templates = codec.new_templates()
        schema = layout.schema
        while True:
            columns = layout.new_batch()
            rows = 0
            while rows < self.batch_size:
                count, status = stream.frame(self.batch_size - rows)
                if status != codec.OK:
                    self._framing_error(status, record=self.rows + rows + count + 1)
                if count:
                    result = codec.decode_examples(
                        stream.buffer, stream.starts, stream.lengths, count, rows, schema,
                        columns.outputs, templates)
                    if result[0] != codec.OK:
                        self._record_error(result, layout, first_record=self.rows + rows)
                    columns.take_text(stream.buffer, rows, count)
                    rows += count
                if rows < self.batch_size and not stream.fill():
                    if stream.pending:
                        raise HoldoutError(
                            f"{self.path} is truncated or corrupt after record "
                            f"{self.rows + rows}: {stream.pending} bytes at the end are "
                            "not a complete record", fix="copy the file again; a TFRecord "
                            "file must end on a complete record")
                    break
            self.parsed_records = codec.parsed_records(templates)
            if rows == 0:
                break
            yield self._batch(columns.arrays(rows), layout.kind_names)
            if rows < self.batch_size:
                break
        self.digest = stream.digest()

    def _framing_error(self, status: int, *, record: int) -> None:
        from promoter.evaluation import example_codec as codec

        what = {codec.BAD_LENGTH_CRC: "its length field fails its checksum",
                codec.BAD_DATA_CRC: "its data fails its checksum",
                codec.BAD_LENGTH: "its length field is implausible"}.get(status, "unreadable")
        raise HoldoutError(f"{self.path} is truncated or corrupt at record {record}: {what}",
                           fix="copy the file again, or write it again with "
                               "tf.io.TFRecordWriter (uncompressed)")

    def _record_error(self, result: tuple[int, int, int, int, int], layout: _Layout, *,
                      first_record: int) -> None:
        from promoter.evaluation import example_codec as codec

        status, index, feature, kind, count = result
        record = first_record + index + 1
        name = layout.order[feature] if feature >= 0 else None
        where = f"{self.path}, record {record}"
        if status == codec.MISSING:
            raise HoldoutError(f"{where} has no feature {name!r}",
                               fix=f"add a {name!r} feature to every example")
        if status == codec.WRONG_KIND:
            raise HoldoutError(
                f"{where}, feature {name!r} is {codec.KIND_NAMES.get(kind, kind)}, but record "
                f"1 has {codec.KIND_NAMES[int(layout.kinds[feature])]}",
                fix="every example needs every feature with the same type as in the first "
                    "record")
        if status == codec.WRONG_COUNT:
            raise HoldoutError(
                f"{where}, feature {name!r} has {count} values, but {layout.widths[feature]} "
                "are needed per example", fix=_FIX)
        raise HoldoutError(f"{where} is not a valid tf.train.Example"
                           + (f" (in feature {name!r})" if name else ""),
                           fix="write the file with tf.io.TFRecordWriter from "
                               "tf.train.Example.SerializeToString()")

    def _batch(self, parsed: dict[str, np.ndarray], kinds: dict[str, str]) -> HoldoutBatch:
        rows = parsed[self.label_column].shape[0]
        records = np.arange(self.rows + 1, self.rows + rows + 1, dtype=np.int64)
        labels = parsed[self.label_column].astype(np.float64)
        if not np.isfinite(labels).all():
            bad = ~np.isfinite(labels)
        elif self.label_kind == "binary":
            bad = (labels != 0) & (labels != 1)
        elif self.label_kind == "class":
            bad = (labels != np.round(labels)) | (labels < 0)
        else:
            bad = np.zeros(rows, bool)
        if bad.any():
            first = int(np.argmax(bad))
            raise HoldoutError(f"{self.path}, record {int(records[first])}, feature "
                               f"{self.label_column!r}: label {labels[first]!r} is not valid "
                               f"for {self.label_kind} labels", fix="fix the label")
        numeric: dict[str, np.ndarray] = {}
        text: dict[str, np.ndarray] = {}
        for name, kind in kinds.items():
            if name == self.label_column:
                continue
            values = parsed[name]
            if kind == "bytes_list":  # already decoded to str
                text[name] = values
                continue
            if name in self.slice_columns:
                text[name] = values.astype(str).astype(object)
            # float32 features stay float32 (no copy); the model's dtype cast happens in feed.
            array = values if values.dtype.kind == "f" else values.astype(np.float64)
            if not np.isfinite(array).all():
                first = int(np.argmax(~np.isfinite(array.reshape(rows, -1)).any(axis=1)))
                raise HoldoutError(f"{self.path}, record {int(records[first])}, feature "
                                   f"{name!r}: {array[first]!r} is not a finite number",
                                   fix="fill every feature with a finite number")
            numeric[name] = array
        weights = numeric.get(self.weight_column) if self.weight_column else None
        if weights is not None and (weights < 0).any():
            first = int(np.argmax(weights < 0))
            raise HoldoutError(f"{self.path}, record {int(records[first])}, feature "
                               f"{self.weight_column!r}: weight {weights[first]!r} is negative",
                               fix="example weights must be finite and non-negative")
        first_row = self.rows
        self.rows += rows
        return HoldoutBatch(lines=records,
                            labels=labels if self.label_kind == "real"
                            else labels.astype(np.int64),
                            numeric=numeric, text=text, weights=weights, first_row=first_row)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def write_examples(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Write `columns` (name -> 1-D array, one value per example) as a TFRecord file of
    tf.train.Example; for tests, benchmarks and the demo. Integers become int64_list, floats
    float_list, strings bytes_list."""
    import tensorflow as tf

    names = list(columns)
    rows = len(next(iter(columns.values())))
    kinds = {}
    for name in names:
        kind = np.asarray(columns[name]).dtype.kind
        kinds[name] = "int" if kind in "iub" else "float" if kind == "f" else "bytes"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(rows):
            feature = {}
            for name in names:
                value = columns[name][i]
                if kinds[name] == "int":
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(
                        value=[int(value)]))
                elif kinds[name] == "float":
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(
                        value=[float(value)]))
                else:
                    feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                        value=[str(value).encode()]))
            writer.write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())
