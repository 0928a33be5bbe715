"""The fixed cost of an evaluation, and the time from a `pull_request` webhook to its verdict.

Models: the demo's churn v2 (candidate) and v1 (baseline), trained at set-up. Every figure is
the median of `--runs` runs, all in one run of this script, one after the other:

- `tensorflow_import_s`, `import_and_loads_s`: a fresh interpreter's `import tensorflow`, and
  that plus `tf.saved_model.load` of both models; `import_without_keras_and_loads_s`: the
  same with Keras and scikit-learn refused, as the worker imports TensorFlow: the floor of a
  fresh worker;
- `fresh_1k_s`: `evaluate_models` end to end on a 1,000-row CSV with a fresh worker (this
  checkout's code, in its own interpreter, as `promoter evaluate` runs it), and the same with
  the code of `--old-checkout` when given (side by side);
- `pooled_1k_s`, `pooled_100k_s`: the evaluator `promoter serve` uses (`SubprocessEvaluator`:
  copying both versions out of the store, digesting the copies, then scoring) with
  pre-started workers, on 1,000 and 100,000 rows;
- `webhook_to_verdict_s`: the real app (`build_app`, uvicorn on loopback) over the real
  service, local git and forge, with pre-started workers: a signed `pull_request` delivery
  for a fresh proposal of v2 (v1 deployed) with a 100,000-row holdout, until the evaluation
  returns its verdict (`..._to_merge_s`: until the reconcile that merged it returned);
- `waiting_worker_*_mib`: what one waiting pre-started worker costs: its RSS, and its USS
  (the pages only it holds; the rest it shares with the zygote, `zygote_rss_mib`).

With `--old-checkout`, the pre-started workers of that checkout (its zygote and worker code)
are timed too, taking turns with this checkout's in every run: the same figures prefixed
`old_`, and the ratio `webhook_to_verdict_old_over_new`. `--skip-fresh` leaves out the
fresh interpreters' figures.

    .venv/bin/python benchmarks/fixed_cost.py --runs 3
    .venv/bin/python benchmarks/fixed_cost.py --old-checkout /tmp/old   # side by side

The machine's load average is printed with the figures: on a loaded machine every figure
grows, the import most.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import scale  # noqa: E402  (benchmarks/scale.py: the workspace builder)

from promoter.config.loader import load_settings  # noqa: E402
from promoter.config.schema import EvaluationPolicy, ModelSpec  # noqa: E402
from promoter.demo_data import write_holdout_csv  # noqa: E402
from promoter.evaluation.evaluate import DEFAULT_MEMORY_LIMIT_MB  # noqa: E402
from promoter.evaluation.worker_pool import WorkerPool  # noqa: E402
from promoter.model_store import LocalModelStore  # noqa: E402
from promoter.promotion.evaluator import Evaluator, SubprocessEvaluator  # noqa: E402
from promoter.promotion.service import PromotionService  # noqa: E402
from promoter.server.runner import serve_in_thread  # noqa: E402
from promoter.server.signature import sign  # noqa: E402
from promoter.wiring import build_adapters, build_app, build_rollback_service  # noqa: E402

MODEL = ModelSpec(name="churn", output="probability", label_column="churned")
SECRET = b"fixed-cost-benchmark"

_IMPORT_AND_LOAD = """
import json, sys, time
started = time.perf_counter()
if sys.argv.pop(1) == "refuse":
    from promoter.evaluation import sandbox
    sandbox.refuse_imports(sandbox.REFUSED_MODULES)
import tensorflow as tf
imported = time.perf_counter()
for path in sys.argv[1:]:
    tf.saved_model.load(path)
print(json.dumps({"import": imported - started, "loads": time.perf_counter() - imported}))
"""

_FRESH_EVALUATION = """
import json, sys, time
from pathlib import Path
from promoter.config.schema import ModelSpec
from promoter.evaluation import evaluate_models
model = ModelSpec(name="churn", output="probability", label_column="churned")
started = time.perf_counter()
report = evaluate_models(candidate_dir=Path(sys.argv[1]), baseline_dir=Path(sys.argv[2]),
                         holdout=Path(sys.argv[3]), model=model, policy=None)
