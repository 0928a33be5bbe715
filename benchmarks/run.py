"""Benchmarks of the evaluation gate (`make bench`): one 32-feature MLP, one data set.

Prints, each a median of `--repeats` runs measured side by side on this machine:

- raw limit: rows/s of the loaded signature on in-memory tensors at the best batch size;
- `promoter evaluate` end to end (worker start, reading, scoring, every metric) from CSV and
  from TFRecord, and the same without the fixed cost of starting the worker, loading the model
  and the decoder (the run time of a one-row holdout of the same format subtracted);
- a naive baseline: numpy.loadtxt of the CSV, keras `model.predict`, scikit-learn's metrics;
- the bootstrap's cost (1,000 resamples, two models): per-block statistics while streaming
  plus the resampling, relative to the time the two models spend scoring;
- peak RSS (worker and parent) while evaluating `--rss-rows` rows (10 million by default).

Usage: `python benchmarks/run.py [--rows 500000] [--tfrecord-rows 2000000]
[--rss-rows 10000000] [--repeats 3]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from example_records import write_tfrecord  # noqa: E402  (benchmarks/example_records.py)

from promoter.config.schema import EvaluationPolicy, ModelSpec  # noqa: E402
from promoter.evaluation import evaluate_models  # noqa: E402
from promoter.evaluation.bootstrap import (  # noqa: E402
    N_BLOCKS,
    binary_block_sums,
    block_ids,
    poisson_weights,
    resample,
)

FEATURES = 32
NAMES = [f"f{i:02d}" for i in range(FEATURES)]
SPEC = ModelSpec(name="bench", label_column="label", output="probability")
POLICY = EvaluationPolicy.model_validate({"metrics": [
    {"name": "auc", "min": 0.5}, {"name": "log_loss", "max": 5.0},
    {"name": "accuracy", "min": 0.1}]})


def build_model(path: Path, seed: int = 0, *, vector: bool = False) -> object:
    """A Keras MLP (32 -> 64 -> 32 -> 1, sigmoid) exported with one scalar input per feature,
    so the same model reads CSV columns and tf.train.Example features by name; or, with
    `vector`, the same weights behind one input `features` [None, 32] (TFRecord only)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(64, "relu"),
                              keras.layers.Dense(32, "relu"),
                              keras.layers.Dense(1, "sigmoid")])
    specs = [tf.TensorSpec([None], tf.float32, name=n) for n in NAMES]

    @tf.function(input_signature=specs)
    def serve(*columns: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probability": model(tf.stack(columns, axis=1))[:, 0]}

    if vector:
        @tf.function(input_signature=[tf.TensorSpec([None, FEATURES], tf.float32,
                                                     name="features")])
        def serve(features: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"probability": model(features)[:, 0]}

    module = tf.Module()
    module.model = model
    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    return model


def make_data(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    y = (x[:, :4].sum(axis=1) + rng.normal(size=rows) > 0).astype(np.int64)
    return x, y


def write_csv(path: Path, rows: int, seed: int = 1, chunk: int = 200_000) -> None:
    with path.open("w") as handle:
        handle.write(",".join([*NAMES, "label"]) + "\n")
        for start in range(0, rows, chunk):
            x, y = make_data(min(chunk, rows - start), seed=seed + start)
            np.savetxt(handle, np.column_stack([x, y]), fmt="%.6g", delimiter=",")


def raw_limit(model_dir: Path, x: np.ndarray, repeats: int, *,
              vector: bool = False) -> tuple[float, int]:
    """Best rows/s of the signature on in-memory tensors, and the batch size that gave it."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(model_dir))
    function = loaded.signatures["serving_default"]
    best = (0.0, 0)
    for batch in (1024, 4096, 16384, 65536):
        if batch > x.shape[0]:
            continue
        tensors = [({"features": tf.constant(x[s:s + batch])} if vector else
                    {n: tf.constant(x[s:s + batch, i]) for i, n in enumerate(NAMES)})
                   for s in range(0, x.shape[0] - batch + 1, batch)]
        function(**tensors[0])["probability"].numpy()
        rates = []
        for _ in range(repeats):
            started = time.perf_counter()
            for feed in tensors:
                function(**feed)["probability"].numpy()
            rates.append(len(tensors) * batch / (time.perf_counter() - started))
        best = max(best, (statistics.median(rates), batch))
    return best


def end_to_end(model_dir: Path, holdout: Path, *, baseline: Path | None = None,
               policy: EvaluationPolicy = POLICY) -> tuple[float, object]:
    started = time.perf_counter()
    report = evaluate_models(candidate_dir=model_dir, baseline_dir=baseline, holdout=holdout,
                             model=SPEC, policy=policy, measure_latency=False)
    return time.perf_counter() - started, report


def naive(model: object, csv: Path) -> float:
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    started = time.perf_counter()
    data = np.loadtxt(csv, delimiter=",", skiprows=1, dtype=np.float32)
    x, y = data[:, :FEATURES], data[:, FEATURES].astype(int)
    p = model.predict(x, verbose=0)[:, 0]  # type: ignore[attr-defined]
    roc_auc_score(y, p)
    log_loss(y, np.clip(p, 1e-7, 1 - 1e-7))
    accuracy_score(y, p >= 0.5)
    return time.perf_counter() - started


def bootstrap_cost(model_dir: Path, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(seconds of per-block statistics + 1,000 resamples for two models, seconds the two
    models spend scoring the same rows in batches of 8192)."""
    import tensorflow as tf

    function = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    batch = 8192
    scores = []
    started = time.perf_counter()
    for _ in range(2):  # candidate and baseline
        for s in range(0, x.shape[0], batch):
            feed = {n: tf.constant(x[s:s + batch, i]) for i, n in enumerate(NAMES)}
            scores.append(function(**feed)["probability"].numpy())
    scoring = time.perf_counter() - started
    started = time.perf_counter()
    half = len(scores) // 2
    chunk = 1 << 18  # as the worker does: block sums over many batches at once
    for model in range(2):
        p = np.concatenate(scores[model * half:(model + 1) * half])
        blocks = np.zeros((N_BLOCKS, 6 + 30 + 512))
        for s in range(0, p.shape[0], chunk):
            part = p[s:s + chunk]
            blocks += binary_block_sums(block_ids(s, part.shape[0]), y[s:s + chunk], part,
                                        threshold=0.5, weights=np.ones(part.shape[0]))
        resample("binary_classification", blocks, poisson_weights(1000))
    return time.perf_counter() - started, scoring


def peak_rss(model_dir: Path, holdout: Path) -> tuple[float, float]:
    """Peak RSS in MiB of the `promoter evaluate` process tree, and its wall time."""
    import psutil

    argv = [str(Path(sys.executable).parent / "promoter"), "evaluate", "--model-dir",
            str(model_dir),
            "--holdout", str(holdout), "--output", "probability", "--json", "--timeout", "7200"]
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        parent = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    _, stderr = process.communicate()
    done.set()
    thread.join()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"promoter evaluate failed: {stderr.decode()[-2000:]}")
    return peak / 2**20, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000,
                        help="rows of the throughput runs")
    parser.add_argument("--tfrecord-rows", type=int, default=2_000_000,
                        help="rows of the TFRecord throughput runs (more rows make the steady "
                             "figure rest on a longer difference)")
    parser.add_argument("--rss-rows", type=int, default=10_000_000,
                        help="rows of the peak-RSS run (0 skips it)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="promoter-bench-") as tmp:
        root = Path(tmp)
        model_dir = root / "model"
        keras_model = build_model(model_dir)
        x, y = make_data(args.rows)
        csv, tfrecord, one = root / "h.csv", root / "h.tfrecord", root / "one.csv"
        write_csv(csv, args.rows)
        write_csv(one, 1)
        write_tfrecord(tfrecord, *make_data(args.tfrecord_rows), names=NAMES)
        vector_dir, vector_tfrecord = root / "vector-model", root / "v.tfrecord"
        build_model(vector_dir, vector=True)
        write_tfrecord(vector_tfrecord, *make_data(args.tfrecord_rows), names=NAMES,
                       vector_name="features")
        # The CSV holds the same rows as x, y (same generator and seeds, one chunk).
        print(f"model: 32-feature MLP (32-64-32-1); {args.rows:,} rows "
              f"({args.tfrecord_rows:,} for TFRecord); "
              f"medians of {args.repeats} runs; {os.cpu_count()} CPUs")

        rate, batch = raw_limit(model_dir, x, args.repeats)
        print(f"raw limit (signature on in-memory tensors, batch {batch}): {rate:,.0f} rows/s")

        one_record, one_vector = root / "one.tfrecord", root / "one-v.tfrecord"
        write_tfrecord(one_record, *make_data(1), names=NAMES)
        write_tfrecord(one_vector, *make_data(1), names=NAMES, vector_name="features")
        vector_rate, vector_batch = raw_limit(vector_dir, x, args.repeats, vector=True)
        print(f"raw limit, same MLP with one [None, 32] input (batch {vector_batch}): "
              f"{vector_rate:,.0f} rows/s")
        for name, path, small, directory, limit, rows in (
                ("CSV (32 columns)", csv, one, model_dir, rate, args.rows),
                ("TFRecord (32 scalar features)", tfrecord, one_record, model_dir, rate,
                 args.tfrecord_rows),
                ("TFRecord (one 32-value feature)", vector_tfrecord, one_vector, vector_dir,
                 vector_rate, args.tfrecord_rows)):
            # The fixed cost (worker start, TensorFlow import, model load, the decoder's
            # kernels) is a one-row holdout of the same format, run alternately with the big one.
            times, fixed = [], []
            for _ in range(args.repeats):
                fixed.append(end_to_end(directory, small)[0])
                times.append(end_to_end(directory, path)[0])
            wall, startup = statistics.median(times), statistics.median(fixed)
            steady = max(wall - startup, 1e-9)
            print(f"promoter evaluate from {name}, {rows:,} rows: {rows / wall:,.0f} rows/s "
                  f"end to end ({wall:.2f} s, {rows / wall / limit:.0%} of the raw limit); "
                  f"{rows / steady:,.0f} rows/s without the {startup:.2f} s fixed cost "
                  f"of a one-row holdout ({rows / steady / limit:.0%})")

        naive_s = statistics.median(naive(keras_model, csv) for _ in range(args.repeats))
        print(f"naive baseline (np.loadtxt + keras predict + sklearn): "
              f"{args.rows / naive_s:,.0f} rows/s ({naive_s:.2f} s)")

        costs = [bootstrap_cost(model_dir, x, y) for _ in range(args.repeats)]
        extra = statistics.median(c[0] for c in costs)
        scoring = statistics.median(c[1] for c in costs)
        print(f"bootstrap (1,000 resamples, candidate + baseline): {extra:.2f} s vs "
              f"{scoring:.2f} s of scoring = +{extra / scoring:.0%}")
        paired = EvaluationPolicy.model_validate({
            "bootstrap": {"resamples": 1000},
            "metrics": [{"name": "auc", "vsBaseline": {"maxRegression": 0.0}}]})
        point = EvaluationPolicy.model_validate({
            "metrics": [{"name": "auc", "vsBaseline": {"maxRegression": 0.0}}]})
        pairs = [(end_to_end(vector_dir, vector_tfrecord, baseline=vector_dir,
                             policy=point)[0],
                  end_to_end(vector_dir, vector_tfrecord, baseline=vector_dir,
                             policy=paired)[0]) for _ in range(args.repeats)]
        without_b = statistics.median(p[0] for p in pairs)
        with_b = statistics.median(p[1] for p in pairs)
        print(f"  end to end with a baseline, from TFRecord (one 32-value feature): "
              f"{without_b:.2f} s without the bootstrap, {with_b:.2f} s with it "
              f"(+{(with_b - without_b) / without_b:.0%})")

        if args.rss_rows:
            big = root / "big.csv"
            started = time.perf_counter()
            write_csv(big, args.rss_rows)
            size = big.stat().st_size / 2**30
            print(f"peak RSS run: wrote {args.rss_rows:,} rows ({size:.1f} GiB CSV) in "
                  f"{time.perf_counter() - started:.0f} s")
            peak, wall = peak_rss(model_dir, big)
            print(f"peak RSS evaluating {args.rss_rows:,} rows from CSV: {peak:,.0f} MiB "
                  f"(parent + worker), {wall:.0f} s, {args.rss_rows / wall:,.0f} rows/s")


if __name__ == "__main__":
    main()
