"""benchmarks/history.py still runs (3 merges, one repeat; its figures are not checked)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_history_benchmark_quick_run() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "history.py"), "--merges", "3",
         "--repeats", "1"], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT,
        check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "history, cold: median" in result.stdout
    assert "faster than cold)" in result.stdout
    assert "x warm history)" in result.stdout
