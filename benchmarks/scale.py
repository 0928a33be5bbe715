"""Scale of one instance: N models x 3 environments promoted concurrently on the local forge.

An environment branch holds one model's render (`hydrator.metadata` names one model), so
"50 models x 3 environments" is a configuration of 50 models and 150 environments:
`m07-dev -> m07-staging -> m07-prod` for each model `m07`, each with its own branch
(`environments/m07-dev`, ...) and promoting from the previous one. One version of every model
goes from dev to prod; all models at the same time.

Set-up (not timed): a git repository with that dry source, a model store and one holdout CSV.
The store holds real TensorFlow SavedModels, but only one is trained (the demo's v1, a
logistic regression: `promoter.demo_models`); every model's version 1 is a copy of it. That is
enough: digests are over the directory's bytes, and nothing in promoter depends on two models
being different. Policies have thresholds that model passes (AUC >= 0.70, log loss <= 0.70),
no approvals and auto-merge.

The run drives the service the way `promoter serve` does: the same reconcile jobs on the same
`Scheduler` (`--workers` threads, the periodic resync) and one metrics registry with the
instrumented forge. The local forge sends no webhooks, so this script plays the forge and CI:
when a proposal is opened it submits the job the `pull_request` webhook would
(`ReconcileJobs.pull`), and when a merge lands it proposes the model to the next environment
(`--proposers` threads, as `promoter propose` in a pipeline would). It ends when every model
is deployed in prod, then checks every environment branch and pull request: each runs its
model's v1 with the store's digest, each environment had exactly one pull request, merged, and
there are no others.

Figures: time from the first proposal to the last merge into prod, promotions per minute,
proposal -> merge per pull request, forge calls and writes (counted by the same instrumented
forge as `/metrics`), and peak memory. The run happens in a freshly spawned process, so
`ru_maxrss` is promoter's own (set-up imported TensorFlow to train the model):
`peak_rss_promoter_mib` is that process, `peak_rss_largest_child_mib` its largest child (an
evaluation worker; git children count the parent's pages at fork, so it is never below the
first), and `peak_pss_sampled_total_mib` the largest sum of the process and all its live
children, sampled every 0.2 s (psutil; PSS, so shared pages count once).

    .venv/bin/python benchmarks/scale.py                          # 50 x 3, scripted evaluation
    .venv/bin/python benchmarks/scale.py --evaluator real --models 10

`--evaluator scripted` passes every candidate without scoring it (`PassingEvaluator`, below:
the service's own work, git and the forge are measured alone); `real` scores with TensorFlow
in a child process per evaluation (`SubprocessEvaluator`), in `--evaluation-workers`
pre-started workers as `promoter serve` does (default: service.evaluationWorkers'; 0: a fresh
worker, importing TensorFlow, per evaluation). Before them, 50 x 3 took about 3 minutes
scripted and 14 minutes real on 2 cores (README, "As a service"). Exit
status 1 if it did not converge or a check failed.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import queue
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from promoter.config.loader import DryConfig, load_settings  # noqa: E402
from promoter.config.schema import EvaluationPolicy, ModelSpec, ServiceSpec  # noqa: E402
from promoter.demo_data import write_holdout_csv  # noqa: E402
from promoter.domain.model_versions import ModelVersion  # noqa: E402
from promoter.domain.pull_requests import PullRequestState, Review  # noqa: E402
from promoter.errors import PromoterError, PullRequestNotFoundError  # noqa: E402
from promoter.forge.base import Forge  # noqa: E402
from promoter.forge.instrumented import WRITE_OPERATIONS  # noqa: E402
from promoter.model_store import ModelStore  # noqa: E402
from promoter.promotion.dora import DoraFigures  # noqa: E402
from promoter.promotion.evaluator import Evaluator, SubprocessEvaluator  # noqa: E402
from promoter.promotion.history import DEFAULT_LIMIT, EnvironmentHistory  # noqa: E402
from promoter.promotion.results import (  # noqa: E402
    EnvironmentStatus,
    PromotionState,
    ReconcileOutcome,
)
from promoter.promotion.service import PromotionService  # noqa: E402
from promoter.server.metrics import ServerMetrics  # noqa: E402
from promoter.wiring import (  # noqa: E402
    build_adapters,
    build_app,
    build_rollback_service,
    build_worker_pool,
    instrument_adapters,
)

STAGES = ("dev", "staging", "prod")
POLICY = {
    "evaluation": {"metrics": [{"name": "auc", "min": 0.70}, {"name": "log_loss", "max": 0.70}]},
    "approvals": {"required": 0},
    "autoMerge": True,
}
log = logging.getLogger("benchmarks.scale")


# --- the scripted evaluator -------------------------------------------------------------------


@dataclass(frozen=True)
class ReadHoldout:
    digest: str
    """`sha256:<hex>` of the holdout as read, as the real worker reports it."""


@dataclass(frozen=True)
class PassingReport:
    """The part of `EvaluationReport` the promotion service reads."""

    candidate: ModelVersion
    baseline: ModelVersion | None
    holdout: ReadHoldout
    passed: bool = True
    needs_approval: bool = False

    def summary_line(self) -> str:
        return f"Evaluation passed (scripted: {self.candidate.name} v{self.candidate.version})"

    def to_markdown(self) -> str:
        return (f"## Evaluation (scripted)\n\n{self.candidate.name} v{self.candidate.version} "
                "passes: the scale benchmark measures promoter, not the models.\n")

    def to_json_dict(self) -> dict[str, object]:
        return {"passed": True, "summary": self.summary_line(),
                "candidate": {"digest": self.candidate.digest, "metrics": {}},
                "baseline": None, "holdout": {"digest": self.holdout.digest}, "checks": []}


class PassingEvaluator:
    """Passes every candidate after `delay_s`, without loading it: the rest of a promotion
    (rendering, git, the forge, the scheduler) is then measured on its own."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self._delay_s = delay_s

    def evaluate(self, *, candidate: ModelVersion, baseline: ModelVersion | None,
                 holdout: Path, model: ModelSpec, policy: EvaluationPolicy,
                 environment: str) -> PassingReport:
        time.sleep(self._delay_s)
        digest = f"sha256:{hashlib.sha256(holdout.read_bytes()).hexdigest()}"
        return PassingReport(candidate, baseline, ReadHoldout(digest))


