"""A full protobuf parser of one `tf.train.Example` into column arrays (numba kernels).

It applies protobuf's merge rules: fields in any order; repeated `Features` occurrences merge;
a map entry's key and value in any order, the last key counting and several values merging;
a later entry for the same key replacing an earlier one; packed or unpacked repeated values,
lists split over several occurrences concatenating; a later oneof member (another list kind)
replacing an earlier one; unknown fields (a known field with another wire type among them)
skipped. Features that are not wanted are parsed all the same, and their names checked for
UTF-8, so that a record is accepted only if protobuf accepts it.

Unknown fields inside a map entry are skipped, as TensorFlow's C++ parser does (protobuf's
Python runtime instead moves such an entry, whole, to the unknown fields of `Features`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from promoter.evaluation.example_wire import (
    KIND_BYTES,
    KIND_FLOAT,
    KIND_INT64,
    MALFORMED,
    MISSING,
    OK,
    WRONG_COUNT,
    WRONG_KIND,
    length_delimited,
    next_field1,
    read_tag,
    skip,
    u32,
    valid_utf8,
    varint,
)
from promoter.evaluation.kernel_cache import kernel


class Schema(NamedTuple):
    """The wanted features: feature f is named names[name_starts[f]:name_starts[f+1]], must be
    of kind kinds[f] with exactly widths[f] values, and its value n of record `column` lands at
    index layout[f, 0] + n * layout[f, 1] + column * layout[f, 2] of its kind's output array."""

    names: np.ndarray
    name_starts: np.ndarray
    kinds: np.ndarray
    layout: np.ndarray
    widths: np.ndarray


class Outputs(NamedTuple):
    """The flat output arrays of one batch, one per kind."""

    floats: np.ndarray
    """float32 bit patterns (uint32)."""
    ints: np.ndarray
    """int64 values."""
    text_pos: np.ndarray
    """Where each bytes value starts in the read buffer."""
    text_len: np.ndarray
    """Its length."""


class Scratch(NamedTuple):
    """One record's parse state per wanted feature, plus a last entry for features that are
    not wanted (parsed to check them, never stored)."""

    kind: np.ndarray
    """The list kind seen (-1: no entry; 0: an entry with an empty Feature)."""
    values: np.ndarray
    """Values seen."""
    hints: np.ndarray
    """The feature of each map entry in the record before (most files keep one order)."""
    seen: np.ndarray
    """Features met while learning a template."""


def new_scratch(wanted: int) -> Scratch:
    """Scratch arrays for `wanted` features (the kernels allocate nothing)."""
    return Scratch(np.full(wanted + 1, -1, dtype=np.int64), np.zeros(wanted + 1, np.int64),
                   np.full(1024, -1, dtype=np.int64), np.zeros(wanted + 1, dtype=np.bool_))


@kernel
def find(buf: np.ndarray, key: int, key_len: int, schema: Schema, hint: int) -> int:
    """Index of the wanted feature named buf[key:key+key_len], or -1; tries `hint` first."""
    names, name_starts = schema.names, schema.name_starts
    wanted = name_starts.shape[0] - 1
    for attempt in range(wanted + 1):
        f = hint if attempt == 0 else attempt - 1
        if f < 0 or f >= wanted or (attempt > 0 and f == hint):
            continue
        start = name_starts[f]
        if name_starts[f + 1] - start != key_len:
            continue
        same = True
        for k in range(key_len):
            if buf[key + k] != names[start + k]:
                same = False
                break
        if same:
            return f
    return -1


@kernel
def _bytes_value(buf: np.ndarray, i: int, end: int, n: int, base: int, stride: int,
                 width: int, out: Outputs) -> tuple[int, int]:
    """One BytesList value at buf[i:end] (after its tag), the list's value n, stored at
    base + n * stride if n < width; (position after it or -1, values so far)."""
    first, last = length_delimited(buf, i, end)
    if first < 0:
        return -1, n
    if n < width:
        out.text_pos[base + n * stride] = first
        out.text_len[base + n * stride] = last - first
    return last, n + 1


