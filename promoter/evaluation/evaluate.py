"""Evaluate a candidate model, and the deployed baseline, on a holdout: the gate's entry point.

Scoring runs in a child process, `python -m promoter.evaluation.worker`, that speaks JSON on
stdin/stdout and is confined before it imports numpy or TensorFlow: why a subprocess, and how
it is confined, is in `worker_client`, which runs it. This module builds the request from the
model and the policy, and checks the results `worker_results` reads back against the policy
(thresholds, bootstrap intervals, slices, budgets).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.config.schema import BudgetPolicy, EvaluationPolicy, ModelSpec
from promoter.errors import HoldoutError, ModelLoadError
from promoter.evaluation.bootstrap import N_BLOCKS, poisson_weights, resample
from promoter.evaluation.gate import CheckResult, Verdict, check_thresholds, format_number
from promoter.evaluation.holdout import is_tfrecord, read_header, require_label_column
from promoter.evaluation.holdout_formats import batch_size_for
from promoter.evaluation.protocol import PROTOCOL
from promoter.evaluation.report import EvaluationReport
from promoter.evaluation.report_parts import HoldoutInfo, ModelResult, SliceResult
from promoter.evaluation.shards import run_shards
from promoter.evaluation.worker_results import _blocked_report, _Extra, _load_result
from promoter.model_store import require_saved_model

if TYPE_CHECKING:
    from promoter.evaluation.worker_pool import PooledWorker

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MEMORY_LIMIT_MB = 16384
"""Address-space limit of the worker. TensorFlow maps about 1-2 GB at import; a model that
allocates more than this fails with a clear reason instead of swapping the machine."""


def evaluate_models(*, candidate_dir: Path, baseline_dir: Path | None, holdout: Path,
                    model: ModelSpec, policy: EvaluationPolicy | None,
                    timeout_s: float = DEFAULT_TIMEOUT_S, candidate_digest: str | None = None,
                    baseline_digest: str | None = None,
                    environment: str | None = None,
                    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
                    measure_latency: bool = True,
                    worker: PooledWorker | None = None, shards: int = 1,
                    more_workers: Sequence[PooledWorker] = ()) -> EvaluationReport:
    """Score the candidate (and the baseline, if given) on the same holdout rows in one worker
    run, compute their metrics, and check them against `policy` (no checks if None).

    `baseline_dir` is the model deployed now in `environment`; None means a first deployment,
    so vsBaseline checks are skipped. Digests, when known, are copied into the report.

    `timeout_s` bounds the whole worker run in wall-clock seconds: starting TensorFlow (a few
    seconds), loading the models and scoring every row. `memory_limit_mb` caps the worker's
    address space (RLIMIT_AS; TensorFlow alone reserves about 1 GB of it). A refused op in a
    graph (`graph_scan`) or an incompatible signature is a failed check in the report, found
    before any row is scored.

    Raises ModelStoreError if a directory is not a SavedModel, HoldoutError for an unusable
    holdout, and ModelLoadError if a model cannot be loaded or scored, crashes, runs out of
    memory or runs past `timeout_s` (it is then killed). All are BadInputError (CLI exit 2).
    Path and column problems of a CSV are found before the worker starts. Thread-safe: each
    call has its own worker process and temporary directory.

    `worker`: a pre-started worker (`worker_pool`) to run in instead of a fresh one; the model
    directories must then be inside its `in_dir` (the holdout is put there by this function),
    and its memory limit is the one it was started with (`memory_limit_mb` must agree).

    `shards`: how many worker processes score the holdout together (`shards`: every
    `shards`-th batch each); the report is the same, bit for bit, as with one. With pooled
    workers, `more_workers` are the others (their job directories holding the models at the
    same places beneath `in_dir` as `worker`'s), and `shards` is 1 + len(more_workers).
    A shard that fails fails the evaluation with that shard's error.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    policy = policy or EvaluationPolicy()
    require_saved_model(candidate_dir)
    if baseline_dir is not None:
        require_saved_model(baseline_dir)
    # Cheap checks first: a wrong path or column should not cost a TensorFlow start.
    if not is_tfrecord(holdout):
        header = read_header(holdout)
        require_label_column(holdout, header, model.label_column)
        for column, what in ([(model.weight_column, "weightColumn")] if model.weight_column
                             else []) + [(s.column, "a slice column") for s in policy.slices]:
            if column not in header:
                raise HoldoutError(f"holdout {holdout} has no column {column!r} ({what}); its "
                                   f"columns: {', '.join(map(repr, header))}",
                                   fix=f"add a {column!r} column or fix the policy")
    elif not holdout.is_file():
        raise HoldoutError(f"holdout {holdout} not found", fix="check the path")

    models = [("candidate", candidate_dir)]
    if baseline_dir is not None:
        models.append(("baseline", baseline_dir))
    budgets = policy.budgets
    memory_limit = memory_limit_mb * 2**20 if memory_limit_mb else None
    if worker is not None and worker.memory_limit_bytes != memory_limit:
        raise ValueError(f"the pre-started worker's memory limit is "
                         f"{worker.memory_limit_bytes}, not {memory_limit}")
    pooled = [worker, *more_workers] if worker is not None else []
    if more_workers and worker is None:
        raise ValueError("more_workers without a first pooled worker")
    count = len(pooled) or max(1, shards)
    if pooled and shards not in (1, count):
        raise ValueError(f"{shards} shards but {count} pooled workers")
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(tempfile.TemporaryDirectory(prefix="promoter-eval-"))
        request = {
            "protocol": PROTOCOL,
            "task": model.task,
            "holdout": str(holdout.resolve()),
            "labelColumn": model.label_column,
            "weightColumn": model.weight_column,
            "threshold": model.threshold,
            "topK": model.top_k,
            "batchSize": batch_size_for(holdout),
            "outDir": out,
            "slices": [{"column": s.column, "maxValues": s.max_values} for s in policy.slices],
            "latency": measure_latency,
            # Per-block statistics cost about a microsecond a row: only when they are used.
            "bootstrap": policy.bootstrap is not None and baseline_dir is not None,
            "latencyBatchSize": budgets.batch_size if budgets else 256,
            "memoryLimitBytes": memory_limit,
            "allowOps": list(policy.sandbox.allow_ops),
            "confinement": policy.sandbox.confinement,
            "models": [{"role": role, "path": str(path.resolve()),
                        "signature": model.signature, "output": model.output}
                       for role, path in models],
        }
        placements = _placements(request, pooled, count, holdout=holdout, stack=stack,
                                 out=Path(out))
        payload, results = run_shards(placements, pooled, request=request,
                                      timeout_s=timeout_s, out=Path(out))
        digests = {"candidate": candidate_digest, "baseline": baseline_digest}
        confinement = dict(payload.get("confinement") or {})
        confinement["timeoutSeconds"] = timeout_s
        confinement["mechanisms"] = [*confinement.get("mechanisms", []),
                                     "clean-environment", "timeout"]
        if "blocked" in payload:
            return _blocked_report(payload["blocked"], models=models, digests=digests,
                                   holdout=holdout, environment=environment, policy=policy,
                                   confinement=confinement)
        try:
            loaded = {role: _load_result(payload["models"][role], results, model_dir=path,
                                         digest=digests[role], task=model.task)
                      for role, path in models}
            holdout_info = HoldoutInfo(path=str(holdout),
                                       digest=str(payload["holdout"]["digest"]),
                                       rows=int(payload["holdout"]["rows"]))
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelLoadError(f"the evaluation worker returned an unusable result ({exc!r})",
                                 fix="report this as a bug in promoter") from exc

    candidate, cand_extra = loaded["candidate"]
    baseline, base_extra = loaded.get("baseline", (None, None))
    started = time.perf_counter()
    cand_reps = base_reps = None
    if policy.bootstrap is not None and base_extra is not None:
        weights = poisson_weights(policy.bootstrap.resamples, blocks=N_BLOCKS,
                                  seed=policy.bootstrap.seed)
        classes = cand_extra.classes
        cand_reps = resample(model.task, cand_extra.blocks, weights, classes=classes)
        base_reps = resample(model.task, base_extra.blocks, weights,
                             classes=base_extra.classes)
    bootstrap_seconds = time.perf_counter() - started
    checks = check_thresholds(
        policy, candidate.metrics, None if baseline is None else baseline.metrics,
        environment=environment,
        undefined={**(baseline.undefined if baseline else {}), **candidate.undefined},
        candidate_replicates=cand_reps, baseline_replicates=base_reps)
    slice_results, slice_checks = _check_slices(policy, cand_extra, base_extra,
                                                environment=environment)
    budget_checks = _check_budgets(budgets, candidate)
    return EvaluationReport(
        candidate=candidate, baseline=baseline, holdout=holdout_info,
        checks=tuple(slice_checks + checks + budget_checks), environment=environment,
        slices=tuple(slice_results), task=model.task,
        on_inconclusive=policy.bootstrap.on_inconclusive if policy.bootstrap else "block",
        bootstrap=None if policy.bootstrap is None else {
            "resamples": policy.bootstrap.resamples,
            "confidence": policy.bootstrap.confidence, "seed": policy.bootstrap.seed,
            "blocks": N_BLOCKS, "seconds": bootstrap_seconds,
            "applied": cand_reps is not None},
        confinement=confinement)



def _placements(request: dict[str, Any], pooled: Sequence[PooledWorker], count: int, *,
                holdout: Path, stack: contextlib.ExitStack[Any], out: Path
                ) -> list[dict[str, Any]]:
    """Each shard's request: its worker's own copies and output directory; one shard: the
    request as it is (with a pooled worker: in its job directory)."""
    requests = []
    for index in range(count):
        shard = dict(request)
        if pooled:
            home = pooled[0].in_dir
            shard["holdout"] = str(pooled[index].stage_holdout(holdout))
            shard["outDir"] = str(pooled[index].out_dir)
            shard["models"] = [{**spec, "path": str(pooled[index].in_dir / Path(
                spec["path"]).relative_to(home.resolve()))} for spec in request["models"]]
        elif count > 1:
            shard["outDir"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="promoter-shard-"))
        if count > 1:
            shard["shard"] = {"index": index, "count": count}
            shard["latency"] = request["latency"] and index == 0
        requests.append(shard)
    if len(requests) == 1 and not pooled:
        requests[0]["outDir"] = str(out)
    return requests


