"""The dependency rule for the cluster: only the adapter imports `kubernetes`, and importing
promoter's core (or the CLI) never loads it."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

ADAPTER = "promoter/cluster/kubernetes.py"
_IMPORT = re.compile(r"^\s*(import kubernetes\b|from kubernetes\b)", re.MULTILINE)


def test_only_the_adapter_imports_kubernetes() -> None:
    importers = sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "promoter").rglob("*.py")
        if _IMPORT.search(path.read_text(encoding="utf-8")))
    assert importers == [ADAPTER]


def test_core_modules_do_not_load_the_client() -> None:
    code = ("import sys; import promoter.cluster, promoter.companion, "
            "promoter.promotion.rollback, promoter.cli.companion, promoter.cli.rollback; "
            "print('kubernetes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "False"
