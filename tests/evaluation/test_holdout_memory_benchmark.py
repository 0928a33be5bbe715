"""benchmarks/holdout_memory.py still runs (`--short`: 20,000 rows, both formats, one run);
its figures are not checked beyond being there."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_holdout_memory_benchmark_quick_run() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "holdout_memory.py"), "--short"],
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    for fmt in ("csv", "parquet"):
        assert re.search(rf"{fmt} +this checkout +peak RSS +[\d,]+ MiB", result.stdout), \
            result.stdout
