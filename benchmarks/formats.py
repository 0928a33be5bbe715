"""Benchmark of the holdout formats: promoter against the script a user would write.

Two 6-input logistic SavedModels (candidate and baseline: six float32 inputs f0..f5, one
`probability` output) are built by this script, with holdouts of `--small` and `--large` rows
in CSV, Parquet and TFRecord (the same rows). For each path it measures the marginal rows/s
between the two sizes, (large - small) / (t_large - t_small), so fixed costs (loading the
models, TensorFlow's first calls) cancel; each time a median of `--repeats` runs, the runs of
all paths interleaved so that a change in the machine's load hits every path alike:

- promoter: the evaluation worker's own code (`worker.run`: the graph scan, both models
  loaded, the holdout read with its digest, both signatures, every metric of the binary
  task), in this process. The worker's start (a fresh interpreter importing TensorFlow,
  confinement) is a fixed cost and not measured here; `--end-to-end` also times
  `evaluate_models` itself, worker start included, at both sizes;
- naive CSV: pandas.read_csv, both signatures on the whole columns, scikit-learn's roc_auc,
  log_loss and accuracy for each model;
- naive Parquet: the same with pandas.read_parquet;
- naive TFRecord: tf.data.TFRecordDataset, batched tf.io.parse_example, both signatures per
  batch, the same scikit-learn metrics;
- raw limit: both signatures on in-memory tensors, in batches of 65,536;
- reading alone, CSV and Parquet of `--large` rows: promoter's reader (with its digest) and
  pandas.

Usage: `python benchmarks/formats.py [--small 20000] [--large 500000] [--repeats 3]
[--batch-size N] [--end-to-end]`. Prints medians, then each path's ratio to its naive script
and to the limit. `--sweep Parquet [--sweep-batch-sizes 8192 65536 ...]` measures only
promoter on that format at each batch size and its naive script, interleaved.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from example_records import write_tfrecord  # noqa: E402  (benchmarks/example_records.py)

NAMES = [f"f{i}" for i in range(6)]
TRUE_WEIGHTS = np.array([1.0, -0.8, 0.6, 0.0, 0.3, -0.2])


def build_model(path: Path, weights: np.ndarray, bias: float) -> None:
    """A logistic model, p = sigmoid(w . x + b), exported with one float32 input per feature."""
    import tensorflow as tf

    module = tf.Module()
    module.w = tf.Variable(weights.astype(np.float32))
    module.b = tf.Variable(np.float32(bias))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name=n) for n in NAMES])
    def serve(*columns: Any) -> dict[str, Any]:
        return {"probability": tf.sigmoid(tf.linalg.matvec(tf.stack(columns, axis=1), module.w)
                                          + module.b)}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def make_data(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(NAMES))).astype(np.float32)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ TRUE_WEIGHTS)))).astype(np.int64)
    return x, y


def write_holdouts(root: Path, rows: int) -> dict[str, Path]:
    """The same rows as CSV (shortest float32 text), Parquet (pyarrow's defaults: snappy,
    row groups of up to 1 Mi rows) and TFRecord of canonical tf.train.Examples."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    x, y = make_data(rows)
    table = pa.table({**{n: x[:, i] for i, n in enumerate(NAMES)}, "label": y})
    paths = {"CSV": root / f"h{rows}.csv", "Parquet": root / f"h{rows}.parquet",
             "TFRecord": root / f"h{rows}.tfrecord"}
    pacsv.write_csv(table, paths["CSV"],
                    write_options=pacsv.WriteOptions(quoting_style="none"))
    pq.write_table(table, paths["Parquet"])
    write_tfrecord(paths["TFRecord"], x, y, names=NAMES)
    return paths


