"""Without the browser, the browser tests are skipped and the run says so in plain words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_a_run_without_chromium_says_the_browser_tests_did_not_run(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git = subprocess.run(["which", "git"], capture_output=True, text=True, check=True)
    (bin_dir / "git").symlink_to(git.stdout.strip())  # git, and no chromium, on PATH
    env = {**os.environ, "PATH": str(bin_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "tests/dashboard/test_browser.py::test_an_approval_through_the_page_merges_the_promotion"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "1 skipped" in out
    assert "BROWSER TESTS DID NOT RUN: 1 dashboard test(s) skipped" in out
    assert "sudo apt-get install -y chromium chromium-driver" in out
