"""Evaluate a candidate model, and the deployed baseline, on a holdout: the gate's entry point.

Scoring runs in a child process, `python -m promoter.evaluation.worker`, that speaks JSON on
stdin/stdout. Why a subprocess and not `multiprocessing`:

- A SavedModel is code promoter did not write. It can crash the interpreter (a faulty custom
  op), loop forever, or exhaust memory. In a child, a crash is an exit status and a hang is
  killed at the wall-clock timeout (SIGKILL to the child's whole process group); promoter
  survives to report a ModelLoadError and nothing else is affected.
- The protocol is JSON in both directions. `multiprocessing` would unpickle what the child
  sends back, and unpickling lets the sender run code in promoter's process.
- The child is a fresh interpreter. `spawn` re-imports the parent's `__main__` (the CLI, pytest,
  a web server) in the child, and `fork` from a process with threads is unsafe.
- TensorFlow's import (seconds, hundreds of MB) and its log noise stay out of promoter's
  process: the parent never imports TensorFlow, and the child's stderr is only shown when it
  explains a failure.

Confinement (`worker.confine`, `sandbox`): the child starts with an environment built from an
allowlist (no PATH, no PROMOTER_*, no credentials; HOME and TMPDIR in the private scratch
directory), limits its address space (RLIMIT_AS), moves into a network namespace of its own
where the kernel allows, restricts itself with Landlock (reads beneath the Python installation,
system libraries, the models and the holdout; writes in the scratch directory only; no TCP) and
installs a seccomp filter (no sockets, ptrace, mount, namespaces, execve, ...), all before it
imports numpy or TensorFlow; the wall-clock timeout kills it. The report's `confinement` block
lists the mechanisms that applied (`mechanisms`) and why any did not; `evaluation.sandbox.
confinement: required` fails the gate where Landlock or seccomp is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import promoter
from promoter.config.schema import BudgetPolicy, EvaluationPolicy, ModelSpec
from promoter.errors import BadInputError, HoldoutError, ModelLoadError, ModelStoreError
from promoter.evaluation.bootstrap import N_BLOCKS, poisson_weights, resample
from promoter.evaluation.gate import CheckResult, Verdict, check_thresholds, format_number
from promoter.evaluation.holdout import is_tfrecord, read_header, require_label_column
from promoter.evaluation.protocol import PROTOCOL, STAGE_PREFIX, WORKER_MODULE
from promoter.evaluation.report import EvaluationReport
from promoter.evaluation.report_parts import HoldoutInfo, ModelResult, SliceResult
from promoter.evaluation.sandbox import worker_environment
from promoter.evaluation.signature import SignatureInfo
from promoter.evaluation.task_stats import TaskStats, stats_from_arrays
from promoter.model_store import require_saved_model

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_MEMORY_LIMIT_MB = 16384
"""Address-space limit of the worker. TensorFlow maps about 1-2 GB at import; a model that
allocates more than this fails with a clear reason instead of swapping the machine."""
_WORKER_ERRORS: dict[str, type[BadInputError]] = {
    "HoldoutError": HoldoutError,
    "ModelLoadError": ModelLoadError,
    "ModelStoreError": ModelStoreError,
}


def evaluate_models(*, candidate_dir: Path, baseline_dir: Path | None, holdout: Path,
                    model: ModelSpec, policy: EvaluationPolicy | None,
                    timeout_s: float = DEFAULT_TIMEOUT_S, candidate_digest: str | None = None,
                    baseline_digest: str | None = None,
                    environment: str | None = None,
                    memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
                    measure_latency: bool = True) -> EvaluationReport:
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
    with tempfile.TemporaryDirectory(prefix="promoter-eval-") as out:
        request = {
            "protocol": PROTOCOL,
            "task": model.task,
            "holdout": str(holdout.resolve()),
            "labelColumn": model.label_column,
            "weightColumn": model.weight_column,
            "threshold": model.threshold,
            "topK": model.top_k,
            # TFRecord batches are decoded into flat arrays without per-row Python work, so
            # they can be as large as the model's best batch; CSV rows are Python lists.
            "batchSize": 65536 if is_tfrecord(holdout) else 8192,
            "outDir": out,
            "slices": [{"column": s.column, "maxValues": s.max_values} for s in policy.slices],
            "latency": measure_latency,
            # Per-block statistics cost about a microsecond a row: only when they are used.
            "bootstrap": policy.bootstrap is not None and baseline_dir is not None,
            "latencyBatchSize": budgets.batch_size if budgets else 256,
            "memoryLimitBytes": memory_limit_mb * 2**20 if memory_limit_mb else None,
            "allowOps": list(policy.sandbox.allow_ops),
            "confinement": policy.sandbox.confinement,
            "models": [{"role": role, "path": str(path.resolve()),
                        "signature": model.signature, "output": model.output}
                       for role, path in models],
        }
        payload = run_worker(request, timeout_s=timeout_s)
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
            loaded = {role: _load_result(payload["models"][role], Path(out), model_dir=path,
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


@dataclass(frozen=True, slots=True, eq=False)
class _Extra:
    """What a model's result file holds besides its overall metrics."""

    blocks: np.ndarray
    classes: int
    slices: dict[tuple[str, str], TaskStats]


