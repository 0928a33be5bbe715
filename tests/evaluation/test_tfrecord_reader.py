"""The TFRecord holdout reader and its compiled decoder, checked against protobuf's own parser.

Records are framed by TensorFlow's `TFRecordWriter` (an independent implementation of the
framing and its checksums) and the expected values come from `tf.train.Example.ParseFromString`,
so every wire-format variant here is decoded by two parsers and must agree: canonical records
(the template path), and hand-written non-canonical ones (fields out of order, unpacked lists,
duplicate keys, a oneof member replaced, unknown fields, several Features) that take the
parsing path.
"""

from __future__ import annotations

import hashlib
import os
import random
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import ColumnRequest
from promoter.evaluation.tfrecord import TFRecordHoldoutReader
from tests.evaluation import example_strategies as gen
from tests.evaluation.example_proto import reference
from tests.evaluation.example_strategies import Wanted
from tests.evaluation.test_example_fuzz import _crc32c as crc32c_by_definition

tf = pytest.importorskip("tensorflow")


# --- a minimal protobuf writer, for encodings protobuf-python never emits ---------------------

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _float_list(values: list[float], *, packed: bool) -> bytes:
    if packed:
        return _field(1, struct.pack(f"<{len(values)}f", *values))
    return b"".join(_varint(1 << 3 | 5) + struct.pack("<f", v) for v in values)


def _int64_list(values: list[int], *, packed: bool) -> bytes:
    if packed:
        return _field(1, b"".join(_varint(v) for v in values))
    return b"".join(_varint(1 << 3 | 0) + _varint(v) for v in values)


def _entry(key: str, feature: bytes, *, value_first: bool = False) -> bytes:
    parts = [_field(1, key.encode()), _field(2, feature)]
    return _field(1, b"".join(reversed(parts) if value_first else parts))


def _write(path: Path, records: list[bytes]) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)


def _reference(records: list[bytes], names: dict[str, int]) -> dict[str, np.ndarray]:
    """Each wanted feature's values per record, as protobuf parses them."""
    out: dict[str, list[object]] = {name: [] for name in names}
    for record in records:
        example = tf.train.Example()
        example.ParseFromString(record)
        for name, width in names.items():
            feature = example.features.feature[name]
            values = list(getattr(feature, feature.WhichOneof("kind")).value)
            assert len(values) == width
            out[name].append(values[0] if width == 1 else values)
    return {name: np.array(values) for name, values in out.items()}


def _read(path: Path, *, widths: dict[str, int], batch_size: int = 7,
          chunk_bytes: int | None = None, label: str = "label",
          slices: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], TFRecordHoldoutReader]:
    columns = [ColumnRequest(name=n, text=False, needed_by=f"input {n!r}", width=w)
               for n, w in widths.items() if n != label]
    reader = TFRecordHoldoutReader(path, label_column=label, columns=columns,
                                   batch_size=batch_size, slice_columns=slices,
                                   label_kind="real")
    if chunk_bytes:
        reader.chunk_bytes = chunk_bytes
    parts: dict[str, list[np.ndarray]] = {}
    for batch in reader:
        parts.setdefault(label, []).append(batch.labels)
        for name, values in {**batch.numeric, **batch.text}.items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}, reader


# --- agreement with protobuf -----------------------------------------------------------------

