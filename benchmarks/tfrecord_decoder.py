"""The TFRecord reader of two source trees side by side: records/s of `TFRecordHoldoutReader`
(framing, both checksums, sha256, decoding) on the same files, in alternating processes.

Usage: `python benchmarks/tfrecord_decoder.py --old /path/to/old/tree [--rows 400000]`
(the old tree, e.g. `git archive c0ed16f promoter | tar -x -C /tmp/old`; the new one is this
checkout). Three files: 6 float features + an int64 label written canonically (the template
path), the same with 32 floats, and 6 floats written with unpacked lists and the value before
the key in every entry (the parsing path). Each process imports the reader, compiles (or loads)
the kernels, reads each file `--passes` times and reports each pass; processes alternate old,
new, old, new... `--rounds` times. Prints medians over all passes and new/old ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from example_records import field, varint  # benchmarks/example_records.py, beside this script

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import json, sys, time
from pathlib import Path
from promoter.evaluation.example_codec import compile_kernels
from promoter.evaluation.holdout import ColumnRequest
from promoter.evaluation.tfrecord import TFRecordHoldoutReader
compile_kernels()
files, passes = json.loads(sys.argv[1]), int(sys.argv[2])
out = {}
for name, (path, width) in files.items():
    columns = [ColumnRequest(name=f"f{i}", text=False, needed_by="input", width=1)
               for i in range(width)]
    times = []
    for _ in range(passes + 1):  # the first pass warms the page cache and TensorFlow's protobuf
        reader = TFRecordHoldoutReader(Path(path), label_column="label", columns=columns,
                                       batch_size=8192)
        start = time.perf_counter()
        rows = sum(len(batch.labels) for batch in reader)
        times.append(time.perf_counter() - start)
    out[name] = [rows / t for t in times[1:]]
print(json.dumps(out))
"""


def _record(values: np.ndarray, label: int, *, canonical: bool) -> bytes:
    entries = []
    for i, value in enumerate(values.tolist()):
        if canonical:
            feature = field(2, field(1, struct.pack("<f", value)))
            entries.append(field(1, field(1, f"f{i}".encode()) + field(2, feature)))
        else:  # value before key, an unpacked float
            feature = field(2, b"\x0d" + struct.pack("<f", value))
            entries.append(field(1, field(2, feature) + field(1, f"f{i}".encode())))
    label_list = field(3, field(1, varint(label)) if canonical else b"\x08" + varint(label))
    entries.append(field(1, field(1, b"label") + field(2, label_list)))
    return field(1, b"".join(entries))


def write(path: Path, rows: int, width: int, *, canonical: bool) -> None:
    """Frame records with the checksums of the new tree's kernels (tested against the
    definition in tests/evaluation/test_example_fuzz.py)."""
    from promoter.evaluation.tfrecord_framing import CRC_TABLES, crc32c

    def masked(data: bytes) -> bytes:
        crc = crc32c(np.frombuffer(data, np.uint8), 0, len(data), CRC_TABLES)
        return struct.pack("<I", ((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF))

    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, width)).astype(np.float32)
    labels = rng.integers(0, 2, rows)
    with path.open("wb") as handle:
        for row in range(rows):
            data = _record(x[row], int(labels[row]), canonical=canonical)
            length = struct.pack("<Q", len(data))
            handle.write(length + masked(length) + data + masked(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the source tree to compare")
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="promoter-bench-") as tmp:
        root = Path(tmp)
        files = {"6 floats, canonical": (root / "c6.tfrecord", 6, True, args.rows),
                 "32 floats, canonical": (root / "c32.tfrecord", 32, True, args.rows // 4),
                 "6 floats, unpacked, value first": (root / "u6.tfrecord", 6, False,
                                                     args.rows // 4)}
        for path, width, canonical, rows in files.values():
            write(path, rows, width, canonical=canonical)
        spec = json.dumps({n: (str(p), w) for n, (p, w, _, _) in files.items()})
        trees = {"old": args.old.resolve(), "new": ROOT}
        rates: dict[str, dict[str, list[float]]] = {t: {n: [] for n in files} for t in trees}
        for _ in range(args.rounds):
            for tree, path in trees.items():
                env = {**os.environ, "PYTHONPATH": str(path),
                       "NUMBA_CACHE_DIR": str(Path(tempfile.gettempdir())
                                              / f"promoter-bench-numba-{tree}"),
                       "TF_CPP_MIN_LOG_LEVEL": "3"}
                done = subprocess.run([sys.executable, "-c", _CHILD, spec, str(args.passes)],
                                      env=env, cwd=path, capture_output=True, text=True,
                                      check=True)
                for name, values in json.loads(done.stdout.splitlines()[-1]).items():
                    rates[tree][name] += values
        print(f"TFRecordHoldoutReader, records/s, median of {args.rounds} x {args.passes} "
              f"passes ({args.rows:,} rows; a quarter for the last two files)")
        print(f"{'file':36} {'old':>12} {'new':>12} {'new/old':>8}")
        for name in files:
            old, new = (statistics.median(rates[t][name]) for t in ("old", "new"))
            print(f"{name:36} {old:12,.0f} {new:12,.0f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
