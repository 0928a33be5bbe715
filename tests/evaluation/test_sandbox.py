"""The worker's confinement (`promoter.evaluation.sandbox`, `worker.confine`): its environment,
and one test per kernel mechanism, each applied alone in a child process that then tries what
a hostile model would (Landlock: read outside, write outside, TCP connect; seccomp: sockets,
execve, namespaces, ptrace). Tests needing a kernel feature this machine lacks skip, naming
it. The end-to-end tests (marked slow) run the real worker."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.evaluation import evaluate_models, worker_client
from promoter.evaluation.sandbox import (
    ConfinementUnavailableError,
    landlock_abi,
    seccomp_program,
    worker_environment,
)
from promoter.evaluation.worker import confinement_shortfall
from promoter.evaluation.worker_client import _stderr_tail, run_worker

REPO = Path(__file__).resolve().parents[2]
TINY = ModelSpec(name="tiny", label_column="label")


def _landlock_abi() -> int:
    try:
        return landlock_abi()
    except ConfinementUnavailableError as exc:
        pytest.skip(f"needs Landlock, which this kernel lacks: {exc}")


def _child(code: str, *args: str) -> dict[str, Any]:
    """Run `code` in a fresh interpreter (as the worker runs: from the repository root) and
    return the JSON it prints last."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


_ATTEMPT = """
import errno, json, os, socket, sys
from pathlib import Path
from promoter.evaluation import sandbox

def attempt(action):
    try:
        action()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, exc.errno)
"""


# --- the environment -------------------------------------------------------------------------