print(json.dumps({"seconds": time.perf_counter() - started, "rows": report.holdout.rows}))
"""


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _python(code: str, *args: str, checkout: Path = REPO) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=checkout, env=env, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fixed_cost(models: Path, data: Path, *, runs: int, old: Path | None) -> dict[str, Any]:
    candidate, baseline = models / "churn" / "2", models / "churn" / "1"
    figures: dict[str, list[float]] = {
        "tensorflow_import_s": [], "import_and_loads_s": [],
        "import_without_keras_and_loads_s": [], "fresh_1k_s": [], "old_fresh_1k_s": []}
    for _ in range(runs):
        loaded = _python(_IMPORT_AND_LOAD, "plain", str(candidate), str(baseline))
        figures["tensorflow_import_s"].append(loaded["import"])
        figures["import_and_loads_s"].append(loaded["import"] + loaded["loads"])
        loaded = _python(_IMPORT_AND_LOAD, "refuse", str(candidate), str(baseline))
        figures["import_without_keras_and_loads_s"].append(loaded["import"] + loaded["loads"])
        args = (str(candidate), str(baseline), str(data / "1k.csv"))
        figures["fresh_1k_s"].append(_python(_FRESH_EVALUATION, *args)["seconds"])
        if old is not None:
            figures["old_fresh_1k_s"].append(
                _python(_FRESH_EVALUATION, *args, checkout=old)["seconds"])
    result = {key: _median(values) for key, values in figures.items() if values}
    result["fresh_1k_minus_import_and_loads_s"] = round(
        result["fresh_1k_s"] - result["import_and_loads_s"], 3)
    # What the worker itself adds beyond the import it does (Keras refused) and the loads.
    result["fresh_1k_minus_its_own_import_and_loads_s"] = round(
        result["fresh_1k_s"] - result["import_without_keras_and_loads_s"], 3)
    if old is not None:
        result["fresh_1k_old_over_new"] = round(result["old_fresh_1k_s"]
                                                / result["fresh_1k_s"], 2)
    return result


def pooled(store_root: Path, data: Path, pools: dict[str, WorkerPool], *,
           runs: int) -> dict[str, Any]:
    """Each figure for each pool ("" this checkout's, "old_" `--old-checkout`'s), the pools
    taking turns within every run."""
    store = LocalModelStore(store_root)
    candidate, baseline = store.get("churn", 2), store.get("churn", 1)
    figures: dict[str, list[float]] = {}
    for _ in range(runs):
        for key, holdout in (("pooled_1k_s", "1k.csv"), ("pooled_100k_s", "100k.csv")):
            for prefix, pool in pools.items():
                evaluator = SubprocessEvaluator(store, pool=pool)
                pool.wait_ready(120)
                started = time.perf_counter()
                report = evaluator.evaluate(candidate=candidate, baseline=baseline,
                                            holdout=data / holdout, model=MODEL,
                                            policy=EvaluationPolicy(), environment="bench")
                figures.setdefault(prefix + key, []).append(time.perf_counter() - started)
                assert report.confinement.get("prestarted"), "ran in a fresh worker"
    return {key: _median(values) for key, values in figures.items()}


def waiting_worker_memory(pool: WorkerPool, prefix: str = "") -> dict[str, Any]:
    pool.wait_ready(120)
    time.sleep(2.0)  # a worker just forked is still warming up
    pid = pool.waiting[0]
    worker = psutil.Process(pid).memory_full_info()
    zygote = psutil.Process(pool.zygote_pid).memory_full_info()
    return {f"{prefix}waiting_worker_rss_mib": round(worker.rss / 2**20, 1),
            f"{prefix}waiting_worker_uss_mib": round(worker.uss / 2**20, 1),
            f"{prefix}waiting_worker_pss_mib": round(worker.pss / 2**20, 1),
            f"{prefix}zygote_rss_mib": round(zygote.rss / 2**20, 1),
            f"{prefix}zygote_uss_mib": round(zygote.uss / 2**20, 1)}


class TimedEvaluator:
    """Records when each evaluation's verdict is ready; `use` picks the evaluator of the
    next evaluations (one per pool compared)."""

    def __init__(self, inner: dict[str, Evaluator]) -> None:
        self._inner = inner
        self.current = next(iter(inner))
        self.done: dict[str, float] = {}

    def evaluate(self, **kwargs: Any) -> Any:
        report = self._inner[self.current].evaluate(**kwargs)
        self.done[kwargs["environment"]] = time.perf_counter()
        return report


def webhook_to_verdict(workdir: Path, trained: Path, pools: dict[str, WorkerPool], *,
                       runs: int) -> dict[str, Any]:
    """Promote v1 to each `mNN-dev` (set-up), then time v2's proposals from the webhook, the
    pools taking turns (each proposal its own model and environment)."""
    names = scale.model_names(runs * len(pools))
    scale.isolate_git(workdir / "home")
    config = scale.build_workspace(workdir / "gitops", names, stub_models=True,
                                   holdout_rows=100_000)
    for name in names:  # the stand-in copies are replaced by the trained demo models
        for version in (1, 2):
            target = config.parent / "models" / name / str(version)
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(trained / "churn" / str(version), target)
    loaded = load_settings(config)
    adapters = build_adapters(loaded)
    evaluator = TimedEvaluator({prefix: SubprocessEvaluator(adapters.store, pool=pool)
                                for prefix, pool in pools.items()})
    service = PromotionService(settings=loaded, repo=adapters.repo, forge=adapters.forge,
                               store=adapters.store, evaluator=evaluator,
                               rollbacks=build_rollback_service(adapters),
                               verdicts=adapters.verdicts)
    for name in names:
        env = scale.environment_name(name, "dev")
        number = service.propose(environment=env, model=name, version=1,
                                 author="ci").pull_request.number
        service.reconcile_pull(number)
    merged: dict[int, float] = {}

    class Timed:
        """The service, noting when each pull request's reconcile returned."""

        def __getattr__(self, name: str) -> Any:
            return getattr(service, name)

        def reconcile_pull(self, number: int) -> Any:
            outcome = service.reconcile_pull(number)
            merged[number] = time.perf_counter()
            return outcome

    app = build_app(Timed(), webhook_secret=SECRET, workers=2, resync_interval_s=None)
    verdict: dict[str, list[float]] = {prefix: [] for prefix in pools}
    to_merge: dict[str, list[float]] = {prefix: [] for prefix in pools}
    # serve_in_thread runs the app's lifespan: the reconcile scheduler runs as in `serve`.
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        for index, name in enumerate(names):
            prefix = list(pools)[index % len(pools)]
            evaluator.current = prefix
            env = scale.environment_name(name, "dev")
            pull = service.propose(environment=env, model=name, version=2,
                                   author="ci").pull_request
            pools[prefix].wait_ready(120)
            body = json.dumps({
                "action": "opened", "number": pull.number,
                "pull_request": {"number": pull.number, "state": "open",
                                 "head": {"ref": f"environments/{env}-next",
                                          "sha": pull.head_sha},
                                 "base": {"ref": f"environments/{env}"}},
                "repository": {"full_name": "acme/ml-gitops"}}).encode()
            started = time.perf_counter()
            answer = client.post("/webhooks/github", content=body, headers={
                "X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": f"bench-{pull.number}",
                "Content-Type": "application/json"})
            answer.raise_for_status()
            _wait(lambda pull=pull: pull.number in merged, 120)
            verdict[prefix].append(evaluator.done[env] - started)
            to_merge[prefix].append(merged[pull.number] - started)
    result: dict[str, Any] = {}
    for prefix in pools:
        result |= {f"{prefix}webhook_to_verdict_s": _median(verdict[prefix]),
                   f"{prefix}webhook_to_verdict_s_all": [round(v, 2) for v in verdict[prefix]],
                   f"{prefix}webhook_to_reconciled_s": _median(to_merge[prefix])}
    if "old_" in pools:
        result["webhook_to_verdict_old_over_new"] = round(
            result["old_webhook_to_verdict_s"] / result["webhook_to_verdict_s"], 2)
    return result


