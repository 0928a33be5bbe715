"""The evaluation worker: `python -m promoter.evaluation.worker`, run by `evaluate.py`.

Reads one JSON request on stdin and writes one small JSON response on stdout. What grows with
the holdout (the merged statistics, the bootstrap's per-block statistics, per-slice
statistics) goes to `<outDir>/<role>.npz`, plain arrays the parent reads with
`allow_pickle=False`: the transport is O(distinct scores), never O(rows) JSON, and nothing the
worker sends is executable by the parent.

Order of work, so an untrusted model runs as little as possible:

1. confine this process (`confine`, `sandbox`) while it has one thread, before numpy or
   TensorFlow are imported: a memory limit (RLIMIT_AS), a network namespace of our own where
   the kernel lets us, Landlock (reads beneath the Python installation, the models and the
   holdout; writes in the scratch directory only; no TCP), a seccomp filter (no sockets, no
   ptrace/mount/namespaces/execve). The environment was already emptied by the parent. With
   `confinement: required`, a kernel without Landlock or seccomp stops the run here;
2. check every model's graph against the op allowlist (`graph_scan`) *before* loading any;
3. load the models and compare the candidate's signature with the baseline's;
4. stream the holdout through both models, merging statistics per batch (a shard of a
   sharded evaluation scores every n-th batch and writes per-row outputs instead: `shards`);
5. measure the latency budgets.

Only the JSON response goes to stdout: the worker moves file descriptor 1 to stderr before
TensorFlow loads, so nothing a model or TensorFlow prints can corrupt it. Progress lines
`promoter-worker: <stage>` on stderr let the parent say what the worker was doing when it
crashed or ran out of time.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TextIO

from promoter.evaluation.worker_streams import _ModelStream, accumulate

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000

REQUIRED_MECHANISMS = ("landlock", "seccomp")
"""What `confinement: required` insists on: Landlock's filesystem rules and the seccomp filter
(which also denies every socket, so no network either). The memory limit, the timeout and the
clean environment are always applied."""


def confine(request: dict[str, Any]) -> dict[str, Any]:
    """Confine this process before anything untrusted runs; say what was achieved.

    In this order, while the process has one thread (nothing imported yet starts threads, and
    Landlock confines only the calling thread and those it creates): the memory limit
    (RLIMIT_AS); a network namespace of its own where the kernel lets us (no interfaces but a
    downed loopback); Landlock (reads beneath the Python installation, system libraries, the
    models, and the holdout unless the parent handed it over as `holdoutFd`, a descriptor
    open read-only: then the path is not readable at all; writes in the scratch directory
    `outDir`; with ABI 4+ no TCP);
    the seccomp filter. `mechanisms` lists what applied; `missing` what the kernel refused,
    with the reason in the mechanism's own entry.
    """
    from promoter.evaluation import sandbox

    started = time.perf_counter()
    memory_limit_bytes = request.get("memoryLimitBytes")
    result: dict[str, Any] = {"memoryLimitBytes": None, "network": "unavailable",
                              "mode": request.get("confinement", "best-effort"),
                              "mechanisms": [], "missing": []}
    if memory_limit_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
        result["memoryLimitBytes"] = memory_limit_bytes
        result["mechanisms"].append("rlimit-as")
    result["threads"] = len(os.listdir("/proc/self/task")) if Path("/proc/self/task").is_dir() \
        else None
    result["network"] = _unshare_network()
    if result["network"].startswith("isolated"):
        result["mechanisms"].append("network-namespace")
    result["environment"] = ("only " + ", ".join(sorted(os.environ)) if os.environ
                             else "empty")
    read, listed = sandbox.python_read_paths()
    read += [Path(p) for p in sandbox.SYSTEM_READ_PATHS]
    read += [Path(spec["path"]) for spec in request.get("models", [])]
    if request.get("holdoutFd") is None:
        read.append(Path(request["holdout"]))
    else:  # read through the parent's descriptor: no rule for the path, nor its directory
        # Said apart from `mechanisms`, which pre-started workers (no descriptor) share.
        result["holdout"] = "read through a descriptor the parent opened read-only"
    try:
        result["landlock"] = sandbox.restrict_paths(read=read, list_only=listed,
                                                    write=[Path(request["outDir"])])
        result["mechanisms"].append("landlock")
    except sandbox.ConfinementUnavailableError as exc:
        result["landlock"] = f"unavailable: {exc}"
        result["missing"].append("landlock")
    try:
        result["seccomp"] = sandbox.install_seccomp()
        result["mechanisms"].append("seccomp")
    except sandbox.ConfinementUnavailableError as exc:
        result["seccomp"] = f"unavailable: {exc}"
        result["missing"].append("seccomp")
    result["seconds"] = round(time.perf_counter() - started, 6)
    return result


def _unshare_network() -> str:
    """Move into a network namespace of our own; say how, or why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        return "isolated (own network namespace)"
    first = os.strerror(ctypes.get_errno())
    # Unprivileged: a user namespace in which we may create a network namespace. Map our own
    # uid/gid so file access stays the same.
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        try:
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
            Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
        except OSError:
            pass
        return "isolated (user and network namespace)"
    return f"unavailable: unshare(CLONE_NEWNET) failed ({first})"