@kernel
def _float_values(buf: np.ndarray, i: int, end: int, wire: int, n: int, base: int,
                  stride: int, width: int, out: Outputs) -> tuple[int, int]:
    """One unpacked (wire 5) or a packed run (wire 2) of FloatList values, as
    `_bytes_value` stores them."""
    if wire == 5:
        first, last = i, i + 4
        if last > end:
            return -1, n
    else:
        first, last = length_delimited(buf, i, end)
        if first < 0 or (last - first) % 4 != 0:
            return -1, n
    for j in range(first, last, 4):
        if n < width:
            out.floats[base + n * stride] = u32(buf, j)
        n += 1
    return last, n


@kernel
def _int_values(buf: np.ndarray, i: int, end: int, wire: int, n: int, base: int,
                stride: int, width: int, out: Outputs) -> tuple[int, int]:
    """One unpacked (wire 0) or a packed run (wire 2) of Int64List values, as
    `_bytes_value` stores them."""
    if wire == 0:
        first, last = i, end
    else:
        first, last = length_delimited(buf, i, end)
        if first < 0:
            return -1, n
    i = first
    while i < last:
        value, i = varint(buf, i, last)
        if i < 0:
            return -1, n
        if n < width:
            out.ints[base + n * stride] = np.int64(value)
        n += 1
        if wire == 0:
            return i, n
    return last, n


@kernel
def _list(buf: np.ndarray, i: int, end: int, kind: int, f: int, s: int, column: int,
          schema: Schema, out: Outputs, scratch: Scratch) -> int:
    """A BytesList, FloatList or Int64List message buf[i:end] (its values: repeated field 1)
    of feature f (< 0: not wanted, nothing stored); a status."""
    stored = f >= 0 and schema.kinds[f] == kind
    width = schema.widths[f] if stored else 0
    base = schema.layout[f, 0] + column * schema.layout[f, 2] if stored else 0
    stride = schema.layout[f, 1] if stored else 0
    n = scratch.values[s]
    while i < end:
        field, wire, i = read_tag(buf, i, end)
        if i < 0:
            return MALFORMED
        if field == 1 and kind == KIND_BYTES and wire == 2:
            i, n = _bytes_value(buf, i, end, n, base, stride, width, out)
        elif field == 1 and kind == KIND_FLOAT and (wire == 5 or wire == 2):
            i, n = _float_values(buf, i, end, wire, n, base, stride, width, out)
        elif field == 1 and kind == KIND_INT64 and (wire == 0 or wire == 2):
            i, n = _int_values(buf, i, end, wire, n, base, stride, width, out)
        else:  # an unknown field, or field 1 with another wire type (unknown to protobuf)
            i = skip(buf, i, end, wire)
        if i < 0:
            return MALFORMED
    scratch.values[s] = n
    return OK


@kernel
def _feature(buf: np.ndarray, i: int, end: int, f: int, column: int, schema: Schema,
             out: Outputs, scratch: Scratch) -> int:
    """Read one tf.train.Feature message buf[i:end] into feature f's values (f < 0: a feature
    not wanted, only checked); a status."""
    s = f if f >= 0 else scratch.kind.shape[0] - 1
    while i < end:
        field, wire, i = read_tag(buf, i, end)
        if i < 0:
            return MALFORMED
        if field > 3 or wire != 2:
            i = skip(buf, i, end, wire)
            if i < 0:
                return MALFORMED
            continue
        first, last = length_delimited(buf, i, end)
        if first < 0:
            return MALFORMED
        if scratch.kind[s] != field:  # another oneof member replaces the earlier one
            scratch.kind[s] = field
            scratch.values[s] = 0
        status = _list(buf, first, last, field, f, s, column, schema, out, scratch)
        if status != OK:
            return status
        i = last
    return OK


