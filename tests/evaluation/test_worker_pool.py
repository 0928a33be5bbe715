"""Pre-started, single-use evaluation workers (`worker_pool`, `worker_zygote`), attacked the
way issue #19 asks: a worker that has seen a job never gets a second, a job cannot read
another job's directory, a waiting worker (or the zygote) killed is replaced, and no secret
of promoter's is in a worker's environment. Slow: the pool imports TensorFlow."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.evaluation import evaluate_models, worker_pool
from promoter.evaluation.evaluate import DEFAULT_MEMORY_LIMIT_MB
from promoter.evaluation.sandbox import ConfinementUnavailableError, landlock_abi
from promoter.evaluation.worker_pool import PooledWorker, WorkerPool
from promoter.model_store import LocalModelStore, saved_model_digest
from promoter.promotion.evaluator import SubprocessEvaluator

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

TINY = ModelSpec(name="tiny", label_column="label", output="probability")
LIMIT = DEFAULT_MEMORY_LIMIT_MB * 2**20
SECRETS = {"PROMOTER_WEBHOOK_SECRET": "hook-secret", "GITHUB_TOKEN": "ghp-secret",
           "AWS_SECRET_ACCESS_KEY": "aws-secret", "PYTHONPATH": "/elsewhere"}


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerPool]:
    patch = pytest.MonkeyPatch()
    for key, value in SECRETS.items():
        patch.setenv(key, value)  # in promoter's environment when the pool starts
    pool = WorkerPool(2, memory_limit_bytes=LIMIT, root=tmp_path_factory.mktemp("pool"))
    pool.start()
    patch.undo()
    assert pool.wait_ready(300), "the pool's zygote did not come up"
    yield pool
    pool.close()


def _wait(condition: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _take(pool: WorkerPool) -> PooledWorker:
    _wait(lambda: len(pool.waiting) == pool.size)
    worker = pool.take()
    assert worker is not None
    return worker


def _evaluate(worker: PooledWorker, model: Path, holdout: Path,
              policy: EvaluationPolicy | None = None) -> object:
    shutil.copytree(model, worker.in_dir / "candidate")
    try:
        return evaluate_models(candidate_dir=worker.in_dir / "candidate", baseline_dir=None,
                               holdout=holdout, model=TINY, policy=policy,
                               measure_latency=False, worker=worker)
    finally:
        worker.discard()


def test_a_pooled_evaluation_reports_what_a_fresh_worker_does(
        pool: WorkerPool, tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    fresh = evaluate_models(candidate_dir=tiny_models["two_outputs"], baseline_dir=None,
                            holdout=tiny_holdout, model=TINY, policy=None,
                            measure_latency=False)
    pooled = _evaluate(_take(pool), tiny_models["two_outputs"], tiny_holdout)
    assert pooled.candidate.metrics == fresh.candidate.metrics  # type: ignore[attr-defined]
    assert pooled.holdout.digest == fresh.holdout.digest  # type: ignore[attr-defined]
    confinement = pooled.confinement  # type: ignore[attr-defined]
    assert confinement["prestarted"] is True
    assert confinement["threads"] == 1  # Landlock confines a process with one thread
    # The zygote forks with one thread (TensorFlow imported, OpenBLAS's threads kept off).
    assert len(os.listdir(f"/proc/{pool.zygote_pid}/task")) == 1
    assert set(fresh.confinement["mechanisms"]) == set(confinement["mechanisms"])


def test_the_zygote_preloads_the_readers_with_one_thread(
        pool: WorkerPool, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """pyarrow (CSV, Parquet) and the TFRecord decoder's compiled kernels are loaded before
    the fork, and the zygote still has one thread; a forked worker decodes with them."""
    from promoter.evaluation.tfrecord import write_examples

    maps = Path(f"/proc/{pool.zygote_pid}/maps").read_text()
    assert "libarrow" in maps
    assert "llvmlite" in maps  # numba's compiler, which loaded the kernels
    assert len(os.listdir(f"/proc/{pool.zygote_pid}/task")) == 1
    holdout = tmp_path / "h.tfrecord"
    write_examples(holdout, {"x": np.array([-2.0, 0.5, 1.0, -1.0], np.float32),
                             "label": np.array([0, 1, 1, 0])})
    fresh = evaluate_models(candidate_dir=tiny_models["two_outputs"], baseline_dir=None,
                            holdout=holdout, model=TINY, policy=None, measure_latency=False)
    pooled = _evaluate(_take(pool), tiny_models["two_outputs"], holdout)
    assert pooled.confinement["prestarted"] is True  # type: ignore[attr-defined]
    assert pooled.candidate.metrics == fresh.candidate.metrics  # type: ignore[attr-defined]


def test_a_worker_gets_one_job_only(pool: WorkerPool, tiny_models: dict[str, Path],
                                    tiny_holdout: Path) -> None:
    seen: set[int] = set()
    for _ in range(3):
        worker = _take(pool)
        assert worker.pid not in seen
        assert worker.pid not in pool.waiting  # out of the pool before it is handed out
        seen.add(worker.pid)  # type: ignore[arg-type]
        _evaluate(worker, tiny_models["two_outputs"], tiny_holdout)
        assert worker.returncode == 0  # it exited after its one job
        assert not worker.job_dir.exists()  # and its job directory is gone
        with pytest.raises(RuntimeError, match="one request only"):
            worker.run({}, timeout_s=5)
        with pytest.raises(ProcessLookupError):
            os.kill(worker.pid, 0)  # type: ignore[arg-type]
    assert not seen & set(pool.waiting)


_CONFINED_JOB = """
import errno, json, os, sys
from pathlib import Path
from promoter.evaluation.worker_zygote import confine_to_job

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, exc.errno)