def _canonical(rng: random.Random, rows: int) -> list[bytes]:
    records = []
    for _ in range(rows):
        feature = {
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[rng.uniform(-9, 9)])),
            "v": tf.train.Feature(float_list=tf.train.FloatList(
                value=[rng.uniform(-1, 1) for _ in range(3)])),
            # Labels and ids of 1, 2 and 10 varint bytes: several templates.
            "label": tf.train.Feature(int64_list=tf.train.Int64List(
                value=[rng.choice([0, 1, 300, -5])])),
            "unused": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[b"z" * rng.randint(0, 3)])),
            "country": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[rng.choice([b"DE", b"FR", b"USA"])])),
        }
        records.append(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
    return records


def _unusual(rng: random.Random) -> bytes:
    """A record that only a full parser reads right; `x` and `label` hold the last values."""
    x, label = rng.uniform(-9, 9), rng.randint(0, 1)
    choice = rng.randrange(6)
    if choice == 0:  # value before key, unpacked lists
        entries = [_entry("x", _field(2, _float_list([x], packed=False)), value_first=True),
                   _entry("label", _field(3, _int64_list([label], packed=False)))]
    elif choice == 1:  # a duplicate key: the last entry wins
        entries = [_entry("x", _field(2, _float_list([x + 1, 5.0], packed=True))),
                   _entry("label", _field(3, _int64_list([label], packed=True))),
                   _entry("x", _field(2, _float_list([x], packed=True)))]
    elif choice == 2:  # a oneof member replaced by a later one
        entries = [_entry("x", _field(3, _int64_list([7], packed=True))
                          + _field(2, _float_list([x], packed=True))),
                   _entry("label", _field(2, _float_list([9.0], packed=True))
                          + _field(3, _int64_list([label], packed=True)))]
    elif choice == 3:  # a list split over two occurrences merges
        entries = [_entry("x", _field(2, _float_list([x], packed=True))),
                   _entry("label", _field(3, b"") + _field(3, _int64_list([label],
                                                                          packed=True)))]
    elif choice == 4:  # unknown fields in every message but the map entry (parsers differ
        # there: protobuf-python moves such an entry to the unknown fields, TensorFlow's
        # parse_example and this decoder skip the unknown field)
        unknown = _varint(7 << 3 | 0) + _varint(42) + _field(9, b"junk")
        entries = [_entry("x", unknown + _field(2, unknown + _float_list([x], packed=True))),
                   _entry("label", _field(3, _int64_list([label], packed=True)))]
        return unknown + _field(1, unknown + b"".join(entries)) + unknown
    else:  # two Features messages merge
        return (_field(1, _entry("x", _field(2, _float_list([x], packed=True))))
                + _field(1, _entry("label", _field(3, _int64_list([label], packed=True)))))
    return _field(1, b"".join(entries))


def test_canonical_records_decode_like_protobuf_across_batches_and_refills(
        tmp_path: Path) -> None:
    records = _canonical(random.Random(3), 500)
    path = tmp_path / "h.tfrecord"
    _write(path, records)
    widths = {"x": 1, "v": 3, "label": 1}
    got, reader = _read(path, widths=widths, batch_size=64, chunk_bytes=4096,
                        slices=("country",))
    expected = _reference(records, {**widths, "country": 1})
    np.testing.assert_array_equal(got["x"], expected["x"].astype(np.float32))
    np.testing.assert_array_equal(got["v"], expected["v"].astype(np.float32))
    np.testing.assert_array_equal(got["label"], expected["label"])
    assert list(got["country"]) == [c.decode() for c in expected["country"]]
    assert reader.rows == 500
    assert reader.digest == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    # Three label lengths (1, 2 and 10 varint bytes) x two country lengths x four `unused`
    # lengths: 24 layouts at most, each parsed once; every other record matched a template.
    assert reader.parsed_records <= 24


def test_unusual_encodings_decode_like_protobuf(tmp_path: Path) -> None:
    rng = random.Random(5)
    records = [_unusual(rng) for _ in range(300)]
    path = tmp_path / "h.tfrecord"
    _write(path, records)
    got, reader = _read(path, widths={"x": 1, "label": 1})
    expected = _reference(records, {"x": 1, "label": 1})
    np.testing.assert_array_equal(got["x"], expected["x"].astype(np.float32))
    np.testing.assert_array_equal(got["label"], expected["label"])
    assert reader.parsed_records > 100  # these take the parsing path, not templates


def test_a_record_longer_than_the_buffer_grows_it(tmp_path: Path) -> None:
    records = [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i)])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
        "blob": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"b" * 5000 * i])),
    })).SerializeToString() for i in range(4)]
    path = tmp_path / "h.tfrecord"
    _write(path, records)
    got, _ = _read(path, widths={"x": 1, "label": 1}, chunk_bytes=1024)
    assert got["x"].tolist() == [0.0, 1.0, 2.0, 3.0]


# --- bad files: a clear error naming the record -----------------------------------------------

def _good(tmp_path: Path, rows: int = 5) -> Path:
    records = [tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[0.5 * i])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2])),
    })).SerializeToString() for i in range(rows)]
    path = tmp_path / "h.tfrecord"
    _write(path, records)
    return path


def _record_offset(path: Path, index: int) -> int:
    data, offset = path.read_bytes(), 0
    for _ in range(index):
        offset += 16 + struct.unpack_from("<Q", data, offset)[0]
    return offset


