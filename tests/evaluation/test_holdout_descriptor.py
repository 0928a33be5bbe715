"""The holdout handed to the worker as a read-only descriptor (`holdoutFd`): every reader reads
through it, and a worker confined by `worker.confine` cannot open the holdout's path at all,
yet reads it through the descriptor its parent (`run_worker`) opened and passed."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.errors import HoldoutError
from promoter.evaluation import evaluate_models
from promoter.evaluation.holdout import ColumnRequest
from promoter.evaluation.holdout_formats import open_holdout
from promoter.evaluation.sandbox import ConfinementUnavailableError, landlock_abi
from promoter.evaluation.worker_client import run_worker

COLUMNS = [ColumnRequest("x", text=False, needed_by="input 'x'")]
ROWS = 300


def _holdout(tmp_path: Path, fmt: str) -> Path:
    xs = [i * 0.5 for i in range(ROWS)]
    labels = [i % 2 for i in range(ROWS)]
    if fmt == "csv":
        path = tmp_path / "holdout.csv"
        path.write_text("x,label\n" + "".join(f"{x},{y}\n" for x, y in zip(xs, labels,
                                                                              strict=True)))
    elif fmt == "parquet":
        path = tmp_path / "holdout.parquet"
        pq.write_table(pa.table({"x": xs, "label": labels}), path, row_group_size=100)
    else:
        import tensorflow as tf

        path = tmp_path / "holdout.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for x, y in zip(xs, labels, strict=True):
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[y])),
                })).SerializeToString())
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet", "tfrecord"])
def test_every_format_reads_through_the_descriptor_not_the_path(tmp_path: Path,
                                                                  fmt: str) -> None:
    path = _holdout(tmp_path, fmt)
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    fd = os.open(path, os.O_RDONLY)
    try:
        path.rename(tmp_path / "moved")  # the name no longer opens anything
        path.write_bytes(b"not the holdout")  # and now names something else
        for _ in range(2):  # twice: each read starts at the file's start
            reader = open_holdout(path, label_column="label", columns=COLUMNS,
                                  batch_size=64, fd=fd)
            xs = [float(x) for batch in reader for x in batch.numeric["x"]]
            assert xs == [i * 0.5 for i in range(ROWS)]
            assert reader.rows == ROWS
            assert reader.digest == digest
        os.fstat(fd)  # the caller's descriptor stays open
    finally:
        os.close(fd)


def test_a_missing_holdout_is_refused_before_a_worker_starts(tmp_path: Path) -> None:
    with pytest.raises(HoldoutError, match=r"holdout .*nothing\.csv not found"):
        run_worker({"holdout": str(tmp_path / "nothing.csv"), "outDir": str(tmp_path)},
                   timeout_s=60, command=[sys.executable, "-c", "raise SystemExit(3)"])


def test_a_fifo_or_directory_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "holdout.csv"
    os.mkfifo(fifo)  # no writer: a blocking open would wait forever
    for path in (fifo, tmp_path):
        with pytest.raises(HoldoutError, match="is not a regular file"):
            run_worker({"holdout": str(path), "outDir": str(tmp_path)}, timeout_s=60,
                       command=[sys.executable, "-c", "raise SystemExit(3)"])


_CONFINED = """
import errno, json, os, sys
from pathlib import Path
from promoter.evaluation.worker import confine

request = json.loads(sys.stdin.read())
confinement = confine(request)  # the worker's own confinement, with the request it was sent
from promoter.evaluation.holdout import ColumnRequest
from promoter.evaluation.holdout_formats import open_holdout

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, exc.errno)

holdout, fd = Path(request["holdout"]), request["holdoutFd"]
reader = open_holdout(holdout, label_column="label", fd=fd,
                      columns=[ColumnRequest("x", text=False, needed_by="t")])
rows = sum(batch.rows for batch in reader)
print(json.dumps({"ok": True, "confinement": confinement, "rows": rows,
                  "digest": reader.digest, "fd": fd,
                  "open the path": attempt(lambda: holdout.read_bytes()),
                  "open a file beside it": attempt(lambda: (holdout.parent / "other.csv")
                                                   .read_bytes()),
                  "list its directory": attempt(lambda: os.listdir(holdout.parent)),
                  "reopen the descriptor": attempt(lambda: open(f"/proc/self/fd/{fd}", "rb")),
                  "write through the descriptor": attempt(lambda: os.write(fd, b"x"))}))
"""


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_the_confined_worker_reads_the_holdout_only_through_its_descriptor(
        tmp_path: Path, fmt: str) -> None:
    try:
        landlock_abi()
    except ConfinementUnavailableError as exc:
        pytest.skip(f"needs Landlock, which this kernel lacks: {exc}")
    data = tmp_path / "data"
    data.mkdir()
    path = _holdout(data, fmt)
    (data / "other.csv").write_text("secret\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = run_worker({"holdout": str(path), "outDir": str(scratch), "models": []},
                        timeout_s=120, command=[sys.executable, "-c", _CONFINED])
    assert "landlock" in result["confinement"]["mechanisms"]
    assert result["confinement"]["holdout"] == ("read through a descriptor the parent "
                                                "opened read-only")
    assert isinstance(result["fd"], int)
    assert result["rows"] == ROWS
    assert result["digest"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    attempts = ("open the path", "open a file beside it", "list its directory",
                "reopen the descriptor", "write through the descriptor")
    assert {k: result[k] for k in attempts} == {
        "open the path": "EACCES", "open a file beside it": "EACCES",
        "list its directory": "EACCES", "reopen the descriptor": "EACCES",
        "write through the descriptor": "EBADF"}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_evaluation_reads_the_holdout_through_the_descriptor(
        tmp_path: Path, tiny_models: dict[str, Path], tiny_holdout: Path, fmt: str) -> None:
    """The real worker, confinement required: the report says how the holdout was read, and
    its digest is of the file's bytes."""
    try:
        landlock_abi()
    except ConfinementUnavailableError as exc:
        pytest.skip(f"needs Landlock, which this kernel lacks: {exc}")
    holdout = tiny_holdout
    if fmt == "parquet":
        import pyarrow.csv

        table = pyarrow.csv.read_csv(tiny_holdout)
        holdout = tmp_path / "holdout.parquet"
        pq.write_table(table.cast(table.schema.set(0, pa.field("x", pa.float32()))), holdout)
    report = evaluate_models(
        candidate_dir=tiny_models["typed_inputs"], baseline_dir=None, holdout=holdout,
        model=ModelSpec(name="tiny", label_column="label"),
        policy=EvaluationPolicy.model_validate({"sandbox": {"confinement": "required"}}),
        measure_latency=False)
    assert report.holdout.rows == 6
    assert report.holdout.digest == "sha256:" + hashlib.sha256(holdout.read_bytes()).hexdigest()
    assert report.confinement["holdout"] == ("read through a descriptor the parent opened "
                                             "read-only")
