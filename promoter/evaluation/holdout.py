"""Read a CSV holdout in bounded-memory batches (`holdout_feeds` turns them into a signature's
inputs).

The file must have a header. Columns are matched to the signature's inputs by name; the label
column holds 0/1; other columns are ignored. Every problem is a HoldoutError that names the
file, and the line and column where there is one, so a user can open the file at that spot.

The reader hashes the bytes it parses (sha256), so the report's holdout digest is the digest of
exactly the data that was evaluated, read once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from promoter.errors import HoldoutError

DEFAULT_BATCH_SIZE = 1024
_EMPTY_FIX = ("write a CSV with a header row naming the label column and the model's inputs, "
              "then one row per example")


@dataclass(frozen=True, slots=True)
class ColumnRequest:
    """A holdout column some model input needs."""

    name: str
    """Column (and input) name."""
    text: bool
    """Feed the raw cell text (string inputs) instead of a number."""
    needed_by: str
    """What needs it, for messages, e.g. "input 'age' (float32, shape [None, 1]) of the
    candidate's signature 'serving_default'"."""
    width: int = 1
    """Values per row: d for a vector input [None, d] (TFRecord holdouts only)."""


@dataclass(frozen=True, slots=True, eq=False)
class HoldoutBatch:
    """Consecutive rows of the holdout, parsed."""

    lines: np.ndarray
    """The file line each row ends on (1 is the header), int64."""
    labels: np.ndarray
    """0/1, int64."""
    numeric: Mapping[str, np.ndarray]
    """Numeric columns as finite floats (float64 from CSV; float32 TFRecord features stay
    float32), [N] or [N, d] for a vector feature."""
    text: Mapping[str, np.ndarray]
    """Text columns as arrays of str (dtype object); slice columns are here too."""
    weights: np.ndarray | None = None
    """Example weights (finite, >= 0), float64, when a weight column is configured."""
    first_row: int = 0
    """Row number (0-based, over the whole holdout) of this batch's first row."""

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])


