"""Read a CSV holdout with pyarrow's multithreaded CSV parser, exactly as `HoldoutReader` would.

`HoldoutReader` (Python's `csv` module) is the exact parser: it decides what a valid holdout
is and names the file, line and column of every problem. This reader gives the same batches
faster (benchmarks/formats.py): it reads the file itself in blocks of `chunk_bytes`
(hashing every byte it reads, so the digest is of exactly the data evaluated), cuts each block
after its last complete record, and hands the block to `pyarrow.csv.open_csv`, typed from the
columns the models need (float64 for numbers, string for text; every other column is skipped
unconverted), with use_threads. pyarrow's errors do not carry line numbers, and pyarrow
accepts some things the exact parser refuses (text after a closing quote), so a block goes to
the exact parser instead whenever:

- pyarrow fails on it, or returns another number of rows than the block has records;
- a value is missing, not a finite number, or not a valid label or weight;
- it holds a blank line (other than at the end of the file) or a carriage return that ends a
  line on its own (pyarrow then counts other rows than the block has line feeds), a quote the
  exact parser could read otherwise than pyarrow, or a run of `csv.field_size_limit()` bytes
  without a line break (where a field could be over the limit).

The exact parser then raises the HoldoutError naming the line and column (or, where the block
was only unusual, returns its rows). Rows therefore end on consecutive lines in a block that
pyarrow read, which is how their line numbers are known without a per-row pass.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import (
    DEFAULT_BATCH_SIZE,
    ColumnRequest,
    HoldoutBatch,
    HoldoutReader,
    open_holdout_file,
)
from promoter.evaluation.prefetch import prefetched

_BOM = b"\xef\xbb\xbf"
_MAX_RECORD_BYTES = 64 << 20  # the default of ArrowCSVReader.record_limit_bytes
"""A record not ended within this many bytes goes to the exact parser (which refuses a field
over the csv module's limit), so an unclosed quote cannot make the reader hold the file."""


@dataclass(frozen=True, slots=True, eq=False)
class _Block:
    """Whole records of the file, starting on line `first_line`, and what became of them."""

    first_line: int
    data: bytes
    """The block's bytes, for the exact parser (empty once pyarrow read them)."""
    columns: dict[str, np.ndarray] | None = None
    """By column name, when pyarrow read the block; None: it goes to the exact parser."""
    rows: int = 0
    rest: bool = False
    """This block and every later one go to the exact parser as one stream: the block holds
    a quote the two parsers may read differently, so where it was cut may not be where a
    record ends (a quote inside an unquoted field counts in the cut's quote parity)."""


class ArrowCSVReader:
    """Iterate over a CSV holdout in batches; `digest` and `rows` are set once it is read.

    The same arguments, batches and errors as `HoldoutReader` (see the module docstring).
    """

    chunk_bytes = 6 << 20
    """Bytes read at a time (more for a record longer than this). Below the worker's 8 MiB
    mmap threshold (`worker.keep_freed_memory`), so each block's bytes reuse heap memory:
    16 MiB blocks were each a fresh mmap, faulted in page by page (10 M rows: 1.5 s slower
    with that threshold), and held 128 MiB more at the peak."""
    record_limit_bytes = _MAX_RECORD_BYTES
    """Read on for a record up to this long; beyond, the exact parser refuses it."""

    def __init__(self, path: Path, *, label_column: str, columns: Sequence[ColumnRequest],
                 batch_size: int = DEFAULT_BATCH_SIZE, label_kind: str = "binary",
                 weight_column: str | None = None, slice_columns: Sequence[str] = (),
                 fd: int | None = None) -> None:
        """`fd`: a descriptor of `path` open for reading, read instead of opening `path`
        (`open_holdout_file`)."""
        self.fd = fd
        self._exact = HoldoutReader(path, label_column=label_column, columns=columns,
                                    batch_size=batch_size, label_kind=label_kind,
                                    weight_column=weight_column, slice_columns=slice_columns)
        self.path = path
        self.batch_size = batch_size
        self.rows = 0
        """Data rows read so far."""
        self.digest: str | None = None
        """`sha256:<hex>` of the file's bytes, once every row has been read."""
        numeric = {label_column, *self._exact.numeric_columns,
                   *([weight_column] if weight_column else [])}
        self._mixed = bool(numeric & self._exact.text_columns)
        """A column read both as text and as a number: left to the exact parser."""
        self.exact_blocks = 0
        """Blocks that went to the exact parser (for tests and benchmarks)."""

    def __iter__(self) -> Iterator[HoldoutBatch]:
        hasher = hashlib.sha256()
        with open_holdout_file(self.path, fd=self.fd) as raw:
            blocks = iter(prefetched(lambda: self._blocks(raw, hasher), name="csv-reader"))
            for block in blocks:
                if block.rest:
                    yield from self._exactly_from(itertools.chain([block], blocks))
                elif block.columns is None:
                    yield from self._exactly(block)
                else:
                    yield from self._batches(block)
        self._exact.rows = self.rows
        self._exact.finish()
        self.digest = f"sha256:{hasher.hexdigest()}"

    # --- in the reading thread -------------------------------------------------------------

    def _blocks(self, raw: IO[bytes], hasher: Any) -> Iterator[_Block]:
        """The file's blocks after the header, each parsed by pyarrow where it can be."""
        chunks = _chunks(raw, hasher, self.chunk_bytes, limit=self.record_limit_bytes)
        first, final = next(chunks, (b"", True))
        if first.startswith(_BOM):
            first = first[len(_BOM):]
        if not first:
            raise HoldoutError(f"holdout {self.path} is empty",
                               fix="write a CSV with a header row naming the label column and "
                                   "the model's inputs, then one row per example")
        header_end = first.find(b"\n") + 1 or len(first)
        while first.count(b'"', 0, header_end) % 2 and header_end < len(first):
            header_end = first.find(b"\n", header_end) + 1 or len(first)  # a quoted break
        header_text = self._decode(first[:header_end], first_line=1)
        self._exact.start(next(csv.reader(io.StringIO(header_text, newline="")), []))
        names = [f"c{i}" for i in range(self._exact.width)]
        line = 1 + first.count(b"\n", 0, header_end)
        # chain, never a list: unpacking `chunks` into one would read the whole file before
        # the first block is parsed (it did: 3 GB more at 10 M rows).
        rest = False
        for data, last in itertools.chain([(first[header_end:], final)], chunks):
            breaks = data.count(b"\n")
            if rest:
                if not data.isascii():
                    self._decode(data, first_line=line)
                yield _Block(line, data)
            else:
                block = self._parse(data, breaks, first_line=line, final=last, names=names)
                rest = block.columns is None and not _quotes_are_plain(data)
                yield _Block(line, data, rest=True) if rest else block
            line += breaks

    def _decode(self, data: bytes, *, first_line: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = first_line + data.count(b"\n", 0, exc.start)
            raise HoldoutError(f"{self.path}, line {line}: not UTF-8 text ({exc.reason})",
                               fix="save the holdout as UTF-8 CSV") from exc

    def _parse(self, data: bytes, breaks: int, *, first_line: int, final: bool,
               names: list[str]) -> _Block:
        """`data` parsed, or marked for the exact parser; `breaks`: its line feeds."""
        if not data.isascii():
            self._decode(data, first_line=first_line)  # the exact parser refuses bad UTF-8
        exact = _Block(first_line, data)
        if self._mixed:
            return exact
        body = data.rstrip(b"\r\n") if final else data  # blank lines at the end are fine
        if not body:
            return _Block(first_line, data, columns={}, rows=0)
        if not _plain(body, limit=csv.field_size_limit()):
            return exact
        records = (breaks if body is data
                   else body.count(b"\n") + (0 if body.endswith(b"\n") else 1))
        columns = self._arrow(body, names)
        if columns is None or any(len(v) != records for v in columns.values()):
            return exact
        if not self._valid(columns):
            return exact
        # Without its bytes: pyarrow's columns are copies, and the block may wait in the
        # prefetch queue a while.
        return _Block(first_line, b"", columns=columns, rows=records)

    def _arrow(self, body: bytes, names: list[str]) -> dict[str, np.ndarray] | None:
        import pyarrow as pa
        from pyarrow import csv as pacsv

        wanted = {name: f"c{self._exact.positions[name]}"
                  for name in {self._exact.label_column, *self._exact.columns}}
        text = self._exact.text_columns
        types = {column: pa.string() if name in text else pa.float64()
                 for name, column in wanted.items()}
        try:
            reader = pacsv.open_csv(
                pa.py_buffer(body),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=True,
                                               block_size=4 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=False),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, include_columns=sorted(set(wanted.values())),
                    null_values=[], strings_can_be_null=False,
                    quoted_strings_can_be_null=False))
            table = reader.read_all()
        except (pa.ArrowException, ValueError):
            return None  # the exact parser says what is wrong, and where
        return {name: (table.column(column).to_numpy(zero_copy_only=False) if name in text
                       else table.column(column).to_numpy())
                for name, column in wanted.items()}

    def _valid(self, columns: dict[str, np.ndarray]) -> bool:
        """Whether every number is finite, and labels and weights are what the task needs."""
        exact = self._exact
        for name in {exact.label_column, *exact.numeric_columns}:
            if not np.isfinite(columns[name]).all():
                return False
        labels = columns[exact.label_column]
        if exact.label_kind == "binary" and not ((labels == 0) | (labels == 1)).all():
            return False
        if exact.label_kind == "class" and not ((labels == np.round(labels))
                                                & (labels >= 0)).all():
            return False
        weight = exact.weight_column
        return weight is None or bool((np.isfinite(columns[weight])
                                       & (columns[weight] >= 0)).all())

    # --- in the consumer ---------------------------------------------------------------------

    def _batches(self, block: _Block) -> Iterator[HoldoutBatch]:
        assert block.columns is not None
        exact, columns = self._exact, block.columns
        real = exact.label_kind == "real"
        for start in range(0, block.rows, self.batch_size):
            stop = min(start + self.batch_size, block.rows)
            labels = columns[exact.label_column][start:stop]
            yield HoldoutBatch(
                lines=np.arange(block.first_line + start, block.first_line + stop,
                                dtype=np.int64),
                labels=labels if real else labels.astype(np.int64),
                numeric={n: columns[n][start:stop] for n in exact.numeric_columns},
                text={n: columns[n][start:stop] for n in exact.text_columns},
                weights=None if exact.weight_column is None
                else columns[exact.weight_column][start:stop],
                first_row=self.rows)
            self.rows += stop - start

    def _exactly(self, block: _Block) -> Iterator[HoldoutBatch]:
        self.exact_blocks += 1
        self._exact.rows = self.rows
        for batch in self._exact.block(block.data.decode("utf-8"), first_line=block.first_line):
            self.rows = self._exact.rows
            yield batch
        self.rows = self._exact.rows

    def _exactly_from(self, blocks: Iterator[_Block]) -> Iterator[HoldoutBatch]:
        """The rest of the file, from the first of `blocks` on, read by the exact parser as
        one stream of lines, so the records are the file's whatever the blocks' cuts."""
        first = next(blocks)
        self.exact_blocks += 1
        self._exact.rows = self.rows
        lines = itertools.chain.from_iterable(
            io.StringIO(block.data.decode("utf-8"), newline="")
            for block in itertools.chain([first], blocks))
        for batch in self._exact.lines(lines, first_line=first.first_line):
            self.rows = self._exact.rows
            yield batch
        self.rows = self._exact.rows


