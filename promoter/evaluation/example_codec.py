"""Decode TFRecord files of `tf.train.Example` into columns, in compiled loops (numba).

Why not tf.data: on a 2-core machine `TFRecordDataset` delivers at most about 0.5-0.7 M
records/s (per-record bookkeeping in its iterator and `batch`), and `tf.io.parse_example`
decodes a 32-feature Example at about 1-3 µs; a small MLP scores several million rows/s, so
the gate would spend most of its time waiting for records. These kernels do the same work:

- `frame_records` walks the TFRecord framing (`uint64 length`, `uint32 masked crc32c(length)`,
  data, `uint32 masked crc32c(data)`) and verifies both checksums of every record, as
  TensorFlow's RecordReader does (with the CPU's CRC-32C instruction where there is one);
- `decode_examples` fills column arrays with the wanted features of each record. A record is
  first compared with *templates*: byte images of earlier records with the value bytes
  masked out (float payloads, varints of the same length, strings of the same length). A
  record that equals a template outside the masked bytes has, by construction, the same
  protobuf structure, so its values are copied from the template's slots, without parsing.
  Any other record is parsed by `_decode_one`, a full protobuf reader of the Example schema
  with protobuf's merge rules (fields in any order, packed or unpacked repeated values, a
  later map entry or oneof member replacing an earlier one, unknown fields skipped), and, if
  it is written canonically, becomes a template for the records after it.

Writers emit one layout per file in practice (TensorFlow, protobuf-python and -java write
map entries in a fixed order), so nearly every record takes the template path: a masked
comparison at memory speed instead of a byte-by-byte parse.

The input is untrusted: every length and offset is checked against the record's bounds before
it is read, and a malformed record is a status code that the caller turns into a HoldoutError
naming the record; nothing here raises or reads out of bounds. The kernels release the GIL
(`nogil`) and are compiled once per machine and cached on disk (`cache=True`).
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

import numba
import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


def _choose_cache_dir(here: Path = Path(__file__).parent, cache_home: Path | None = None
                      ) -> str | None:
    """Numba caches compiled kernels next to this file or in ~/.cache/numba and refuses to
    start when neither is writable (a read-only container without a home). Then compile into
    a private temporary directory: slower starts (about 10 s of compiling), but it works.
    Returns that directory, or None where numba's own choice stands."""
    if numba.config.CACHE_DIR:
        return None
    if cache_home is None:
        cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for place in (here / "__pycache__", here, cache_home / "numba", cache_home):
        if place.exists() and os.access(place, os.W_OK):
            return None
    numba.config.CACHE_DIR = tempfile.mkdtemp(prefix="promoter-numba-")
    return numba.config.CACHE_DIR


_choose_cache_dir()

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

# Template slots that need work when a record matches (everything else is compared bytes):
# [offset in the record, size (floats: how many in a run), kind, output index of the first
# value in column 0, index step per value, index step per column].
_SLOT_FLOAT = 1
_SLOT_VARINT = 2
_SLOT_BYTES = 3

TEMPLATES = 32
"""Record layouts remembered at once (most recently matched first)."""
TEMPLATE_BYTES = 8192
"""Longest record that can become a template; longer ones are always parsed."""
TEMPLATE_SLOTS = 2048
"""Most slots a template can have: runs of wanted floats, wanted strings, every int64."""
_LEARN_FAILURES = 64
"""After this many records that cannot become templates, stop trying (it costs a parse)."""

_HARDWARE_CRC = (platform.machine().lower() in ("x86_64", "amd64")
                 and bool(llvm_binding.get_host_cpu_features().get("sse4.2")))
_CRC_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _crc_tables() -> np.ndarray:
    """Slicing-by-8 tables of CRC-32C, for CPUs without the instruction."""
    tables = np.zeros((8, 256), dtype=np.uint32)
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC_POLY if crc & 1 else crc >> 1
        tables[0, byte] = crc
    for byte in range(256):
        crc = int(tables[0, byte])
        for k in range(1, 8):
            crc = int(tables[0, crc & 0xFF]) ^ (crc >> 8)
            tables[k, byte] = crc
    return tables


CRC_TABLES = _crc_tables()


