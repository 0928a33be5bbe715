"""Benchmark of sharded evaluation: one holdout scored by 1 and by N worker processes.

The models and holdouts of benchmarks/formats.py (two 6-input logistic SavedModels, candidate
and baseline; the same rows as CSV, Parquet and TFRecord). For each format and each number of
workers it times `evaluate_models` end to end (fresh workers: TensorFlow's import included),
at `--small` and `--large` rows, and reports the marginal rows/s between the two sizes,
(large - small) / (t_large - t_small), so the workers' start cancels; medians of `--repeats`,
all runs interleaved so that a change in the machine's load hits every variant alike. It
also measures what sharding adds: the bytes per row of a shard's per-row outputs (the file a
worker writes) and the parent's `replay` of the statistics from them (which does not run in
parallel).

Usage: `python benchmarks/shards.py [--small 20000] [--large 400000] [--repeats 3]
[--workers 1 2]`. On a machine with 2 cores, 2 workers compete for the cores that one
worker's TensorFlow already uses; say so with the figures.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import formats  # noqa: E402  (benchmarks/formats.py: the models and holdouts)
import numpy as np  # noqa: E402


def evaluate(models: dict[str, Path], holdout: Path, shards: int) -> float:
    from promoter.config.schema import EvaluationPolicy, ModelSpec
    from promoter.evaluation import evaluate_models

    started = time.perf_counter()
    report = evaluate_models(candidate_dir=models["candidate"],
                             baseline_dir=models["baseline"], holdout=holdout,
                             model=ModelSpec(name="bench", output="probability"),
                             policy=EvaluationPolicy.model_validate(
                                 {"metrics": [{"name": "auc", "min": 0.5}]}),
                             measure_latency=False, shards=shards)
    seconds = time.perf_counter() - started
    if report.holdout.rows == 0:
        raise RuntimeError(f"nothing was evaluated in {holdout}")
    return seconds


def transport(models: dict[str, Path], holdout: Path, rows: int, out: Path) -> dict[str, float]:
    """Bytes per row of one shard's outputs (all rows in one shard), and the seconds of the
    parent's replay of them, per million rows."""
    from promoter.evaluation.holdout import is_tfrecord
    from promoter.evaluation.protocol import PROTOCOL
    from promoter.evaluation.shards import SHARD_FILE, replay
    from promoter.evaluation.worker import run

    request = {"protocol": PROTOCOL, "task": "binary_classification", "holdout": str(holdout),
               "labelColumn": "label", "weightColumn": None, "threshold": 0.5, "topK": 2,
               "outDir": str(out), "slices": [], "latency": False, "bootstrap": False,
               "batchSize": 65536 if is_tfrecord(holdout) else 8192,
               "memoryLimitBytes": None, "allowOps": [], "confinement": "best-effort",
               "shard": {"index": 0, "count": 1},
               "models": [{"role": role, "path": str(path), "signature": "serving_default",
                           "output": "probability"} for role, path in models.items()]}
    run(request, progress=io.StringIO())
    size = (out / SHARD_FILE).stat().st_size
    started = time.perf_counter()
    replay([out / SHARD_FILE], request, roles=list(models), rows=rows, out_dir=out,
           labels={role: role for role in models})
    return {"bytes_per_row": round(size / rows, 1),
            "replay_s_per_m_rows": round((time.perf_counter() - started) / rows * 1e6, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=400_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--formats", nargs="+", default=["CSV", "Parquet", "TFRecord"])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="promoter-shards-"))
    rng = np.random.default_rng(2)
    models = {"candidate": root / "candidate", "baseline": root / "baseline"}
    formats.build_model(models["candidate"], formats.TRUE_WEIGHTS, 0.0)
    formats.build_model(models["baseline"], formats.TRUE_WEIGHTS + rng.normal(0, 0.3, 6), 0.1)
    sizes = {"small": args.small, "large": args.large}
    holdouts = {size: formats.write_holdouts(root, rows) for size, rows in sizes.items()}
    print(f"cpus {os.cpu_count()}, load average before {os.getloadavg()[0]:.1f}", flush=True)
    times: dict[tuple[str, int, str], list[float]] = {}
    for _ in range(args.repeats):
        for kind in args.formats:
            for workers in args.workers:
                for size in sizes:
                    times.setdefault((kind, workers, size), []).append(
                        evaluate(models, holdouts[size][kind], workers))
    print(f"load average after {os.getloadavg()[0]:.1f}")
    print(f"{'format':>9} {'workers':>7} {'small s':>8} {'large s':>8} {'rows/s':>10} "
          f"{'vs 1':>6}")
    for kind in args.formats:
        base = None
        for workers in args.workers:
            small = statistics.median(times[(kind, workers, "small")])
            large = statistics.median(times[(kind, workers, "large")])
            rate = (args.large - args.small) / (large - small)
            base = base or rate
            print(f"{kind:>9} {workers:>7} {small:8.2f} {large:8.2f} {rate:10,.0f} "
                  f"{rate / base:6.2f}")
    for kind in args.formats:
        out = root / f"transport-{kind}"
        out.mkdir()
        print(kind, transport(models, holdouts["large"][kind], args.large, out))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
