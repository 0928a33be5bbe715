"""Reading CSV holdouts: batches, digests, and errors that point at the file, line and column.

Every reading test runs twice: with the exact parser (`HoldoutReader`, Python's csv module)
and with the pyarrow reader the worker uses (`ArrowCSVReader`), which must behave the same."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from promoter.errors import HoldoutError
from promoter.evaluation.arrow_csv import ArrowCSVReader
from promoter.evaluation.holdout import ColumnRequest, HoldoutReader, read_header
from promoter.evaluation.holdout_feeds import columns_for, feed_inputs
from promoter.evaluation.signature import SignatureInfo, TensorInfo

INFO = SignatureInfo(
    name="serving_default", output="probability",
    inputs=(TensorInfo("age", "float32", (None, 1)), TensorInfo("visits", "int64", (None,)),
            TensorInfo("plan", "string", (None,))),
    outputs=(TensorInfo("probability", "float32", (None, 1)),),
)
GOOD = "id,age,visits,plan,label\nu1,31.5,3,gold,1\nu2,40,0,free,0\nu3,22.25,7,free,1\n"


@pytest.fixture(params=[HoldoutReader, ArrowCSVReader], ids=["exact", "arrow"])
def reader_class(request: pytest.FixtureRequest) -> type:
    return request.param


def _write(tmp_path: Path, text: str, name: str = "holdout.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _read(path: Path, *, batch_size: int = 1024, label: str = "label",
          info: SignatureInfo = INFO, reader_class: type = HoldoutReader) -> tuple[Any, list]:
    reader = reader_class(path, label_column=label, columns=columns_for(info, model="the "
                                                                                   "candidate"),
                           batch_size=batch_size)
    return reader, list(reader)


def test_reads_matching_columns_ignores_the_rest_and_digests_the_bytes(tmp_path: Path,
                                                                       reader_class: type) -> None:
    path = _write(tmp_path, GOOD)
    reader, batches = _read(path, reader_class=reader_class)
    [batch] = batches
    assert batch.labels.tolist() == [1, 0, 1]
    assert batch.lines.tolist() == [2, 3, 4]
    assert batch.numeric["age"].tolist() == [31.5, 40.0, 22.25]
    assert batch.text["plan"].tolist() == ["gold", "free", "free"]
    assert "id" not in batch.numeric
    assert "id" not in batch.text
    assert reader.rows == 3
    assert reader.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_streams_in_batches_of_the_requested_size(tmp_path: Path, reader_class: type) -> None:
    rows = "".join(f"u{i},{i}.5,{i},free,{i % 2}\n" for i in range(10))
    reader, batches = _read(_write(tmp_path, "id,age,visits,plan,label\n" + rows), batch_size=4,
                            reader_class=reader_class)
    assert [b.rows for b in batches] == [4, 4, 2]
    assert np.concatenate([b.numeric["age"] for b in batches]).tolist() == [
        i + 0.5 for i in range(10)]
    assert reader.rows == 10


def test_blank_lines_crlf_and_a_byte_order_mark_are_fine(tmp_path: Path,
                                                         reader_class: type) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + GOOD.replace("\n", "\r\n") + "\r\n").encode("utf-8"))
    reader, [batch] = _read(path, reader_class=reader_class)
    assert batch.rows == 3
    assert batch.lines.tolist() == [2, 3, 4]
    assert reader.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_feed_casts_and_shapes_each_input_like_the_signature(tmp_path: Path,
                                                             reader_class: type) -> None:
    _, [batch] = _read(_write(tmp_path, GOOD), reader_class=reader_class)
    feeds = feed_inputs(INFO, batch, model="the candidate", source=Path("h.csv"))
    assert feeds["age"].dtype == np.float32
    assert feeds["age"].shape == (3, 1)
    assert feeds["visits"].dtype == np.int64
    assert feeds["visits"].tolist() == [3, 0, 7]
    assert feeds["plan"].shape == (3,)


def test_missing_column_names_the_column_the_file_and_the_expected_input(
        tmp_path: Path, reader_class: type) -> None:
    path = _write(tmp_path, "id,age,plan,label\nu1,1,gold,0\n")
    with pytest.raises(HoldoutError) as info:
        _read(path, reader_class=reader_class)
    message = str(info.value)
    assert f"holdout {path} has no column 'visits'" in message
    assert "input 'visits' (int64, shape [None]) of the candidate's signature" in message
    assert "'serving_default'" in message
    assert "its columns: 'id', 'age', 'plan', 'label'" in message


def test_missing_label_column_says_how_to_configure_it(tmp_path: Path, reader_class: type) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(HoldoutError, match="no label column 'churned'") as info:
        _read(path, label="churned", reader_class=reader_class)
    assert "labelColumn" in str(info.value)
    assert "--label-column" in str(info.value)


@pytest.mark.parametrize(("row", "column", "problem"), [
    ("u9,abc,1,free,0", "age", "'abc' is not a number"),
    ("u9,,1,free,0", "age", "'' is empty"),
    ("u9,nan,1,free,0", "age", "'nan' is not a finite number"),
    ("u9,1.0,1,free,yes", "label", "'yes' is not a number"),
])
def test_bad_value_names_file_line_and_column(tmp_path: Path, row: str, column: str,
                                              problem: str, reader_class: type) -> None:
    path = _write(tmp_path, GOOD + row + "\n")
    with pytest.raises(HoldoutError) as info:
        _read(path, reader_class=reader_class)
    assert str(info.value).startswith(f"{path}, line 5, column {column!r}: {problem}")


def test_label_other_than_zero_or_one_is_refused(tmp_path: Path, reader_class: type) -> None:
    path = _write(tmp_path, GOOD + "u9,1.0,1,free,2\n")
    with pytest.raises(HoldoutError, match=r"line 5, column 'label': label '2' is not 0 or 1"):
        _read(path, reader_class=reader_class)


def test_labels_written_as_floats_are_accepted(tmp_path: Path, reader_class: type) -> None:
    _, [batch] = _read(_write(tmp_path, GOOD.replace(",1\n", ",1.0\n")),
                       reader_class=reader_class)
    assert batch.labels.tolist() == [1, 0, 1]


def test_fraction_for_an_integer_input_is_refused_at_its_line(tmp_path: Path,
                                                              reader_class: type) -> None:
    _, [batch] = _read(_write(tmp_path, GOOD + "u9,1.0,2.5,free,0\n"), reader_class=reader_class)
    with pytest.raises(HoldoutError, match=r"h.csv, line 5, column 'visits': 2.5 is not a whole"):
        feed_inputs(INFO, batch, model="the candidate", source=Path("h.csv"))


@pytest.mark.parametrize(("text", "match"), [
    ("", "is empty"),
    ("id,age,visits,plan,label\n", "has a header but no data rows"),
    ("id,age,visits,plan,label\n\n\n", "has a header but no data rows"),
    (GOOD + "u9,1\n", r"line 5: 2 fields, but the header has 5"),
    ("age,age,visits,plan,label\n1,1,1,a,0\n", "line 1: column 'age' appears twice"),
    (GOOD + 'u9,"1\n', "not valid CSV"),
])
def test_malformed_files(tmp_path: Path, text: str, match: str, reader_class: type) -> None:
    with pytest.raises(HoldoutError, match=match):
        _read(_write(tmp_path, text), reader_class=reader_class)


def test_not_utf8_and_not_found(tmp_path: Path, reader_class: type) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,age,visits,plan,label\nu1,1,1,caf\xe9,0\n".encode("latin-1"))
    with pytest.raises(HoldoutError, match="not UTF-8"):
        _read(path, reader_class=reader_class)
    with pytest.raises(HoldoutError, match="not found"):
        _read(tmp_path / "missing.csv", reader_class=reader_class)
    with pytest.raises(HoldoutError, match="not found"):
        read_header(tmp_path / "missing.csv")
    with pytest.raises(HoldoutError, match="is empty"):
        read_header(_write(tmp_path, ""))


def test_reading_is_bounded_by_the_batch_not_the_file(tmp_path: Path,
                                                      reader_class: type) -> None:
    rows = "".join(f"u{i},{i},{i},free,{i % 2}\n" for i in range(5000))
    reader = reader_class(_write(tmp_path, "id,age,visits,plan,label\n" + rows),
                           label_column="label",
                           columns=[ColumnRequest("age", text=False, needed_by="a test")],
                           batch_size=100)
    largest = max(batch.rows for batch in reader)
    assert largest == 100
    assert reader.rows == 5000
