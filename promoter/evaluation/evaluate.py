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

This is isolation, not a sandbox: the child runs with promoter's user, files and network.
Confinement (namespaces, seccomp, resource limits) is left to the evaluator's next version.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import promoter
from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.errors import BadInputError, HoldoutError, ModelLoadError, ModelStoreError
from promoter.evaluation.gate import check_thresholds
from promoter.evaluation.holdout import read_header, require_label_column
from promoter.evaluation.metrics import BinaryClassificationStats
from promoter.evaluation.protocol import PROTOCOL, STAGE_PREFIX, WORKER_MODULE
from promoter.evaluation.report import EvaluationReport, HoldoutInfo, ModelResult
from promoter.evaluation.signature import SignatureInfo
from promoter.model_store import require_saved_model

DEFAULT_TIMEOUT_S = 600.0
_WORKER_ERRORS: dict[str, type[BadInputError]] = {
    "HoldoutError": HoldoutError,
    "ModelLoadError": ModelLoadError,
    "ModelStoreError": ModelStoreError,
}


def evaluate_models(*, candidate_dir: Path, baseline_dir: Path | None, holdout: Path,
                    model: ModelSpec, policy: EvaluationPolicy | None,
                    timeout_s: float = DEFAULT_TIMEOUT_S, candidate_digest: str | None = None,
                    baseline_digest: str | None = None,
                    environment: str | None = None) -> EvaluationReport:
    """Score the candidate (and the baseline, if given) on the same holdout rows in one worker
    run, compute their metrics, and check them against `policy` (no checks if None).

    `baseline_dir` is the model deployed now in `environment`; None means a first deployment,
    so vsBaseline checks are skipped. Digests, when known, are copied into the report.

    `timeout_s` bounds the whole worker run in wall-clock seconds: starting TensorFlow (a few
    seconds), loading the models and scoring every row.

    Raises ModelStoreError if a directory is not a SavedModel, HoldoutError for an unusable
    holdout, and ModelLoadError if a model cannot be loaded or scored, crashes, or the worker
    runs past `timeout_s` (it is then killed). All are BadInputError (CLI exit 2). Path and
    label-column problems are found before the worker starts. Thread-safe: each call has its
    own worker process.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    require_saved_model(candidate_dir)
    if baseline_dir is not None:
        require_saved_model(baseline_dir)
    # Cheap checks first: a wrong path or label column should not cost a TensorFlow start.
    require_label_column(holdout, read_header(holdout), model.label_column)

    models = [("candidate", candidate_dir)]
    if baseline_dir is not None:
        models.append(("baseline", baseline_dir))
    request = {
        "protocol": PROTOCOL,
        "holdout": str(holdout.resolve()),
        "labelColumn": model.label_column,
        "threshold": model.threshold,
        "batchSize": 1024,
        "models": [{"role": role, "path": str(path.resolve()), "signature": model.signature,
                    "output": model.output} for role, path in models],
    }
    payload = run_worker(request, timeout_s=timeout_s)

    try:
        results = {
            role: _model_result(payload["models"][role], model_dir=path,
                                digest=candidate_digest if role == "candidate"
                                else baseline_digest)
            for role, path in models
        }
        holdout_info = HoldoutInfo(path=str(holdout), digest=str(payload["holdout"]["digest"]),
                                   rows=int(payload["holdout"]["rows"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"the evaluation worker returned an unusable result ({exc!r})",
                             fix="report this as a bug in promoter") from exc

    candidate = results["candidate"]
    baseline = results.get("baseline")
    checks = check_thresholds(
        policy or EvaluationPolicy(), candidate.metrics,
        None if baseline is None else baseline.metrics, environment=environment,
        undefined={**(baseline.undefined if baseline else {}), **candidate.undefined})
    return EvaluationReport(candidate=candidate, baseline=baseline, holdout=holdout_info,
                            checks=tuple(checks), environment=environment)


def run_worker(request: Mapping[str, Any], *, timeout_s: float,
               command: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the worker on `request`; return its response payload (`holdout`, `models`).

    Raises the worker's typed error (HoldoutError, ModelLoadError, ModelStoreError), or
    ModelLoadError if it crashes, prints no valid response, or runs past `timeout_s` (then the
    worker and anything it started are killed). `command` replaces the worker's argv (tests).
    """
    argv = list(command) if command else [sys.executable, "-m", WORKER_MODULE]
    env = dict(os.environ)
    # Drop TensorFlow's C++ INFO/WARNING lines; ERROR/FATAL ones explain crashes in messages.
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach the pipe even if the child is killed
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True,  # own process group: a kill reaches its children
            # The directory holding this `promoter` package, so `-m` runs this very code and
            # never a `promoter/` directory that happens to be in the caller's working dir.
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


def _model_result(data: Mapping[str, Any], *, model_dir: Path,
                  digest: str | None) -> ModelResult:
    stats = BinaryClassificationStats.from_json_dict(data["stats"])
    metrics = stats.metrics()
    return ModelResult(model_dir=str(model_dir), digest=digest, metrics=dict(metrics.values),
                       rows=stats.rows, undefined=dict(metrics.undefined),
                       signature=SignatureInfo.from_json_dict(data["signature"]),
                       scoring_seconds=float(data["seconds"]))


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
    text = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()
            if line.strip() and not line.startswith(STAGE_PREFIX)]
    # A native crash ends in a stack trace of addresses; the fatal log line above it says why.
    severe = [_ABSL_SEVERE.sub("", line) for line in text if _ABSL_SEVERE.match(line)]
    if severe:
        return severe[-1][:300]
    text = [line for line in text if not line.startswith(("@ ", "*** "))]
    return " | ".join(line[:300] for line in text[-lines:])
