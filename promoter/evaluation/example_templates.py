"""Templates: byte images of earlier records with the value bytes masked out (numba kernels).

A record that equals a template outside the masked bytes (float payloads, varints of the same
length, strings of the same length) has, by construction, the same protobuf structure as the
template's record, which was parsed and found valid; so its values are copied from the
template's slots without parsing. Only a canonically written record becomes a template: one
Features, each entry `key` then `value`, each Feature one packed list, each wanted key once.

A slot is [offset in the record, size (floats: how many in a run), kind, output index of the
first value in column 0, index step per value, index step per column].
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from promoter.evaluation.example_parse import Outputs, Schema, Scratch, find
from promoter.evaluation.example_wire import (
    KIND_BYTES,
    KIND_FLOAT,
    KIND_INT64,
    field_span,
    length_delimited,
    load_u64,
    u32,
    varint,
)
from promoter.evaluation.kernel_cache import kernel

SLOT_FLOAT = 1
SLOT_VARINT = 2
SLOT_BYTES = 3

TEMPLATES = 32
"""Record layouts remembered at once (most recently matched first)."""
TEMPLATE_BYTES = 8192
"""Longest record that can become a template; longer ones are always parsed."""
TEMPLATE_SLOTS = 2048
"""Most slots a template can have: runs of wanted floats, wanted strings, every int64."""


class Templates(NamedTuple):
    """The templates of one reader, kept between calls of `decode_examples`."""

    lengths: np.ndarray
    """Each template's record length (0: an unused template)."""
    bytes: np.ndarray
    """[template, byte] the record's bytes."""
    mask: np.ndarray
    """[template, byte] 0xFF where a matching record must have the same byte, else 0."""
    slot_counts: np.ndarray
    slots: np.ndarray
    """[template, slot, 6] (see the module's docstring)."""
    state: np.ndarray
    """[most recently matched, next to replace, failed learns, parsed records]."""


def new_templates() -> Templates:
    return Templates(lengths=np.zeros(TEMPLATES, dtype=np.int64),
                     bytes=np.zeros((TEMPLATES, TEMPLATE_BYTES), dtype=np.uint8),
                     mask=np.zeros((TEMPLATES, TEMPLATE_BYTES), dtype=np.uint8),
                     slot_counts=np.zeros(TEMPLATES, dtype=np.int64),
                     slots=np.zeros((TEMPLATES, TEMPLATE_SLOTS, 6), dtype=np.int64),
                     state=np.array([-1, 0, 0, 0], dtype=np.int64))


@kernel
def _add_slot(t: int, count: int, offset: int, size: int, slot: int, target: int, f: int,
              schema: Schema, tm: Templates) -> int:
    """Record a value at `offset` (a float run grows instead where it continues one); the
    new slot count, or -1 if the template is full."""
    step = schema.layout[f, 1] if f >= 0 else 0
    column_step = schema.layout[f, 2] if f >= 0 else 0
    if slot == SLOT_FLOAT and target >= 0 and count > 0:
        last = tm.slots[t, count - 1]
        if (last[2] == SLOT_FLOAT and last[0] + 4 * last[1] == offset and last[4] == step
                and last[5] == column_step and last[3] + last[1] * step == target):
            last[1] += 1  # extends a run of floats
            return count
    if target < 0 and slot != SLOT_VARINT:  # (every varint is checked: its length varies)
        return count
    if count >= tm.slots.shape[1]:
        return -1
    row = tm.slots[t, count]
    row[0] = offset
    row[1] = 1 if slot == SLOT_FLOAT else size
    row[2] = slot
    row[3] = target
    row[4] = step
    row[5] = column_step
    return count + 1


@kernel
def _learn_values(buf: np.ndarray, start: int, i: int, end: int, kind: int, f: int, n: int,
                  t: int, count: int, schema: Schema, tm: Templates) -> tuple[int, int]:
    """Mask and slot the values buf[i:end] of one packed list (or one string); (slot count
    or -1, values so far)."""
    if kind == KIND_BYTES:  # one string, perhaps empty
        target = (schema.layout[f, 0] + n * schema.layout[f, 1]
                  if f >= 0 and n < schema.widths[f] else -1)
        tm.mask[t, i - start:end - start] = 0
        return _add_slot(t, count, i - start, end - i, SLOT_BYTES, target, f, schema, tm), n + 1
    while i < end:
        target = (schema.layout[f, 0] + n * schema.layout[f, 1]
                  if f >= 0 and n < schema.widths[f] else -1)
        first = i
        if kind == KIND_FLOAT:
            i, slot = i + 4, SLOT_FLOAT
        else:
            _, i = varint(buf, i, end)
            if i < 0:
                return -1, n
            slot = SLOT_VARINT
        tm.mask[t, first - start:i - start] = 0
        count = _add_slot(t, count, first - start, i - first, slot, target, f, schema, tm)
        if count < 0:
            return -1, n
        n += 1
    return count, n