def _chunks(raw: IO[bytes], hasher: Any, size: int, *,
            limit: int) -> Iterator[tuple[bytes, bool]]:
    """(whole records, whether this is the end of the file), hashing every byte read. Each
    block waits for the next read, so the last one (with any blank lines after the last row)
    is known to be the last."""
    carry, ready = b"", b""
    while True:
        block = raw.read(size)
        hasher.update(block)
        if not block:
            if ready or carry:
                yield ready + carry, True
            return
        if ready:
            yield ready, False
        data = carry + block if carry else block
        cut = _record_end(data, final=False)
        if cut == 0 and len(data) <= limit:
            ready, carry = b"", data  # a record longer than one read: read on
            continue
        cut = cut or len(data)  # an overlong record: the exact parser refuses it
        ready, carry = data[:cut], data[cut:]


def _record_end(data: bytes, *, final: bool) -> int:
    """The offset just after the last line break outside quotes (0 if none); `final`: the
    end of `data` is the end of the file."""
    if final:
        return len(data)
    cut = data.rfind(b"\n") + 1
    if b'"' in data:
        quotes = data.count(b'"', 0, cut)
        while cut and quotes % 2:  # walking back, counting only the quotes passed
            previous = data.rfind(b"\n", 0, cut - 1) + 1
            quotes -= data.count(b'"', previous, cut)
            cut = previous
    return cut


