"""Peak memory of one evaluation (parent + its worker), by holdout format and size.

Builds a 32-input MLP SavedModel (32 -> 64 -> 32 -> 1, sigmoid, random weights: nearly every
row gets its own score, the statistics' worst case) and holdouts of each `--rows` size in CSV
and Parquet (the same rows; float32 features, a 0/1 label), then runs `promoter evaluate
--json` on each, candidate only (with `--baseline`, the same model as baseline too), as a
fresh process tree, and reports:

- peak RSS: the largest sum of the tree's resident set sizes, polled every 50 ms (what
  benchmarks/run.py reports);
- peak VmHWM: the sum over the tree's processes of each one's high-water mark
  (/proc/<pid>/status, read at the last poll before it exits): an upper bound, since the
  processes need not peak at the same moment (and each process's own);
- the wall time and rows/s.

With `--compare REV`, the same runs are made with the code of git revision REV too (`git
archive` into a temporary directory, run from there), interleaved with this checkout's so that
the machine's load hits both alike, and the ratio of the peaks is printed.

Usage: `python benchmarks/holdout_memory.py [--rows 1000000 10000000] [--formats csv parquet]
[--repeats 1] [--compare REV] [--baseline]`. `--short` is a quick run for the tests (20,000
rows, 8 features).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent
_PROMOTER = "import sys; from promoter.cli import main; sys.exit(main())"


def build_model(path: Path, features: int, seed: int = 0) -> None:
    """An MLP with one float32 input per feature (f00, f01, ...) and a `probability` output."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    names = [f"f{i:02d}" for i in range(features)]
    module = tf.Module()
    sizes = [features, 64, 32, 1]
    module.weights = [tf.Variable(rng.normal(scale=1 / np.sqrt(a), size=(a, b))
                                  .astype(np.float32)) for a, b in itertools.pairwise(sizes)]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name=n) for n in names])
    def serve(*columns: Any) -> dict[str, Any]:
        x = tf.stack(columns, axis=1)
        for i, w in enumerate(module.weights):
            x = x @ w
            x = tf.nn.relu(x) if i < len(module.weights) - 1 else tf.sigmoid(x)
        return {"probability": tf.reshape(x, [-1])}

    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={"serving_default": serve})


def write_holdouts(root: Path, rows: int, features: int) -> dict[str, Path]:
    """`rows` rows as CSV (pyarrow's shortest float32 text) and Parquet (pyarrow's defaults),
    written 500,000 rows at a time."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    names = [f"f{i:02d}" for i in range(features)]
    schema = pa.schema([*(pa.field(n, pa.float32()) for n in names),
                        pa.field("label", pa.int64())])
    paths = {"csv": root / f"h{rows}.csv", "parquet": root / f"h{rows}.parquet"}
    rng = np.random.default_rng(1)
    with pacsv.CSVWriter(paths["csv"], schema,
                         write_options=pacsv.WriteOptions(quoting_style="none")) as csv_out, \
            pq.ParquetWriter(paths["parquet"], schema) as parquet_out:
        for start in range(0, rows, 500_000):
            n = min(500_000, rows - start)
            x = rng.normal(size=(n, features)).astype(np.float32)
            y = (rng.random(n) < 0.5).astype(np.int64)
            table = pa.table({**{name: x[:, i] for i, name in enumerate(names)}, "label": y})
            csv_out.write_table(table)
            parquet_out.write_table(table)
    return paths


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(code: Path, model: Path, holdout: Path, *, baseline: bool) -> dict[str, float]:
    """Run `promoter evaluate` of the checkout at `code` on `holdout`: peak RSS (MiB, the
    polled sum over the process tree), the sum of the processes' VmHWM (MiB), wall seconds."""
    import psutil

    argv = [sys.executable, "-c", _PROMOTER, "evaluate", "--model-dir", str(model),
            "--holdout", str(holdout), "--output", "probability", "--json",
            "--timeout", "7200"]
    if baseline:
        argv += ["--baseline-dir", str(model)]
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=code, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    peak = 0
    hwm: dict[int, int] = {}
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        parent = psutil.Process(process.pid)
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
                for p in tree:
                    mark = _vm_hwm_kib(p.pid)
                    if mark is not None:
                        hwm[p.pid] = max(hwm.get(p.pid, 0), mark)
            time.sleep(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    _, stderr = process.communicate()
    done.set()
    thread.join()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"promoter evaluate ({code}) failed: {stderr.decode()[-2000:]}")
    return {"rss": peak / 2**20, "hwm": sum(hwm.values()) / 2**10,
            "parent": hwm.get(process.pid, 0) / 2**10,
            "workers": sum(v for k, v in hwm.items() if k != process.pid) / 2**10,
            "seconds": time.perf_counter() - started}


def checkout(revision: str, root: Path) -> Path:
    """The files of git revision `revision` of this repository, extracted under `root`."""
    path = root / f"code-{revision}"
    path.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--formats", nargs="+", choices=["csv", "parquet"],
                        default=["csv", "parquet"])
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare", metavar="REV", default=None,
                        help="also measure the code of this git revision, side by side")
    parser.add_argument("--baseline", action="store_true",
                        help="score the model as the baseline too (two models)")
    parser.add_argument("--short", action="store_true",
                        help="a quick run for the tests: 20,000 rows, 8 features")
    args = parser.parse_args()
    if args.short:
        args.rows, args.features = [20_000], 8

    with tempfile.TemporaryDirectory(prefix="promoter-memory-") as tmp:
        root = Path(tmp)
        model = root / "model"
        build_model(model, args.features)
        codes = {"this checkout": REPO}
        if args.compare:
            codes = {args.compare: checkout(args.compare, root), **codes}
        print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start; "
              f"a {args.features}-input MLP, "
              f"{'candidate + baseline' if args.baseline else 'candidate only'}; "
              f"{args.repeats} run(s) each, interleaved; medians")
        results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        for rows in args.rows:
            holdouts = write_holdouts(root, rows, args.features)
            sizes = ", ".join(f"{fmt} {holdouts[fmt].stat().st_size / 2**20:,.0f} MiB"
                              for fmt in args.formats)
            print(f"{rows:,} rows: {sizes}", flush=True)
            for _ in range(args.repeats):
                for fmt in args.formats:
                    for name, code in codes.items():
                        results.setdefault((name, fmt, rows), []).append(
                            measure(code, model, holdouts[fmt], baseline=args.baseline))
            for fmt in args.formats:
                peaks = {}
                for name in codes:
                    runs = results[(name, fmt, rows)]
                    rss = statistics.median(r["rss"] for r in runs)
                    hwm = statistics.median(r["hwm"] for r in runs)
                    parent = statistics.median(r["parent"] for r in runs)
                    workers = statistics.median(r["workers"] for r in runs)
                    seconds = statistics.median(r["seconds"] for r in runs)
                    peaks[name] = rss
                    print(f"  {fmt:8s} {name:14s} peak RSS {rss:7,.0f} MiB (VmHWM sum "
                          f"{hwm:7,.0f} MiB: parent {parent:,.0f}, worker {workers:,.0f}), "
                          f"{seconds:6.1f} s, {rows / seconds:>9,.0f} rows/s", flush=True)
                if args.compare:
                    print(f"  {fmt:8s} ratio this checkout / {args.compare}: "
                          f"{peaks['this checkout'] / peaks[args.compare]:.2f}x")
            for path in holdouts.values():
                path.unlink()
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