def _check_slices(policy: EvaluationPolicy, candidate: _Extra, baseline: _Extra | None, *,
                  environment: str | None) -> tuple[list[SliceResult], list[CheckResult]]:
    results: list[SliceResult] = []
    checks: list[CheckResult] = []
    plain = policy.model_copy(update={"bootstrap": None})
    for spec in policy.slices:
        values = sorted({v for (c, v) in candidate.slices if c == spec.column})
        for value in values:
            stats = candidate.slices[(spec.column, value)]
            base_stats = None if baseline is None else baseline.slices.get((spec.column, value))
            cand_metrics = stats.metrics()
            base_metrics = None if base_stats is None else base_stats.metrics()
            name = f"{spec.column}={value}"
            if stats.rows < spec.min_rows:
                results.append(SliceResult(spec.column, value, stats.rows,
                                           dict(cand_metrics.values),
                                           None if base_metrics is None
                                           else dict(base_metrics.values), checked=False))
                continue
            found = check_thresholds(
                plain, cand_metrics.values,
                None if base_metrics is None else base_metrics.values,
                environment=environment, undefined=cand_metrics.undefined,
                thresholds=spec.metrics, slice_name=name)
            checks += found
            results.append(SliceResult(spec.column, value, stats.rows, dict(cand_metrics.values),
                                       None if base_metrics is None
                                       else dict(base_metrics.values), checked=True,
                                       failed=any(c.verdict is Verdict.FAIL for c in found)))
    return results, checks


