"""The worker's allocator setting: batch-sized temporaries reuse memory instead of faulting
fresh pages in each time (measured as minor page faults in a separate process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_LOOP = """
import resource, sys
import numpy as np
from promoter.evaluation.worker import keep_freed_memory
if sys.argv[1] == "keep" and not keep_freed_memory():
    print("no mallopt")
    raise SystemExit
def batch():  # like one batch's statistics: several 0.5 MiB temporaries, then all freed
    parts = [np.ones(1 << 16) for _ in range(6)]
    return sum(float(p[0]) for p in parts)
batch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    batch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> str:
    return subprocess.run([sys.executable, "-c", _LOOP, mode], capture_output=True, text=True,
                          check=True, cwd=REPO).stdout.strip()


def test_kept_memory_is_reused_without_page_faults() -> None:
    kept = _page_faults("keep")
    if kept == "no mallopt":  # not glibc: the setting is documented as a no-op there
        assert _page_faults("default").isdigit()
        return
    default = int(_page_faults("default"))
    # 100 batches of 3 MiB would fault about 77,000 pages in if each were fresh memory.
    assert int(kept) < 1000 < default