@intrinsic
def _load_u64(typingctx, array, index):  # type: ignore[no-untyped-def]
    """8 bytes of a uint8 array at any offset, little-endian (one unaligned load)."""
    signature = types.uint64(array, types.intp)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        pointer = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(64).as_pointer())
        return builder.load(pointer, align=1)

    return signature, codegen


@intrinsic
def _crc32c_u64(typingctx, crc, word):  # type: ignore[no-untyped-def]
    """SSE4.2's crc32 instruction on 8 bytes."""
    signature = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), [ir.IntType(64)] * 2),
            "llvm.x86.sse42.crc32.64.64")
        return builder.call(function, args)

    return signature, codegen


@njit(nogil=True, cache=True)
def crc32c(buf: np.ndarray, start: int, length: int, tables: np.ndarray) -> int:
    """CRC-32C of buf[start:start+length]; the caller has checked the bounds."""
    if not _HARDWARE_CRC:
        return crc32c_software(buf, start, length, tables)
    i = start
    end = start + length
    wide = np.uint64(0xFFFFFFFF)
    while i + 8 <= end:
        wide = _crc32c_u64(wide, _load_u64(buf, i))
        i += 8
    return _crc32c_tail(buf, i, end, np.uint32(wide), tables)


@njit(nogil=True, cache=True)
def crc32c_software(buf: np.ndarray, start: int, length: int, tables: np.ndarray) -> int:
    """`crc32c` by slicing-by-8 tables, for CPUs without SSE4.2 (public for its test)."""
    crc = np.uint32(0xFFFFFFFF)
    i = start
    end = start + length
    while i + 8 <= end:
        low = crc ^ np.uint32(_load_u64(buf, i) & np.uint64(0xFFFFFFFF))
        crc = (tables[7, low & 0xFF] ^ tables[6, (low >> 8) & 0xFF]
               ^ tables[5, (low >> 16) & 0xFF] ^ tables[4, low >> 24]
               ^ tables[3, buf[i + 4]] ^ tables[2, buf[i + 5]]
               ^ tables[1, buf[i + 6]] ^ tables[0, buf[i + 7]])
        i += 8
    return _crc32c_tail(buf, i, end, crc, tables)


@njit(nogil=True, cache=True)
def _crc32c_tail(buf: np.ndarray, i: int, end: int, crc: np.uint32, tables: np.ndarray
                 ) -> int:
    while i < end:
        crc = tables[0, (crc ^ buf[i]) & 0xFF] ^ (crc >> 8)
        i += 1
    return crc ^ np.uint32(0xFFFFFFFF)


