"""Confinement of the evaluation worker: the environment it starts with, Landlock, seccomp.

The graph scan (`graph_scan`) refuses every op that is not known to only compute; this module
is the second line, for what a scan cannot see (a bug in a kernel, an op that does more than
its name says). It uses only the standard library (ctypes system calls), so it runs before
numpy or TensorFlow are imported, while the worker has a single thread: `landlock_restrict_self`
confines the calling thread and the threads it creates later, never threads that exist
already.

- `worker_environment`: the child's environment is built from an explicit allowlist (locale,
  TensorFlow's log level and thread settings); no PATH, no PROMOTER_*, no cloud or forge
  credentials; HOME and TMPDIR point at the private scratch directory.
- `restrict_paths`: Landlock (Linux 5.13+, ABI 1+). Read-only: the Python installation and
  `sys.path`, system libraries, a few device and /proc files, the model directories and the
  holdout; read-write: the scratch directory only; execute: nothing. ABI 4+ also denies every
  TCP bind and connect; ABI 6+ also scopes abstract UNIX sockets and signals to the worker.
- `install_seccomp`: a classic-BPF filter (hand-written: the one PyPI binding, `pyseccomp`,
  has had no release since 2021) that makes `socket()` fail for every address family (the
  worker needs none), and fails ptrace, mount and namespace changes, module loading, kexec,
  bpf, perf, keyrings, io_uring, userfaultfd, handle-based opens, and execve. It is installed
  with SECCOMP_FILTER_FLAG_TSYNC, so every thread gets it.

The packages the worker never imports are `refused_imports`'s (re-exported here).

Each function returns a plain sentence of what it achieved, or raises `ConfinementUnavailableError`
saying why not; the worker puts both in the report's `confinement` block.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

# Kept importable from here, where the worker and its tests name them.
from promoter.evaluation.refused_imports import REFUSED_MODULES as REFUSED_MODULES
from promoter.evaluation.refused_imports import refuse_imports as refuse_imports

ENVIRONMENT_ALLOWLIST = ("LANG", "LC_ALL", "LC_CTYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                         "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                         "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS")
"""Variables copied from promoter's environment into the worker's, when set: locale and thread
settings, which change how fast the worker runs but give a model nothing to steal."""


class ConfinementUnavailableError(Exception):
    """A kernel mechanism could not be applied; the message says why (kernel, permission).

    Not a PromoterError: it never reaches a user as an error. The worker catches it and
    reports the reason in the report's `confinement` block (a failed `security.confinement`
    check under `confinement: required`)."""


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


# --- Landlock --------------------------------------------------------------------------------

_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_REMOVE_DIR = 1 << 4
_FS_REMOVE_FILE = 1 << 5
_FS_MAKE_DIR = 1 << 7
_FS_MAKE_REG = 1 << 8
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
"""The rights a rule on a file (not a directory) may carry."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64))


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _failed(what: str) -> ConfinementUnavailableError:
    code = ctypes.get_errno()
    return ConfinementUnavailableError(f"{what} failed ({errno.errorcode.get(code, code)}: "
                                  f"{os.strerror(code)})")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; raises ConfinementUnavailableError if it has none."""
    if sys.platform != "linux":
        raise ConfinementUnavailableError(f"Landlock is Linux-only (this is {sys.platform})")
    libc = _libc()
    abi = libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                       ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if abi < 0:
        code = ctypes.get_errno()
        why = {errno.ENOSYS: "the kernel has no Landlock (Linux < 5.13)",
               errno.EOPNOTSUPP: "Landlock is built in but not enabled (boot with lsm=...,"
                                 "landlock)"}.get(code, os.strerror(code))
        raise ConfinementUnavailableError(f"landlock_create_ruleset: {why}")
    return int(abi)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM: ABI 1
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    if abi >= 5:
        rights |= _FS_IOCTL_DEV
    return rights


def python_read_paths() -> tuple[list[Path], list[Path]]:
    """What the worker's own code reads: (readable paths, paths whose directories may only be
    listed). Readable: the interpreter's prefixes (the standard library, site-packages with
    numpy and TensorFlow), promoter's package, and `sys.path` entries outside the prefixes.
    The directory holding promoter (the worker's `sys.path[0]`, e.g. a source checkout) may
    only be listed, so the rest of a checkout stays unreadable."""
    package = Path(__file__).resolve().parents[1]
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                            sys.base_exec_prefix)}
    readable = set(prefixes) | {package}
    listed: set[Path] = set()
    for entry in (Path(p).resolve() for p in sys.path if p):
        if entry == package.parent:
            listed.add(entry)
        elif not any(entry.is_relative_to(prefix) for prefix in prefixes):
            readable.add(entry)
    return (sorted(p for p in readable if p.exists()),
            sorted(p for p in listed - readable if p.exists()))


SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache",
                     "/etc/localtime", "/dev/urandom", "/dev/random", "/proc/self",
                     "/proc/cpuinfo", "/proc/meminfo", "/sys/devices/system/cpu",
                     "/sys/fs/cgroup")
"""System files a Python/TensorFlow process reads: shared libraries, the dynamic linker's cache,
randomness, its own /proc entries (/proc/self resolves to the worker's pid: no other process's
environ or memory), CPU and memory facts TensorFlow sizes its thread pools with."""


def restrict_paths(*, read: Iterable[Path], write: Iterable[Path],
                   list_only: Iterable[Path] = (), deny_tcp: bool = True) -> str:
    """Confine this thread and its future threads and children with Landlock: read (files,
    directory listings) only beneath `read`, list directories beneath `list_only`, also
    write, create and delete only beneath `write`, execute nothing; with ABI 4+ and
    `deny_tcp`, no TCP bind or connect; with ABI 6+, no abstract UNIX sockets or signals
    outside the worker.

    Paths that do not exist are skipped. Irreversible. Returns what was achieved; raises
    ConfinementUnavailableError if the kernel lacks Landlock or refuses a step.
    """
    abi = landlock_abi()
    libc = _libc()
    attr = _RulesetAttr(handled_access_fs=_fs_rights(abi),
                        handled_access_net=(_NET_BIND_TCP | _NET_CONNECT_TCP)
                        if abi >= 4 and deny_tcp else 0,
                        scoped=(_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24  # the struct grew with the ABI
    ruleset = libc.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                           ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _failed("landlock_create_ruleset")
    read_rights = _FS_READ_FILE | _FS_READ_DIR
    write_rights = (read_rights | _FS_WRITE_FILE | _FS_REMOVE_DIR | _FS_REMOVE_FILE
                    | _FS_MAKE_DIR | _FS_MAKE_REG
                    | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0))
    rules = 0
    try:
        grants = [(Path(p), _FS_READ_DIR) for p in list_only]
        grants += [(Path(p), read_rights) for p in read]
        grants += [(Path(p), write_rights) for p in write]
        grants.append((Path("/dev/null"), _FS_READ_FILE | _FS_WRITE_FILE))
        for path, rights in grants:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # absent on this system: nothing to grant
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_RIGHTS
                rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
                if libc.syscall(ctypes.c_long(_SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset),
                                ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                                ctypes.c_uint32(0)) < 0:
                    raise _failed(f"landlock_add_rule({path})")
                rules += 1
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _failed("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset),
                        ctypes.c_uint32(0)) < 0:
            raise _failed("landlock_restrict_self")
    finally:
        os.close(ruleset)
    parts = [f"ABI {abi}: {rules} paths allowed; files readable only beneath the Python "
             "installation, system libraries, the models and the holdout, writable only in "
             "the scratch directory; nothing executable"]
    if attr.handled_access_net:
        parts.append("TCP bind and connect denied")
    if attr.scoped:
        parts.append("abstract UNIX sockets and signals scoped to the worker")
    return "; ".join(parts)


# --- seccomp ---------------------------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SYSCALLS: dict[str, dict[str, int]] = {
    # From the kernel's uapi unistd tables.
    "x86_64": {"socket": 41, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
               "kcmp": 312, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
               "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298,
               "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
               "finit_module": 313, "delete_module": 176, "keyctl": 250, "add_key": 248,
               "request_key": 249, "userfaultfd": 323, "open_by_handle_at": 304,
               "name_to_handle_at": 303, "swapon": 167, "swapoff": 168, "reboot": 169,
               "acct": 163, "quotactl": 179, "iopl": 172, "ioperm": 173, "execve": 59,
               "execveat": 322, "io_uring_setup": 425, "io_uring_enter": 426,
               "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
               "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
               "clone": 56, "clone3": 435, "seccomp": 317},
    "aarch64": {"socket": 198, "ptrace": 117, "process_vm_readv": 270,
                "process_vm_writev": 271, "kcmp": 272, "mount": 40, "umount2": 39,
                "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "bpf": 280,
                "perf_event_open": 241, "kexec_load": 104, "kexec_file_load": 294,
                "init_module": 105, "finit_module": 273, "delete_module": 106, "keyctl": 219,
                "add_key": 217, "request_key": 218, "userfaultfd": 282,
                "open_by_handle_at": 265, "name_to_handle_at": 264, "swapon": 224,
                "swapoff": 225, "reboot": 142, "acct": 89, "quotactl": 60, "execve": 221,
                "execveat": 281, "io_uring_setup": 425, "io_uring_enter": 426,
                "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
                "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
                "clone": 220, "clone3": 435, "seccomp": 277},
}
DENIED_SYSCALLS = ("ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "mount",
                   "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf",
                   "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
                   "finit_module", "delete_module", "keyctl", "add_key", "request_key",
                   "userfaultfd", "open_by_handle_at", "name_to_handle_at", "swapon",
                   "swapoff", "reboot", "acct", "quotactl", "iopl", "ioperm", "execve",
                   "execveat", "io_uring_setup", "io_uring_enter", "io_uring_register",
                   "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
                   "mount_setattr")
"""System calls that fail with EPERM: inspecting or changing other processes, the mount and
namespace layout, the kernel (modules, kexec, bpf, perf), keyrings, io_uring (whose requests
seccomp cannot see), userfaultfd, opening files by handle (past Landlock), running programs."""
_CLONE_NAMESPACES = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
                     | 0x20000000 | 0x40000000 | 0x00000080)
"""CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME: clone() may make
threads and processes, not namespaces."""

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter for `machine` (`platform.machine()`) as (code, jt, jf, k) instructions.

    Raises ConfinementUnavailableError for an architecture without a syscall table here.
    """
    if machine not in _SYSCALLS:
        raise ConfinementUnavailableError(f"no seccomp syscall table for {machine}")
    table = _SYSCALLS[machine]
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    denied = [table[name] for name in DENIED_SYSCALLS if name in table]
    prog: list[tuple[int, int, int, int]] = [
        (_BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_BPF_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        (_BPF_RET_K, 0, 0, _RET_KILL_PROCESS),  # another ABI (i386 int 0x80): never legitimate
        (_BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if machine == "x86_64":
        prog += [(_BPF_JGE_K, 0, 1, 0x40000000), (_BPF_RET_K, 0, 0, _RET_KILL_PROCESS)]  # x32
    prog += [(_BPF_JEQ_K, 0, 1, table["socket"]),
             (_BPF_RET_K, 0, 0, _RET_ERRNO | errno.EACCES)]
    # clone3 hides its flags in memory a filter cannot read: fail it with ENOSYS, and the C
    # library falls back to clone(), whose flags are checked.
    prog += [(_BPF_JEQ_K, 0, 1, table["clone3"]), (_BPF_RET_K, 0, 0, enosys)]
    prog += [(_BPF_JEQ_K, 0, 3, table["clone"]),
             (_BPF_LD_W_ABS, 0, 0, 16),  # args[0], low 32 bits (little-endian): the flags
             (_BPF_JSET_K, 0, 1, _CLONE_NAMESPACES),
             (_BPF_RET_K, 0, 0, eperm)]
    prog.append((_BPF_LD_W_ABS, 0, 0, 0))  # the clone branch replaced the accumulator
    for number in denied:
        prog += [(_BPF_JEQ_K, 0, 1, number), (_BPF_RET_K, 0, 0, eperm)]
    prog.append((_BPF_RET_K, 0, 0, _RET_ALLOW))
    return prog


def install_seccomp() -> str:
    """Install `seccomp_program` on every thread of this process (irreversible); return what
    it denies. Raises ConfinementUnavailableError if the kernel or the architecture does not
    allow it."""
    if sys.platform != "linux":
        raise ConfinementUnavailableError(f"seccomp is Linux-only (this is {sys.platform})")
    machine = platform.machine()
    prog = seccomp_program(machine)
    filters = (_SockFilter * len(prog))(*(_SockFilter(*i) for i in prog))
    fprog = _SockFprog(len(prog), ctypes.cast(filters, ctypes.POINTER(_SockFilter)))
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise _failed("prctl(PR_SET_NO_NEW_PRIVS)")
    result = libc.syscall(ctypes.c_long(_SYSCALLS[machine]["seccomp"]),
                          ctypes.c_uint(_SECCOMP_SET_MODE_FILTER),
                          ctypes.c_uint(_SECCOMP_FILTER_FLAG_TSYNC), ctypes.byref(fprog))
    if result != 0:
        if result > 0:
            raise ConfinementUnavailableError(f"seccomp: thread {result} could not be synchronised")
        raise _failed("seccomp(SECCOMP_SET_MODE_FILTER)")
    return (f"{machine} filter of {len(prog)} instructions: socket() denied for every "
            f"address family; {len(DENIED_SYSCALLS)} system calls (ptrace, mount, namespaces, "
            "bpf, kernel modules, io_uring, execve, ...) fail with EPERM")