def _check_budgets(budgets: BudgetPolicy | None, candidate: ModelResult) -> list[CheckResult]:
    if budgets is None:
        return []
    checks: list[CheckResult] = []
    latency = candidate.latency_ms or {}
    limits = [("budget.p50LatencyMs", budgets.p50_latency_ms, latency.get("p50Ms"),
               "single-request p50 latency", "ms"),
              ("budget.p99LatencyMs", budgets.p99_latency_ms, latency.get("p99Ms"),
               "single-request p99 latency", "ms"),
              ("budget.batchP99LatencyMs", budgets.batch_p99_latency_ms,
               latency.get("batchP99Ms"), f"p99 latency of a batch of {budgets.batch_size}",
               "ms"),
              ("budget.maxModelMb", budgets.max_model_mb,
               None if candidate.size_bytes is None else candidate.size_bytes / 2**20,
               "SavedModel size", "MiB")]
    for name, limit, value, what, unit in limits:
        if limit is None:
            continue
        if value is None:
            checks.append(CheckResult(name, "budget", Verdict.FAIL,
                                      f"{what} was not measured, so the budget cannot pass",
                                      None, limit))
            continue
        ok = value <= limit
        checks.append(CheckResult(
            name, "budget", Verdict.PASS if ok else Verdict.FAIL,
            f"{what} {format_number(value)} {unit} {'<=' if ok else '>'} "
            f"{format_number(limit)} {unit}", value, limit))
    return checks
