"""The TFRecord decoder against protobuf's parser, on generated valid and malformed encodings.

Each generated record is decoded by the kernels (as the reader calls them, templates kept
between records) and parsed by protobuf's runtime (`example_proto.reference`). The decoder
must agree: the same values, bit for bit, or the same schema error (missing feature, other
kind, other width); a record protobuf refuses must be refused (MALFORMED). On mutated records
it may also refuse one that protobuf accepts, never return other values. Records lie in one
buffer between random canary bytes, so a read past a record's end would change the answer;
`test_the_decoder_tests_pass_with_numba_bounds_checking` runs this module again with numba's
bounds checking on, where any read outside the buffer is an IndexError, a failure.

Examples per test: the "decoder" hypothesis profile (PROMOTER_FUZZ_EXAMPLES raises it for a
longer run, e.g. PROMOTER_FUZZ_EXAMPLES=5000).
"""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promoter.evaluation import example_codec as codec
from promoter.evaluation.tfrecord_buffers import _Layout
from tests.evaluation import example_strategies as gen
from tests.evaluation.example_proto import Parsed, reference

settings.register_profile(
    "decoder", max_examples=int(os.environ.get("PROMOTER_FUZZ_EXAMPLES", "150")),
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_PROFILE = settings.get_profile("decoder")
_KIND_NAMES = {1: "bytes_list", 2: "float_list", 3: "int64_list"}


class _Decoder:
    """The kernels on a batch of records, one call per record so that each gets its status,
    with the templates kept between calls as the reader keeps them."""

    def __init__(self, wanted: list[gen.Wanted], records: list[bytes], canary: bytes) -> None:
        self.wanted = wanted
        self.layout = _Layout({w.name: _KIND_NAMES[w.kind] for w in wanted},
                              {w.name: w.width for w in wanted}.__getitem__,
                              max(len(records), 1))
        self.columns = self.layout.new_batch()
        pieces, starts, position = [canary], [], len(canary)
        for record in records:
            starts.append(position)
            pieces += [record, canary]
            position += len(record) + len(canary)
        self.buf = np.frombuffer(b"".join(pieces), dtype=np.uint8).copy()
        self.starts = np.array(starts, dtype=np.int64)
        self.lengths = np.array([len(r) for r in records], dtype=np.int64)
        self.templates = codec.new_templates()

    def one(self, row: int) -> tuple[int, int, int, int, int]:
        return codec.decode_examples(self.buf, self.starts[row:row + 1],
                                     self.lengths[row:row + 1], 1, row, self.layout.schema,
                                     self.columns.outputs, self.templates)

    def all(self) -> tuple[int, int, int, int, int]:
        return codec.decode_examples(self.buf, self.starts, self.lengths, len(self.starts), 0,
                                     self.layout.schema, self.columns.outputs, self.templates)

    def values(self, f: int, row: int) -> list[object]:
        w = self.wanted[f]
        base, step, column_step = (int(v) for v in self.layout.layout[f])
        at = [base + n * step + row * column_step for n in range(w.width)]
        if w.kind == 2:
            return [int(self.columns.floats[i]) for i in at]
        if w.kind == 3:
            return [int(self.columns.ints[i]) for i in at]
        return [self.buf[self.columns.text_pos[i]:self.columns.text_pos[i]
                         + self.columns.text_len[i]].tobytes() for i in at]


def _expected(parsed: Parsed, wanted: list[gen.Wanted]) -> tuple[int, int, int, int]:
    """(status, feature, found kind, found count) as the decoder should report them."""
    if not parsed.valid:
        return codec.MALFORMED, -1, 0, 0
    for f, w in enumerate(wanted):
        if w.name not in parsed.features:
            return codec.MISSING, f, 0, 0
        kind, values = parsed.features[w.name]
        if kind != w.kind:
            return codec.WRONG_KIND, f, kind, len(values)
        if len(values) != w.width:
            return codec.WRONG_COUNT, f, kind, len(values)
    return codec.OK, -1, 0, 0


def _same_value(kind: int, expected: object, got: object) -> bool:
    if kind != 2:
        return expected == got
    if math.isnan(expected):  # type: ignore[arg-type]  # (float32 -> double quiets a NaN)
        return math.isnan(np.uint32(got).view(np.float32))  # type: ignore[arg-type]
    return struct.pack("<f", expected) == struct.pack("<I", got)


def _check(decoder: _Decoder, row: int, record: bytes, result: tuple[int, ...], *,
           may_refuse: bool) -> None:
    parsed = reference(record)
    status, index, feature, kind, count = result
    expected = _expected(parsed, decoder.wanted)
    if status == codec.MALFORMED and may_refuse:
        return
    where = f"record {record.hex()} ({parsed}): decoder {result}, expected {expected}"
    assert status == expected[0], where
    if status == codec.MALFORMED:
        return
    assert feature == expected[1], where
    if status in (codec.WRONG_KIND, codec.WRONG_COUNT):
        assert (kind, count) == expected[2:], where
    if status == codec.OK:
        assert index == 1, where
        for f, w in enumerate(decoder.wanted):
            got = decoder.values(f, row)
            want = parsed.features[w.name][1]
            assert all(_same_value(w.kind, e, g) for e, g in zip(want, got, strict=True)), \
                f"{where}: feature {w.name!r}: {got} != {want}"


def _run(wanted: list[gen.Wanted], records: list[bytes], canary: bytes, *,
         may_refuse: bool) -> None:
    decoder = _Decoder(wanted, records, canary)
    outcomes = []
    for row, record in enumerate(records):
        outcome = decoder.one(row)
        outcomes.append(outcome)
        _check(decoder, row, record, outcome, may_refuse=may_refuse)
    # The whole batch in one call (fresh templates, the same sequence) stops at the first
    # record that failed alone, and has decoded the same values before it.
    batch = _Decoder(wanted, records, canary)
    result = batch.all()
    failed = [row for row, outcome in enumerate(outcomes) if outcome[0] != codec.OK]
    if failed:
        assert result[:3] == (outcomes[failed[0]][0], failed[0], outcomes[failed[0]][2])
    else:
        assert result[:2] == (codec.OK, len(records))
    for row in range(failed[0] if failed else len(records)):
        for f in range(len(wanted)):
            assert batch.values(f, row) == decoder.values(f, row)


canaries = st.binary(min_size=0, max_size=16)


@_PROFILE
@given(data=st.data(), wanted=gen.schemas(), canary=canaries)
def test_generated_encodings_decode_like_protobuf(data: st.DataObject,
                                                  wanted: list[gen.Wanted],
                                                  canary: bytes) -> None:
    records = data.draw(st.lists(gen.record(wanted), min_size=1, max_size=5))
    _run(wanted, records, canary, may_refuse=False)


@_PROFILE
@given(data=st.data(), wanted=gen.schemas(), canary=canaries)
def test_canonical_records_take_templates_and_decode_like_protobuf(
        data: st.DataObject, wanted: list[gen.Wanted], canary: bytes) -> None:
    records = data.draw(gen.canonical_batch(wanted))
    _run(wanted, records, canary, may_refuse=False)
    # Records that differ only in float values: the first is parsed, the rest match it.
    same_layout = data.draw(gen.canonical_batch(wanted, floats_only=True))
    decoder = _Decoder(wanted, same_layout, canary)
    assert decoder.all()[:2] == (codec.OK, len(same_layout))
    assert codec.parsed_records(decoder.templates) == 1
    _run(wanted, same_layout, canary, may_refuse=False)


@_PROFILE
@given(data=st.data(), wanted=gen.schemas(), canary=canaries)
def test_mutated_encodings_are_refused_or_decode_like_protobuf(
        data: st.DataObject, wanted: list[gen.Wanted], canary: bytes) -> None:
    # Canonical records first, so that mutated ones meet learned templates, then generated
    # ones; each mutated (or not).
    base = data.draw(gen.canonical_batch(wanted)) + data.draw(
        st.lists(gen.record(wanted), max_size=2))
    records = [data.draw(gen.mutated(r)) if data.draw(st.booleans()) else r for r in base]
    _run(wanted, records, canary, may_refuse=True)


# --- the framing ------------------------------------------------------------------------------

def _crc32c(data: bytes) -> int:
    """CRC-32C by its definition, bit by bit (Castagnoli, reflected 0x82F63B78); the
    reference the kernels are held to here and in test_tfrecord_reader."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", _masked(_crc32c(length))) + data
            + struct.pack("<I", _masked(_crc32c(data))))


def _reference_frames(file: bytes) -> tuple[list[bytes], int]:
    """TFRecord's framing read by its definition: (records, status), status OK for a file
    that ends cleanly or inside a record (the reader calls that truncated)."""
    records, pos = [], 0
    while len(file) - pos >= 12:
        header = file[pos:pos + 8]
        if _masked(_crc32c(header)) != struct.unpack_from("<I", file, pos + 8)[0]:
            return records, codec.BAD_LENGTH_CRC
        length = struct.unpack("<Q", header)[0]
        if pos + 16 + length > len(file):
            return records, codec.BAD_LENGTH if length > 1 << 40 else codec.OK
        data = file[pos + 12:pos + 12 + length]
        if _masked(_crc32c(data)) != struct.unpack_from("<I", file, pos + 12 + length)[0]:
            return records, codec.BAD_DATA_CRC
        records.append(data)
        pos += 16 + length
    return records, codec.OK


@st.composite
def _framed_files(draw: st.DrawFn) -> bytes:
    file = bytearray(b"".join(_frame(r) for r in draw(st.lists(st.binary(max_size=40),
                                                               max_size=5))))
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["flip", "cut", "length", "framed length"]))
        at = draw(st.integers(0, len(file)))
        if op == "flip" and at < len(file):
            file[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del file[at:]
        elif op in ("length", "framed length"):  # a huge length, its checksum right or not
            length = struct.pack("<Q", draw(st.sampled_from([2**64 - 1, 2**63, 1 << 40,
                                                             (1 << 40) + 1, 2**32, 17])))
            crc = struct.pack("<I", _masked(_crc32c(length)) if op == "framed length" else 0)
            file[at:at] = length + crc
    return bytes(file)


@_PROFILE
@given(file=_framed_files(), garbage=st.binary(max_size=24), chunk=st.integers(1, 4))
def test_framing_agrees_with_its_definition(file: bytes, garbage: bytes, chunk: int) -> None:
    # Garbage after the end the kernel is given must not change what it finds.
    buf = np.frombuffer(file + garbage, dtype=np.uint8).copy()
    expected, expected_status = _reference_frames(file)
    found, pos, status = [], 0, codec.OK
    starts, lengths = np.zeros(chunk, np.int64), np.zeros(chunk, np.int64)
    while True:  # as the reader frames: up to `chunk` records at a time
        count, pos, status = codec.frame_records(buf, pos, len(file), starts, lengths,
                                                 codec.CRC_TABLES)
        found += [file[s:s + n] for s, n in zip(starts[:count], lengths[:count], strict=True)]
        if status != codec.OK or count < chunk:
            break
    assert found == expected
    assert status == expected_status
    if status == codec.OK:
        assert pos == sum(16 + len(r) for r in found)


# --- the same tests with numba's bounds checking on -------------------------------------------

_CHECKED_OUT_OF_BOUNDS = """
import numpy as np
from promoter.evaluation.kernel_cache import BOUNDSCHECK
from promoter.evaluation.tfrecord_framing import CRC_TABLES, crc32c
assert BOUNDSCHECK
buf = np.zeros(13, np.uint8)
try:
    crc32c(buf, 0, 21, CRC_TABLES)  # 8 bytes past the end, in the 8-byte load
except IndexError:
    print("IndexError raised")
"""


def test_the_decoder_tests_pass_with_numba_bounds_checking(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # A cache of their own (numba would otherwise load kernels compiled unchecked), kept
    # between runs by pytest's cache when it is on: compiling takes a minute on a busy machine.
    pytest_cache = getattr(request.config, "cache", None)  # absent with -p no:cacheprovider
    cache = (pytest_cache.mkdir("numba-boundscheck") if pytest_cache is not None
             else tmp_path / "numba")
    root = Path(__file__).parents[2]
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
           "PROMOTER_FUZZ_EXAMPLES": os.environ.get("PROMOTER_FUZZ_CHECKED_EXAMPLES", "60")}
    # First, that an out-of-bounds read in a kernel is an IndexError there (so a bounds error
    # in the tests below fails them)...
    probe = subprocess.run([sys.executable, "-c", _CHECKED_OUT_OF_BOUNDS], env=env, cwd=root,
                           capture_output=True, text=True, timeout=600, check=False)
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert "IndexError raised" in probe.stdout
    # ...then every test of this module but this one.
    run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-x",
                          "-p", "no:cacheprovider", "-k", "not bounds_checking"],
                         env=env, cwd=root, capture_output=True, text=True, timeout=900,
                         check=False)
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    assert "skipped" not in run.stdout


# --- the kernel cache -------------------------------------------------------------------------

def test_every_kernel_is_cached_against_the_source_of_every_kernel_module(
        tmp_path: Path) -> None:
    import importlib
    import shutil

    from numba.core.registry import CPUDispatcher

    from promoter.evaluation import kernel_cache

    digest = kernel_cache.sources_digest()
    kernels = 0
    for name in kernel_cache.KERNEL_MODULES:
        module = importlib.import_module(f"promoter.evaluation.{name}")
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                assert value._cache._cache_file._source_stamp[1] == digest, value
                kernels += 1
    assert kernels > 20
    # A change to any one of them (a callee inlined into the others) changes the stamp.
    here = Path(kernel_cache.__file__).parent
    for name in kernel_cache.KERNEL_MODULES:
        shutil.copy(here / f"{name}.py", tmp_path / f"{name}.py")
    assert kernel_cache.sources_digest(tmp_path) == digest
    with (tmp_path / "example_wire.py").open("a") as handle:
        handle.write("\n")
    assert kernel_cache.sources_digest(tmp_path) != digest
