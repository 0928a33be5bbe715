"""The TFRecord reader's buffers: the file's bytes, hashed as read and framed into records, and
each batch's flat column arrays that the decoder fills.

`tfrecord.TFRecordHoldoutReader` drives them; the kernels of `example_codec` frame and decode
in place, on numpy arrays, so these classes are what keeps memory bounded (one read buffer,
grown only for a record longer than half of it, and one batch of columns at a time).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from promoter.evaluation.example_parse import Outputs, Schema

_KIND_CODES = {"bytes_list": 1, "float_list": 2, "int64_list": 3}


class _RecordStream:
    """The file's bytes in a reusable buffer, hashed as read, framed into records.

    The hash of each chunk runs on a thread of its own while the chunk is framed and decoded
    (sha256 is a third of the reader's work); `fill` waits for it before the buffer changes,
    so the digest covers exactly the bytes decoded, in order. Call `close` when done.
    """

    def __init__(self, handle: Any, chunk_bytes: int, batch_size: int) -> None:
        self.handle = handle
        self.buffer = np.empty(chunk_bytes, dtype=np.uint8)
        self.filled = 0
        self.position = 0
        self.hasher = hashlib.sha256()
        self._hash_thread = ThreadPoolExecutor(1, thread_name_prefix="promoter-holdout-hash")
        self._hashing: Future[None] | None = None
        self.starts = np.empty(batch_size, dtype=np.int64)
        self.lengths = np.empty(batch_size, dtype=np.int64)

    def _hashed(self) -> None:
        if self._hashing is not None:
            self._hashing.result()
            self._hashing = None

    def digest(self) -> str:
        """sha256 of every byte read so far."""
        self._hashed()
        return f"sha256:{self.hasher.hexdigest()}"

    def close(self) -> None:
        self._hashed()
        self._hash_thread.shutdown()

    @property
    def pending(self) -> int:
        """Bytes read but not yet framed."""
        return self.filled - self.position

    def fill(self) -> bool:
        """Keep the unframed bytes, read more after them; False at the end of the file.
        Records framed before are invalid afterwards (the buffer moves)."""
        self._hashed()
        pending = self.pending
        if pending and self.position:
            self.buffer[:pending] = self.buffer[self.position:self.filled]
        self.filled, self.position = pending, 0
        if pending > len(self.buffer) // 2:  # a record longer than half the buffer: grow
            grown = np.empty(2 * len(self.buffer), dtype=np.uint8)
            grown[:pending] = self.buffer[:pending]
            self.buffer = grown
        view = memoryview(self.buffer)[self.filled:]
        read = self.handle.readinto(view)
        if not read:
            return False
        self._hashing = self._hash_thread.submit(self.hasher.update, view[:read])
        self.filled += read
        return True

    def frame(self, limit: int) -> tuple[int, int]:
        """Frame up to `limit` records at the read position into starts/lengths; (count,
        status). Fewer than `limit` with status OK means the buffer needs a `fill`."""
        from promoter.evaluation import example_codec as codec

        count, self.position, status = codec.frame_records(
            self.buffer, self.position, self.filled, self.starts[:limit],
            self.lengths[:limit], codec.CRC_TABLES)
        return count, status

    def first_record(self) -> bytes | int | None:
        """The first record's bytes (not consumed); None for an empty file; a framing status
        if it is corrupt, or OK if the file ends inside it."""
        from promoter.evaluation import example_codec as codec

        while True:
            count, _, status = codec.frame_records(
                self.buffer, 0, self.filled, self.starts[:1], self.lengths[:1],
                codec.CRC_TABLES)
            if status != codec.OK:
                return status
            if count:
                start, length = int(self.starts[0]), int(self.lengths[0])
                return self.buffer[start:start + length].tobytes()
            if not self.fill():
                return None if self.filled == 0 else codec.OK


class _Layout:
    """Where each wanted feature's values go in a batch's flat column arrays: a scalar feature
    is a contiguous column, a vector feature a row-major [rows, width] block."""

    def __init__(self, kinds: dict[str, str], width: Any, batch_size: int) -> None:
        self.kind_names = kinds
        self.order = list(kinds)
        self.batch_size = batch_size
        encoded = [name.encode() for name in self.order]
        self.names = np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8).copy()
        self.name_starts = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
        self.kinds = np.array([_KIND_CODES.get(kinds[n], 0) for n in self.order],
                              dtype=np.int64)
        self.widths = np.array([width(n) for n in self.order], dtype=np.int64)
        self.layout = np.zeros((len(self.order), 3), dtype=np.int64)
        self.sizes = dict.fromkeys(_KIND_CODES.values(), 0)
        for f in range(len(self.order)):
            code, w = int(self.kinds[f]), int(self.widths[f])
            self.layout[f] = (self.sizes.get(code, 0), 1, w)
            self.sizes[code] = self.sizes.get(code, 0) + w * batch_size

    @property
    def schema(self) -> Schema:
        """The layout as the decoder takes it."""
        from promoter.evaluation.example_parse import Schema

        return Schema(names=self.names, name_starts=self.name_starts, kinds=self.kinds,
                      layout=self.layout, widths=self.widths)

    def new_batch(self) -> _Columns:
        return _Columns(self)


class _Columns:
    """One batch's column arrays, filled by `decode_examples`."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.floats = np.empty(layout.sizes[2], dtype=np.uint32)
        self.ints = np.empty(layout.sizes[3], dtype=np.int64)
        self.text_pos = np.empty(layout.sizes[1], dtype=np.int64)
        self.text_len = np.empty(layout.sizes[1], dtype=np.int64)
        self.text: dict[str, list[str]] = {n: [] for n, k in layout.kind_names.items()
                                           if k == "bytes_list"}

    @property
    def outputs(self) -> Outputs:
        """The arrays as the decoder fills them."""
        from promoter.evaluation.example_parse import Outputs

        return Outputs(floats=self.floats, ints=self.ints, text_pos=self.text_pos,
                       text_len=self.text_len)

    def take_text(self, buffer: np.ndarray, first: int, count: int) -> None:
        """Copy the strings of records first..first+count out of the buffer (before it moves)."""
        for f, name in enumerate(self.layout.order):
            if name not in self.text:
                continue
            base = int(self.layout.layout[f, 0])
            positions = self.text_pos[base + first:base + first + count].tolist()
            lengths = self.text_len[base + first:base + first + count].tolist()
            data = memoryview(buffer)
            self.text[name].extend(bytes(data[p:p + n]).decode("utf-8", "replace")
                                   for p, n in zip(positions, lengths, strict=True))

    def arrays(self, rows: int) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for f, name in enumerate(self.layout.order):
            base, width = int(self.layout.layout[f, 0]), int(self.layout.widths[f])
            kind = int(self.layout.kinds[f])
            if kind == 1:
                out[name] = np.array(self.text[name], dtype=object)
                continue
            flat = self.floats.view(np.float32) if kind == 2 else self.ints
            block = flat[base:base + width * self.layout.batch_size]
            out[name] = block[:rows] if width == 1 else block.reshape(-1, width)[:rows]
        return out
