"""Reading the worker's results back: each model's metrics file, and a gate blocked early.

The worker writes each model's statistics (overall, per block for the bootstrap, per slice)
to an `.npz` file in the request's directory and names it in its response; `_load_result`
turns one into a `ModelResult` and the statistics the slice checks and the bootstrap need
(`_Extra`). A gate refused before scoring (a refused op, a signature change) has no such
files, and `_blocked_report` writes its report from the response alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promoter.config.schema import EvaluationPolicy
from promoter.evaluation.binary_stats import BinaryClassificationStats
from promoter.evaluation.gate import CheckResult, Verdict
from promoter.evaluation.plots import binary_plots
from promoter.evaluation.report import EvaluationReport
from promoter.evaluation.report_parts import HoldoutInfo, ModelResult
from promoter.evaluation.signature import SignatureInfo
from promoter.evaluation.task_stats import TaskStats, stats_from_arrays


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
                         size_bytes=_size_on_disk(model_dir),
                         plots=binary_plots(stats)
                         if isinstance(stats, BinaryClassificationStats) else None)
    classes = getattr(stats, "classes", 0)
    return result, _Extra(blocks=arrays["blocks"], classes=classes, slices=slices)


def _size_on_disk(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())



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

