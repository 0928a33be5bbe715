"""The parent's side of the worker: start `python -m promoter.evaluation.worker`, send the
request, and turn its exit, output and errors into a response or promoter's errors.

Scoring runs in a child process, `python -m promoter.evaluation.worker`, that speaks JSON on
stdin/stdout. Why a subprocess and not `multiprocessing`:

- A SavedModel is code promoter did not write. It can crash the interpreter (a faulty custom
  op), loop forever, or exhaust memory. In a child, a crash is an exit status and a hang is
  killed at the wall-clock timeout (SIGKILL to the child's whole process group); promoter
  survives to report a ModelLoadError and nothing else is affected.
- The protocol is JSON in both directions. `multiprocessing` would unpickle what the child
  sends back, and unpickling lets the sender run code in promoter's process.
- The child is a fresh interpreter. `spawn` re-imports the parent's `__main__` (the CLI, pytest,
  a web server) in the child, and `fork` from a process with threads is unsafe.
- TensorFlow's import (seconds, hundreds of MB) and its log noise stay out of promoter's
  process: the parent never imports TensorFlow, and the child's stderr is only shown when it
  explains a failure.

`promoter serve` runs most evaluations in pre-started workers instead (`worker_pool`): the
same worker code, forked from a process that imported TensorFlow ahead of time, confined
before it receives its one job; its response is read with `parse_response` below.

Confinement (`worker.confine`, `sandbox`): the child starts with an environment built from an
allowlist (no PATH, no PROMOTER_*, no credentials; HOME and TMPDIR in the private scratch
directory), limits its address space (RLIMIT_AS), moves into a network namespace of its own
where the kernel allows, restricts itself with Landlock (reads beneath the Python installation,
system libraries and the models; writes in the scratch directory only; no TCP; the holdout is
opened here, read-only, and passed as a descriptor, `holdoutFd`, so the worker has no right to
its path or its directory) and
installs a seccomp filter (no sockets, ptrace, mount, namespaces, execve, ...), all before it
imports numpy or TensorFlow; the wall-clock timeout kills it. The report's `confinement` block
lists the mechanisms that applied (`mechanisms`) and why any did not; `evaluation.sandbox.
confinement: required` fails the gate where Landlock or seccomp is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import promoter
from promoter.errors import BadInputError, HoldoutError, ModelLoadError, ModelStoreError
from promoter.evaluation.protocol import STAGE_PREFIX, WORKER_MODULE
from promoter.evaluation.sandbox import worker_environment

_WORKER_ERRORS: dict[str, type[BadInputError]] = {
    "HoldoutError": HoldoutError,
    "ModelLoadError": ModelLoadError,
    "ModelStoreError": ModelStoreError,
}


def run_worker(request: Mapping[str, Any], *, timeout_s: float,
               command: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the worker on `request`; return its response payload (`holdout`, `models`).

    Raises the worker's typed error (HoldoutError, ModelLoadError, ModelStoreError), or
    ModelLoadError if it crashes, prints no valid response, or runs past `timeout_s` (then the
    worker and anything it started are killed). `command` replaces the worker's argv (tests).
    """
    with contextlib.ExitStack() as cleanup:
        # The worker's HOME and TMPDIR: the request's private directory, else a fresh one.
        scratch = request.get("outDir") or cleanup.enter_context(
            tempfile.TemporaryDirectory(prefix="promoter-worker-"))
        return _run_worker(request, timeout_s=timeout_s, command=command,
                           scratch=Path(str(scratch)))


def _run_worker(request: Mapping[str, Any], *, timeout_s: float,
                command: Sequence[str] | None, scratch: Path) -> dict[str, Any]:
    # The holdout, opened here read-only and handed over: the worker reads it through this
    # descriptor, and its Landlock rules then give it no access to the holdout's path.
    holdout_fd = _open_holdout(Path(str(request["holdout"]))) if "holdout" in request else None
    try:
        if holdout_fd is not None:
            request = {**request, "holdoutFd": holdout_fd}
        return _start_worker(request, timeout_s=timeout_s, command=command, scratch=scratch,
                             pass_fds=() if holdout_fd is None else (holdout_fd,))
    finally:
        if holdout_fd is not None:
            os.close(holdout_fd)


def _open_holdout(path: Path) -> int:
    """A read-only descriptor of `path` (close-on-exec: only the worker it is passed to
    inherits it); HoldoutError if it cannot be opened or is not a regular file."""
    try:
        # O_NONBLOCK: a FIFO or a device must not hang this process in open(); it is
        # refused below, and a regular file reads the same either way.
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise HoldoutError(f"holdout {path} not found",
                           fix="check the path (relative paths are resolved against "
                               "promoter.yaml's directory)") from None
    except OSError as exc:
        raise HoldoutError(f"cannot read holdout {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise HoldoutError(f"holdout {path} is not a regular file",
                           fix="point the environment at the holdout file itself")
    os.set_blocking(fd, True)
    return fd