@pytest.mark.parametrize(("where", "match"), [
    ("data", "corrupt at record 3: its data fails its checksum"),
    ("length", "corrupt at record 3: its length field fails its checksum"),
])
def test_a_flipped_byte_fails_the_checksum_and_names_the_record(
        tmp_path: Path, where: str, match: str) -> None:
    path = _good(tmp_path)
    data = bytearray(path.read_bytes())
    offset = _record_offset(path, 2) + (14 if where == "data" else 1)
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(HoldoutError, match=match):
        _read(path, widths={"x": 1, "label": 1})
    # The hashing thread is shut down with the reader, error or not.
    assert not [t for t in threading.enumerate() if t.name.startswith("promoter-holdout-hash")]


@pytest.mark.parametrize("cut", [3, 20])
def test_a_truncated_file_is_an_error(tmp_path: Path, cut: int) -> None:
    path = _good(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut < 12 else data[: len(data) - cut])
    with pytest.raises(HoldoutError, match="truncated or corrupt"):
        _read(path, widths={"x": 1, "label": 1})


def test_garbage_with_valid_checksums_is_not_an_example(tmp_path: Path) -> None:
    path = tmp_path / "h.tfrecord"
    good = _good(tmp_path / "..", rows=2).read_bytes()
    _write(path, [])
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(2):
            example = tf.train.Example()
            example.features.feature["x"].float_list.value.append(float(i))
            example.features.feature["label"].int64_list.value.append(i)
            writer.write(example.SerializeToString())
        writer.write(b"\x0a\x05\x0a\x03\x0a\x01")  # a Features length past its end
    assert good
    with pytest.raises(HoldoutError, match=r"record 3 is not a valid tf.train.Example"):
        _read(path, widths={"x": 1, "label": 1})


@pytest.mark.parametrize(("damage", "match"), [
    ("missing", r"record 3 has no feature 'x'"),
    ("kind", r"record 3, feature 'x' is int64_list, but record 1 has float_list"),
    ("width", r"record 3, feature 'v' has 2 values, but 3 are needed per example"),
])
def test_later_records_that_break_the_schema_are_named(tmp_path: Path, damage: str,
                                                       match: str) -> None:
    def example(i: int, *, broken: bool) -> bytes:
        feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0])),
                   "v": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0, 3.0])),
                   "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}
        if broken and damage == "missing":
            del feature["x"]
        elif broken and damage == "kind":
            feature["x"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))
        elif broken:
            feature["v"] = tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0]))
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    path = tmp_path / "h.tfrecord"
    _write(path, [example(i, broken=i == 2) for i in range(5)])
    with pytest.raises(HoldoutError, match=match):
        _read(path, widths={"x": 1, "v": 3, "label": 1})


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "h.tfrecord"
    path.write_bytes(b"")
    with pytest.raises(HoldoutError, match="empty"):
        _read(path, widths={"x": 1, "label": 1})


# --- checksums and the kernel cache ----------------------------------------------------------

def test_both_crc32c_paths_agree_with_the_definition() -> None:
    # This machine frames records with the CPU's crc32 instruction where it has one; the table
    # path (other CPUs) must give the same checksums, checked here directly.
    from promoter.evaluation.tfrecord_framing import CRC_TABLES, crc32c, crc32c_software

    check = np.frombuffer(b"123456789", np.uint8).copy()
    assert crc32c(check, 0, 9, CRC_TABLES) == crc32c_software(check, 0, 9, CRC_TABLES) \
        == 0xE3069283  # the standard check value of CRC-32C
    data = np.random.default_rng(5).integers(0, 256, 300, dtype=np.uint8)
    for start in range(9):
        for length in (0, 1, 7, 8, 9, 15, 16, 17, 64, 255, 300 - start):
            expected = crc32c_by_definition(data[start:start + length].tobytes())
            assert crc32c_software(data, start, length, CRC_TABLES) == expected
            assert crc32c(data, start, length, CRC_TABLES) == expected