def _wait(condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("no verdict in time")
        time.sleep(0.005)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old-checkout", type=Path,
                        help="another checkout of promoter (the directory holding its "
                             "`promoter` package) whose fresh 1k evaluation and pre-started "
                             "workers are timed beside this one's")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--skip-fresh", action="store_true",
                        help="only the pre-started workers' figures (no fresh interpreters)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="promoter-fixed-cost-"))
    limit = DEFAULT_MEMORY_LIMIT_MB * 2**20
    pools = {"": WorkerPool(args.pool_size, memory_limit_bytes=limit)}
    if args.old_checkout is not None:
        pools["old_"] = WorkerPool(args.pool_size, memory_limit_bytes=limit,
                                   worker_code=args.old_checkout)
    try:
        trained = workdir / "store"
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                        "from promoter.demo_models import train_demo_models; "
                        "train_demo_models(Path(sys.argv[1]))", str(trained)],
                       check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        data = workdir / "data"
        write_holdout_csv(data / "1k.csv", 1_000, seed=7)
        write_holdout_csv(data / "100k.csv", 100_000, seed=7)
        report: dict[str, Any] = {"cpus": os.cpu_count(),
                                  "load_average_1m_before": round(os.getloadavg()[0], 2)}
        if not args.skip_fresh:
            report |= fixed_cost(trained, data, runs=args.runs, old=args.old_checkout)
        for prefix, pool in pools.items():  # one after the other: each start is timed alone
            pool.start()
            started = time.perf_counter()
            if not pool.wait_ready(300):
                raise RuntimeError("the worker pool did not come up")
            report[f"{prefix}pool_ready_s"] = round(time.perf_counter() - started, 2)
            report |= waiting_worker_memory(pool, prefix)
        report |= pooled(trained, data, pools, runs=args.runs)
        report |= webhook_to_verdict(workdir / "service", trained, pools, runs=args.runs)
        report["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    finally:
        for pool in pools.values():
            pool.close()
        shutil.rmtree(workdir, ignore_errors=True)
    for key, value in report.items():
        print(f"{key:>36}: {value}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "fixed-cost"
    sys.exit(main())
