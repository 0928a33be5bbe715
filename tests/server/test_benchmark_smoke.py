"""The webhook benchmark still runs (a one-second run at a low rate; the figures are not
checked here, only that nothing is dropped or processed twice)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_benchmark_quick_run() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "webhooks.py"), "--duration", "1",
         "--rate", "50", "--connections", "4", "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["requests"] == 50
    assert report["dropped"] == 0
    assert report["processed_twice"] == 0
    assert report["never_processed"] == 0
