"""Reading Parquet holdouts: columns by name, streaming row groups, the digest, a descriptor
handed to a confined process, and errors that name the file, row, column and fix."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import ColumnRequest, read_header
from promoter.evaluation.holdout_formats import open_holdout
from promoter.evaluation.parquet_holdout import ParquetHoldoutReader
from promoter.evaluation.sandbox import ConfinementUnavailableError, landlock_abi

REPO = Path(__file__).resolve().parents[2]
COLUMNS = [ColumnRequest("age", text=False, needed_by="input 'age' of the candidate"),
           ColumnRequest("visits", text=False, needed_by="input 'visits' of the candidate"),
           ColumnRequest("plan", text=True, needed_by="input 'plan' of the candidate")]


def _table(rows: int = 10, **replace: Any) -> pa.Table:
    columns: dict[str, Any] = {
        "id": pa.array([f"u{i}" for i in range(rows)]),
        "visits": pa.array(np.arange(rows, dtype=np.int32)),
        "label": pa.array([bool(i % 2) for i in range(rows)]),
        "plan": pa.array(["gold" if i % 3 else "free" for i in range(rows)]).dictionary_encode(),
        "age": pa.array(np.arange(rows) + 0.5),
        "region": pa.array(np.arange(rows) % 2, pa.int64()),
    }
    columns.update(replace)
    return pa.table(columns)


def _write(tmp_path: Path, table: pa.Table, **options: Any) -> Path:
    path = tmp_path / "holdout.parquet"
    pq.write_table(table, path, **options)
    return path


def _read(path: Path, **options: Any) -> tuple[ParquetHoldoutReader, list[Any]]:
    reader = ParquetHoldoutReader(path, label_column="label", columns=COLUMNS, **options)
    return reader, list(reader)


def test_columns_are_matched_by_name_and_row_groups_streamed(tmp_path: Path) -> None:
    path = _write(tmp_path, _table(1000), row_group_size=128)
    reader = ParquetHoldoutReader(path, label_column="label", columns=COLUMNS, batch_size=50,
                                  slice_columns=["region"])
    reader.read_rows = 100  # pyarrow hands over 100 rows at a time, whatever the row group
    batches = list(reader)
    assert max(b.rows for b in batches) == 50
    assert reader.rows == 1000
    assert reader.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    joined = {name: np.concatenate([b.numeric[name] for b in batches])
              for name in ("age", "visits")}
    assert joined["age"].tolist() == [i + 0.5 for i in range(1000)]
    assert joined["visits"].dtype == np.float64  # int32 on disk, fed like a CSV number
    assert np.concatenate([b.labels for b in batches]).tolist() == [i % 2 for i in range(1000)]
    assert np.concatenate([b.lines for b in batches]).tolist() == list(range(1, 1001))
    assert [b.first_row for b in batches[:3]] == [0, 50, 100]
    plan = np.concatenate([b.text["plan"] for b in batches])
    assert plan[:3].tolist() == ["free", "gold", "gold"]  # dictionary-encoded strings
    assert np.concatenate([b.text["region"] for b in batches])[:3].tolist() == ["0", "1", "0"]
    assert "id" not in batches[0].text


def test_read_through_a_descriptor_names_the_path_only_in_messages(tmp_path: Path) -> None:
    path = _write(tmp_path, _table(20))
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    fd = os.open(path, os.O_RDONLY)
    try:
        path.rename(tmp_path / "moved.parquet")  # the name no longer opens anything
        reader = open_holdout(path, label_column="label", columns=COLUMNS, fd=fd)
        assert isinstance(reader, ParquetHoldoutReader)
        assert sum(b.rows for b in reader) == 20
        assert reader.digest == digest
        os.fstat(fd)  # the caller's descriptor is still open
    finally:
        os.close(fd)


def test_the_header_check_reads_the_schema(tmp_path: Path) -> None:
    path = _write(tmp_path, _table())
    assert read_header(path) == ["id", "visits", "label", "plan", "age", "region"]
    bad = tmp_path / "h.parquet"
    bad.write_text("label,x\n1,2\n")
    with pytest.raises(HoldoutError, match="is not a Parquet file, or is truncated"):
        read_header(bad)


@pytest.mark.parametrize(("replace", "message", "fix"), [
    ({"visits": pa.array(["3"] * 10)},
     "column 'visits' is string, but input 'visits' of the candidate needs a number",
     "write 'visits' as a float or integer column"),
    ({"plan": pa.array(np.zeros(10))},
     "column 'plan' is double, but input 'plan' of the candidate needs text",
     "write 'plan' as a string column"),
    ({"age": pa.array([1.0] * 9 + [None])},
     "row 10, column 'age': the value is missing (null)", "fill every feature"),
    ({"age": pa.array([1.0] * 6 + [float("inf")] * 4)},
     "row 7, column 'age': inf is not a finite number", "fill every feature"),
    ({"label": pa.array([0, 1, 2] + [0] * 7)},
     "row 3, column 'label': 2.0 is not 0 or 1", "binary classification needs labels"),
])
def test_bad_columns_and_values_name_the_row_column_and_fix(
        tmp_path: Path, replace: dict[str, Any], message: str, fix: str) -> None:
    path = _write(tmp_path, _table(**replace))
    with pytest.raises(HoldoutError) as caught:
        _read(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert f"fix: {fix}" in str(caught.value)


def test_a_missing_column_lists_the_columns_there_are(tmp_path: Path) -> None:
    path = _write(tmp_path, _table().drop_columns(["visits"]))
    with pytest.raises(HoldoutError) as caught:
        _read(path)
    assert (f"holdout {path} has no column 'visits', which feeds input 'visits' of the "
            "candidate; its columns: 'id', 'label', 'plan', 'age', 'region'") in str(caught.value)
    path = _write(tmp_path, _table().drop_columns(["label"]))
    with pytest.raises(HoldoutError, match="--label-column"):
        _read(path)


def test_negative_weights_and_non_class_labels_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _table(w=pa.array([1.0] * 4 + [-2.0] * 6)))
    with pytest.raises(HoldoutError, match=r"row 5, column 'w': -2.0 is not a finite, non-neg"):
        _read(path, weight_column="w")
    path = _write(tmp_path, _table(label=pa.array([0.0, 1.5] + [1.0] * 8)))
    with pytest.raises(HoldoutError, match=r"row 2, column 'label': 1.5 is not a class index"):
        _read(path, label_kind="class")


def test_not_parquet_truncated_and_damaged_files(tmp_path: Path) -> None:
    csv = tmp_path / "really-a.parquet"
    csv.write_text("age,visits,plan,label\n1,2,gold,0\n")
    with pytest.raises(HoldoutError, match="is not a Parquet file, or is truncated") as caught:
        _read(csv)
    assert ".csv, .tfrecord" in str(caught.value)  # says how to name another format
    data = _write(tmp_path, _table(5000), row_group_size=1000).read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(HoldoutError, match="is not a Parquet file, or is truncated"):
        _read(truncated)
    # The footer intact, the pages of the data zeroed: pyarrow cannot decode them.
    damaged = tmp_path / "damaged.parquet"
    footer = int.from_bytes(data[-8:-4], "little") + 8
    damaged.write_bytes(b"PAR1" + bytes(len(data) - footer - 4) + data[-footer:])
    with pytest.raises(HoldoutError, match=r"after row 0: cannot be read .* damaged or trunc"):
        _read(damaged)
    with pytest.raises(HoldoutError, match="not found"):
        _read(tmp_path / "missing.parquet")


def test_a_file_changed_while_it_is_read_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, _table(3000), row_group_size=500)
    reader = ParquetHoldoutReader(path, label_column="label", columns=COLUMNS, batch_size=100)
    reader.read_rows = 100
    with pytest.raises(HoldoutError, match="changed while it was evaluated"):  # noqa: PT012
        for index, _ in enumerate(reader):
            if index == 2:
                with path.open("ab") as handle:
                    handle.write(b"appended")
    assert reader.digest is None


_CONFINED_READ = """
import json, os, sys
from pathlib import Path
from promoter.evaluation import sandbox
from promoter.evaluation.holdout import ColumnRequest
from promoter.evaluation.holdout_formats import open_holdout