class HoldoutReader:
    """Iterate over a CSV holdout in batches; `digest` and `rows` are set once it is read.

    Usage: `reader = HoldoutReader(...); for batch in reader: ...; reader.digest`.
    Iterating raises HoldoutError on the first problem; a holdout without data rows is one.
    """

    def __init__(self, path: Path, *, label_column: str, columns: Sequence[ColumnRequest],
                 batch_size: int = DEFAULT_BATCH_SIZE, label_kind: str = "binary",
                 weight_column: str | None = None,
                 slice_columns: Sequence[str] = (), fd: int | None = None) -> None:
        """`label_kind` is `binary` (0/1), `class` (an index 0..K-1) or `real` (any finite
        number); `slice_columns` are read as text for per-slice metrics; `fd`: a descriptor
        of `path` open for reading, read instead of opening `path` (`open_holdout_file`)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.path = path
        self.fd = fd
        self.label_column = label_column
        self.columns: dict[str, ColumnRequest] = {}
        """Needed columns by name (the first request of a name, for messages)."""
        for column in columns:
            self.columns.setdefault(column.name, column)
            if column.width > 1:
                raise HoldoutError(
                    f"{column.needed_by} takes {column.width} values per row, but a CSV column "
                    f"({path}) holds one", fix="use a TFRecord holdout with a feature of "
                    f"{column.width} values, or export one input per feature")
        for name in slice_columns:
            self.columns.setdefault(name, ColumnRequest(name=name, text=True,
                                                        needed_by="a slice of the policy"))
        if weight_column is not None:
            self.columns.setdefault(weight_column, ColumnRequest(
                name=weight_column, text=False, needed_by="the model's weightColumn"))
        self.text_columns = {c.name for c in columns if c.text} | set(slice_columns)
        self.numeric_columns = {c.name for c in columns if not c.text}
        self.label_kind = label_kind
        self.weight_column = weight_column
        self.batch_size = batch_size
        self.rows = 0
        """Data rows read so far."""
        self.digest: str | None = None
        """`sha256:<hex>` of the file's bytes, once every row has been read."""

    def __iter__(self) -> Iterator[HoldoutBatch]:
        hasher = hashlib.sha256()
        with open_holdout_file(self.path, fd=self.fd) as raw:
            text = io.TextIOWrapper(io.BufferedReader(_HashingReader(raw, hasher)),
                                    encoding="utf-8-sig", newline="")
            reader = csv.reader(text, strict=True)
            try:
                header = next(reader, None)
                if header is None:
                    raise HoldoutError(f"holdout {self.path} is empty", fix=_EMPTY_FIX)
                self.start(header)
                yield from self._batches(reader, offset=0)
                self.finish()
            except UnicodeDecodeError as exc:
                raise HoldoutError(f"{self.path}, near line {reader.line_num + 1}: not UTF-8 "
                                   f"text ({exc.reason})",
                                   fix="save the holdout as UTF-8 CSV") from exc
            except csv.Error as exc:
                raise _csv_error(self.path, reader.line_num, exc) from exc
        self.digest = f"sha256:{hasher.hexdigest()}"

    def start(self, header: list[str]) -> None:
        """Check `header` (the first row's cells) against the columns needed; remember where
        each column is. Called by `__iter__`, or by a faster reader that hands this one the
        blocks it could not read (`block`)."""
        self.positions = self._column_positions([cell.strip() for cell in header])
        self.width = len(header)

    def block(self, text: str, *, first_line: int) -> Iterator[HoldoutBatch]:
        """Parse `text`, whole data rows whose first line is line `first_line` of the file,
        after `start`: the exact parser's batches, or its HoldoutError naming the line."""
        yield from self.lines(io.StringIO(text, newline=""), first_line=first_line)

    def lines(self, lines: Iterable[str], *, first_line: int) -> Iterator[HoldoutBatch]:
        """As `block`, over `lines` (split where the file's lines end, as a text file in
        newline="" mode splits them)."""
        reader = csv.reader(lines, strict=True)
        try:
            yield from self._batches(reader, offset=first_line - 1)
        except csv.Error as exc:
            raise _csv_error(self.path, first_line - 1 + reader.line_num, exc) from exc

    def finish(self) -> None:
        """Raise HoldoutError if no data row was read."""
        if self.rows == 0:
            raise HoldoutError(f"holdout {self.path} has a header but no data rows",
                               fix="add rows, or point the environment at the right file")

    def _batches(self, reader: Any, *, offset: int) -> Iterator[HoldoutBatch]:
        """Batches of `reader`'s rows, `offset` file lines after the start of the file."""
        positions, width = self.positions, self.width
        pending: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            line_num = offset + reader.line_num
            if not row:
                continue  # a blank line, e.g. at the end of the file
            if len(row) != width:
                raise HoldoutError(
                    f"{self.path}, line {line_num}: {len(row)} fields, but the header has "
                    f"{width}", fix="give every row one value per header column")
            pending.append(row)
            lines.append(line_num)
            if len(pending) == self.batch_size:
                yield self._parse(pending, lines, positions)
                pending, lines = [], []
        if pending:
            yield self._parse(pending, lines, positions)

    def _column_positions(self, header: list[str]) -> dict[str, int]:
        seen: dict[str, int] = {}
        for index, name in enumerate(header):
            if name in seen:
                raise HoldoutError(f"{self.path}, line 1: column {name!r} appears twice",
                                   fix="give every column a unique name")
            seen[name] = index
        require_label_column(self.path, header, self.label_column)
        present = ", ".join(repr(name) for name in header)
        for column in self.columns.values():
            if column.name not in seen:
                raise HoldoutError(
                    f"holdout {self.path} has no column {column.name!r}, which feeds "
                    f"{column.needed_by}; its columns: {present}",
                    fix=f"add a {column.name!r} column to the holdout")
        return seen

    def _parse(self, rows: list[list[str]], lines: list[int],
               positions: dict[str, int]) -> HoldoutBatch:
        line_array = np.asarray(lines, dtype=np.int64)
        labels = self._numbers(rows, line_array, positions[self.label_column],
                               self.label_column)
        if self.label_kind == "binary":
            bad = (labels != 0) & (labels != 1)
            want, fix = "0 or 1", "binary classification needs labels 0 and 1 in the label column"
        elif self.label_kind == "class":
            bad = (labels != np.round(labels)) | (labels < 0)
            want, fix = ("a class index (0, 1, 2, ...)",
                         "multi-class classification needs class indices in the label column")
        else:
            bad = np.zeros(labels.shape, bool)
            want = fix = ""
        if bad.any():
            first = int(np.argmax(bad))
            value = rows[first][positions[self.label_column]]
            raise HoldoutError(
                f"{self.path}, line {lines[first]}, column {self.label_column!r}: label "
                f"{value!r} is not {want}", fix=fix)
        weights = None
        if self.weight_column is not None:
            weights = self._numbers(rows, line_array, positions[self.weight_column],
                                    self.weight_column)
            if (weights < 0).any():
                first = int(np.argmax(weights < 0))
                raise HoldoutError(
                    f"{self.path}, line {lines[first]}, column {self.weight_column!r}: weight "
                    f"{rows[first][positions[self.weight_column]]!r} is negative",
                    fix="example weights must be finite and non-negative")
        numeric: dict[str, np.ndarray] = {}
        text: dict[str, np.ndarray] = {}
        for name in self.text_columns:
            text[name] = np.array([row[positions[name]] for row in rows], dtype=object)
        for name in self.numeric_columns:
            numeric[name] = self._numbers(rows, line_array, positions[name], name)
        first_row = self.rows
        self.rows += len(rows)
        return HoldoutBatch(lines=line_array,
                            labels=labels if self.label_kind == "real"
                            else labels.astype(np.int64),
                            numeric=numeric, text=text, weights=weights, first_row=first_row)

    def _numbers(self, rows: list[list[str]], lines: np.ndarray, position: int,
                 name: str) -> np.ndarray:
        cells = [row[position] for row in rows]
        try:
            values = np.array(cells, dtype=np.float64)
        except ValueError:
            values = None
        if values is not None and np.isfinite(values).all():
            return values
        for index, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                problem = "is not a number" if cell.strip() else "is empty"
            else:
                if np.isfinite(value):
                    continue
                problem = "is not a finite number"
            raise HoldoutError(
                f"{self.path}, line {int(lines[index])}, column {name!r}: {cell!r} {problem}",
                fix="fill every feature and label cell with a number")
        raise AssertionError("unreachable: a cell failed to parse but none was found")


