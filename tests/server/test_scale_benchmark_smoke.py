"""The scale benchmark still runs: 2 models x 3 environments, scripted evaluation, stand-in
SavedModels (the figures are not checked here, only that it converges and checks out)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_scale_benchmark_quick_run() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "scale.py"), "--models", "2",
         "--evaluator", "scripted", "--stub-models", "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["converged"]
    assert report["correct"]
    assert report["promotions"] == 6
    assert report["pull_requests_merged"] == 6
    assert report["merges_timed_by_metrics"] == 6
    assert report["forge_writes_by_operation"]["merge"] == 6