fd, path = int(sys.argv[1]), Path(sys.argv[2])
read, listed = sandbox.python_read_paths()
read += [Path(p) for p in sandbox.SYSTEM_READ_PATHS]
sandbox.restrict_paths(read=read, list_only=listed, write=[])  # the holdout is not granted
sandbox.install_seccomp()
try:
    path.open("rb")
    opened = "opened"
except PermissionError:
    opened = "denied"
reader = open_holdout(path, label_column="label", fd=fd,
                      columns=[ColumnRequest("age", text=False, needed_by="t")])
rows = sum(batch.rows for batch in reader)
print(json.dumps({"open": opened, "rows": rows, "digest": reader.digest,
                  "threads": len(os.listdir("/proc/self/task"))}))
"""


def test_a_confined_process_reads_parquet_through_the_descriptor_it_was_handed(
        tmp_path: Path) -> None:
    try:
        landlock_abi()
    except ConfinementUnavailableError as exc:
        pytest.skip(f"needs Landlock, which this kernel lacks: {exc}")
    path = _write(tmp_path, _table(50_000), row_group_size=10_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        done = subprocess.run([sys.executable, "-c", _CONFINED_READ, str(fd), str(path)],
                              capture_output=True, text=True, cwd=REPO, timeout=120,
                              check=False, pass_fds=(fd,))
    finally:
        os.close(fd)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["open"] == "denied"
    assert result["rows"] == 50_000
    assert result["digest"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_parquet_holdout_evaluates_like_the_same_rows_in_csv(
        tmp_path: Path, tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    from promoter.config.schema import EvaluationPolicy, ModelSpec
    from promoter.evaluation import evaluate_models

    table = pa.csv.read_csv(tiny_holdout)  # x double, n int64, s string, label int64
    path = _write(tmp_path, table.cast(table.schema.set(0, pa.field("x", pa.float32()))))
    policy = EvaluationPolicy.model_validate({"metrics": [{"name": "auc", "min": 0.5}]})
    reports = [evaluate_models(candidate_dir=tiny_models["typed_inputs"], baseline_dir=None,
                               holdout=holdout, model=ModelSpec(name="tiny"), policy=policy,
                               measure_latency=False) for holdout in (tiny_holdout, path)]
    csv_report, parquet_report = reports
    assert parquet_report.holdout.rows == 6
    assert parquet_report.holdout.digest == (
        "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
    assert parquet_report.candidate.metrics == csv_report.candidate.metrics
    assert parquet_report.candidate.metrics["accuracy"] == pytest.approx(4 / 6)
    # A column the model needs, missing: named, with the input it feeds.
    _write(tmp_path, table.drop_columns(["s"]))
    with pytest.raises(HoldoutError, match="has no column 's', which feeds input 's'"):
        evaluate_models(candidate_dir=tiny_models["typed_inputs"], baseline_dir=None,
                        holdout=path, model=ModelSpec(name="tiny"), policy=policy,
                        measure_latency=False)


def test_memory_stays_far_below_the_file_size_however_many_row_groups(
        tmp_path: Path) -> None:
    """The bytes pyarrow reads (Python bytes, through the descriptor's file object), the
    columns made of them and the digest's reads peak at a fraction of a file of 100 row
    groups: pyarrow's reader, left to itself over the whole file, reads ahead into later row
    groups (twice the file's size was traced at the peak)."""
    rows = 2_000_000
    rng = np.random.default_rng(0)
    table = pa.table({"age": rng.random(rows), "visits": rng.random(rows),
                      "label": rng.random(rows) < 0.5})
    path = _write(tmp_path, table, row_group_size=rows // 100, compression="none")
    (tmp_path / "tiny").mkdir()
    _read(_write(tmp_path / "tiny", _table(3)))  # imports, not traced
    tracemalloc.start()
    try:
        reader = ParquetHoldoutReader(path, label_column="label", columns=COLUMNS[:2],
                                      batch_size=8192)
        read = sum(batch.rows for batch in reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == rows
    size = path.stat().st_size
    assert peak < size / 2, f"{peak / size:.2f} times the file's size traced at the peak"


def test_batches_are_as_large_as_asked_beyond_the_decoding_step(tmp_path: Path) -> None:
    """evaluate_models asks for 65,536-row Parquet batches (`batch_size_for`, measured
    fastest); a batch larger than `read_rows` is decoded whole, not cut at `read_rows`."""
    from promoter.evaluation.holdout_formats import batch_size_for

    assert batch_size_for(Path("h.parquet")) == 65536
    assert batch_size_for(Path("h.csv")) == 8192
    path = _write(tmp_path, _table(20_000), row_group_size=20_000)
    reader = ParquetHoldoutReader(path, label_column="label", columns=COLUMNS,
                                  batch_size=5000)
    reader.read_rows = 1000
    assert [b.rows for b in reader] == [5000] * 4