def open_holdout_file(path: Path, *, fd: int | None = None) -> IO[bytes]:
    """`path` opened for reading bytes; HoldoutError if it is missing or unreadable.

    With `fd`, a descriptor of `path` open for reading (the confined worker's, from its
    parent: it may not open the path itself), a duplicate of `fd` read from the start
    instead; the caller's `fd` stays open. `path` then only names the file in messages.
    """
    if fd is not None:
        try:
            own = os.dup(fd)
            os.lseek(own, 0, os.SEEK_SET)
        except OSError as exc:
            raise HoldoutError(f"cannot read holdout {path} through descriptor {fd}: "
                               f"{exc.strerror}", fix="report this as a bug in promoter") from exc
        return os.fdopen(own, "rb")
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise HoldoutError(f"holdout {path} not found",
                           fix="check the path (relative paths are resolved against "
                               "promoter.yaml's directory)") from None
    except OSError as exc:
        raise HoldoutError(f"cannot read holdout {path}: {exc.strerror}") from exc


def read_header(path: Path) -> list[str]:
    """The column names in `path`'s header line, for a cheap check before any model loads.

    Raises HoldoutError if the file is missing, unreadable or empty. For a Parquet file
    (`is_parquet`), the names in its schema, read from its footer.
    """
    if is_parquet(path):
        return _parquet_columns(path)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError:
        raise HoldoutError(f"holdout {path} not found",
                           fix="check the path (relative paths in environment files are "
                               "resolved against promoter.yaml's directory)") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise HoldoutError(f"cannot read holdout {path}: {exc}",
                           fix="pass a UTF-8 CSV file with a header row") from exc
    if header is None:
        raise HoldoutError(f"holdout {path} is empty", fix=_EMPTY_FIX)
    return [cell.strip() for cell in header]


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise HoldoutError(f"holdout {path} not found",
                           fix="check the path (relative paths in environment files are "
                               "resolved against promoter.yaml's directory)")
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise HoldoutError(f"holdout {path} is not a Parquet file, or is truncated ({first})",
                           fix="write the holdout with pandas.DataFrame.to_parquet or "
                               "pyarrow.parquet.write_table") from exc


def _csv_error(path: Path, line: int, exc: csv.Error) -> HoldoutError:
    """The reader's complaint in words: a field over the reader's size limit is not a
    quoting problem (unless an unclosed quote ran on), so it gets its own message."""
    if "field larger than field limit" in str(exc):
        limit = csv.field_size_limit()
        return HoldoutError(
            f"{path}, line {line}: a field is longer than {limit:,} characters, the most the "
            "CSV reader accepts in one field",
            fix="shorten that value (or split it into columns); if the line should be short, "
                "look for an opening quote that is never closed before it")
    return HoldoutError(f"{path}, line {line}: not valid CSV ({exc})",
                        fix="check the quoting on that line")


def require_label_column(path: Path, header: list[str], label_column: str) -> None:
    """Raise HoldoutError unless `header` (of `path`) has `label_column`."""
    if label_column not in header:
        present = ", ".join(repr(name) for name in header)
        raise HoldoutError(
            f"holdout {path} has no label column {label_column!r}; its columns: {present}",
            fix="set `labelColumn` for the model in promoter.yaml (or pass --label-column)")


class _HashingReader(io.RawIOBase):
    """A raw binary stream that feeds every byte read through `hasher`."""

    def __init__(self, raw: IO[bytes], hasher: Any) -> None:
        super().__init__()
        self._raw = raw
        self._hasher = hasher

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._hasher.update(data)
        return len(data)


TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrec")


PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path: Path) -> bool:
    """Whether `path` names a Parquet holdout (by its suffix)."""
    return path.suffix.lower() in PARQUET_SUFFIXES


def is_tfrecord(path: Path) -> bool:
    """Whether `path` names a TFRecord holdout (by its suffix; `.gz` is not supported)."""
    return path.suffix.lower() in TFRECORD_SUFFIXES