def confinement_shortfall(confinement: dict[str, Any]) -> str | None:
    """Why a `required` confinement was not achieved, or None if it was (or not required)."""
    if confinement.get("mode") != "required":
        return None
    missing = [m for m in REQUIRED_MECHANISMS if m not in confinement.get("mechanisms", [])]
    if not missing:
        return None
    return ("the policy requires kernel confinement, but " + "; ".join(
        f"{m} is {confinement.get(m, 'unavailable')}" for m in missing))


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Let glibc keep freed memory for reuse instead of returning it to the kernel at once.

    Why: every batch makes numpy temporaries of 0.5-8 MB. By default glibc serves each from a
    fresh mmap (or trims the heap after it is freed), so the next batch page-faults the same
    memory in again: about 2,200 faults and 60% of the time of one 65,536-row binary
    statistics step. Serving blocks below 8 MiB from the heap and trimming only above
    512 MiB of free space removes that, and larger arrays are still mmapped and returned.
    Not 32 MiB, as first chosen: the score table's merges make arrays of 8-32 MiB that,
    served from the heap, stayed there fragmented (the worker peaked at 921 MiB at 10 million
    CSV rows instead of 865), while a 65,536-row statistics step measured the same, 1.67 ms
    median, either way. What is read per batch stays below it (the CSV reader's blocks are
    6 MiB, `arrow_csv.ArrowCSVReader.chunk_bytes`). False where the C library has no
    mallopt (not glibc); nothing else changes then.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 8 << 20)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 512 << 20))


