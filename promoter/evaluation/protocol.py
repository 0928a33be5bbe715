"""Constants shared by the evaluation worker and the process that starts it.

Kept apart from `worker.py` so the parent never imports the worker module (running a module
with `-m` that its package already imported makes Python warn, and runs its top level twice).
"""

PROTOCOL = 1
"""Version of the JSON request/response exchanged on the worker's stdin/stdout."""
WORKER_MODULE = "promoter.evaluation.worker"
STAGE_PREFIX = "promoter-worker: "
"""Prefix of the progress lines the worker writes to stderr."""

ZYGOTE_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1",
                      "JE_ARROW_MALLOC_CONF": "background_thread:false"}
"""Set for the zygote (unless set already) so that importing keeps it at one thread: no
OpenBLAS threads (scoring runs in TensorFlow's pools), and no background purging thread of
the jemalloc bundled with pyarrow (its memory pool is mimalloc; jemalloc only starts)."""