@kernel
def _entry_key(buf: np.ndarray, i: int, end: int) -> tuple[int, int]:
    """(start, end) of the key of the map entry buf[i:end] (the last one; an empty key if
    none); (-1, -1) if the entry is malformed."""
    key, key_end = i, i
    while i < end:
        field, wire, i = read_tag(buf, i, end)
        if i < 0:
            return -1, -1
        if field == 1 and wire == 2:
            key, i = length_delimited(buf, i, end)
            key_end = i
        else:
            i = skip(buf, i, end, wire)
        if i < 0:
            return -1, -1
    return key, key_end


@kernel
def _entry_values(buf: np.ndarray, i: int, end: int, f: int, column: int, schema: Schema,
                  out: Outputs, scratch: Scratch) -> int:
    """Merge every value (field 2) of the map entry buf[i:end] into feature f; a status."""
    while i < end:
        field, wire, i = read_tag(buf, i, end)
        if i < 0:
            return MALFORMED
        if field == 2 and wire == 2:
            first, last = length_delimited(buf, i, end)
            if first < 0:
                return MALFORMED
            status = _feature(buf, first, last, f, column, schema, out, scratch)
            if status != OK:
                return status
            i = last
        else:
            i = skip(buf, i, end, wire)
            if i < 0:
                return MALFORMED
    return OK


@kernel
def _entry(buf: np.ndarray, i: int, end: int, entry: int, column: int, schema: Schema,
           out: Outputs, scratch: Scratch) -> tuple[int, int]:
    """Read the map entry buf[i:end], the record's entry number `entry`; (status, feature)."""
    key, key_end = _entry_key(buf, i, end)
    if key < 0:
        return MALFORMED, -1
    hints = scratch.hints
    hint = hints[entry] if entry < hints.shape[0] else -1
    f = find(buf, key, key_end - key, schema, hint)
    if entry < hints.shape[0]:
        hints[entry] = f
    if f < 0 and not valid_utf8(buf, key, key_end):  # (a wanted name is valid)
        return MALFORMED, -1
    s = f if f >= 0 else scratch.kind.shape[0] - 1
    scratch.kind[s] = 0  # a later entry for the same key replaces the earlier
    scratch.values[s] = 0
    return _entry_values(buf, i, end, f, column, schema, out, scratch), f


@kernel
def _features(buf: np.ndarray, i: int, end: int, entry: int, column: int, schema: Schema,
              out: Outputs, scratch: Scratch) -> tuple[int, int, int]:
    """Read one Features message buf[i:end]; (status, feature, entries read so far)."""
    while i < end:  # field 1 is a map entry
        entry_end, i = next_field1(buf, i, end)
        if entry_end < 0:
            return MALFORMED, -1, entry
        if i >= 0:
            status, f = _entry(buf, i, entry_end, entry, column, schema, out, scratch)
            if status != OK:
                return status, f, entry
            entry += 1
        i = entry_end
    return OK, -1, entry


@kernel
def _complete(schema: Schema, scratch: Scratch) -> tuple[int, int]:
    """(status, feature): the first wanted feature missing, of another kind or width."""
    for f in range(schema.kinds.shape[0]):
        if scratch.kind[f] < 0:
            return MISSING, f
        if scratch.kind[f] != schema.kinds[f]:
            return WRONG_KIND, f
        if scratch.values[f] != schema.widths[f]:
            return WRONG_COUNT, f
    return OK, -1


@kernel
def decode_one(buf: np.ndarray, start: int, length: int, column: int, schema: Schema,
               out: Outputs, scratch: Scratch) -> tuple[int, int]:
    """Parse the record buf[start:start+length] (full protobuf rules) into `column`;
    (status, feature or -1)."""
    scratch.kind[:] = -1
    scratch.values[:] = 0
    i = start
    end = start + length
    entry = 0
    while i < end:  # Example: field 1 is Features (repeated occurrences merge)
        features_end, i = next_field1(buf, i, end)
        if features_end < 0:
            return MALFORMED, -1
        if i >= 0:
            status, f, entry = _features(buf, i, features_end, entry, column, schema, out,
                                         scratch)
            if status != OK:
                return status, f
        i = features_end
    return _complete(schema, scratch)