class CountingEvaluator:
    """Counts evaluations (a reused verdict is not one) around the chosen evaluator."""

    def __init__(self, inner: Evaluator) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.count = 0

    def evaluate(self, *, candidate: ModelVersion, baseline: ModelVersion | None,
                 holdout: Path, model: ModelSpec, policy: EvaluationPolicy,
                 environment: str) -> Any:
        with self._lock:
            self.count += 1
        return self._inner.evaluate(candidate=candidate, baseline=baseline, holdout=holdout,
                                    model=model, policy=policy, environment=environment)


# --- the workspace ----------------------------------------------------------------------------


def model_names(count: int) -> list[str]:
    width = max(2, len(str(count - 1)))
    return [f"m{i:0{width}d}" for i in range(count)]


def environment_name(model: str, stage: str) -> str:
    return f"{model}-{stage}"


def build_workspace(root: Path, models: Sequence[str], *, stub_models: bool,
                    holdout_rows: int) -> Path:
    """Write the dry source, the model store and the holdout, commit the dry source to
    `main`; return promoter.yaml."""
    root.mkdir(parents=True)
    # Serving and training sizes of the example environment of the same stage.
    sizes = {stage: {key: value for key, value in yaml.safe_load(
        (REPO / "environments" / f"{stage}.yaml").read_text()).items()
        if key in ("serving", "training")} for stage in STAGES}
    environments = [environment_name(m, s) for m in models for s in STAGES]
    settings = {
        "repository": {"url": ".", "dryBranch": "main"},
        "forge": {"type": "local"},
        "modelStore": {"url": "./models"},
        "models": [{"name": m, "task": "binary_classification", "output": "probability",
                    "labelColumn": "churned"} for m in models],
        "environments": environments,
    }
    (root / "promoter.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    (root / "environments").mkdir()
    for model in models:
        for index, stage in enumerate(STAGES):
            name = environment_name(model, stage)
            spec = {
                "branch": f"environments/{name}",
                # Explicit: by default an environment promotes from the one listed before it,
                # which for m01-dev would be m00-prod.
                "promotesFrom": environment_name(model, STAGES[index - 1]) if index else None,
                "namespace": f"ml-{name}",
                "policy": "bench",
                "evaluation": {"holdout": "data/holdout.csv"},
                **sizes[stage],
            }
            (root / "environments" / f"{name}.yaml").write_text(
                yaml.safe_dump(spec, sort_keys=False))
    (root / "policies").mkdir()
    (root / "policies" / "bench.yaml").write_text(yaml.safe_dump(POLICY, sort_keys=False))
    shutil.copytree(REPO / "manifests", root / "manifests")
    (root / ".gitignore").write_text("models/\ndata/\n")

    source = _saved_model(root.parent / "trained", stub=stub_models)
    for model in models:
        shutil.copytree(source, root / "models" / model / "1")
    write_holdout_csv(root / "data" / "holdout.csv", holdout_rows, seed=101)
    for args in (["init", "-q", "-b", "main"], ["add", "."],
                 ["commit", "-q", "-m", f"Dry source: {len(models)} models x 3 environments"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    return root / "promoter.yaml"


def _saved_model(directory: Path, *, stub: bool) -> Path:
    """One SavedModel to copy into every model's version 1."""
    if stub:
        # For the smoke test: the right layout, no graph (the scripted evaluator never loads it).
        path = directory / "stub"
        (path / "variables").mkdir(parents=True)
        (path / "saved_model.pb").write_bytes(b"stand-in graph")
        (path / "variables" / "variables.index").write_bytes(b"index")
        return path
    # In a child process: TensorFlow loaded here would count in the service's memory and make
    # every git child process it forks more expensive.
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from promoter.demo_models import train_demo_models; "
                    "train_demo_models(Path(sys.argv[1]), model_name='churn')", str(directory)],
                   check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    return directory / "churn" / "1"


def isolate_git(home: Path) -> None:
    """An own HOME and no system config: a developer's git settings (signing, hooks) must not
    change what is measured. Set for this process, so git children inherit it."""
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Benchmark\n\temail = bench@example.test\n"
                                     "[init]\n\tdefaultBranch = main\n")
    os.environ["HOME"] = str(home)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ["GIT_TERMINAL_PROMPT"] = "0"


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Record:
    """What the driver saw of one environment's promotion."""

    proposed_at: float | None = None
    merged_at: float | None = None
    pull_numbers: set[int] = field(default_factory=set)


class Pipeline:
    """The promotion service as the scheduler's jobs see it, plus what CI and the forge's
    webhooks would do around it: propose the next stage after a merge, and submit the job a
    `pull_request` webhook would for every proposal. Implements `PromotionPort`."""

    def __init__(self, service: PromotionService, models: Sequence[str], *,
                 proposers: int) -> None:
        self._service = service
        self._models = list(models)
        self._proposers = proposers
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.records = {environment_name(m, s): Record() for m in models for s in STAGES}
        self.failures: list[str] = []
        self.prod_done = 0
        self.merged_by_resync = 0
        """Merges made by the periodic resync rather than by a pull request's own job."""
        self.done = threading.Event()
        self.submit: Callable[[int, str], object] = lambda number, branch: None
        """Queue the reconcile of PR `number` on `branch`: set by `run` to the scheduler."""
        self._threads: list[threading.Thread] = []

    # PromotionPort ---------------------------------------------------------------------------

    def dry_config(self) -> tuple[str, DryConfig]:
        return self._service.dry_config()

    def status(self, *, rollouts: bool = False) -> Sequence[EnvironmentStatus]:
        return self._service.status()

    def reconcile(self) -> Sequence[ReconcileOutcome]:
        outcomes = self._service.reconcile()
        for outcome in outcomes:
            self._outcome(outcome, by_resync=True)
        return outcomes

    def reconcile_pull(self, number: int) -> ReconcileOutcome:
        outcome = self._service.reconcile_pull(number)
        self._outcome(outcome)
        return outcome

    def evaluation_report(self, number: int) -> str | None:
        return self._service.evaluation_report(number)

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review:
        return self._service.approve(number, user=user, reject=reject)

    def history(self, *, environment: str | None = None,
                limit: int = DEFAULT_LIMIT) -> Sequence[EnvironmentHistory]:
        return self._service.history(environment=environment, limit=limit)

    def dora(self, *, window: timedelta, end: datetime | None = None,
             environment: str | None = None) -> Sequence[DoraFigures]:
        return self._service.dora(window=window, end=end, environment=environment)

    # CI ---------------------------------------------------------------------------------------

    def start(self) -> None:
        for i in range(self._proposers):
            thread = threading.Thread(target=self._propose_loop, name=f"ci-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        for model in self._models:
            self._queue.put((model, 0))

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(30)

    def _outcome(self, outcome: ReconcileOutcome, *, by_resync: bool = False) -> None:
        now = time.perf_counter()
        if outcome.state is PromotionState.BLOCKED:
            self._fail(f"PR #{outcome.pull_number} ({outcome.environment}) blocked: "
                       + "; ".join(g.description for g in outcome.gates if not g.passed)
                       + (f" {outcome.note}" if outcome.note else ""))
            return
        if outcome.state is not PromotionState.MERGED or outcome.merge_sha is None:
            return
        model, _, stage = outcome.environment.rpartition("-")
        with self._lock:
            self.records[outcome.environment].merged_at = now
            self.merged_by_resync += by_resync
        index = STAGES.index(stage)
        if index + 1 < len(STAGES):
            self._queue.put((model, index + 1))
            return
        with self._lock:
            self.prod_done += 1
            if self.prod_done == len(self._models):
                self.done.set()

    def _propose_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            model, index = item
            env = environment_name(model, STAGES[index])
            try:
                result = self._service.propose(environment=env, model=model, version=1,
                                               author="ci")
            except PromoterError as exc:
                self._fail(f"proposing {model} to {env} failed: {exc}")
                continue
            if result.pull_request is None:
                self._fail(f"{env} already ran {model} v1 before its proposal")
                continue
            number = result.pull_request.number
            with self._lock:
                record = self.records[env]
                record.pull_numbers.add(number)
                record.proposed_at = time.perf_counter()
            self.submit(number, f"environments/{env}")

    def _fail(self, message: str) -> None:
        log.error("%s", message)
        with self._lock:
            self.failures.append(message)
        self.done.set()


class MemorySampler:
    """Samples the memory of this process plus all its live children (evaluation workers,
    git) every `interval_s`; ru_maxrss alone cannot sum concurrent workers. PSS, not RSS:
    pages shared between processes (TensorFlow's libraries in every worker, the parent's pages
    in a child between fork and exec) count once, split between the processes sharing them."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.peak_bytes = 0
        self.available = True
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:  # a test extra; without it only ru_maxrss is reported
            self.available = False
            return
        me = psutil.Process()
        while not self._stop.wait(self._interval_s):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # exited between listing and reading
                    total += process.memory_full_info().pss
            self.peak_bytes = max(self.peak_bytes, total)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up a workspace, measure in a fresh process, and remove the workspace."""
    models = model_names(args.models)
    workdir = Path(tempfile.mkdtemp(prefix="promoter-scale-"))
    try:
        setup_start = time.perf_counter()
        isolate_git(workdir / "home")
        config = build_workspace(workdir / "gitops", models, stub_models=args.stub_models,
                                 holdout_rows=args.holdout_rows)
        setup_s = time.perf_counter() - setup_start
        report = _in_fresh_process(args, models, config)
        return {"layout": report.pop("layout"), "setup_s": round(setup_s, 1), **report}
    finally:
        if args.keep:
            print(f"workspace kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _in_fresh_process(args: argparse.Namespace, models: list[str],
                      config: Path) -> dict[str, Any]:
    """Run `measure` in a newly spawned interpreter, so the peak RSS figures (its own and its
    children's, ru_maxrss) are promoter's alone: set-up trained a model with TensorFlow."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_measure_and_send, args=(sender, args, models, config),
                              name="promoter-scale")
    process.start()
    try:
        if not receiver.poll(args.timeout + 300):
            raise RuntimeError("the measuring process did not report back")
        report: dict[str, Any] = receiver.recv()
    finally:
        process.join(60)
        if process.is_alive():
            process.terminate()
            process.join(10)
    if "error" in report:
        raise RuntimeError(f"the measuring process failed:\n{report['error']}")
    return report


def _measure_and_send(conn: Connection, args: argparse.Namespace, models: list[str],
                      config: Path) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        conn.send(measure(args, models, config))
    except Exception:  # the parent prints it; a child's traceback would be lost otherwise
        conn.send({"error": traceback.format_exc()})


def measure(args: argparse.Namespace, models: list[str], config: Path) -> dict[str, Any]:
    """Promote every model to prod through the service, the scheduler and the jobs of
    `promoter serve`; return the figures and the checks."""
    loaded = load_settings(config)
    metrics = ServerMetrics()
    adapters = instrument_adapters(build_adapters(loaded), metrics)
    # As `promoter serve` does (build_server): pre-started workers, started with the server.
    pool = build_worker_pool(args.evaluation_workers) if args.evaluator == "real" else None
    pool_ready_s = None
    if pool is not None:
        started = time.perf_counter()
        pool.start()
        pool.wait_ready(300)
        pool_ready_s = round(time.perf_counter() - started, 2)
    inner: Evaluator = (SubprocessEvaluator(adapters.store, pool=pool)
                        if args.evaluator == "real"
                        else PassingEvaluator(args.scripted_ms / 1000))
    evaluator = CountingEvaluator(inner)
    service = PromotionService(settings=loaded, repo=adapters.repo, forge=adapters.forge,
                               store=adapters.store, evaluator=evaluator,
                               cluster=adapters.cluster,
                               rollbacks=build_rollback_service(adapters),
                               verdicts=adapters.verdicts)
    pipeline = Pipeline(service, models, proposers=args.proposers)
    app = build_app(pipeline, webhook_secret=b"scale-benchmark", workers=args.workers,
                    resync_interval_s=args.resync_interval, metrics=metrics)
    parts = app.state.parts
    pipeline.submit = lambda number, branch: parts.scheduler.submit(
        parts.jobs.pull(number, branch=branch))

    with MemorySampler() as sampler:
        start = time.perf_counter()
        parts.scheduler.start()  # what the app's lifespan does; with its startup resync
        pipeline.start()
        converged = pipeline.done.wait(args.timeout) and not pipeline.failures
        converge_s = time.perf_counter() - start
        pipeline.stop()
        drained = parts.scheduler.wait_idle(120)
        parts.scheduler.shutdown()
    workers_started = pool.started if pool is not None else 0
    if pool is not None:
        pool.close()

    records = pipeline.records.values()
    to_merge = [r.merged_at - r.proposed_at for r in records
                if r.merged_at is not None and r.proposed_at is not None]
    journeys = [pipeline.records[environment_name(m, "prod")].merged_at for m in models]
    forge_calls = _forge_calls(metrics)
    writes = {op: n for op, n in forge_calls.items() if op in WRITE_OPERATIONS}
    forge_errors = _forge_errors(metrics)
    promotions = len(models) * len(STAGES)
    reconcile_count = metrics.registry.get_sample_value(
        "promoter_reconcile_duration_seconds_count", {"kind": "pull"}) or 0
    reconcile_sum = metrics.registry.get_sample_value(
        "promoter_reconcile_duration_seconds_sum", {"kind": "pull"}) or 0
    timed_merges = sum(
        metrics.registry.get_sample_value("promoter_proposal_to_merge_seconds_count",
                                          {"environment": environment_name(m, s)}) or 0
        for m in models for s in STAGES)
    checks = check(service, adapters.forge, adapters.store, pipeline, models)  # calls the forge
    return {
        "layout": f"{len(models)} models x {len(STAGES)} environments = {promotions} "
                  "environment branches (mNN-dev -> mNN-staging -> mNN-prod), one model each",
        "evaluator": args.evaluator,
        "evaluation_workers": args.evaluation_workers if pool is not None else 0,
        "pool_ready_s": pool_ready_s,
        "pooled_workers_started": workers_started,
        "models_in_store": "stand-in directories" if args.stub_models else
                           "copies of one trained SavedModel (demo v1)",
        "workers": args.workers,
        "proposers": args.proposers,
        "converged": converged,
        "failures": pipeline.failures[:5],
        "converge_s": round(converge_s, 2),
        "promotions": promotions,
        "promotions_per_minute": round(promotions / converge_s * 60, 1),
        "models_to_prod_per_minute": round(len(models) / converge_s * 60, 1),
        "proposal_to_merge_s_p50": _quantile(to_merge, 0.5),
        "proposal_to_merge_s_p95": _quantile(to_merge, 0.95),
        "model_dev_to_prod_s_max": round(max((j - start for j in journeys if j), default=0), 2),
        "evaluations": evaluator.count,
        "merged_by_resync": pipeline.merged_by_resync,
        "pull_reconciles": int(reconcile_count),
        "pull_reconcile_mean_s": round(reconcile_sum / reconcile_count, 3)
        if reconcile_count else None,
        "forge_calls": sum(forge_calls.values()),
        "forge_writes": sum(writes.values()),
        "forge_writes_per_promotion": round(sum(writes.values()) / promotions, 1),
        "forge_writes_by_operation": dict(sorted(writes.items())),
        "forge_errors": forge_errors,
        "merges_timed_by_metrics": int(timed_merges),
        "peak_rss_promoter_mib": round(_maxrss_mib(resource.RUSAGE_SELF), 1),
        "peak_rss_largest_child_mib": round(_maxrss_mib(resource.RUSAGE_CHILDREN), 1),
        "peak_pss_sampled_total_mib": round(sampler.peak_bytes / 2**20, 1)
        if sampler.available else None,
        "scheduler_drained": drained,
        **checks,
        "cpus": os.cpu_count(),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def check(service: PromotionService, forge: Forge, store: ModelStore, pipeline: Pipeline,
          models: Sequence[str]) -> dict[str, Any]:
    """Every environment branch runs its model's v1 (same digest as the store), every
    environment had exactly one pull request, each merged, and there are no others."""
    _, dry = service.dry_config()
    wrong_branches = []
    numbers: list[int] = []
    one_pr_each = True
    for model in models:
        digest = store.get(model, 1).digest
        for stage in STAGES:
            env = environment_name(model, stage)
            deployed = service.deployed(dry.environment(env))
            if deployed is None or (deployed.model, deployed.version, deployed.digest) != (
                    model, 1, digest):
                wrong_branches.append(env)
            record = pipeline.records[env]
            one_pr_each = one_pr_each and len(record.pull_numbers) == 1
            numbers.extend(record.pull_numbers)
    merged = sum(forge.get_pull_request(n).state is PullRequestState.MERGED for n in numbers)
    try:
        forge.get_pull_request(max(numbers, default=0) + 1)
        extra_pull_requests = True
    except PullRequestNotFoundError:
        extra_pull_requests = False
    open_left = len(forge.list_open_pull_requests())
    expected = len(models) * len(STAGES)
    correct = (not wrong_branches and one_pr_each and merged == expected
               and sorted(numbers) == list(range(1, expected + 1)) and not extra_pull_requests
               and open_left == 0)
    return {"correct": correct, "wrong_branches": wrong_branches[:5],
            "one_pr_per_environment": one_pr_each, "pull_requests_merged": merged,
            "extra_pull_requests": extra_pull_requests, "open_pull_requests_left": open_left}


def _forge_calls(metrics: ServerMetrics) -> Counter[str]:
    calls: Counter[str] = Counter()
    for family in metrics.registry.collect():
        if family.name == "promoter_forge_calls":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    calls[sample.labels["operation"]] += int(sample.value)
    return calls


def _forge_errors(metrics: ServerMetrics) -> dict[str, int]:
    errors: Counter[str] = Counter()
    for family in metrics.registry.collect():
        if family.name == "promoter_forge_calls":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["result"] != "ok":
                    errors[f"{sample.labels['operation']}:{sample.labels['result']}"] += int(
                        sample.value)
    return dict(errors)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1], 3)


def _maxrss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50, help="models (x 3 environments)")
    parser.add_argument("--evaluator", choices=["scripted", "real"], default="scripted",
                        help="scripted: pass without scoring; real: TensorFlow worker each")
    parser.add_argument("--workers", type=int, default=4,
                        help="reconcile threads (service.workers' default)")
    parser.add_argument("--proposers", type=int, default=2,
                        help="threads proposing the next stage after a merge (CI)")
    parser.add_argument("--resync-interval", type=float, default=300.0,
                        help="seconds between full resyncs (service.resyncIntervalSeconds)")
    parser.add_argument("--scripted-ms", type=float, default=0.0,
                        help="time one scripted evaluation takes")
    parser.add_argument("--evaluation-workers", type=int,
                        default=ServiceSpec().evaluation_workers,
                        help="pre-started evaluation workers (service.evaluationWorkers; "
                             "0: a fresh worker per evaluation); real evaluator only")
    parser.add_argument("--holdout-rows", type=int, default=2_000)
    parser.add_argument("--stub-models", action="store_true",
                        help="stand-in SavedModel directories instead of training one "
                             "(scripted evaluator only; for the smoke test)")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the workspace")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.models < 1 or args.workers < 1 or args.proposers < 1:
        parser.error("--models, --workers and --proposers must be at least 1")
    if args.stub_models and args.evaluator == "real":
        parser.error("--stub-models cannot be scored: use --evaluator scripted")
    logging.basicConfig(level=logging.WARNING)
    report = run(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:>30}: {value}")
    return 0 if report["converged"] and report["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
