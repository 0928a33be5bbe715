"""Pre-started, single-use evaluation workers for `promoter serve`: TensorFlow's import off
the critical path.

`WorkerPool` starts `python -m promoter.evaluation.worker_zygote` (why and how it forks its
workers: that module) and keeps `size` workers waiting, each already confined to its own empty
job directory. `take()` hands one out, at most once: the worker is removed from the pool
before it is returned, it evaluates one request and exits, and the pool makes a new one in
its place (a fork: milliseconds). A waiting worker that dies (killed, out of memory) is
dropped and replaced; if the zygote dies, the pool starts another. When no worker is ready
(the zygote is still importing TensorFlow, or all are taken) `take()` returns None and the
caller starts a fresh worker as before (`worker_client.run_worker`): the pool only ever makes
evaluations faster, never different.

The parent fills the job directory between `take()` and `PooledWorker.run`: the verified
model copies and the holdout go into `in_dir` (read-only to the worker), results come back in
`out_dir`. The zygote and its workers get the same allowlisted environment as a fresh worker
(`sandbox.worker_environment`): no secret of promoter's ever reaches them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import promoter
from promoter.evaluation.protocol import ZYGOTE_ENVIRONMENT
from promoter.evaluation.sandbox import (
    ConfinementUnavailableError,
    landlock_abi,
    worker_environment,
)
from promoter.evaluation.worker_client import parse_response, timed_out

log = logging.getLogger(__name__)

ZYGOTE_MODULE = "promoter.evaluation.worker_zygote"
_RESTART_DELAY_S = 5.0
"""After the zygote dies, how long before the pool starts another (a zygote that dies at
start would otherwise be restarted in a loop)."""


class PooledWorker:
    """One pre-started worker, confined to `in_dir` (read) and `out_dir` (write); for one
    evaluation only (`run` refuses a second call)."""

    def __init__(self, pool: WorkerPool, job_dir: Path, *, stdin: int, stdout: int,
                 stderr: int) -> None:
        self.job_dir = job_dir
        self.in_dir = job_dir / "in"
        """Where the parent puts the models and the holdout; the worker may only read it."""
        self.out_dir = job_dir / "out"
        """Where the worker writes its results; the only place it may write."""
        self.memory_limit_bytes = pool.memory_limit_bytes
        self.pid: int | None = None
        self.returncode: int | None = None
        self._exited = threading.Event()
        self._pool = pool
        self._fds = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        self._used = False

    def stage_holdout(self, holdout: Path) -> Path:
        """Put `holdout` where this worker may read it; return the worker's path for it.

        A hard link where Landlock (ABI 3+) also denies truncating it, so a large holdout is
        not copied; a copy otherwise (another file system, an older kernel)."""
        target = self.in_dir / "holdout" / holdout.name
        target.parent.mkdir()
        try:
            if _landlock_abi() < 3:
                raise OSError("truncation is not confined on this kernel")
            os.link(holdout.resolve(), target)
        except OSError:
            shutil.copyfile(holdout, target)
        return target

    def run(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        """Send `request` and return the response payload, as `worker_client.run_worker`
        does (the same errors). Once only: a second call raises RuntimeError."""
        if self._used:
            raise RuntimeError("a pooled worker evaluates one request only")
        self._used = True
        deadline = time.monotonic() + timeout_s
        try:
            os.write(self._fds["stdin"], json.dumps(request).encode() + b"\n")
        except OSError:
            pass  # it died while waiting: its exit status says how
        finally:
            os.close(self._fds.pop("stdin"))
        stdout, stderr, finished = _read_until_eof(self._fds, deadline)
        if finished:
            finished = self._exited.wait(max(0.0, deadline - time.monotonic()))
        if not finished:
            self.kill()
            self._exited.wait(5.0)
            raise timed_out(timeout_s, stderr)
        return parse_response(stdout, stderr, self.returncode if self.returncode is not None
                              else -signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the worker and anything it started (its own process group)."""
        if self.pid is not None and not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def discard(self) -> None:
        """End this worker (if it still runs) and delete its job directory."""
        self.kill()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        shutil.rmtree(self.job_dir, ignore_errors=True)

    def _exit(self, returncode: int) -> None:
        self.returncode = returncode
        self._exited.set()