def _start_worker(request: Mapping[str, Any], *, timeout_s: float,
                  command: Sequence[str] | None, scratch: Path,
                  pass_fds: tuple[int, ...]) -> dict[str, Any]:
    # -s: no user site-packages (HOME is the scratch directory anyway).
    argv = list(command) if command else [sys.executable, "-s", "-m", WORKER_MODULE]
    # Built from an allowlist, never a copy of ours: no PATH, tokens or cloud credentials.
    env = worker_environment(os.environ, scratch=scratch)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines reach the pipe even if the child is killed
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True,  # own process group: a kill reaches its children
            pass_fds=pass_fds,  # the holdout's descriptor, at the same number
            # The directory holding this `promoter` package, so `-m` runs this very code and
            # never a `promoter/` directory that happens to be in the caller's working dir
            # (`-m` puts the working directory first on sys.path: no PYTHONPATH is needed).
            cwd=Path(promoter.__file__).resolve().parent.parent,
        )
    except OSError as exc:
        raise ModelLoadError(f"cannot start the evaluation worker: {exc}") from exc
    try:
        stdout, stderr = process.communicate(json.dumps(request).encode(), timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(process)
        _, stderr = process.communicate()
        raise timed_out(timeout_s, stderr) from None
    except BaseException:
        _kill(process)  # Ctrl-C or an error here: never leave a worker running
        process.communicate()
        raise
    return parse_response(stdout, stderr, process.returncode)


def timed_out(timeout_s: float, stderr: bytes) -> ModelLoadError:
    """The error for a worker stopped at its timeout, saying what it was doing."""
    return ModelLoadError(
        f"evaluation timed out after {timeout_s:g} s while {_stage(stderr)}; the worker was "
        "stopped",
        fix="raise the timeout (--timeout) if the holdout is large, or check the model for "
            "an endless loop")


def parse_response(stdout: bytes, stderr: bytes, returncode: int) -> dict[str, Any]:
    """The payload of a finished worker's response; raises its typed error, or
    ModelLoadError saying how it crashed (`returncode` as subprocess gives it: -N for a
    signal) and its last words."""
    response: Any = None
    if returncode == 0:
        try:
            response = json.loads(stdout.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            response = None
    if not isinstance(response, dict) or "ok" not in response:
        if returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"was killed by signal {-returncode}"
        elif returncode != 0:
            how = f"exited with status {returncode}"
        else:
            how = "returned no valid response"
        tail = _stderr_tail(stderr)
        raise ModelLoadError(
            f"the evaluation worker {how} while {_stage(stderr)}"
            + (f"; its last output: {tail}" if tail else ""),
            fix="a model that crashes the process is not promotable; check it with "
                "`saved_model_cli run` on a few rows")
    if not response["ok"]:
        error = response.get("error") or {}
        kind = _WORKER_ERRORS.get(str(error.get("type")))
        message = str(error.get("message", "unknown error"))
        if kind is None:
            raise ModelLoadError(f"the evaluation worker failed: {message}",
                                 fix="report this as a bug in promoter")
        raise kind(message, fix=error.get("fix"))
    return response


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


def _stage(stderr: bytes) -> str:
    stage = "starting up"
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith(STAGE_PREFIX):
            stage = line[len(STAGE_PREFIX):].strip()
    return stage


_ABSL_SEVERE = re.compile(r"^[FE]\d{4} [\d:. ]+\d+ [^\]]*\] ")
"""An absl/TensorFlow FATAL or ERROR log line, e.g. `F0000 00:00:17.8 15 ops.cc:737] msg`."""


def _stderr_tail(stderr: bytes, *, lines: int = 3) -> str:
    """The worker's last words for a message: a fatal log line, else its last lines without
    Python tracebacks (which name promoter's and TensorFlow's files; the exception's own line,
    after the traceback, is kept)."""
    text: list[str] = []
    in_traceback = False
    for line in stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback and line.startswith(" "):
            continue
        in_traceback = False
        if line.strip() and not line.startswith(STAGE_PREFIX):
            text.append(line.strip())
    # A native crash ends in a stack trace of addresses; the fatal log line above it says why.
    severe = [_ABSL_SEVERE.sub("", line) for line in text if _ABSL_SEVERE.match(line)]
    if severe:
        return severe[-1][:300]
    text = [line for line in text if not line.startswith(("@ ", "*** "))]
    return " | ".join(line[:300] for line in text[-lines:])