def promoter_run(models: dict[str, Path], holdout: Path, out: Path, *,
                 batch_size: int | None = None) -> float:
    """Seconds of the worker's `run` on `holdout`, with the request evaluate_models sends
    (`batch_size` replaces its batch size for CSV and Parquet: 8,192 and 65,536)."""
    from promoter.evaluation.holdout import is_tfrecord
    from promoter.evaluation.holdout_formats import batch_size_for
    from promoter.evaluation.protocol import PROTOCOL
    from promoter.evaluation.worker import run

    request = {"protocol": PROTOCOL, "task": "binary_classification",
               "holdout": str(holdout), "labelColumn": "label", "weightColumn": None,
               "threshold": 0.5, "topK": 2, "outDir": str(out), "slices": [],
               "batchSize": (batch_size_for(holdout) if is_tfrecord(holdout) or not batch_size
                             else batch_size),
               "latency": False,
               "bootstrap": False, "latencyBatchSize": 256, "memoryLimitBytes": None,
               "allowOps": [], "confinement": "best-effort",
               "models": [{"role": role, "path": str(path), "signature": "serving_default",
                           "output": "probability"} for role, path in models.items()]}
    started = time.perf_counter()
    response = run(request, progress=io.StringIO())
    seconds = time.perf_counter() - started
    if "holdout" not in response or not response["holdout"]["digest"]:
        raise RuntimeError(f"the worker did not evaluate {holdout}: {response}")
    return seconds


def end_to_end(models: dict[str, Path], holdout: Path) -> float:
    from promoter.config.schema import EvaluationPolicy, ModelSpec
    from promoter.evaluation import evaluate_models

    started = time.perf_counter()
    evaluate_models(candidate_dir=models["candidate"], baseline_dir=models["baseline"],
                    holdout=holdout, model=ModelSpec(name="bench", output="probability"),
                    policy=EvaluationPolicy.model_validate(
                        {"metrics": [{"name": "auc", "min": 0.5}]}), measure_latency=False)
    return time.perf_counter() - started


def read_only(holdout: Path) -> dict[str, float]:
    """Seconds to read `holdout` alone: promoter's reader (digest included) and pandas'."""
    import pandas as pd

    from promoter.evaluation.holdout import ColumnRequest
    from promoter.evaluation.holdout_formats import open_holdout

    columns = [ColumnRequest(n, text=False, needed_by="the benchmark") for n in NAMES]
    started = time.perf_counter()
    for _ in open_holdout(holdout, label_column="label", columns=columns, batch_size=65536):
        pass
    promoter = time.perf_counter() - started
    started = time.perf_counter()
    pd.read_parquet(holdout) if holdout.suffix == ".parquet" else pd.read_csv(holdout)
    return {"promoter": promoter, "pandas": time.perf_counter() - started}


def _signatures(models: dict[str, Path]) -> list[Any]:
    import tensorflow as tf

    return [tf.saved_model.load(str(p)).signatures["serving_default"] for p in models.values()]


def _sklearn_metrics(y: np.ndarray, p: np.ndarray) -> None:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    roc_auc_score(y, p)
    log_loss(y, np.clip(p, 1e-7, 1 - 1e-7))
    accuracy_score(y, p >= 0.5)


def naive_pandas(models: dict[str, Path], holdout: Path) -> float:
    """A user's script: pandas reads the file, both signatures score it, sklearn's metrics."""
    import pandas as pd
    import tensorflow as tf

    started = time.perf_counter()
    frame = pd.read_parquet(holdout) if holdout.suffix == ".parquet" else pd.read_csv(holdout)
    y = frame["label"].to_numpy()
    feeds = {n: tf.constant(frame[n].to_numpy(np.float32)) for n in NAMES}
    for signature in _signatures(models):
        _sklearn_metrics(y, signature(**feeds)["probability"].numpy())
    return time.perf_counter() - started


