"""Read a Parquet holdout in bounded-memory batches, from a read-only file descriptor.

Columns are matched to the model's inputs, the label, the weight and slice columns by name;
other columns are never read. Numbers may be stored as any integer, floating or boolean type
(they are fed as float64, like CSV cells); text inputs need a string column; slice columns
may be strings, integers or booleans (their values become text). A column of another type, a
missing column, a null, a value that is not finite, or a bad label or weight is a
HoldoutError naming the file, the column, the row (1-based: `HoldoutBatch.lines` holds row
numbers for Parquet) and the fix. A file that is not Parquet, or is truncated or damaged, is
one too.

The worker may be handed the file as a descriptor opened read-only by its parent (`fd`), so a
confined worker need not be allowed to open any path: pyarrow reads row groups through it,
streaming record batches (a row group is never held whole), multithreaded. The digest is the
sha256 of the file's bytes, hashed by a second thread while the rows are read; the file's
size and modification time are compared before and after, so a file changed while it was
evaluated is an error rather than a digest of other bytes than those scored.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import DEFAULT_BATCH_SIZE, ColumnRequest, HoldoutBatch
from promoter.evaluation.prefetch import prefetched

_WRITE_FIX = ("write the holdout with pandas.DataFrame.to_parquet or "
              "pyarrow.parquet.write_table; a CSV or TFRecord holdout needs its own suffix "
              "(.csv, .tfrecord)")


class ParquetHoldoutReader:
    """Iterate over a Parquet holdout in batches; `digest` and `rows` are set once read.

    `fd`, when given, is a descriptor of `path` open for reading (the reader duplicates it and
    never closes the caller's); `path` then only names the file in messages.
    """

    read_rows = 1 << 16
    """Rows pyarrow decodes at a time (split into `batch_size` batches), at least
    `batch_size`."""

    def __init__(self, path: Path, *, label_column: str, columns: Sequence[ColumnRequest],
                 batch_size: int = DEFAULT_BATCH_SIZE, label_kind: str = "binary",
                 weight_column: str | None = None, slice_columns: Sequence[str] = (),
                 fd: int | None = None) -> None:
        self.path = path
        self.fd = fd
        self.label_column = label_column
        self.batch_size = batch_size
        self.label_kind = label_kind
        self.weight_column = weight_column
        self.slice_columns = list(slice_columns)
        self.numeric: dict[str, str] = {label_column: "the label column"}
        """Columns read as numbers, with what needs each (for messages)."""
        self.text: dict[str, str] = {}
        for column in columns:
            if column.width > 1:
                raise HoldoutError(
                    f"{column.needed_by} takes {column.width} values per row, but a Parquet "
                    f"column ({path}) holds one here", fix="use a TFRecord holdout with a "
                    f"feature of {column.width} values, or export one input per feature")
            (self.text if column.text else self.numeric).setdefault(column.name,
                                                                    column.needed_by)
        if weight_column is not None:
            self.numeric.setdefault(weight_column, "the model's weightColumn")
        for name in self.slice_columns:
            self.text.setdefault(name, "a slice of the policy")
        self.rows = 0
        self.digest: str | None = None

    def __iter__(self) -> Iterator[HoldoutBatch]:
        fd = os.dup(self.fd) if self.fd is not None else self._open()
        with os.fdopen(fd, "rb") as handle:
            before = os.fstat(fd)
            hashed: dict[str, Any] = {}
            hasher = threading.Thread(target=_hash, args=(fd, before.st_size, hashed),
                                      name="parquet-digest", daemon=True)
            hasher.start()
            try:
                parquet = self._parquet(handle)
                yield from prefetched(lambda: self._batches(parquet), name="parquet-reader")
            finally:
                hasher.join()
            after = os.fstat(fd)
        if "error" in hashed:
            raise HoldoutError(f"cannot read holdout {self.path}: {hashed['error']}")
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            raise HoldoutError(f"holdout {self.path} changed while it was evaluated",
                               fix="evaluate a copy that nothing writes to")
        if self.rows == 0:
            raise HoldoutError(f"holdout {self.path} has no rows",
                               fix="add rows, or point the environment at the right file")
        self.digest = f"sha256:{hashed['digest']}"

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise HoldoutError(f"holdout {self.path} not found",
                               fix="check the path (relative paths are resolved against "
                                   "promoter.yaml's directory)") from None
        except OSError as exc:
            raise HoldoutError(f"cannot read holdout {self.path}: {exc.strerror}") from exc

    def _parquet(self, handle: Any) -> Any:
        """The opened file, its columns checked against what the models need."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(pa.PythonFile(handle, mode="r"))
        except (pa.ArrowException, OSError) as exc:
            raise HoldoutError(f"holdout {self.path} is not a Parquet file, or is truncated "
                               f"({_first_line(exc)})", fix=_WRITE_FIX) from exc
        schema = parquet.schema_arrow
        names = schema.names
        present = ", ".join(repr(n) for n in names)
        for name, needed_by in [*self.numeric.items(), *self.text.items()]:
            if names.count(name) != 1:
                raise HoldoutError(
                    f"holdout {self.path} has " + ("no column" if name not in names
                                                   else "two columns") + f" {name!r}, "
                    f"which feeds {needed_by}; its columns: {present}",
                    fix=f"write exactly one {name!r} column" if name in names
                    else f"add a {name!r} column to the holdout"
                    + (" (or set `labelColumn` for the model in promoter.yaml, or pass "
                       "--label-column)" if name == self.label_column else ""))
            kind = schema.field(name).type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            if name in self.numeric and not _is_number(pa, kind):
                raise HoldoutError(
                    f"holdout {self.path}: column {name!r} is {kind}, but {needed_by} needs "
                    "a number", fix=f"write {name!r} as a float or integer column")
            if name in self.text and not (
                    pa.types.is_string(kind) or pa.types.is_large_string(kind)
                    or (name in self.slice_columns and _is_number(pa, kind))):
                raise HoldoutError(
                    f"holdout {self.path}: column {name!r} is {kind}, but {needed_by} needs "
                    "text", fix=f"write {name!r} as a string column")
        return parquet

    def _batches(self, parquet: Any) -> Iterator[HoldoutBatch]:
        import pyarrow as pa

        wanted = sorted({*self.numeric, *self.text})
        first = 0
        # One row group at a time: over the whole file, pyarrow's reader reads ahead into
        # later row groups, so memory grew with the file (this reader alone, 2 M rows of 33
        # float columns in 4 row groups: a 600 MiB peak, 414 MiB a row group at a time).
        groups = iter(range(parquet.num_row_groups))
        batches: Iterator[Any] = iter(())
        while True:
            try:
                record_batch = next(batches, None)
                while record_batch is None:
                    group = next(groups, None)
                    if group is None:
                        return
                    batches = parquet.iter_batches(
                        batch_size=max(self.read_rows, self.batch_size), columns=wanted,
                        use_threads=True, row_groups=[group])
                    record_batch = next(batches, None)
            except (pa.ArrowException, OSError) as exc:
                raise HoldoutError(f"{self.path}, after row {first}: cannot be read "
                                   f"({_first_line(exc)}); the file is damaged or truncated",
                                   fix=_WRITE_FIX) from exc
            columns = self._columns(record_batch, first=first)
            for start in range(0, record_batch.num_rows, self.batch_size):
                stop = min(start + self.batch_size, record_batch.num_rows)
                labels = columns[self.label_column][start:stop]
                yield HoldoutBatch(
                    lines=np.arange(first + start + 1, first + stop + 1, dtype=np.int64),
                    labels=labels if self.label_kind == "real" else labels.astype(np.int64),
                    numeric={n: columns[n][start:stop] for n in self.numeric
                             if n not in (self.label_column, self.weight_column)},
                    text={n: columns[f"text:{n}"][start:stop] for n in self.text},
                    weights=None if self.weight_column is None
                    else columns[self.weight_column][start:stop],
                    first_row=first + start)
            first += record_batch.num_rows
            self.rows = first

    def _columns(self, batch: Any, *, first: int) -> dict[str, np.ndarray]:
        """Numbers as float64 and text as str, checked; keyed by name (`text:` + name for
        text)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        out: dict[str, np.ndarray] = {}
        for name in {*self.numeric, *self.text}:
            column = batch.column(name)
            if column.null_count:
                row = first + 1 + int(np.argmax(column.is_null().to_numpy(
                    zero_copy_only=False)))
                raise HoldoutError(f"{self.path}, row {row}, column {name!r}: the value is "
                                   "missing (null)", fix="fill every feature and label cell")
            if name in self.text:
                if not pa.types.is_string(column.type):
                    column = pc.cast(column, pa.string())  # a dictionary, or a slice's numbers
                out[f"text:{name}"] = column.to_numpy(zero_copy_only=False).astype(object)
            if name in self.numeric:
                out[name] = self._numbers(name, column, first=first)
        return out

    def _numbers(self, name: str, column: Any, *, first: int) -> np.ndarray:
        values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        if name == self.label_column:
            bad, want, fix = _bad_labels(values, self.label_kind)
        elif name == self.weight_column:
            bad, want = ~np.isfinite(values) | (values < 0), "a finite, non-negative weight"
            fix = "example weights must be finite and non-negative"
        else:
            bad, want = ~np.isfinite(values), "a finite number"
            fix = "fill every feature and label cell with a number"
        if bad.any():
            index = int(np.argmax(bad))
            raise HoldoutError(f"{self.path}, row {first + index + 1}, column {name!r}: "
                               f"{float(values[index])!r} is not {want}", fix=fix)
        return values


def _bad_labels(labels: np.ndarray, kind: str) -> tuple[np.ndarray, str, str]:
    bad = ~np.isfinite(labels)
    if kind == "binary":
        return (bad | ((labels != 0) & (labels != 1)), "0 or 1",
                "binary classification needs labels 0 and 1 in the label column")
    if kind == "class":
        return (bad | (labels != np.round(labels)) | (labels < 0),
                "a class index (0, 1, 2, ...)",
                "multi-class classification needs class indices in the label column")
    return bad, "a finite number", "fill every label cell with a number"


def _is_number(pa: Any, kind: Any) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_boolean(kind))


def _hash(fd: int, size: int, out: dict[str, Any]) -> None:
    """sha256 of the first `size` bytes of `fd` (positional reads: the parser's file offset
    is untouched), into `out["digest"]`, or the error into `out["error"]`."""
    hasher = hashlib.sha256()
    offset = 0
    try:
        while offset < size:
            data = os.pread(fd, min(8 << 20, size - offset), offset)
            if not data:
                break
            hasher.update(data)
            offset += len(data)
    except OSError as exc:
        out["error"] = exc.strerror
        return
    out["digest"] = hasher.hexdigest()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
