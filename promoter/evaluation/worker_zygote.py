"""The pre-started worker: `python -m promoter.evaluation.worker_zygote FD`, run by
`worker_pool`. It imports TensorFlow once and forks one single-use worker per evaluation.

Why: a fresh worker spends seconds importing TensorFlow before it reads a row (about 90 % of
a small evaluation, benchmarks/fixed_cost.py). This process (the zygote, after Android's)
pays that once; a `fork` of it is a worker with TensorFlow imported, in milliseconds and
sharing the imported pages copy-on-write. It never loads a model and never sees a holdout:
it only imports and forks. Every forked worker:

1. is made ahead of a job, for a job directory the parent created empty
   (`<pool>/job-N/in`, `<pool>/job-N/out`);
2. confines itself at once (`worker.confine`, as a fresh worker does: the memory limit, a
   network namespace of its own, Landlock, seccomp), with Landlock reads allowed beneath
   `in/` and writes beneath `out/` only. Landlock rules are on the directories (opened
   before confinement), so the files the parent puts there later (the verified model
   copies, the holdout) are readable, and nothing beside them is: not another job's
   directory, not the pool's, not the store;
3. then waits, confined, for its one request on stdin, evaluates it (`worker.answer`, the
   same code as a fresh worker's), writes the response and exits. It is never given a second
   job: it reads one request and exits, and the parent never reuses it (`worker_pool`).

Messages with the parent go over a UNIX datagram socket pair (SOCK_SEQPACKET, one JSON
message each): `{"fork": {...}}` with the new worker's stdin/stdout/stderr attached
(SCM_RIGHTS) one way; `ready`, `forked` (its pid) and `exited` (its status: this process is
the workers' parent, so only it can wait for them) the other way. When the socket closes
(the parent exited) the zygote kills every worker it made and exits.

The zygote itself is not confined beyond its environment: it runs only promoter's code and
TensorFlow's import, and a Landlock domain of its own would be inherited by every worker with
rules made for the zygote (its `/proc/self` is not theirs). Each worker confines itself.

The fork happens while this process has TensorFlow imported: its import leaves one thread
besides the main one (jemalloc's background thread, which re-creates itself in a forked
child), and OpenBLAS's threads are kept from starting (`OPENBLAS_NUM_THREADS=1` unless set).
The forked worker has one thread when it confines itself, as Landlock needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from promoter.evaluation import sandbox
from promoter.evaluation.protocol import STAGE_PREFIX

PRELOADED = ("numpy", "tensorflow", "promoter.evaluation.scoring",
             "promoter.evaluation.graph_scan", "promoter.evaluation.holdout",
             "promoter.evaluation.holdout_formats", "promoter.evaluation.signature",
             "promoter.evaluation.bootstrap", "promoter.evaluation.binary_stats",
             "promoter.evaluation.multiclass_stats", "promoter.evaluation.regression_stats",
             "promoter.evaluation.metrics", "promoter.evaluation.worker_streams",
             "promoter.evaluation.worker",
             # The readers: pyarrow (CSV, Parquet) and the TFRecord decoder's numba kernels.
             "pyarrow", "pyarrow.csv", "pyarrow.parquet", "pyarrow.compute",
             "promoter.evaluation.arrow_csv", "promoter.evaluation.parquet_holdout",
             "promoter.evaluation.tfrecord", "promoter.evaluation.example_codec")
"""What a worker imports before its first row, imported once here."""

def preload() -> None:
    """Import `PRELOADED` and do the first-use work a worker would otherwise pay after its
    job arrived, on nothing but promoter's own constants: numba loads the TFRecord decoder's
    compiled kernels from its cache (about 0.5-1 s; compiling them if the cache is empty),
    and pyarrow's first conversion to numpy imports pandas (1-2 s). Nothing here starts a
    thread (`serve` reports the count, and the tests hold it to one) or reads a model or a
    holdout."""
    import importlib

    for name in PRELOADED:
        importlib.import_module(name)
    import pyarrow as pa

    from promoter.evaluation.example_codec import compile_kernels

    compile_kernels()  # an embedded record; the self-test fails loudly if the cache is bad
    pa.array([0.0]).to_numpy()
    pa.array(["x"]).to_numpy(zero_copy_only=False)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    # The parent may be gone; the main loop sees the closed socket next.
    with contextlib.suppress(OSError):
        sock.send(json.dumps(message).encode())


def confine_to_job(job: dict[str, Any]) -> dict[str, Any]:
    """Confine this (single-threaded) process as a fresh worker is (`worker.confine`), with
    reads beneath the job's `in/` and writes beneath its `out/` only, before any file is
    there; return what was achieved, marked `prestarted`."""
    from promoter.evaluation import worker

    inputs, outputs = _job_paths(job)
    confinement = worker.confine({
        "memoryLimitBytes": job.get("memoryLimitBytes"), "outDir": str(outputs),
        "holdout": str(inputs), "models": [], "confinement": "best-effort"})
    confinement["prestarted"] = True
    return confinement


def _job_paths(job: dict[str, Any]) -> tuple[Path, Path]:
    job_dir = Path(job["jobDir"])
    return job_dir / "in", job_dir / "out"


def _worker(job: dict[str, Any], fds: list[int], *, close: list[int]) -> None:
    """In the forked child: become the job's worker (never returns)."""
    from promoter.evaluation import worker

    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in close:  # the zygote's own: nothing of it stays open in a worker
        os.close(fd)
    os.setsid()  # its own process group: the parent's kill reaches what it starts
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    inputs, outputs = _job_paths(job)
    confinement = confine_to_job(job)
    _warm_up()
    sys.stderr.write(f"{STAGE_PREFIX}waiting for a job in {job['jobDir']}\n")
    sys.stderr.flush()

    def take_job() -> tuple[dict[str, Any], dict[str, Any]]:
        request = json.loads(sys.stdin.readline())
        _check_paths(request, inputs=inputs, outputs=outputs)
        confinement["mode"] = request.get("confinement", "best-effort")
        return request, confinement

    worker.answer(take_job)


