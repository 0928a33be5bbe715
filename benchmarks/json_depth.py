"""What the webhook's nesting limit costs: `load_json` (depth scan, then `json.loads`) beside
`json.loads` alone, on the same bytes, interleaved in one run.

Bodies: GitHub's documented `pull_request` example; a 1 MiB delivery (the example with a
long PR body and many labels: strings full of brackets and escapes, what the scan skips); a
bracket-dense body (`[[],[],...]`, the scan's worst case: every byte is a bracket it
counts); and a body of 2 MiB of `[` that the limit refuses (json.loads raises
RecursionError on it).

    .venv/bin/python benchmarks/json_depth.py             # 15 rounds
    .venv/bin/python benchmarks/json_depth.py --rounds 5  # a quick run

Prints the median of each and the ratio load_json / json.loads.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promoter.server.json_depth import JsonTooDeepError, load_json

EXAMPLE = (Path(__file__).resolve().parents[1] / "promoter" / "schemas" / "github" /
           "webhooks" / "pull_request" / "synchronize.payload.json")


def bodies() -> dict[str, bytes]:
    example = EXAMPLE.read_bytes()
    big: dict[str, Any] = json.loads(example)
    big["pull_request"]["body"] = ('a "quoted" [bracket] {brace} \\ back\\slash é ' * 12_000)
    big["pull_request"]["labels"] = [{"name": f"l{i}", "color": "[]{}", "id": i}
                                     for i in range(3_000)]
    dense = b"[" + b",".join([b"[]"] * 700_000) + b"]"
    return {
        "GitHub example": example,
        "1 MiB delivery": json.dumps(big).encode(),
        "bracket-dense": dense,
        "2 MiB of [ (refused)": b"[" * (2 * 2**20),
    }


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    with contextlib.suppress(RecursionError, JsonTooDeepError):
        call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(f"{'body':<22} {'bytes':>10} {'json.loads ms':>14} {'load_json ms':>13} "
          f"{'ratio':>6}")
    for name, body in bodies().items():
        plain, bounded = [], []
        for _ in range(args.rounds):  # interleaved: both see the same machine load
            plain.append(timed(lambda body=body: json.loads(body)))
            bounded.append(timed(lambda body=body: load_json(body)))
        a, b = statistics.median(plain) * 1e3, statistics.median(bounded) * 1e3
        print(f"{name:<22} {len(body):>10} {a:>14.3f} {b:>13.3f} {b / a:>6.2f}")


if __name__ == "__main__":
    main()
