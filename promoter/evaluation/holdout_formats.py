"""Open a holdout file with the reader its format needs: CSV (read by pyarrow, checked by the
exact parser where pyarrow cannot be trusted: `arrow_csv`), Parquet (`parquet_holdout`), or
TFRecord of tf.train.Example.

Apart from `promoter.evaluation.holdout` because the TFRecord reader
(`promoter.evaluation.tfrecord`) builds on that module's batches and column requests: the
choice between the two readers sits above both, so neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from promoter.evaluation.arrow_csv import ArrowCSVReader
from promoter.evaluation.holdout import (
    DEFAULT_BATCH_SIZE,
    ColumnRequest,
    is_parquet,
    is_tfrecord,
)


def batch_size_for(path: Path) -> int:
    """Rows per batch the worker reads and scores `path` in: the size that measured fastest
    for its format (`benchmarks/formats.py --sweep`). TFRecord and Parquet batches are
    decoded into columns without per-row Python work, so they can be as large as the model's
    best batch: for Parquet 65,536 rows measured 3.45x the naive pandas script, 8,192 rows
    1.01x, 131,072 rows 1.64x (one loaded run). CSV batches stay at 8,192 rows."""
    return 65536 if is_tfrecord(path) or is_parquet(path) else 8192


def open_holdout(path: Path, *, label_column: str, columns: Sequence[ColumnRequest],
                 batch_size: int = DEFAULT_BATCH_SIZE, label_kind: str = "binary",
                 weight_column: str | None = None, slice_columns: Sequence[str] = (),
                 fd: int | None = None) -> Any:
    """A reader of `path` in batches: CSV, Parquet, or TFRecord of tf.train.Example (by
    suffix). All yield `HoldoutBatch`es and set `rows` and `digest` once read. `fd`: a
    descriptor of the file open for reading, which every reader then reads through instead
    of opening `path` (the confined worker then needs no right to open the path; `path` only
    names the file in messages). The TFRecord reader imports TensorFlow, so only the worker
    calls this for TFRecord files."""
    kwargs: dict[str, Any] = {"label_column": label_column, "columns": columns,
                              "batch_size": batch_size, "label_kind": label_kind,
                              "weight_column": weight_column, "slice_columns": slice_columns,
                              "fd": fd}
    if is_tfrecord(path):
        from promoter.evaluation.tfrecord import TFRecordHoldoutReader

        return TFRecordHoldoutReader(path, **kwargs)
    if is_parquet(path):
        from promoter.evaluation.parquet_holdout import ParquetHoldoutReader

        return ParquetHoldoutReader(path, **kwargs)
    return ArrowCSVReader(path, **kwargs)
