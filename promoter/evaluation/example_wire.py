"""Protobuf wire-format primitives of the TFRecord decoder (numba kernels): status codes,
feature kinds, varints, tags, skipping a field and UTF-8 validation.

Each one checks every length against the end it is given before it reads, and follows
protobuf's own parser (upb) on what is malformed, so that the decoder refuses what protobuf
refuses: a tag is at most 5 bytes, fits 32 bits and names a field ≥ 1; a varint is at most 10
bytes (bits past 64 are dropped, as protobuf drops them); wire types 6 and 7 are invalid. Groups
(wire types 3 and 4, deprecated and never written in an Example) are refused although protobuf
would skip an unknown one: a refusal, never a different value.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from promoter.evaluation.kernel_cache import BOUNDSCHECK, kernel

# Status codes of the kernels (0 is success).
OK = 0
BAD_LENGTH_CRC = 1
BAD_DATA_CRC = 2
MALFORMED = 3
MISSING = 4
WRONG_KIND = 5
WRONG_COUNT = 6
BAD_LENGTH = 7

# Feature kinds: the oneof field numbers of tf.train.Feature.
KIND_BYTES = 1
KIND_FLOAT = 2
KIND_INT64 = 3
KIND_NAMES = {KIND_BYTES: "bytes_list", KIND_FLOAT: "float_list", KIND_INT64: "int64_list",
              0: "an empty Feature (no list)"}


@intrinsic
def _load_u64_unchecked(typingctx, array, index):  # type: ignore[no-untyped-def]
    """8 bytes of a uint8 array at any offset, little-endian (one unaligned load)."""
    signature = types.uint64(array, types.intp)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=1)

    return signature, codegen


@kernel
def _load_u64_checked(buf: np.ndarray, i: int) -> np.uint64:
    """`_load_u64_unchecked` byte by byte, so numba's bounds checking sees every index."""
    value = np.uint64(0)
    for k in range(8):
        value |= np.uint64(buf[i + k]) << np.uint64(8 * k)
    return value


# The intrinsic is invisible to NUMBA_BOUNDSCHECK; under it, the checked loads stand in.
load_u64 = _load_u64_checked if BOUNDSCHECK else _load_u64_unchecked


@kernel
def u32(buf: np.ndarray, i: int) -> np.uint32:
    """The little-endian uint32 at buf[i:i+4]; the caller has checked the bounds."""
    if i + 8 <= buf.shape[0]:
        return np.uint32(load_u64(buf, i) & np.uint64(0xFFFFFFFF))
    return (np.uint32(buf[i]) | (np.uint32(buf[i + 1]) << 8) | (np.uint32(buf[i + 2]) << 16)
            | (np.uint32(buf[i + 3]) << 24))


@kernel
def varint(buf: np.ndarray, i: int, end: int) -> tuple[np.uint64, int]:
    """(value, next position); next position -1 if the varint is malformed or runs past end."""
    value = np.uint64(0)
    shift = np.uint64(0)
    while i < end and shift < np.uint64(70):
        byte = buf[i]
        value |= np.uint64(byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += np.uint64(7)
    return np.uint64(0), -1


@kernel
def read_tag(buf: np.ndarray, i: int, end: int) -> tuple[int, int, int]:
    """(field number, wire type, next position) of the tag at buf[i:end]; next position -1
    if it is not a valid tag."""
    start = i
    tag, i = varint(buf, i, end)
    if i < 0 or i - start > 5 or tag > np.uint64(0xFFFFFFFF) or tag < np.uint64(8):
        return 0, 0, -1
    return np.int64(tag >> np.uint64(3)), np.int64(tag & np.uint64(7)), i


@kernel
def length_delimited(buf: np.ndarray, i: int, end: int) -> tuple[int, int]:
    """(start, end) of the bytes of the length-delimited value at buf[i:end]; (-1, -1) if
    its length is malformed or runs past end."""
    size, i = varint(buf, i, end)
    if i < 0 or size > np.uint64(end - i):
        return -1, -1
    return i, i + np.int64(size)


@kernel
def skip(buf: np.ndarray, i: int, end: int, wire: int) -> int:
    """Position after a field's value of wire type `wire`; -1 if malformed."""
    if wire == 0:
        _, i = varint(buf, i, end)
        return i
    if wire == 1:
        return i + 8 if i + 8 <= end else -1
    if wire == 2:
        return length_delimited(buf, i, end)[1]
    if wire == 5:
        return i + 4 if i + 4 <= end else -1
    return -1  # groups (3, 4) and the invalid wire types 6 and 7


@kernel
def field_span(buf: np.ndarray, i: int, end: int, tag: int) -> tuple[int, int]:
    """(start, end) of the length-delimited field at buf[i:end] if its tag is the one-byte
    `tag`; else (-1, -1). For the canonical layout only: any other tag means "not a template"."""
    if i >= end or buf[i] != tag:
        return -1, -1
    return length_delimited(buf, i + 1, end)


@kernel
def next_field1(buf: np.ndarray, i: int, end: int) -> tuple[int, int]:
    """Read the field at i of a message whose field 1 is length-delimited (Example, Features,
    a map entry's key): (its end, where field 1's bytes start, or -1 for another field,
    skipped). An end < 0 means the field is malformed; a field 1 of another wire type is
    protobuf's unknown field, skipped like any other."""
    field, wire, i = read_tag(buf, i, end)
    if i < 0:
        return -1, -1
    if field != 1 or wire != 2:
        return skip(buf, i, end, wire), -1
    start, stop = length_delimited(buf, i, end)
    return stop, start


@kernel
def valid_utf8(buf: np.ndarray, i: int, end: int) -> bool:
    """Whether buf[i:end] is well-formed UTF-8 (no overlong forms, surrogates or code points
    past U+10FFFF), as protobuf requires of a `string` such as a feature's name."""
    while i < end:
        lead = buf[i]
        if lead < 0x80:
            i += 1
            continue
        if lead < 0xC2 or lead > 0xF4:
            return False
        size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        if i + size > end:
            return False
        low, high = 0x80, 0xBF  # the range of the second byte
        if lead == 0xE0:
            low = 0xA0
        elif lead == 0xED:
            high = 0x9F
        elif lead == 0xF0:
            low = 0x90
        elif lead == 0xF4:
            high = 0x8F
        if buf[i + 1] < low or buf[i + 1] > high:
            return False
        for k in range(2, size):
            if buf[i + k] < 0x80 or buf[i + k] > 0xBF:
                return False
        i += size
    return True
