"""The TFRecord framing and its CRC-32C checksums, in numba kernels.

A TFRecord file is a sequence of `uint64 length`, `uint32 masked crc32c(length)`, `length`
bytes of data, `uint32 masked crc32c(data)`. `frame_records` walks it and verifies both
checksums of every record, as TensorFlow's RecordReader does, with the CPU's CRC-32C
instruction where there is one (slicing-by-8 tables elsewhere).
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from promoter.evaluation.example_wire import BAD_DATA_CRC, BAD_LENGTH, BAD_LENGTH_CRC, OK
from promoter.evaluation.example_wire import load_u64 as _load_u64
from promoter.evaluation.example_wire import u32 as _u32
from promoter.evaluation.kernel_cache import kernel

_HARDWARE_CRC = (platform.machine().lower() in ("x86_64", "amd64")
                 and bool(llvm_binding.get_host_cpu_features().get("sse4.2")))
_CRC_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected

LONGEST_RECORD = 1 << 40
"""A length field over this (1 TiB) is corruption, not a record to wait for."""


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
def _crc32c_u64(typingctx, crc, word):  # type: ignore[no-untyped-def]
    """SSE4.2's crc32 instruction on 8 bytes."""
    signature = types.uint64(types.uint64, types.uint64)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.IntType(64), [ir.IntType(64)] * 2),
            "llvm.x86.sse42.crc32.64.64")
        return builder.call(function, args)

    return signature, codegen


@kernel
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


@kernel
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


@kernel
def _crc32c_tail(buf: np.ndarray, i: int, end: int, crc: np.uint32, tables: np.ndarray
                 ) -> int:
    while i < end:
        crc = tables[0, (crc ^ buf[i]) & 0xFF] ^ (crc >> 8)
        i += 1
    return crc ^ np.uint32(0xFFFFFFFF)


@kernel
def _masked(crc: int) -> int:
    crc = np.uint32(crc)
    return np.uint32(((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8))


@kernel
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
            if length > np.uint64(LONGEST_RECORD):
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