def _plain(body: bytes, *, limit: int) -> bool:
    """Whether pyarrow and the exact parser must read `body` alike, line by line (see the
    module docstring); False sends it to the exact parser. Blank lines and carriage returns
    that end lines on their own need no search here: pyarrow then counts other rows than
    `body` has line feeds, which sends the block to the exact parser too."""
    step = max(limit // 2, 1)
    for start in range(0, len(body), step):
        if body.find(b"\n", start, start + step) < 0 and start + step < len(body):
            return False  # a line of `limit` bytes or more may hold a field over the limit
    if b'"' not in body:
        return True
    if b"\r" in body and body.count(b"\r") != body.count(b"\r\n"):
        return False  # a quoted CR: the exact parser counts it as a line, pyarrow may not
    return _quotes_are_plain(body)


def _quotes_are_plain(body: bytes) -> bool:
    """Whether every quote opens a field, closes one, or is half of a doubled quote inside
    one, counting from the start of a record (where `body` starts); anything else (text after
    a closing quote, a quote inside an unquoted field) the two parsers read differently."""
    data = np.frombuffer(body, np.uint8)
    quotes = np.flatnonzero(data == ord('"'))
    if quotes.size % 2:
        return False
    opening, closing = quotes[0::2], quotes[1::2]
    before = data[np.maximum(opening - 1, 0)]
    opens = (opening == 0) | np.isin(before, np.frombuffer(b',\n"', np.uint8))
    after = data[np.minimum(closing + 1, data.size - 1)]
    closes = (closing == data.size - 1) | np.isin(after, np.frombuffer(b',\r\n"', np.uint8))
    # A doubled quote ("") inside a field: a closing quote followed by the next opening one.
    return bool(opens.all() and closes.all())