def run(request: dict[str, Any], *, progress: TextIO) -> dict[str, Any]:
    """Evaluate the request's models on its holdout; return the response's payload.

    Raises BadInputError subclasses for bad models or holdouts (the caller reports them).
    """
    import numpy as np

    from promoter.errors import ModelLoadError
    from promoter.evaluation.bootstrap import N_BLOCKS, block_ids
    from promoter.evaluation.graph_scan import scan_saved_model
    from promoter.evaluation.holdout_feeds import columns_for, feed_inputs
    from promoter.evaluation.holdout_formats import open_holdout
    from promoter.evaluation.metrics import check_scores
    from promoter.evaluation.protocol import PROTOCOL, STAGE_PREFIX
    from promoter.evaluation.shards import SHARD_FILE, ShardOutputs, mine
    from promoter.evaluation.signature import compatibility_problems, signature_diff

    def stage(text: str) -> None:
        progress.write(f"{STAGE_PREFIX}{text}\n")
        progress.flush()

    if request.get("protocol") != PROTOCOL:
        raise ModelLoadError(f"evaluation worker protocol {request.get('protocol')!r} is not "
                             f"{PROTOCOL}", fix="run the same promoter version in both processes")
    task = request.get("task", "binary_classification")
    holdout = Path(request["holdout"])
    out_dir = Path(request["outDir"])

    for spec in request["models"]:
        stage(f"scanning the graph of the {spec['role']} model at {spec['path']}")
        findings = scan_saved_model(Path(spec["path"]), allow=request.get("allowOps", ()),
                                    label=f"the {spec['role']} model at {spec['path']}")
        if findings:
            return {"blocked": {
                "check": "security.graphScan", "role": spec["role"],
                "reason": f"the {spec['role']} model's graph holds ops that are not allowed: "
                          + "; ".join(f.describe() for f in findings[:5])
                          + (f" (and {len(findings) - 5} more)" if len(findings) > 5 else ""),
                "findings": [{"op": f.op, "where": f.where, "why": f.why} for f in findings],
            }}

    from promoter.evaluation.scoring import load_model  # imports TensorFlow lazily

    models = {}
    for spec in request["models"]:
        label = f"the {spec['role']} model at {spec['path']}"
        stage(f"loading {label}")
        models[spec["role"]] = load_model(Path(spec["path"]), signature=spec["signature"],
                                          output=spec.get("output"), label=label,
                                          memory_limit_bytes=request.get("memoryLimitBytes"))
    if "baseline" in models:
        problems = compatibility_problems(models["baseline"].info, models["candidate"].info)
        if problems:
            return {"blocked": {
                "check": "signature.compatible", "role": "candidate",
                "reason": "the candidate's signature does not accept what the deployed one "
                          "accepts: " + "; ".join(problems),
                "diff": signature_diff(models["baseline"].info, models["candidate"].info),
                "signatures": {r: m.info.to_json_dict() for r, m in models.items()},
            }}

    columns = [c for role, m in models.items() for c in columns_for(m.info, model=f"the {role}")]
    slice_columns = [s["column"] for s in request.get("slices", [])]
    max_values = {s["column"]: int(s["maxValues"]) for s in request.get("slices", [])}
    reader = open_holdout(
        holdout, label_column=request["labelColumn"], columns=columns,
        batch_size=int(request.get("batchSize", 8192)),
        label_kind={"binary_classification": "binary", "multiclass_classification": "class",
                    "regression": "real"}[task],
        weight_column=request.get("weightColumn"), slice_columns=slice_columns,
        fd=request.get("holdoutFd"))  # a descriptor the parent passed (Parquet reads it)
    streams = {role: _ModelStream(task, request, slice_columns, max_values) for role in models}
    # A shard of a sharded evaluation (`shards`): every count-th batch, per-row outputs back.
    shard = request.get("shard")
    outputs = ShardOutputs(slice_columns) if shard is not None else None
    seconds = dict.fromkeys(models, 0.0)
    sample: dict[str, dict[str, np.ndarray]] = {}
    for number, batch in enumerate(reader):
        if not mine(number, shard):
            continue
        ids = block_ids(batch.first_row, batch.rows, blocks=N_BLOCKS)
        scored = {}
        for role, model in models.items():
            stage(f"scoring {holdout} (rows {batch.first_row + 1}-"
                  f"{batch.first_row + batch.rows}) with {model.label}")
            feeds = feed_inputs(model.info, batch, model=f"the {role}", source=holdout)
            if role not in sample:
                sample[role] = feeds
            started = time.perf_counter()
            scores = scored[role] = model.score(feeds, task=task)
            seconds[role] += time.perf_counter() - started
            if outputs is not None:  # the statistics are computed once, from all shards
                check_scores(scores, who=model.label, lines=batch.lines,
                             probabilities=task != "regression")
                continue
            accumulate(streams[role], batch, scores, ids, holdout=holdout, who=model.label,
                       max_values=max_values)
        if outputs is not None:
            outputs.add(batch, scored)

    latency = {}
    if request.get("latency"):
        for role, model in models.items():
            stage(f"measuring the latency of {model.label}")
            latency[role] = _latency(model, sample[role],
                                     batch_size=int(request.get("latencyBatchSize", 256)))
    stage("writing the result")
    response_models = {}
    for role, model in models.items():
        response_models[role] = {"signature": model.info.to_json_dict(),
                                 "seconds": seconds[role], "file": f"{role}.npz",
                                 "latency": latency.get(role)}
        if outputs is None:
            response_models[role]["slices"] = streams[role].save(out_dir / f"{role}.npz")
    response = {"holdout": {"digest": reader.digest, "rows": reader.rows},
                "models": response_models}
    if outputs is not None:
        outputs.save(out_dir / SHARD_FILE, list(models))
        response["shard"] = {"file": SHARD_FILE}
    return response