def _load_result(data: Mapping[str, Any], out: Path, *, model_dir: Path, digest: str | None,
                 task: str) -> tuple[ModelResult, _Extra]:
    name = str(data["file"])
    if "/" in name or name.startswith("."):
        raise ValueError(f"bad result file name {name!r}")
    with np.load(out / name, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) + 1:]: v for k, v in arrays.items() if k.startswith(prefix + ".")}

    stats = stats_from_arrays(task, part("overall"))
    metrics = stats.metrics()
    slices = {(str(s["column"]), str(s["value"])): stats_from_arrays(task, part(str(s["key"])))
              for s in data.get("slices", [])}
    latency = data.get("latency")
    result = ModelResult(model_dir=str(model_dir), digest=digest, metrics=dict(metrics.values),
                         rows=stats.rows, undefined=dict(metrics.undefined),
                         signature=SignatureInfo.from_json_dict(data["signature"]),
                         scoring_seconds=float(data["seconds"]),
                         latency_ms=None if latency is None else {
                             str(k): float(v) for k, v in latency.items()},
                         size_bytes=_size_on_disk(model_dir))
    classes = getattr(stats, "classes", 0)
    return result, _Extra(blocks=arrays["blocks"], classes=classes, slices=slices)


def _size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


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


def _blocked_report(blocked: Mapping[str, Any], *, models: list[tuple[str, Path]],
                    digests: Mapping[str, str | None], holdout: Path,
                    environment: str | None, policy: EvaluationPolicy,
                    confinement: Mapping[str, Any]) -> EvaluationReport:
    """A report for a gate that failed before scoring (a refused op, a signature change)."""
    signatures = blocked.get("signatures") or {}
    results = {role: ModelResult(
        model_dir=str(path), digest=digests[role], metrics={}, rows=0,
        signature=None if role not in signatures
        else SignatureInfo.from_json_dict(signatures[role]), size_bytes=_size_on_disk(path))
        for role, path in models}
    check = CheckResult(str(blocked["check"]), "gate", Verdict.FAIL, str(blocked["reason"]),
                        None, None)
    return EvaluationReport(
        candidate=results["candidate"], baseline=results.get("baseline"),
        holdout=HoldoutInfo(path=str(holdout), digest=_file_digest(holdout), rows=0),
        checks=(check,), environment=environment,
        signature_diff=tuple(str(line) for line in blocked.get("diff", ())),
        on_inconclusive=policy.bootstrap.on_inconclusive if policy.bootstrap else "block",
        confinement=dict(confinement))