def test_kernel_cache_falls_back_to_a_private_directory(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import numba

    from promoter.evaluation.kernel_cache import choose_cache_dir

    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    assert choose_cache_dir(here=tmp_path, cache_home=tmp_path / "no-home") is None
    assert numba.config.CACHE_DIR == ""  # a writable place: numba's own choice stands
    chosen = choose_cache_dir(here=tmp_path / "gone", cache_home=tmp_path / "no-home")
    assert chosen is not None
    assert Path(chosen).is_dir()
    assert chosen == numba.config.CACHE_DIR
    Path(chosen).rmdir()
    monkeypatch.setattr(numba.config, "CACHE_DIR", "/somewhere/set")
    assert choose_cache_dir(here=tmp_path / "gone", cache_home=tmp_path / "no-home") is None


# --- against protobuf, through the reader -----------------------------------------------------

def test_the_fuzz_tests_example_schema_is_tensorflows() -> None:
    # tests/evaluation/example_proto.py rebuilds tf.train.Example for protobuf's runtime (so
    # that the differential tests need no TensorFlow); it must be the same schema.
    from tests.evaluation.example_proto import message_class

    def shape(descriptor: object) -> list[tuple[object, ...]]:
        return [(f.name, f.number, f.type, f.is_repeated,  # type: ignore[attr-defined]
                 f.message_type.name if f.message_type else None,
                 f.containing_oneof.name if f.containing_oneof else None)
                for f in descriptor.fields]  # type: ignore[attr-defined]

    for name in ("Example", "Features", "Feature", "BytesList", "FloatList", "Int64List"):
        ours, theirs = message_class(name).DESCRIPTOR, getattr(tf.train, name).DESCRIPTOR
        assert shape(ours) == shape(theirs), name
    entry = message_class("Features").DESCRIPTOR.nested_types_by_name["FeatureEntry"]
    assert shape(entry) == shape(tf.train.Features.DESCRIPTOR.nested_types_by_name[
        "FeatureEntry"])
    assert entry.GetOptions().map_entry


def test_an_empty_record_after_good_ones_lacks_the_features(tmp_path: Path) -> None:
    # Found by the differential tests: an empty record (a valid Example without features)
    # matched the decoder's unused templates, of length 0, and was "decoded" to whatever the
    # column arrays held.
    path = _good(tmp_path)
    data = path.read_bytes()
    with tf.io.TFRecordWriter(str(tmp_path / "empty.tfrecord")) as writer:
        writer.write(b"")
    path.write_bytes(data[:_record_offset(path, 2)] + (tmp_path / "empty.tfrecord").read_bytes()
                     + data[_record_offset(path, 2):])
    with pytest.raises(HoldoutError, match=r"record 3 has no feature 'label'"):
        _read(path, widths={"x": 1, "label": 1})



def _fine(records: list[bytes], wanted: list[Wanted]) -> bool:
    """Whether protobuf reads every record with every wanted feature, of the right kind and
    width, and every float finite: then, and only then, the reader must succeed."""
    for record in records:
        parsed = reference(record)
        for w in wanted:
            kind, values = parsed.features.get(w.name, (-1, []))
            if not parsed.valid or kind != w.kind or len(values) != w.width:
                return False
            if kind == 2 and not np.isfinite(np.array(values, dtype=np.float64)).all():
                return False
    return True


@settings(max_examples=int(os.environ.get("PROMOTER_FUZZ_EXAMPLES", "150")) // 6,
          deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_reader_refuses_or_reads_what_protobuf_reads(tmp_path_factory: pytest.TempPathFactory,
                                                         data: st.DataObject) -> None:
    wanted = [Wanted("x", 2, 1), Wanted("v", 2, 2), Wanted("label", 3, 1)]
    records = data.draw(gen.canonical_batch(wanted)) + data.draw(
        st.lists(gen.record(wanted), max_size=3))
    records = [records[0]] + [data.draw(gen.mutated(r)) if data.draw(st.booleans()) else r
                              for r in records[1:]]
    path = tmp_path_factory.mktemp("fuzz") / "h.tfrecord"
    _write(path, records)
    if not _fine(records, wanted):
        with pytest.raises(HoldoutError):
            _read(path, widths={"x": 1, "v": 2, "label": 1}, batch_size=3)
        return
    got, _ = _read(path, widths={"x": 1, "v": 2, "label": 1}, batch_size=3)
    for w in wanted:
        expected = [reference(r).features[w.name][1] for r in records]
        values = np.array(expected, dtype=np.float32 if w.kind == 2 else np.int64)
        np.testing.assert_array_equal(got[w.name], values[:, 0] if w.width == 1 else values)