def _warm_up() -> None:
    """Start TensorFlow's runtime (its eager context, thread pools and function machinery)
    and pyarrow's CSV reader (its thread pool) while waiting, confined, for a job: about 0.3 s
    the first model load and the first CSV block would otherwise pay. Not in the zygote:
    those threads must not exist when it forks. Only promoter's own constants are used."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import tensorflow as tf

    # autograph=False: nothing to convert, and it would try to write its generated source.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)], autograph=False)
    def double(x: tf.Tensor) -> tf.Tensor:
        return x * 2.0

    double(tf.constant([1.0]))
    pacsv.open_csv(pa.py_buffer(b"a\n1\n"),
                   read_options=pacsv.ReadOptions(use_threads=True),
                   convert_options=pacsv.ConvertOptions(column_types={"a": pa.float64()})
                   ).read_all().column("a").to_numpy()


def _check_paths(request: dict[str, Any], *, inputs: Path, outputs: Path) -> None:
    """The request's files must be where this worker was confined to; say so plainly rather
    than fail on a refused open."""
    from promoter.errors import ModelLoadError

    paths = [Path(request["holdout"]), *(Path(m["path"]) for m in request["models"])]
    if Path(request["outDir"]) != outputs or not all(p.is_relative_to(inputs) for p in paths):
        raise ModelLoadError(f"the request's files are outside the job directory {inputs}",
                             fix="report this as a bug in promoter")


def _fork(sock: socket.socket, job: dict[str, Any], fds: list[int],
          children: set[int], *, close: list[int]) -> None:
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        _send(sock, {"error": f"a fork request needs 3 descriptors, got {len(fds)}"})
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            sock.close()
            _worker(job, fds, close=close)
        except BaseException:
            traceback.print_exc()  # to the worker's stderr once it has its own
        finally:
            os._exit(70)  # only reached if becoming a worker failed
    for fd in fds:
        os.close(fd)
    children.add(pid)
    _send(sock, {"forked": pid, "jobDir": job["jobDir"]})


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        _send(sock, {"exited": pid, "returncode": os.waitstatus_to_exitcode(status)})


def serve(sock: socket.socket) -> None:
    """Import, say `ready`, then fork a worker per request until the socket closes."""
    sandbox.refuse_imports(sandbox.REFUSED_MODULES)
    preload()
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    children: set[int] = set()
    _send(sock, {"ready": {"pid": os.getpid(),
                           "threads": len(os.listdir("/proc/self/task"))}})
    try:
        while True:
            readable, _, _ = select.select([sock.fileno(), wake_r], [], [])
            if wake_r in readable:
                while True:
                    try:
                        if not os.read(wake_r, 64):
                            break
                    except BlockingIOError:
                        break
            _reap(sock, children)
            if sock.fileno() in readable:
                try:
                    data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
                except OSError:  # ECONNRESET: the parent died
                    break
                if not data:
                    break  # the parent closed its end
                _fork(sock, json.loads(data)["fork"], fds, children, close=[wake_r, wake_w])
    finally:
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(sock)


if __name__ == "__main__":
    main()