def _read_until_eof(fds: dict[str, int], deadline: float) -> tuple[bytes, bytes, bool]:
    """Read stdout and stderr until both close or `deadline`; (stdout, stderr, closed)."""
    chunks: dict[str, list[bytes]] = {"stdout": [], "stderr": []}
    with selectors.DefaultSelector() as selector:
        for name in ("stdout", "stderr"):
            selector.register(fds[name], selectors.EVENT_READ, name)
        open_fds = 2
        while open_fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                data = os.read(key.fd, 1 << 16)
                if data:
                    chunks[key.data].append(data)
                else:
                    selector.unregister(key.fd)
                    open_fds -= 1
    return b"".join(chunks["stdout"]), b"".join(chunks["stderr"]), open_fds == 0


def _landlock_abi() -> int:
    try:
        return landlock_abi()
    except ConfinementUnavailableError:
        return 0


class WorkerPool:
    """Keeps `size` pre-started workers waiting (see the module's docstring). Thread-safe."""

    def __init__(self, size: int, *, memory_limit_bytes: int | None,
                 root: Path | None = None, worker_code: Path | None = None) -> None:
        """`worker_code`: the directory holding the `promoter` package the zygote runs
        (benchmarks compare two checkouts side by side); default: this one's."""
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {size}")
        self.size = size
        self.memory_limit_bytes = memory_limit_bytes
        self._parent = root
        self._code = worker_code or Path(promoter.__file__).resolve().parent.parent
        self._root = Path()
        self._lock = threading.Lock()
        self._waiting: deque[PooledWorker] = deque()
        self._forking: deque[PooledWorker] = deque()
        self._by_pid: dict[int, PooledWorker] = {}
        self._zygote: subprocess.Popen[bytes] | None = None
        self._socket: socket.socket | None = None
        self._ready = threading.Event()
        self._closed = False
        self._died_at = 0.0
        self._jobs = itertools.count(1)
        self.zygote_pid: int | None = None
        self.started = 0
        """Workers made so far (each evaluates one request at most)."""

    def start(self) -> None:
        """Start the zygote; workers are made once it has imported TensorFlow (seconds).
        Their job directories are in a new private directory beneath `root` (default: the
        system's temporary directory)."""
        with self._lock:
            if self._closed or self._zygote is not None:
                return
            self._root = Path(tempfile.mkdtemp(prefix="promoter-pool-", dir=self._parent))
            self._start_zygote()

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait until `size` workers are waiting (tests, benchmarks); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self._waiting) >= self.size:
                    return True
            time.sleep(0.01)
        return False

    @property
    def waiting(self) -> list[int]:
        """The pids of the workers waiting now."""
        with self._lock:
            return [w.pid for w in self._waiting if w.pid is not None]

    def take(self) -> PooledWorker | None:
        """A waiting worker, now removed from the pool (a new one is made in its place), or
        None if none is ready."""
        with self._lock:
            if self._zygote is None and self._root != Path() and not self._closed \
                    and time.monotonic() - self._died_at > _RESTART_DELAY_S:
                self._start_zygote()
            worker = self._waiting.popleft() if self._waiting else None
            self._fill()
            return worker

    def close(self) -> None:
        """Stop the zygote and every worker it made (waiting or running); delete the pool's
        directory."""
        with self._lock:
            self._closed = True
            zygote, sock = self._zygote, self._socket
            self._zygote = self._socket = None
            workers = [*self._waiting, *self._forking]
            self._waiting.clear()
            self._forking.clear()
        if sock is not None:
            sock.close()  # the zygote kills its workers when its socket closes
        if zygote is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(zygote.pid, signal.SIGKILL)
            zygote.wait()
        for worker in workers:
            worker.discard()
        if self._root != Path():
            shutil.rmtree(self._root, ignore_errors=True)

    # --- with the lock held ----------------------------------------------------------------

    def _start_zygote(self) -> None:
        if self._zygote is not None or self._closed:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = worker_environment(os.environ, scratch=self._root)
        # One thread in a process that forks (`protocol.ZYGOTE_ENVIRONMENT`: why).
        for key, value in ZYGOTE_ENVIRONMENT.items():
            env.setdefault(key, value)
        with (self._root / "zygote.log").open("ab") as log_file:
            self._zygote = subprocess.Popen(
                [sys.executable, "-s", "-m", ZYGOTE_MODULE, str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env,
                pass_fds=(theirs.fileno(),), start_new_session=True,
                cwd=self._code)
        theirs.close()
        self._socket = ours
        self._ready.clear()
        self.zygote_pid = self._zygote.pid
        threading.Thread(target=self._listen, args=(ours, self._zygote), daemon=True,
                         name="promoter-worker-pool").start()

    def _fill(self) -> None:
        if not self._ready.is_set() or self._socket is None:
            return
        while len(self._waiting) + len(self._forking) < self.size:
            job_dir = self._root / f"job-{next(self._jobs)}"
            for path in (job_dir, job_dir / "in", job_dir / "out"):
                path.mkdir(mode=0o700)
            pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
            theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
            worker = PooledWorker(self, job_dir, stdin=pipes[0][1], stdout=pipes[1][0],
                                  stderr=pipes[2][0])
            try:
                socket.send_fds(self._socket, [json.dumps({"fork": {
                    "jobDir": str(job_dir), "memoryLimitBytes": self.memory_limit_bytes,
                }}).encode()], theirs)
            except OSError:
                worker.discard()
                return  # the zygote is gone; `_listen` notices
            finally:
                for fd in theirs:
                    os.close(fd)
            self._forking.append(worker)

    # --- the listener thread ---------------------------------------------------------------

    def _listen(self, sock: socket.socket, zygote: subprocess.Popen[bytes]) -> None:
        while True:
            try:
                data = sock.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._lock:
                self._handle(message)
        sock.close()
        with self._lock:
            if self._zygote is zygote:
                self._zygote_died(zygote)

    def _handle(self, message: dict[str, Any]) -> None:
        if "ready" in message:
            log.info("evaluation worker pool ready: %s", message["ready"])
            self._ready.set()
            self._fill()
        elif "forked" in message:
            if not self._forking:
                # The pool closed while this fork was under way (its message was in flight):
                # nobody will hand this worker out, so end it here.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(message["forked"]), signal.SIGKILL)
                return
            worker = self._forking.popleft()
            worker.pid = int(message["forked"])
            self._by_pid[worker.pid] = worker
            self._waiting.append(worker)
            self.started += 1
        elif "exited" in message:
            worker_or_none = self._by_pid.pop(int(message["exited"]), None)
            if worker_or_none is None:
                return
            worker_or_none._exit(int(message["returncode"]))
            if worker_or_none in self._waiting:
                # Died before it was handed out (killed, out of memory): replace it.
                log.warning("a waiting evaluation worker (pid %s) exited with %s; replacing "
                            "it", worker_or_none.pid, message["returncode"])
                self._waiting.remove(worker_or_none)
                worker_or_none.discard()
                self._fill()
        else:
            log.warning("evaluation worker pool: %s", message.get("error", message))
            if self._forking:  # the fork it answers did not happen
                self._forking.popleft().discard()

    def _zygote_died(self, zygote: subprocess.Popen[bytes]) -> None:
        log.warning("the evaluation worker pool's zygote (pid %s) exited with %s; fresh "
                    "workers are started until it is replaced", zygote.pid, zygote.poll())
        self._zygote = None
        self._socket = None
        self._died_at = time.monotonic()
        for worker in [*self._waiting, *self._forking, *self._by_pid.values()]:
            # Their parent is gone, so no exit status will come: a worker still running
            # an evaluation reads as killed when its pipes close.
            worker.kill()
            worker._exit(-signal.SIGKILL)
        for worker in [*self._waiting, *self._forking]:
            worker.discard()
        self._waiting.clear()
        self._forking.clear()
        self._by_pid.clear()
        with contextlib.suppress(subprocess.TimeoutExpired):
            zygote.wait(timeout=5)
