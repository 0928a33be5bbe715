"""Read a TFRecord holdout of `tf.train.Example`s (TFX's format) in bounded-memory batches.

Runs in the evaluation worker only (it uses tf.data). Features are matched to the signature's
inputs, the label, the weight and slice columns by name; each must be a scalar feature (one
value per example). The first record decides each feature's kind (int64, float or bytes); a
later record with another kind or without the feature is a HoldoutError naming it, as is a
truncated or corrupt file (tf.data checks every record's CRC).

Records are parsed by `tf.io.parse_example` on whole batches in tf.data's threads, so the file
is streamed: memory holds a few batches whatever the file size. The digest is sha256 of the
file's bytes, read once more after parsing (at disk speed, in 1 MiB chunks).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import ColumnRequest, HoldoutBatch

_FIX = "write the holdout with one scalar feature per model input, plus the label"


class TFRecordHoldoutReader:
    """Iterate over a TFRecord holdout in batches; `digest` and `rows` are set once read."""

    def __init__(self, path: Path, *, label_column: str, columns: Sequence[ColumnRequest],
                 batch_size: int, label_kind: str = "binary", weight_column: str | None = None,
                 slice_columns: Sequence[str] = ()) -> None:
        self.path = path
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

    def _kinds(self, tf: Any) -> dict[str, str]:
        try:
            first = next(iter(tf.data.TFRecordDataset(str(self.path)).take(1)), None)
        except tf.errors.OpError as exc:
            raise HoldoutError(f"{self.path} is not a readable TFRecord file: "
                               f"{_first_line(exc)}", fix="check that the file is complete "
                               "(not truncated) and not compressed") from exc
        if first is None:
            raise HoldoutError(f"holdout {self.path} is empty (no records)",
                               fix="write at least one tf.train.Example")
        example = tf.train.Example()
        try:
            example.ParseFromString(first.numpy())
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
            width = self.columns[name].width if name in self.columns else 1
            count = len(getattr(features[name], kind).value) if kind else 0
            if count != width:
                raise HoldoutError(f"holdout {self.path}, record 1, feature {name!r} has {count} "
                                   f"values, but {needed_by} takes {width} per example", fix=_FIX)
            kinds[name] = kind or "missing"
        return kinds

    def __iter__(self) -> Iterator[HoldoutBatch]:
        import tensorflow as tf

        if not self.path.is_file():
            raise HoldoutError(f"holdout {self.path} not found", fix="check the path")
        kinds = self._kinds(tf)
        dtypes = {"int64_list": tf.int64, "float_list": tf.float32, "bytes_list": tf.string}
        spec = {name: tf.io.FixedLenFeature(
                    [] if self._width(name) == 1 else [self._width(name)], dtypes[kind])
                for name, kind in kinds.items()}
        dataset = (tf.data.TFRecordDataset(str(self.path), buffer_size=1 << 22)
                   .batch(self.batch_size)
                   .map(lambda records: tf.io.parse_example(records, spec),
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                   .prefetch(2))
        iterator = iter(dataset)
        while True:
            try:
                parsed = next(iterator)
            except StopIteration:
                break
            except tf.errors.DataLossError as exc:
                raise HoldoutError(
                    f"{self.path} is truncated or corrupt after record {self.rows}: "
                    f"{_first_line(exc)}", fix="copy the file again; a TFRecord file must "
                    "end on a complete record") from exc
            except tf.errors.OpError as exc:
                raise HoldoutError(
                    f"{self.path}, records {self.rows + 1}-{self.rows + self.batch_size}: "
                    f"{_first_line(exc)}", fix="every example needs every feature, with the "
                    "same type as in the first record, one value each") from exc
            yield self._batch({k: v.numpy() for k, v in parsed.items()}, kinds)
        if self.rows == 0:
            raise HoldoutError(f"holdout {self.path} has no records", fix=_FIX)
        hasher = hashlib.sha256()
        with self.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(chunk)
        self.digest = f"sha256:{hasher.hexdigest()}"

    def _width(self, name: str) -> int:
        return self.columns[name].width if name in self.columns else 1

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
            if kind == "bytes_list":
                text[name] = np.array([v.decode("utf-8", "replace") for v in values],
                                      dtype=object)
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