ours, other = Path(sys.argv[1]), Path(sys.argv[2])
confinement = confine_to_job({"jobDir": str(ours), "memoryLimitBytes": None})
print("confined", flush=True)
sys.stdin.readline()  # the parent fills the job directory meanwhile
print(json.dumps({
    "landlock": "landlock" in confinement["mechanisms"],
    "read a file placed after confinement": attempt(lambda: Path(sys.argv[3]).read_text()),
    "read another job's file": attempt(lambda: (other / "in" / "secret.csv").read_text()),
    "list another job's directory": attempt(lambda: os.listdir(other / "in")),
    "write another job's results": attempt(lambda: (other / "out" / "x.npz").write_text("x")),
    "list the pool": attempt(lambda: os.listdir(ours.parent)),
    "write its own inputs": attempt(lambda: (ours / "in" / "x").write_text("x")),
    "write its own results": attempt(lambda: (ours / "out" / "x.npz").write_text("x")),
}))
"""


def test_a_job_cannot_reach_another_jobs_directory(tmp_path: Path) -> None:
    """The confinement a pooled worker applies before its job (`confine_to_job`, the code the
    zygote's workers run), with a second job's directory beside it."""
    try:
        landlock_abi()
    except ConfinementUnavailableError as exc:
        pytest.skip(f"needs Landlock, which this kernel lacks: {exc}")
    ours, other = tmp_path / "job-1", tmp_path / "job-2"
    for job in (ours, other):
        (job / "in").mkdir(parents=True)
        (job / "out").mkdir()
    (other / "in" / "secret.csv").write_text("API_TOKEN=hunter2\n")
    placed = ours / "in" / "holdout.csv"
    child = subprocess.Popen([sys.executable, "-c", _CONFINED_JOB, str(ours), str(other),
                              str(placed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert child.stdout is not None
    assert child.stdout.readline() == "confined\n"
    placed.write_text("placed after the worker confined itself")
    stdout, stderr = child.communicate("go\n", timeout=120)
    assert child.returncode == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1]) == {
        "landlock": True,
        "read a file placed after confinement": "ok",
        "read another job's file": "EACCES", "list another job's directory": "EACCES",
        "write another job's results": "EACCES", "list the pool": "EACCES",
        "write its own inputs": "EACCES", "write its own results": "ok"}


def test_a_waiting_worker_killed_is_replaced(pool: WorkerPool, tiny_models: dict[str, Path],
                                             tiny_holdout: Path) -> None:
    _wait(lambda: len(pool.waiting) == pool.size)
    victim = pool.waiting[0]
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: victim not in pool.waiting and len(pool.waiting) == pool.size)
    report = _evaluate(_take(pool), tiny_models["two_outputs"], tiny_holdout)
    assert report.holdout.rows == 6  # type: ignore[attr-defined]


def test_a_killed_zygote_is_replaced(pool: WorkerPool, monkeypatch: pytest.MonkeyPatch,
                                     tiny_models: dict[str, Path], tiny_holdout: Path) -> None:
    monkeypatch.setattr(worker_pool, "_RESTART_DELAY_S", 0.0)
    _wait(lambda: len(pool.waiting) == pool.size)
    old_zygote, old_workers = pool.zygote_pid, pool.waiting
    os.kill(old_zygote, signal.SIGKILL)  # type: ignore[arg-type]
    _wait(lambda: pool.zygote_pid != old_zygote or not pool.waiting)
    for pid in old_workers:  # its waiting workers were stopped with it
        _wait(lambda pid=pid: _gone(pid))
    pool.take()  # starts the new zygote (None until it is up)
    _wait(lambda: len(pool.waiting) == pool.size, timeout_s=300)
    assert pool.zygote_pid != old_zygote
    report = _evaluate(_take(pool), tiny_models["two_outputs"], tiny_holdout)
    assert report.holdout.rows == 6  # type: ignore[attr-defined]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_no_secret_is_in_a_pooled_workers_environment(pool: WorkerPool) -> None:
    _wait(lambda: len(pool.waiting) == pool.size)
    for pid in [pool.zygote_pid, *pool.waiting]:
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
        variables = dict(item.split("=", 1) for item in environ.split("\0") if item)
        for key, value in SECRETS.items():
            assert key not in variables
            assert value not in environ
        assert "PATH" not in variables
        assert set(variables) <= {"HOME", "TMPDIR", "LANG", "LC_ALL", "TF_CPP_MIN_LOG_LEVEL",
                                  "OPENBLAS_NUM_THREADS", "JE_ARROW_MALLOC_CONF"}


def test_the_gates_evaluator_uses_the_pool_and_measures_latency_only_for_budgets(
        pool: WorkerPool, tiny_models: dict[str, Path], tiny_holdout: Path,
        tmp_path: Path) -> None:
    shutil.copytree(tiny_models["two_outputs"], tmp_path / "tiny" / "1")
    store = LocalModelStore(tmp_path)
    evaluator = SubprocessEvaluator(store, pool=pool)
    reports = []
    for policy in ({}, {"budgets": {"p99LatencyMs": 10000}}):
        _wait(lambda: len(pool.waiting) == pool.size)
        reports.append(evaluator.evaluate(
            candidate=store.get("tiny", 1), baseline=None, holdout=tiny_holdout, model=TINY,
            policy=EvaluationPolicy.model_validate(policy), environment="dev"))
    plain, budgeted = reports
    assert plain.confinement["prestarted"] is True
    assert plain.candidate.latency_ms is None
    assert budgeted.candidate.latency_ms is not None
    assert budgeted.passed
    assert plain.candidate.digest == budgeted.candidate.digest == saved_model_digest(
        tiny_models["two_outputs"])


def test_a_sharded_evaluation_in_pooled_workers_equals_one_fresh_worker(
        pool: WorkerPool, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Two waiting workers score every other batch (each with its own copies); the report
    is the one fresh worker's, bit for bit (timings aside)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=8192 + 100).round(4)
    holdout = tmp_path / "two-batches.csv"
    holdout.write_text("x,label\n" + "".join(f"{v},{int(v + rng.normal() > 0)}\n" for v in x))
    shutil.copytree(tiny_models["two_outputs"], tmp_path / "store" / "tiny" / "1")
    store = LocalModelStore(tmp_path / "store")
    policy = EvaluationPolicy.model_validate({"bootstrap": {"resamples": 100}, "metrics": [
        {"name": "auc", "vsBaseline": {"maxRegression": 0.1}}]})
    _wait(lambda: len(pool.waiting) == pool.size)
    sharded = SubprocessEvaluator(store, pool=pool, shards=2).evaluate(
        candidate=store.get("tiny", 1), baseline=store.get("tiny", 1), holdout=holdout,
        model=TINY, policy=policy, environment="dev")
    fresh = SubprocessEvaluator(store, shards=1).evaluate(
        candidate=store.get("tiny", 1), baseline=store.get("tiny", 1), holdout=holdout,
        model=TINY, policy=policy, environment="dev")
    assert sharded.confinement["prestarted"] is True
    assert sharded.holdout.rows == 8292
    assert pool.started >= 2

    def same(report: object) -> dict[str, object]:
        data = report.to_json_dict()  # type: ignore[attr-defined]
        for role in ("candidate", "baseline"):
            data[role].pop("scoringSeconds")
            data[role].pop("modelDir")  # the copies: in the job directory, or not
        data["bootstrap"].pop("seconds")
        data.pop("confinement")  # how it ran: pre-started or fresh
        return data  # type: ignore[no-any-return]

    assert same(sharded) == same(fresh)


def test_a_fork_announced_after_the_pool_closed_is_ended() -> None:
    """Seen once in a teardown: the zygote's `forked` message arrived after `close()` had
    emptied the pool, and the listener thread failed. The worker must be ended instead."""
    # In a process group of its own, as a forked worker is.
    late = subprocess.Popen(["sleep", "60"], start_new_session=True)
    pool = WorkerPool(1, memory_limit_bytes=None)
    pool.close()
    pool._handle({"forked": late.pid, "jobDir": "/nowhere"})
    assert late.wait(timeout=10) == -signal.SIGKILL