@kernel
def _learn_entry(buf: np.ndarray, start: int, i: int, end: int, t: int, count: int,
                 seen: np.ndarray, schema: Schema, tm: Templates) -> int:
    """Learn the canonical map entry buf[i:end]; the new slot count, or -1 if it is not
    canonical (or its feature was seen before, or has another kind or width)."""
    key, key_end = field_span(buf, i, end, 0x0A)
    if key < 0:
        return -1
    i, feature_end = field_span(buf, key_end, end, 0x12)
    if i < 0 or feature_end != end:
        return -1
    f = find(buf, key, key_end - key, schema, -1)
    if f >= 0:
        if seen[f]:
            return -1
        seen[f] = True
    if i == end:  # an empty Feature
        return -1 if f >= 0 else count
    kind = np.int64(buf[i] >> 3)
    if kind < KIND_BYTES or kind > KIND_INT64 or (buf[i] & 7) != 2:
        return -1
    i, list_end = length_delimited(buf, i + 1, end)
    if i < 0 or list_end != end or (f >= 0 and kind != schema.kinds[f]):
        return -1
    n = 0
    while i < end:
        i, value_end = field_span(buf, i, end, 0x0A)
        if i < 0 or (kind == KIND_FLOAT and (value_end - i) % 4 != 0):
            return -1
        count, n = _learn_values(buf, start, i, value_end, kind, f, n, t, count, schema, tm)
        if count < 0:
            return -1
        i = value_end
    if f >= 0 and n != schema.widths[f]:
        return -1
    return count


@kernel
def learn(buf: np.ndarray, start: int, length: int, t: int, schema: Schema, tm: Templates,
          scratch: Scratch) -> bool:
    """Make the (already decoded, valid) record template t, if it is written canonically."""
    if length > tm.bytes.shape[1]:
        return False
    end = start + length
    for k in range(length):  # (a slice copy would allocate for a possible overlap)
        tm.bytes[t, k] = buf[start + k]
    tm.mask[t, :length] = 0xFF
    seen = scratch.seen[:schema.kinds.shape[0]]
    seen[:] = False
    count = 0
    i, features_end = field_span(buf, start, end, 0x0A)
    if i < 0 or features_end != end:
        return False
    while i < end:
        i, entry_end = field_span(buf, i, end, 0x0A)
        if i < 0:
            return False
        count = _learn_entry(buf, start, i, entry_end, t, count, seen, schema, tm)
        if count < 0:
            return False
        i = entry_end
    if not seen.all():
        return False
    tm.lengths[t] = length
    tm.slot_counts[t] = count
    return True


@kernel
def _same_outside_mask(buf: np.ndarray, start: int, length: int, image: np.ndarray,
                       mask: np.ndarray) -> bool:
    diff = np.uint64(0)
    k = 0
    while k + 8 <= length:
        diff |= (load_u64(buf, start + k) ^ load_u64(image, k)) & load_u64(mask, k)
        k += 8
    while k < length:
        diff |= np.uint64((buf[start + k] ^ image[k]) & mask[k])
        k += 1
    return diff == np.uint64(0)


@kernel
def _same_length_varint(buf: np.ndarray, at: int, size: int) -> tuple[bool, np.uint64]:
    """The varint of exactly `size` bytes at `at` (every byte but the last continues)."""
    value = np.uint64(0)
    for b in range(size):
        byte = buf[at + b]
        if (byte >= 0x80) != (b < size - 1):
            return False, value
        value |= np.uint64(byte & 0x7F) << np.uint64(7 * b)
    return True, value


@kernel
def match(buf: np.ndarray, start: int, length: int, t: int, column: int, tm: Templates,
          out: Outputs) -> bool:
    """If the record equals template t outside its value bytes, copy its values; else False
    (the values written so far are then overwritten by the parse). A template of length 0 is
    an unused one: an empty record (an Example without features) never matches it."""
    if length == 0 or tm.lengths[t] != length:
        return False
    if not _same_outside_mask(buf, start, length, tm.bytes[t], tm.mask[t]):
        return False
    slots = tm.slots  # (indexed in full: a view per slot costs reference counting)
    for s in range(tm.slot_counts[t]):
        at = start + slots[t, s, 0]
        size = slots[t, s, 1]
        target = slots[t, s, 3] + column * slots[t, s, 5]
        if slots[t, s, 2] == SLOT_FLOAT:  # a run of `size` floats into consecutive rows
            step = slots[t, s, 4]
            for r in range(size):
                out.floats[target + r * step] = u32(buf, at + 4 * r)
        elif slots[t, s, 2] == SLOT_VARINT:
            same, value = _same_length_varint(buf, at, size)
            if not same:
                return False
            if slots[t, s, 3] >= 0:
                out.ints[target] = np.int64(value)
        else:
            out.text_pos[target] = at
            out.text_len[target] = size
    return True