def _latency(model: Any, feeds: dict[str, Any], *, batch_size: int) -> dict[str, float]:
    """p50/p99 of single-row and batched calls, in milliseconds, on this machine."""
    import numpy as np

    rows = next(iter(feeds.values())).shape[0]
    one = {k: v[:1] for k, v in feeds.items()}
    batch = {k: np.concatenate([v] * (batch_size // rows + 1))[:batch_size]
             for k, v in feeds.items()}

    def timings(data: dict[str, Any], warmup: int, runs: int) -> np.ndarray:
        for _ in range(warmup):
            model.call(data)
        out = []
        for _ in range(runs):
            started = time.perf_counter()
            model.call(data)
            out.append((time.perf_counter() - started) * 1000)
        return np.asarray(out)

    single = timings(one, 10, 200)
    batched = timings(batch, 3, 30)
    return {"p50Ms": float(np.percentile(single, 50)), "p99Ms": float(np.percentile(single, 99)),
            "batchP50Ms": float(np.percentile(batched, 50)),
            "batchP99Ms": float(np.percentile(batched, 99)), "batchSize": batch_size}


def main() -> NoReturn:
    """Entry point: one request on stdin, one response on stdout, then exit at once (never
    returns). A non-zero exit (or a signal) means the worker crashed."""

    def job() -> tuple[dict[str, Any], dict[str, Any]]:
        request = json.loads(sys.stdin.read())
        confinement = confine(request)
        from promoter.evaluation import sandbox

        sandbox.refuse_imports(sandbox.REFUSED_MODULES)
        return request, confinement

    answer(job)


def answer(job: Callable[[], tuple[dict[str, Any], dict[str, Any]]]) -> NoReturn:
    """Run `job` (read the request and confine this process: its request and confinement),
    evaluate the request unless a `required` confinement fell short, write the one JSON
    response to stdout and exit 0 at once.

    `os._exit`: the response is written and flushed, and TensorFlow's teardown at a normal
    exit (its threads, static destructors: about a second) would only delay the parent,
    which waits for the exit status."""
    response_fd = os.dup(1)
    os.dup2(2, 1)  # stray prints (TensorFlow, the model's own ops) go to stderr from here on
    with os.fdopen(response_fd, "w", encoding="utf-8") as response_stream:
        response: dict[str, Any] = {}
        request: dict[str, Any] | None = None
        try:
            request, confinement = job()
            keep_freed_memory()
            from promoter.evaluation.protocol import PROTOCOL

            response["protocol"] = PROTOCOL
            response |= {"ok": True, "confinement": confinement}
            shortfall = confinement_shortfall(confinement)
            if shortfall is not None:
                response["blocked"] = {
                    "check": "security.confinement", "role": "candidate",
                    "reason": f"{shortfall}; nothing was loaded"}
            else:
                response |= run(request, progress=sys.stderr)
        except MemoryError:
            traceback.print_exc(file=sys.stderr)
            limit = (request or {}).get("memoryLimitBytes")
            response |= {"ok": False, "error": {
                "type": "ModelLoadError",
                "message": "the evaluation ran out of memory"
                + (f" within the worker's memory limit of {int(limit) // 2**20} MiB" if limit
                   else ""),
                "fix": "raise the limit (`promoter evaluate --memory-limit-mb`, the "
                       "evaluator's memory_limit_mb) if the models need more, or check the "
                       "model for runaway allocations"}}
        except Exception as exc:
            from promoter.errors import BadInputError

            if isinstance(exc, BadInputError):
                response |= {"ok": False, "error": {"type": type(exc).__name__,
                                                    "message": exc.message, "fix": exc.fix}}
            else:
                traceback.print_exc(file=sys.stderr)
                response |= {"ok": False, "error": {
                    "type": "internal", "message": f"{type(exc).__name__}: {exc}",
                    "fix": None}}
        json.dump(response, response_stream)
        response_stream.write("\n")
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