def naive_tfdata(models: dict[str, Path], holdout: Path) -> float:
    """A user's tf.data script: TFRecordDataset, batched parse_example, both signatures."""
    import tensorflow as tf

    started = time.perf_counter()
    spec = {n: tf.io.FixedLenFeature([], tf.float32) for n in NAMES}
    spec["label"] = tf.io.FixedLenFeature([], tf.int64)
    data = (tf.data.TFRecordDataset(str(holdout)).batch(65536)
            .map(lambda r: tf.io.parse_example(r, spec), num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))
    signatures = _signatures(models)
    labels: list[np.ndarray] = []
    scores: list[list[np.ndarray]] = [[] for _ in signatures]
    for batch in data:
        labels.append(batch.pop("label").numpy())
        for i, signature in enumerate(signatures):
            scores[i].append(signature(**batch)["probability"].numpy())
    y = np.concatenate(labels)
    for per_model in scores:
        _sklearn_metrics(y, np.concatenate(per_model))
    return time.perf_counter() - started


def raw_limit(models: dict[str, Path], rows: int) -> float:
    """Rows/s of both signatures on in-memory tensors (batches of 65,536; no reading)."""
    import tensorflow as tf

    x, _ = make_data(rows)
    signatures = _signatures(models)
    batches = [{n: tf.constant(x[s:s + 65536, i]) for i, n in enumerate(NAMES)}
               for s in range(0, rows, 65536)]
    for signature in signatures:
        signature(**batches[0])["probability"].numpy()
    started = time.perf_counter()
    for feed in batches:
        for signature in signatures:
            signature(**feed)["probability"].numpy()
    return rows / (time.perf_counter() - started)