def test_the_worker_environment_holds_no_secret(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    secrets = {"PROMOTER_API_TOKEN": "p-secret", "AWS_SECRET_ACCESS_KEY": "aws-secret",
               "AWS_ACCESS_KEY_ID": "AKIA", "GOOGLE_APPLICATION_CREDENTIALS": "/keys/gcp.json",
               "GITHUB_TOKEN": "ghp-secret", "PROMOTER_WEBHOOK_SECRET": "hook-secret",
               "PYTHONPATH": "/elsewhere", "LD_PRELOAD": "/tmp/evil.so"}
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LANG", "C.UTF-8")
    # What the worker itself reads, through run_worker's real environment and cwd.
    reader = ("import json, sys; sys.stdin.read(); raw = open('/proc/self/environ', 'rb')"
              ".read(); print(json.dumps({'ok': True, 'environ': raw.decode()}))")
    environ = run_worker({"outDir": str(tmp_path)}, timeout_s=60,
                         command=[sys.executable, "-c", reader])["environ"]
    for key, value in secrets.items():
        assert key not in environ
        assert value not in environ
    variables = dict(item.split("=", 1) for item in environ.split("\0") if item)
    assert "PATH" not in variables
    assert variables["HOME"] == variables["TMPDIR"] == str(tmp_path)
    assert variables["LANG"] == "C.UTF-8"
    assert set(variables) <= {"HOME", "TMPDIR", "LANG", "TF_CPP_MIN_LOG_LEVEL",
                              "PYTHONUNBUFFERED"}
    assert worker_environment({"PATH": "/bin", "OMP_NUM_THREADS": "2"},
                              scratch=tmp_path) == {
        "OMP_NUM_THREADS": "2", "TF_CPP_MIN_LOG_LEVEL": "2", "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path)}


def test_no_traceback_reaches_a_message() -> None:
    stderr = (b"promoter-worker: loading the model\nTraceback (most recent call last):\n"
              b'  File "/work/promoter/evaluation/worker.py", line 3, in run\n    boom()\n'
              b"RuntimeError: the model broke\n")
    assert _stderr_tail(stderr) == "RuntimeError: the model broke"


# --- Landlock --------------------------------------------------------------------------------

def test_landlock_confines_reads_and_writes(tmp_path: Path) -> None:
    abi = _landlock_abi()
    allowed, scratch, outside = tmp_path / "model", tmp_path / "scratch", tmp_path / "outside"
    for directory in (allowed, scratch, outside):
        directory.mkdir()
    (allowed / "inside.txt").write_text("weights")
    (outside / "secret.txt").write_text("hunter2")
    result = _child(_ATTEMPT + """
allowed, scratch, outside = map(Path, sys.argv[1:4])
read, listed = sandbox.python_read_paths()
print(sandbox.restrict_paths(read=[*read, allowed], list_only=listed, write=[scratch]))
print(json.dumps({
    "read inside": attempt(lambda: (allowed / "inside.txt").read_text()),
    "read outside": attempt(lambda: (outside / "secret.txt").read_text()),
    "list outside": attempt(lambda: os.listdir(outside)),
    "read /etc": attempt(lambda: Path("/etc/hostname").read_text()),
    "parent environ": attempt(lambda: Path(f"/proc/{os.getppid()}/environ").read_bytes()),
    "write scratch": attempt(lambda: (scratch / "ok.txt").write_text("x")),
    "write outside": attempt(lambda: (outside / "pwned.txt").write_text("x")),
    "write model": attempt(lambda: (allowed / "pwned.txt").write_text("x")),
    "delete model": attempt(lambda: (allowed / "inside.txt").unlink()),
    "symlink": attempt(lambda: (scratch / "link").symlink_to("/etc/hostname")),
    "repository file": attempt(lambda: Path("pyproject.toml").read_text()),
    "repository listing": attempt(lambda: os.listdir(".")),
    "execute": attempt(lambda: os.execv(sys.executable, [sys.executable, "-c", "1"])),
    "checkout on sys.path": Path(".").resolve() in listed,
}))
""", str(allowed), str(scratch), str(outside))
    # The checkout's root may be listed only where it is on the worker's sys.path (a
    # PYTHONPATH checkout); an installed or editable promoter is found without it.
    on_path = result.pop("checkout on sys.path")
    assert result == {"read inside": "ok", "read outside": "EACCES", "list outside": "EACCES",
                      "read /etc": "EACCES", "parent environ": "EACCES",
                      "write scratch": "ok", "write outside": "EACCES",
                      "write model": "EACCES", "delete model": "EACCES",
                      "symlink": "EACCES", "repository file": "EACCES",
                      "repository listing": "ok" if on_path else "EACCES",
                      "execute": "EACCES"}, f"Landlock ABI {abi}"
    assert not (outside / "pwned.txt").exists()
    assert (allowed / "inside.txt").read_text() == "weights"


@pytest.fixture
def listener() -> Iterator[int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_landlock_denies_tcp_connect_and_bind(listener: int) -> None:
    abi = _landlock_abi()
    if abi < 4:
        pytest.skip(f"needs Landlock ABI 4 (TCP rules); this kernel has ABI {abi}")
    result = _child(_ATTEMPT + """
port = int(sys.argv[1])
def connect():
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
def bind():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
before = attempt(connect)
read, listed = sandbox.python_read_paths()
sandbox.restrict_paths(read=read, list_only=listed, write=[])
print(json.dumps({"before": before, "connect": attempt(connect), "bind": attempt(bind)}))
""", str(listener))
    assert result == {"before": "ok", "connect": "EACCES", "bind": "EACCES"}


# --- seccomp ---------------------------------------------------------------------------------

def test_seccomp_denies_sockets_exec_namespaces_and_ptrace(listener: int) -> None:
    try:
        seccomp_program(__import__("platform").machine())
    except ConfinementUnavailableError as exc:
        pytest.skip(f"needs a seccomp syscall table for this architecture: {exc}")
    result = _child(_ATTEMPT + """
import ctypes, threading
port = int(sys.argv[1])
libc = ctypes.CDLL(None, use_errno=True)
def ctypes_call(result):
    if result != 0:
        raise OSError(ctypes.get_errno(), "failed")
def connect():
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
before = attempt(connect)
print(sandbox.install_seccomp())
ran = []
thread = threading.Thread(target=lambda: ran.append(attempt(connect)))
thread.start(); thread.join()
pid = os.fork()
if pid == 0:
    os._exit(0)
print(json.dumps({
    "before": before, "connect": attempt(connect), "thread connect": ran[0],
    "unix socket": attempt(lambda: socket.socket(socket.AF_UNIX).close()),
    "udp": attempt(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()),
    "fork": os.waitpid(pid, 0)[1] == 0,
    "execve": attempt(lambda: os.execv(sys.executable, [sys.executable, "-c", "1"])),
    "unshare": attempt(lambda: ctypes_call(libc.unshare(0x40000000))),
    "ptrace": attempt(lambda: ctypes_call(libc.ptrace(0, 0, None, None))),
    "mount": attempt(lambda: ctypes_call(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None))),
}))
""", str(listener))
    assert result == {"before": "ok", "connect": "EACCES", "thread connect": "EACCES",
                      "unix socket": "EACCES", "udp": "EACCES", "fork": True,
                      "execve": "EPERM", "unshare": "EPERM", "ptrace": "EPERM",
                      "mount": "EPERM"}


def test_the_seccomp_program_is_well_formed() -> None:
    for machine in ("x86_64", "aarch64"):
        prog = seccomp_program(machine)
        assert prog[-1] == (0x06, 0, 0, 0x7FFF0000)  # everything else is allowed
        for index, (code, jt, jf, _) in enumerate(prog):
            if code & 0x07 == 0x05:  # a jump: both targets inside the program
                assert index + 1 + max(jt, jf) < len(prog)
    with pytest.raises(ConfinementUnavailableError, match="no seccomp syscall table"):
        seccomp_program("sparc64")


# --- required or best effort -----------------------------------------------------------------

def test_required_confinement_names_what_is_missing() -> None:
    full = {"mode": "required", "mechanisms": ["rlimit-as", "landlock", "seccomp"]}
    assert confinement_shortfall(full) is None
    lacking = {"mode": "required", "mechanisms": ["seccomp"],
               "landlock": "unavailable: landlock_create_ruleset: the kernel has no Landlock"}
    assert confinement_shortfall(lacking) == (
        "the policy requires kernel confinement, but landlock is unavailable: "
        "landlock_create_ruleset: the kernel has no Landlock")
    assert confinement_shortfall({**lacking, "mode": "best-effort"}) is None


_NO_LANDLOCK_KERNEL = """
import ctypes, errno, runpy
from promoter.evaluation import sandbox as s
# Make landlock_create_ruleset fail with ENOSYS, as on a kernel older than 5.13.
prog = [(0x20, 0, 0, 0), (0x15, 0, 1, 444), (0x06, 0, 0, 0x50000 | errno.ENOSYS),
        (0x06, 0, 0, 0x7FFF0000)]
filters = (s._SockFilter * len(prog))(*(s._SockFilter(*i) for i in prog))
program = s._SockFprog(len(prog), ctypes.cast(filters, ctypes.POINTER(s._SockFilter)))
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0 and libc.prctl(22, 2, ctypes.byref(program)) == 0
runpy.run_module("promoter.evaluation.worker", run_name="__main__", alter_sys=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["required", "best-effort"])
def test_a_kernel_without_landlock(monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path],
                                   tiny_holdout: Path, mode: str) -> None:
    real = worker_client.run_worker
    monkeypatch.setattr(worker_client, "run_worker", lambda request, *, timeout_s: real(
        request, timeout_s=timeout_s, command=[sys.executable, "-c", _NO_LANDLOCK_KERNEL]))
    report = evaluate_models(
        candidate_dir=tiny_models["two_outputs"], baseline_dir=None, holdout=tiny_holdout,
        model=ModelSpec(name="tiny", output="probability"),
        policy=EvaluationPolicy.model_validate({"sandbox": {"confinement": mode}}),
        measure_latency=False)
    assert report.confinement["missing"] == ["landlock"]
    assert "Linux < 5.13" in report.confinement["landlock"]
    assert "seccomp" in report.confinement["mechanisms"]
    if mode == "required":
        [check] = report.checks
        assert check.name == "security.confinement"
        assert "requires kernel confinement, but landlock is unavailable" in check.reason
        assert report.holdout.rows == 0
        assert not report.passed
    else:
        assert report.holdout.rows == 6
        assert "missing: landlock (best-effort)" in report.to_markdown()


@pytest.mark.slow
def test_a_confined_evaluation_writes_nothing_outside_its_scratch_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_models: dict[str, Path],
        tiny_holdout: Path) -> None:
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    report = evaluate_models(
        candidate_dir=tiny_models["typed_inputs"], baseline_dir=None, holdout=tiny_holdout,
        model=TINY, policy=EvaluationPolicy.model_validate(
            {"sandbox": {"confinement": "required"}}), measure_latency=False)
    assert report.holdout.rows == 6
    assert {"landlock", "seccomp", "clean-environment", "timeout"} <= set(
        report.confinement["mechanisms"])
    assert list(home.iterdir()) == []
    assert list(tmp.iterdir()) == []


def test_refused_imports_fail_and_tensorflow_loads_without_them(tiny_models: dict[str, Path]
                                                                ) -> None:
    """The worker refuses Keras and scikit-learn (a third of its start-up): TensorFlow still
    imports and a Keras-free SavedModel still loads and scores."""
    result = _child("""
import importlib.util, json, sys
from promoter.evaluation import sandbox
sandbox.refuse_imports(sandbox.REFUSED_MODULES)
try:
    import keras
    refused = "imported"
except ImportError as exc:
    refused = str(exc)
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = served(x=tf.constant([0.0]))
print(json.dumps({"refused": refused, "keras loaded": "keras" in sys.modules,
                  "sklearn loaded": "sklearn" in sys.modules,
                  "spec origin": importlib.util.find_spec("keras").origin,
                  "score": float(out["probability"].numpy()[0])}))
""", str(tiny_models["two_outputs"]))
    assert "keras is not imported in the evaluation worker" in result.pop("refused")
    assert result == {"keras loaded": False, "sklearn loaded": False, "spec origin": None,
                      "score": 0.5}
