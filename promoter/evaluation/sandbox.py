"""Confinement of the evaluation worker: the environment it starts with.

The graph scan (`graph_scan`) refuses every op that is not known to only compute; this module
is the second line, for what a scan cannot see. `worker_environment`: the child's environment
is built from an explicit allowlist (locale, TensorFlow's log level and thread settings); no
PATH, no PROMOTER_*, no cloud or forge credentials; HOME and TMPDIR point at the private
scratch directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

ENVIRONMENT_ALLOWLIST = ("LANG", "LC_ALL", "LC_CTYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                         "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                         "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS")
"""Variables copied from promoter's environment into the worker's, when set: locale and thread
settings, which change how fast the worker runs but give a model nothing to steal."""


def worker_environment(parent: Mapping[str, str], *, scratch: Path) -> dict[str, str]:
    """The worker's whole environment: the allowlisted variables of `parent`, plus
    TensorFlow's log level and HOME/TMPDIR in `scratch`. Why: a model, or anything it
    manages to run, can read its own environment (/proc/self/environ); promoter's holds
    forge tokens, cloud credentials and its own secrets."""
    env = {key: parent[key] for key in ENVIRONMENT_ALLOWLIST if key in parent}
    # Drop TensorFlow's C++ INFO/WARNING lines; ERROR/FATAL ones explain crashes in messages.
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["HOME"] = env["TMPDIR"] = str(scratch)
    return env