def sweep(args: argparse.Namespace) -> None:
    """Marginal rows/s of promoter on one format at several batch sizes, and of its naive
    script, all interleaved in one run."""
    fmt = args.sweep
    with tempfile.TemporaryDirectory(prefix="promoter-formats-") as tmp:
        root = Path(tmp)
        models = {"candidate": root / "candidate", "baseline": root / "baseline"}
        build_model(models["candidate"], TRUE_WEIGHTS * 0.9, 0.05)
        build_model(models["baseline"], TRUE_WEIGHTS * 0.5 + 0.1, -0.1)
        holdouts = {size: write_holdouts(root, size)[fmt] for size in (args.small, args.large)}
        print(f"{fmt}: {args.small:,} vs {args.large:,} rows; medians of {args.repeats} runs; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
        paths: dict[str, Callable[[Path], float]] = {
            f"promoter, batches of {n:,}": (lambda h, n=n: promoter_run(
                models, h, Path(tempfile.mkdtemp(dir=root)), batch_size=n))
            for n in args.sweep_batch_sizes}
        paths[f"naive pandas ({fmt})"] = lambda h: naive_pandas(models, h)
        times: dict[tuple[str, int], list[float]] = {}
        for measure in paths.values():  # warm-up: imports, first graph traces
            measure(holdouts[args.small])
        for _ in range(args.repeats):
            for size in (args.small, args.large):
                for name, measure in paths.items():
                    times.setdefault((name, size), []).append(measure(holdouts[size]))
        rates = {}
        for name in paths:
            small = statistics.median(times[(name, args.small)])
            large = statistics.median(times[(name, args.large)])
            rates[name] = ((args.large - args.small) / (large - small) if large > small
                           else float("nan"))
        naive = rates[f"naive pandas ({fmt})"]
        for name, rate in rates.items():
            print(f"{name:30s} {rate:>12,.0f} rows/s marginal ({rate / naive:.2f}x naive)")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per batch for CSV and Parquet [default: what "
                             "evaluate_models sends: 8,192 for CSV, 65,536 for Parquet]")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time evaluate_models (a worker process each run)")
    parser.add_argument("--sweep", choices=["CSV", "Parquet"], default=None,
                        help="only this format: promoter at each of --sweep-batch-sizes, "
                             "interleaved, against its naive script")
    parser.add_argument("--sweep-batch-sizes", type=int, nargs="+",
                        default=[8192, 32768, 65536, 131072, 262144])
    args = parser.parse_args()
    if args.sweep:
        sweep(args)
        return

    with tempfile.TemporaryDirectory(prefix="promoter-formats-") as tmp:
        root = Path(tmp)
        models = {"candidate": root / "candidate", "baseline": root / "baseline"}
        build_model(models["candidate"], TRUE_WEIGHTS * 0.9, 0.05)
        build_model(models["baseline"], TRUE_WEIGHTS * 0.5 + 0.1, -0.1)
        holdouts = {size: write_holdouts(root, size) for size in (args.small, args.large)}
        big = holdouts[args.large]
        batches = (f"CSV/Parquet batches of {args.batch_size:,} rows; " if args.batch_size
                   else "CSV batches of 8,192 rows, Parquet and TFRecord of 65,536; ")
        print(f"models: two 6-input logistic SavedModels (candidate + baseline); "
              f"{args.small:,} vs {args.large:,} rows; medians of {args.repeats} runs; "
              + batches +
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; "
              f"files of {args.large:,} rows: " + ", ".join(
                  f"{k} {p.stat().st_size / 2**20:.1f} MiB" for k, p in big.items()))
        paths: dict[str, Callable[[Path], float]] = {}
        for fmt in ("CSV", "Parquet", "TFRecord"):
            paths[f"promoter {fmt}"] = (lambda h: promoter_run(models, h, Path(
                tempfile.mkdtemp(dir=root)), batch_size=args.batch_size))
        paths["naive pandas read_csv"] = lambda h: naive_pandas(models, h)
        paths["naive pandas read_parquet"] = lambda h: naive_pandas(models, h)
        paths["naive tf.data parse_example"] = lambda h: naive_tfdata(models, h)
        if args.end_to_end:
            for fmt in ("CSV", "Parquet", "TFRecord"):
                paths[f"evaluate_models {fmt}"] = lambda h: end_to_end(models, h)
        formats = {"CSV": "CSV", "Parquet": "Parquet", "TFRecord": "TFRecord",
                   "read_csv": "CSV", "read_parquet": "Parquet", "parse_example": "TFRecord"}

        def fmt_of(name: str) -> str:
            return next(v for k, v in formats.items() if name.endswith(k))

        times: dict[tuple[str, int], list[float]] = {}
        for name, measure in paths.items():  # warm-up: imports, first graph traces
            measure(holdouts[args.small][fmt_of(name)])
        for _ in range(args.repeats):
            for size in (args.small, args.large):
                for name, measure in paths.items():
                    times.setdefault((name, size), []).append(
                        measure(holdouts[size][fmt_of(name)]))
        limit = statistics.median(raw_limit(models, args.large) for _ in range(args.repeats))
        rates: dict[str, float] = {}
        for name in paths:
            small = statistics.median(times[(name, args.small)])
            large = statistics.median(times[(name, args.large)])
            # Within the noise of a loaded machine, the large run can be no slower than the small.
            rates[name] = ((args.large - args.small) / (large - small) if large > small
                           else float("nan"))
            print(f"{name:30s} {small:7.2f} s / {large:7.2f} s -> "
                  f"{rates[name]:>12,.0f} rows/s marginal ({rates[name] / limit:.0%} of the "
                  "raw limit)")
        print(f"{'raw limit (both signatures)':30s} {limit:>35,.0f} rows/s")
        for fmt in ("CSV", "Parquet"):
            reads = [read_only(big[fmt]) for _ in range(args.repeats)]
            ours = statistics.median(r["promoter"] for r in reads)
            theirs = statistics.median(r["pandas"] for r in reads)
            print(f"reading {args.large:,} rows of {fmt} alone: promoter's reader {ours:.2f} s, "
                  f"pandas {theirs:.2f} s ({theirs / ours:.2f}x)")
        for fmt, naive in (("CSV", "naive pandas read_csv"),
                           ("Parquet", "naive pandas read_parquet"),
                           ("TFRecord", "naive tf.data parse_example")):
            print(f"ratio promoter {fmt} / {naive}: "
                  f"{rates[f'promoter {fmt}'] / rates[naive]:.2f}x")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