def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def run_worker(request: Mapping[str, Any], *, timeout_s: float,
               command: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the worker on `request`; return its response payload (`holdout`, `models`).

    Raises the worker's typed error (HoldoutError, ModelLoadError, ModelStoreError), or
    ModelLoadError if it crashes, prints no valid response, or runs past `timeout_s` (then the
    worker and anything it started are killed). `command` replaces the worker's argv (tests).
    """
    with contextlib.ExitStack() as cleanup:
        # The worker's HOME and TMPDIR: the request's private directory, else a fresh one.
        scratch = request.get("outDir") or cleanup.enter_context(
            tempfile.TemporaryDirectory(prefix="promoter-worker-"))
        return _run_worker(request, timeout_s=timeout_s, command=command,
                           scratch=Path(str(scratch)))


def _run_worker(request: Mapping[str, Any], *, timeout_s: float,
                command: Sequence[str] | None, scratch: Path) -> dict[str, Any]:
    # -s: no user site-packages (HOME is the scratch directory anyway).
    argv = list(command) if command else [sys.executable, "-s", "-m", WORKER_MODULE]
    # Built from an allowlist, never a copy of ours: no PATH, tokens or cloud credentials.
    env = worker_environment(os.environ, scratch=scratch)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach the pipe even if the child is killed
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True,  # own process group: a kill reaches its children
            # The directory holding this `promoter` package, so `-m` runs this very code and
            # never a `promoter/` directory that happens to be in the caller's working dir
            # (`-m` puts the working directory first on sys.path: no PYTHONPATH is needed).
            cwd=Path(promoter.__file__).resolve().parent.parent,
        )
    except OSError as exc:
        raise ModelLoadError(f"cannot start the evaluation worker: {exc}") from exc
    try:
        stdout, stderr = process.communicate(json.dumps(request).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(process)
        _, stderr = process.communicate()
        raise ModelLoadError(
            f"evaluation timed out after {timeout_s:g} s while {_stage(stderr)}; the worker was "
            "stopped",
            fix="raise the timeout (--timeout) if the holdout is large, or check the model for "
                "an endless loop") from None
    except BaseException:
        _kill(process)  # Ctrl-C or an error here: never leave a worker running
        process.communicate()
        raise
    return _parse_response(stdout, stderr, process.returncode)


def _parse_response(stdout: bytes, stderr: bytes, returncode: int) -> dict[str, Any]:
    response: Any = None
    if returncode == 0:
        try:
            response = json.loads(stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            response = None
    if not isinstance(response, dict) or "ok" not in response:
        if returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"was killed by signal {-returncode}"
        elif returncode != 0:
            how = f"exited with status {returncode}"
        else:
            how = "returned no valid response"
        tail = _stderr_tail(stderr)
        raise ModelLoadError(
            f"the evaluation worker {how} while {_stage(stderr)}"
            + (f"; its last output: {tail}" if tail else ""),
            fix="a model that crashes the process is not promotable; check it with "
                "`saved_model_cli run` on a few rows")
    if not response["ok"]:
        error = response.get("error") or {}
        kind = _WORKER_ERRORS.get(str(error.get("type")))
        message = str(error.get("message", "unknown error"))
        if kind is None:
            raise ModelLoadError(f"the evaluation worker failed: {message}",
                                 fix="report this as a bug in promoter")
        raise kind(message, fix=error.get("fix"))
    return response


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _stage(stderr: bytes) -> str:
    stage = "starting up"
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(STAGE_PREFIX):
            stage = line[len(STAGE_PREFIX):].strip()
    return stage


_ABSL_SEVERE = re.compile(r"^[FE]\d{4} [\d:. ]+\d+ [^\]]*\] ")
"""An absl/TensorFlow FATAL or ERROR log line, e.g. `F0000 00:00:17.8 15 ops.cc:737] msg`."""


def _stderr_tail(stderr: bytes, *, lines: int = 3) -> str:
    """The worker's last words for a message: a fatal log line, else its last lines without
    Python tracebacks (which name promoter's and TensorFlow's files; the exception's own line,
    after the traceback, is kept)."""
    text: list[str] = []
    in_traceback = False
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback and line.startswith(" "):
            continue
        in_traceback = False
        if line.strip() and not line.startswith(STAGE_PREFIX):
            text.append(line.strip())
    # A native crash ends in a stack trace of addresses; the fatal log line above it says why.
    severe = [_ABSL_SEVERE.sub("", line) for line in text if _ABSL_SEVERE.match(line)]
    if severe:
        return severe[-1][:300]
    text = [line for line in text if not line.startswith(("@ ", "*** "))]
    return " | ".join(line[:300] for line in text[-lines:])