@njit(nogil=True, cache=True)
def _masked(crc: int) -> int:
    crc = np.uint32(crc)
    return np.uint32(((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8))


@njit(nogil=True, cache=True)
def _u32(buf: np.ndarray, i: int) -> int:
    return np.uint32(_load_u64(buf, i) & np.uint64(0xFFFFFFFF)) if i + 8 <= buf.shape[0] else (
        np.uint32(buf[i]) | (np.uint32(buf[i + 1]) << 8) | (np.uint32(buf[i + 2]) << 16)
        | (np.uint32(buf[i + 3]) << 24))


@njit(nogil=True, cache=True)
def frame_records(buf: np.ndarray, pos: int, end: int, starts: np.ndarray,
                  lengths: np.ndarray, tables: np.ndarray) -> tuple[int, int, int]:
    """Find up to len(starts) complete records in buf[pos:end], verifying both checksums.

    Returns (records found, position after the last one, status). A record that does not fit
    in buf[:end] stops the walk with status OK: the caller reads more, or, at the end of the
    file, reports it as truncated. On a bad checksum the position is the bad record's.
    """
    count = 0
    limit = starts.shape[0]
    while count < limit and pos + 12 <= end:
        length = _load_u64(buf, pos)
        if _masked(crc32c(buf, pos, 8, tables)) != _u32(buf, pos + 8):
            return count, pos, BAD_LENGTH_CRC
        room = end - pos - 16
        if room < 0 or length > np.uint64(room):
            if length > np.uint64(1 << 40):
                return count, pos, BAD_LENGTH
            break
        size = np.int64(length)
        if _masked(crc32c(buf, pos + 12, size, tables)) != _u32(buf, pos + 12 + size):
            return count, pos, BAD_DATA_CRC
        starts[count] = pos + 12
        lengths[count] = size
        count += 1
        pos += 16 + size
    return count, pos, OK


@njit(nogil=True, cache=True)
def _varint(buf: np.ndarray, i: int, end: int) -> tuple[np.uint64, int]:
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


@njit(nogil=True, cache=True)
def _skip(buf: np.ndarray, i: int, end: int, wire: int) -> int:
    """Position after a field's value of wire type `wire`; -1 if malformed."""
    if wire == 0:
        _, i = _varint(buf, i, end)
        return i
    if wire == 1:
        return i + 8 if i + 8 <= end else -1
    if wire == 2:
        size, i = _varint(buf, i, end)
        if i < 0 or size > np.uint64(end - i):
            return -1
        return i + np.int64(size)
    if wire == 5:
        return i + 4 if i + 4 <= end else -1
    return -1  # groups (3, 4) and reserved wire types are not valid in an Example


@njit(nogil=True, cache=True)
def _find(buf: np.ndarray, key: int, key_len: int, names: np.ndarray,
          name_starts: np.ndarray, hint: int) -> int:
    """Index of the wanted feature named buf[key:key+key_len], or -1; tries `hint` first."""
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


@njit(nogil=True, cache=True)
def _feature(buf: np.ndarray, i: int, end: int, f: int, column: int, kinds: np.ndarray,
             layout: np.ndarray, widths: np.ndarray, floats: np.ndarray, ints: np.ndarray,
             text_pos: np.ndarray, text_len: np.ndarray, state_kind: np.ndarray,
             state_count: np.ndarray) -> int:
    """Read one tf.train.Feature message buf[i:end] into feature f's values; status."""
    while i < end:
        tag, i = _varint(buf, i, end)
        if i < 0:
            return MALFORMED
        field = np.int64(tag >> np.uint64(3))
        wire = np.int64(tag & np.uint64(7))
        if field < 1 or field > 3 or wire != 2:
            i = _skip(buf, i, end, wire)
            if i < 0:
                return MALFORMED
            continue
        size, i = _varint(buf, i, end)
        if i < 0 or size > np.uint64(end - i):
            return MALFORMED
        list_end = i + np.int64(size)
        if state_kind[f] != field:  # another oneof member replaces the earlier one
            state_kind[f] = field
            state_count[f] = 0
        expected = kinds[f]
        width = widths[f]
        base = layout[f, 0] + column * layout[f, 2]
        stride = layout[f, 1]
        while i < list_end:  # BytesList / FloatList / Int64List: repeated field 1
            vtag, i = _varint(buf, i, list_end)
            if i < 0:
                return MALFORMED
            vfield = np.int64(vtag >> np.uint64(3))
            vwire = np.int64(vtag & np.uint64(7))
            if vfield != 1:
                i = _skip(buf, i, list_end, vwire)
                if i < 0:
                    return MALFORMED
                continue
            n = state_count[f]
            if field == KIND_BYTES:
                if vwire != 2:
                    return MALFORMED
                vsize, i = _varint(buf, i, list_end)
                if i < 0 or vsize > np.uint64(list_end - i):
                    return MALFORMED
                if expected == KIND_BYTES and n < width:
                    text_pos[base + n * stride] = i
                    text_len[base + n * stride] = np.int64(vsize)
                state_count[f] = n + 1
                i += np.int64(vsize)
            elif field == KIND_FLOAT:
                if vwire == 5:  # one unpacked float
                    first, last = i, i + 4
                elif vwire == 2:  # packed floats
                    vsize, i = _varint(buf, i, list_end)
                    if (i < 0 or vsize > np.uint64(list_end - i)
                            or vsize % np.uint64(4) != 0):
                        return MALFORMED
                    first, last = i, i + np.int64(vsize)
                else:
                    return MALFORMED
                if last > list_end:
                    return MALFORMED
                for j in range(first, last, 4):
                    if expected == KIND_FLOAT and n < width:
                        floats[base + n * stride] = _u32(buf, j)
                    n += 1
                state_count[f] = n
                i = last
            else:
                if vwire == 0:  # one unpacked varint
                    first, last = i, list_end
                elif vwire == 2:  # packed varints
                    vsize, i = _varint(buf, i, list_end)
                    if i < 0 or vsize > np.uint64(list_end - i):
                        return MALFORMED
                    first, last = i, i + np.int64(vsize)
                else:
                    return MALFORMED
                i = first
                while i < last:
                    value, i = _varint(buf, i, last)
                    if i < 0:
                        return MALFORMED
                    if expected == KIND_INT64 and n < width:
                        ints[base + n * stride] = np.int64(value)
                    n += 1
                    if vwire == 0:
                        break
                state_count[f] = n
        if i != list_end:
            return MALFORMED
    return OK


@njit(nogil=True, cache=True)
def _next_field1(buf: np.ndarray, i: int, end: int) -> tuple[int, int]:
    """Read the field at i of a message whose field 1 is length-delimited (Example, Features):
    (its end, where field 1's bytes start, or -1 for another field, skipped). An end < 0
    means the field is malformed."""
    tag, i = _varint(buf, i, end)
    if i < 0:
        return -1, -1
    wire = np.int64(tag & np.uint64(7))
    if np.int64(tag >> np.uint64(3)) != 1 or wire != 2:
        return _skip(buf, i, end, wire), -1
    size, i = _varint(buf, i, end)
    if i < 0 or size > np.uint64(end - i):
        return -1, -1
    return i + np.int64(size), i


@njit(nogil=True, cache=True)
def _decode_one(buf: np.ndarray, start: int, length: int, column: int, names: np.ndarray,
                name_starts: np.ndarray, kinds: np.ndarray, layout: np.ndarray,
                widths: np.ndarray, floats: np.ndarray, ints: np.ndarray,
                text_pos: np.ndarray, text_len: np.ndarray, state_kind: np.ndarray,
                state_count: np.ndarray, hints: np.ndarray) -> tuple[int, int]:
    """Parse one record (full protobuf rules) into `column`; (status, feature or -1)."""
    state_kind[:] = -1
    state_count[:] = 0
    i = start
    end = start + length
    entry = 0
    while i < end:  # Example: field 1 is Features (repeated occurrences merge)
        features_end, i = _next_field1(buf, i, end)
        if features_end < 0:
            return MALFORMED, -1
        if i < 0:
            i = features_end
            continue
        while i < features_end:  # Features: field 1 is a map entry
            entry_end, i = _next_field1(buf, i, features_end)
            if entry_end < 0:
                return MALFORMED, -1
            if i < 0:
                i = entry_end
                continue
            # A map entry: key (1) and value (2) in any order; the last key counts.
            key, key_len = i, 0
            j = i
            while j < entry_end:
                etag, j = _varint(buf, j, entry_end)
                if j < 0:
                    return MALFORMED, -1
                if etag == np.uint64(0x0A):
                    ksize, j = _varint(buf, j, entry_end)
                    if j < 0 or ksize > np.uint64(entry_end - j):
                        return MALFORMED, -1
                    key, key_len = j, np.int64(ksize)
                    j += key_len
                else:
                    j = _skip(buf, j, entry_end, np.int64(etag & np.uint64(7)))
                    if j < 0:
                        return MALFORMED, -1
            hint = hints[entry] if entry < hints.shape[0] else -1
            f = _find(buf, key, key_len, names, name_starts, hint)
            if entry < hints.shape[0]:
                hints[entry] = f
            entry += 1
            if f >= 0:
                state_kind[f] = 0  # a later entry for the same key replaces the earlier
                state_count[f] = 0
                j = i
                while j < entry_end:  # every value (2) occurrence merges into one Feature
                    etag, j = _varint(buf, j, entry_end)
                    if j < 0:
                        return MALFORMED, f
                    if etag == np.uint64(0x12):
                        vsize, j = _varint(buf, j, entry_end)
                        if j < 0 or vsize > np.uint64(entry_end - j):
                            return MALFORMED, f
                        status = _feature(buf, j, j + np.int64(vsize), f, column, kinds,
                                          layout, widths, floats, ints, text_pos, text_len,
                                          state_kind, state_count)
                        if status != OK:
                            return status, f
                        j += np.int64(vsize)
                    elif np.int64(etag >> np.uint64(3)) == 2:
                        return MALFORMED, f  # a value that is not a message
                    else:
                        j = _skip(buf, j, entry_end, np.int64(etag & np.uint64(7)))
            i = entry_end
        if i != features_end:
            return MALFORMED, -1
    if i != end:
        return MALFORMED, -1
    for f in range(kinds.shape[0]):
        if state_kind[f] < 0:
            return MISSING, f
        if state_kind[f] != kinds[f]:
            return WRONG_KIND, f
        if state_count[f] != widths[f]:
            return WRONG_COUNT, f
    return OK, -1


@njit(nogil=True, cache=True)
def _field_span(buf: np.ndarray, i: int, end: int, tag: int) -> tuple[int, int]:
    """(start, end) of the length-delimited field at buf[i:end] if its tag is `tag`; else
    (-1, -1). For the canonical layout only: any other tag means "not a template"."""
    found, i = _varint(buf, i, end)
    if i < 0 or found != np.uint64(tag):
        return -1, -1
    size, i = _varint(buf, i, end)
    if i < 0 or size > np.uint64(end - i):
        return -1, -1
    return i, i + np.int64(size)


@njit(nogil=True, cache=True)
def _learn(buf: np.ndarray, start: int, length: int, t: int, names: np.ndarray,
           name_starts: np.ndarray, kinds: np.ndarray, layout: np.ndarray,
           widths: np.ndarray, tmpl_len: np.ndarray, tmpl_bytes: np.ndarray,
           tmpl_mask: np.ndarray, tmpl_slots: np.ndarray, slots: np.ndarray) -> bool:
    """Make the (already decoded, valid) record a template, if it is written canonically:
    one Features, each entry `key` then `value`, each Feature one packed list, each wanted
    key once. Anything else stays on the parsing path."""
    if length > tmpl_bytes.shape[1]:
        return False
    end = start + length
    for k in range(length):
        tmpl_bytes[t, k] = buf[start + k]
        tmpl_mask[t, k] = 0xFF
    seen = np.zeros(kinds.shape[0], dtype=np.bool_)
    count = 0
    i, features_end = _field_span(buf, start, end, 0x0A)
    if i < 0 or features_end != end:
        return False
    while i < end:
        i, entry_end = _field_span(buf, i, end, 0x0A)
        if i < 0:
            return False
        key, key_end = _field_span(buf, i, entry_end, 0x0A)
        if key < 0:
            return False
        i, feature_end = _field_span(buf, key_end, entry_end, 0x12)
        if i < 0 or feature_end != entry_end:
            return False
        f = _find(buf, key, key_end - key, names, name_starts, -1)
        if f >= 0:
            if seen[f]:
                return False
            seen[f] = True
        if i == entry_end:  # an empty Feature
            if f >= 0:
                return False
            continue
        tag, i = _varint(buf, i, entry_end)
        kind = np.int64(tag >> np.uint64(3))
        if i < 0 or kind < 1 or kind > 3 or np.int64(tag & np.uint64(7)) != 2:
            return False
        size, i = _varint(buf, i, entry_end)
        if i < 0 or size != np.uint64(entry_end - i):
            return False
        if f >= 0 and kind != kinds[f]:
            return False
        n = 0
        while i < entry_end:
            i, value_end = _field_span(buf, i, entry_end, 0x0A)
            if i < 0 or (kind == KIND_FLOAT and (value_end - i) % 4 != 0):
                return False
            while i < value_end:
                target = layout[f, 0] + n * layout[f, 1] if f >= 0 and n < widths[f] else -1
                if kind == KIND_FLOAT:
                    first, i, slot = i, i + 4, _SLOT_FLOAT
                elif kind == KIND_INT64:
                    first = i
                    _, i = _varint(buf, i, value_end)
                    if i < 0:
                        return False
                    slot = _SLOT_VARINT
                else:
                    first, i, slot = i, value_end, _SLOT_BYTES
                for k in range(first, i):
                    tmpl_mask[t, k - start] = 0
                if (slot == _SLOT_FLOAT and target >= 0 and count > 0
                        and slots[t, count - 1, 2] == _SLOT_FLOAT
                        and slots[t, count - 1, 0] + 4 * slots[t, count - 1, 1] == first - start
                        and slots[t, count - 1, 4] == layout[f, 1]
                        and slots[t, count - 1, 5] == layout[f, 2]
                        and slots[t, count - 1, 3] + slots[t, count - 1, 1] * layout[f, 1]
                        == target):
                    slots[t, count - 1, 1] += 1  # extends a run of floats
                elif target >= 0 or slot == _SLOT_VARINT:
                    if count >= slots.shape[1]:
                        return False
                    slots[t, count, 0] = first - start
                    slots[t, count, 1] = 1 if slot == _SLOT_FLOAT else i - first
                    slots[t, count, 2] = slot
                    slots[t, count, 3] = target
                    slots[t, count, 4] = layout[f, 1] if f >= 0 else 0
                    slots[t, count, 5] = layout[f, 2] if f >= 0 else 0
                    count += 1
                n += 1
        if f >= 0 and n != widths[f]:
            return False
    for f in range(kinds.shape[0]):
        if not seen[f]:
            return False
    tmpl_len[t] = length
    tmpl_slots[t] = count
    return True


@njit(nogil=True, cache=True)
def _match(buf: np.ndarray, start: int, length: int, t: int, column: int,
           tmpl_len: np.ndarray, tmpl_bytes: np.ndarray, tmpl_mask: np.ndarray,
           tmpl_slots: np.ndarray, slots: np.ndarray, floats: np.ndarray, ints: np.ndarray,
           text_pos: np.ndarray, text_len: np.ndarray) -> bool:
    """If the record equals template t outside its value bytes, copy its values; else False
    (the values written so far are then overwritten by the parse)."""
    if tmpl_len[t] != length:
        return False
    row_bytes = tmpl_bytes[t]
    row_mask = tmpl_mask[t]
    diff = np.uint64(0)
    k = 0
    while k + 8 <= length:
        diff |= (_load_u64(buf, start + k) ^ _load_u64(row_bytes, k)) & _load_u64(row_mask, k)
        k += 8
    while k < length:
        diff |= np.uint64((buf[start + k] ^ row_bytes[k]) & row_mask[k])
        k += 1
    if diff != np.uint64(0):
        return False
    for s in range(tmpl_slots[t]):
        at = start + slots[t, s, 0]
        size = slots[t, s, 1]
        kind = slots[t, s, 2]
        target = slots[t, s, 3] + column * slots[t, s, 5]
        if kind == _SLOT_FLOAT:  # a run of `size` floats into consecutive rows
            for r in range(size):
                floats[target + r * slots[t, s, 4]] = _u32(buf, at + 4 * r)
        elif kind == _SLOT_VARINT:
            # Same length as the template's varint: every byte but the last continues.
            value = np.uint64(0)
            for b in range(size):
                byte = buf[at + b]
                if (byte >= 0x80) != (b < size - 1):
                    return False
                value |= np.uint64(byte & 0x7F) << np.uint64(7 * b)
            if target >= 0:
                ints[target] = np.int64(value)
        else:
            text_pos[target] = at
            text_len[target] = size
    return True


@njit(nogil=True, cache=True)
def decode_examples(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, count: int,
                    column0: int, names: np.ndarray, name_starts: np.ndarray,
                    kinds: np.ndarray, layout: np.ndarray, widths: np.ndarray,
                    floats: np.ndarray, ints: np.ndarray, text_pos: np.ndarray,
                    text_len: np.ndarray, tmpl_len: np.ndarray, tmpl_bytes: np.ndarray,
                    tmpl_mask: np.ndarray, tmpl_slots: np.ndarray, slots: np.ndarray,
                    tmpl_state: np.ndarray) -> tuple[int, int, int, int, int]:
    """Decode `count` framed records into columns column0.. of the output arrays.

    Wanted feature f is named names[name_starts[f]:name_starts[f+1]] and must be of kind
    kinds[f] with exactly widths[f] values. Its value n of record `column` lands at index
    layout[f, 0] + n * layout[f, 1] + column * layout[f, 2] of the flat array of its kind:
    `floats` (float32 bit patterns, as uint32), `ints` (int64), or `text_pos`/`text_len`
    (where each bytes value lies in buf). So a scalar feature can be a contiguous column and a
    vector feature a row-major [rows, width] block. The template arrays persist between calls
    for one schema; tmpl_state is [most recently matched, next to replace, failed learns,
    parsed records].

    Returns (status, record, feature, found kind, found count): status OK, or the first
    record (index into starts) that is malformed, lacks a wanted feature, or has one of
    another kind or width.
    """
    wanted = kinds.shape[0]
    state_kind = np.empty(wanted, dtype=np.int64)
    state_count = np.empty(wanted, dtype=np.int64)
    hints = np.full(1024, -1, dtype=np.int64)
    for row in range(count):
        start = starts[row]
        length = lengths[row]
        column = column0 + row
        last = tmpl_state[0]
        if last >= 0 and _match(buf, start, length, last, column, tmpl_len, tmpl_bytes,
                                tmpl_mask, tmpl_slots, slots, floats, ints, text_pos,
                                text_len):
            continue
        matched = False
        for t in range(tmpl_len.shape[0]):
            if t != last and tmpl_len[t] == length and _match(
                    buf, start, length, t, column, tmpl_len, tmpl_bytes, tmpl_mask,
                    tmpl_slots, slots, floats, ints, text_pos, text_len):
                tmpl_state[0] = t
                matched = True
                break
        if matched:
            continue
        status, f = _decode_one(buf, start, length, column, names, name_starts, kinds,
                                layout, widths, floats, ints, text_pos, text_len,
                                state_kind, state_count, hints)
        tmpl_state[3] += 1
        if status != OK:
            return (status, row, f, state_kind[f] if f >= 0 else 0,
                    state_count[f] if f >= 0 else 0)
        if tmpl_state[2] < _LEARN_FAILURES:
            t = tmpl_state[1]
            tmpl_len[t] = 0
            if _learn(buf, start, length, t, names, name_starts, kinds, layout, widths,
                      tmpl_len, tmpl_bytes, tmpl_mask, tmpl_slots, slots):
                tmpl_state[0] = t
                tmpl_state[1] = (t + 1) % tmpl_len.shape[0]
            else:
                tmpl_len[t] = 0
                tmpl_state[2] += 1
    return OK, count, -1, 0, 0


class TemplateCache:
    """The template arrays `decode_examples` keeps between calls, for one reader."""

    def __init__(self) -> None:
        self.lengths = np.zeros(TEMPLATES, dtype=np.int64)
        self.bytes = np.zeros((TEMPLATES, TEMPLATE_BYTES), dtype=np.uint8)
        self.mask = np.zeros((TEMPLATES, TEMPLATE_BYTES), dtype=np.uint8)
        self.slot_counts = np.zeros(TEMPLATES, dtype=np.int64)
        self.slots = np.zeros((TEMPLATES, TEMPLATE_SLOTS, 6), dtype=np.int64)
        self.state = np.array([-1, 0, 0, 0], dtype=np.int64)

    @property
    def parsed(self) -> int:
        """Records that took the parsing path so far (the rest matched a template)."""
        return int(self.state[3])


def compile_kernels() -> None:
    """Compile (or load from the cache) every kernel by decoding one tiny record; for images
    that should not pay the compile on their first evaluation."""
    # Example{features{feature{key: "x", float_list: [1.5]}, feature{key: "l", int64: [1]}}}
    record = bytes.fromhex("0a1b0a0d0a0178120812060a040000c03f0a0a0a016c12051a030a0101")
    length = len(record).to_bytes(8, "little")
    buf = np.frombuffer(length + bytes(4) + record + bytes(4), dtype=np.uint8).copy()
    starts, lengths = np.zeros(1, np.int64), np.zeros(1, np.int64)
    frame_records(buf, 0, len(buf), starts, lengths, CRC_TABLES)  # (zero checksums: refused)
    cache = TemplateCache()
    names = np.frombuffer(b"x", dtype=np.uint8)
    empty = np.zeros(1, np.int64)
    for _ in range(2):  # the parsing path, then the template path
        floats = np.zeros(1, np.uint32)
        status = decode_examples(
                        buf, np.array([12], np.int64), np.array([len(record)], np.int64), 1, 0,
                        names, np.array([0, 1], np.int64), np.array([KIND_FLOAT], np.int64),
                        np.array([[0, 1, 1]], np.int64), np.array([1], np.int64),
                        floats, empty.copy(), empty.copy(), empty.copy(),
                        cache.lengths, cache.bytes, cache.mask, cache.slot_counts,
                        cache.slots, cache.state)[0]
        if status != OK or floats.view(np.float32)[0] != 1.5:
            raise RuntimeError(f"the TFRecord decoder fails its self-test (status {status})")
