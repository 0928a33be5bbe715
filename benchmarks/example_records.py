"""tf.train.Example records for the benchmarks (`formats.py`, `run.py`, `tfrecord_decoder.py`).

Building each Example with protobuf in Python runs at about 11 k rows/s, too slow for millions
of rows. `write_tfrecord` instead builds one canonical Example with zeroed values (float
features, then an int64 `label`), patches each row's values into a copy of its bytes with
numpy, and frames the records with TensorFlow's own writer; the first record is parsed back
with protobuf, so a wrong template fails loudly instead of skewing a benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def varint(value: int) -> bytes:
    """Protobuf's base-128 varint of a non-negative `value`."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def example_template(names: Sequence[str], width: int) -> tuple[bytes, list[int], int]:
    """A canonical tf.train.Example of float features `names` (`width` values each) and an
    int64 `label`, values zeroed: its bytes, the offset of each feature's first value byte,
    and the offset of the label's varint (0 or 1, one byte)."""
    entries, offsets = b"", []
    for name in names:
        floats = field(1, bytes(4 * width))
        entry = field(1, field(1, name.encode()) + field(2, field(2, floats)))
        offsets.append(len(entries) + len(entry) - 4 * width)  # the floats end the entry
        entries += entry
    label = field(1, field(1, b"label") + field(2, field(3, field(1, b"\0"))))
    body = entries + label
    head = varint(1 << 3 | 2) + varint(len(body))
    return head + body, [len(head) + o for o in offsets], len(head) + len(body) - 1


def write_tfrecord(path: Path, x: np.ndarray, y: np.ndarray, *, names: Sequence[str],
                   vector_name: str | None = None, chunk: int = 100_000) -> None:
    """Write rows `x` (float32, one column per name) and labels `y` (0/1) as a TFRecord file
    of canonical Examples: one scalar feature per name, or, with `vector_name`, one feature
    of that name holding the whole row. Raises RuntimeError if the first record does not
    parse back to its row."""
    import tensorflow as tf

    width = x.shape[1] if vector_name else 1
    template, offsets, label_at = example_template(
        [vector_name] if vector_name else names, width)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for start in range(0, x.shape[0], chunk):
            rows = np.ascontiguousarray(x[start:start + chunk], dtype=np.float32)
            records = np.tile(np.frombuffer(template, np.uint8), (rows.shape[0], 1))
            if vector_name:
                records[:, offsets[0]:offsets[0] + 4 * width] = rows.view(np.uint8)
            else:
                for i, at in enumerate(offsets):
                    records[:, at:at + 4] = rows[:, i:i + 1].view(np.uint8)
            records[:, label_at] = y[start:start + chunk]
            for record in records:
                writer.write(record.tobytes())
    first = next(iter(tf.data.TFRecordDataset(str(path)))).numpy()
    feature = tf.train.Example.FromString(first).features.feature
    got = (list(feature[vector_name].float_list.value) if vector_name
           else [feature[n].float_list.value[0] for n in names])
    if got != x[0].tolist() or feature["label"].int64_list.value != [y[0]]:
        raise RuntimeError("the benchmark's TFRecord writer does not round-trip")
