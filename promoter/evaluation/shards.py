"""One holdout scored by several worker processes, with the report of one worker, bit for bit.

Why not merge each worker's statistics: they are float sums, and sums added in another order
differ in the last bits (and the binary statistics' merges, the bootstrap's block sums and
the regression bootstrap's centre all depend on which rows were summed together). Exact
summation (`math.fsum`-style) would fix the sums but not the centre, and would have to reach
into every statistic. Instead each worker returns what is cheap to send and enough to redo
the statistics exactly: per row, each model's score (4 bytes in float32; K for multiclass),
the label, the weight and the slice values, plus each batch's first row and line numbers.
The statistics are then computed once, in the parent (`replay`), by the very code a single
worker runs (`worker_streams.accumulate`) on the very same batches in row order. The cost:
about 20-30 bytes a row through a file (CSV demo, two models: 100,000 rows are about 2.5 MB),
and the statistics do not run in parallel.

Which rows a worker scores: every `count`-th batch of the reader's batches, starting at batch
`index` (`shard` in the request). Shards are therefore whole batches, and every batch a model
scores holds the same rows as with one worker: a model's arithmetic may depend on the size of
the batch it is given (a matrix product's blocking), so a row must be scored in the same
batch to give the same bits. Interleaved batches also need no row count in advance (a CSV's
rows are only known once parsed) and share the work evenly. Each worker still reads and
digests the whole holdout (so every shard checks the same bytes; `replay` refuses shards that
disagree): reading does not get faster with more workers, scoring does.

The arrays travel as one `.npz` per shard, read with `allow_pickle=False` and checked: the
batches of all shards must tile the rows 0..N-1 exactly, without gap or overlap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promoter.errors import HoldoutError, ModelLoadError

if TYPE_CHECKING:
    from promoter.evaluation.worker_pool import PooledWorker

DEFAULT_MAX_SHARDS = 4
"""The default number of workers per evaluation on a machine with more than 2 cores."""
SHARD_FILE = "shard.npz"


def default_shards(cpus: int | None = None) -> int:
    """1 on a machine with at most 2 cores (each worker's TensorFlow uses both already),
    else min(cores, `DEFAULT_MAX_SHARDS`)."""
    cores = cpus if cpus is not None else (os.cpu_count() or 1)
    return 1 if cores <= 2 else min(cores, DEFAULT_MAX_SHARDS)


def mine(number: int, shard: Mapping[str, int] | None) -> bool:
    """Whether batch `number` (0-based) is scored by this worker."""
    return shard is None or number % int(shard["count"]) == int(shard["index"])


class ShardOutputs:
    """In a worker: the per-row outputs of the batches it scored, saved by `save`."""

    def __init__(self, slice_columns: Sequence[str]) -> None:
        self.slice_columns = list(slice_columns)
        self.batches: list[tuple[Any, dict[str, Any]]] = []

    def add(self, batch: Any, scores: dict[str, Any]) -> None:
        self.batches.append((batch, scores))

    def save(self, path: Path, roles: Sequence[str]) -> None:
        import numpy as np

        batches = [b for b, _ in self.batches]

        def joined(parts: list[Any], empty: Any) -> Any:
            return np.concatenate(parts) if parts else empty

        arrays: dict[str, Any] = {
            "first_rows": np.array([b.first_row for b in batches], np.int64),
            "batch_rows": np.array([b.rows for b in batches], np.int64),
            "lines": joined([b.lines for b in batches], np.zeros(0, np.int64)),
            "labels": joined([b.labels for b in batches], np.zeros(0, np.int64)),
            "has_weights": np.bool_(bool(batches) and batches[0].weights is not None),
        }
        if arrays["has_weights"]:
            arrays["weights"] = joined([b.weights for b in batches], np.zeros(0))
        for column in self.slice_columns:
            arrays[f"text.{column}"] = joined(
                [np.asarray(b.text[column], dtype=str) for b in batches], np.zeros(0, str))
        for role in roles:
            arrays[f"scores.{role}"] = joined([s[role] for _, s in self.batches],
                                              np.zeros(0, np.float32))
        np.savez(path, **arrays)


def replay(paths: Sequence[Path], request: dict[str, Any], *, roles: Sequence[str],
           rows: int, out_dir: Path, labels: Mapping[str, str]) -> dict[str, list[Any]]:
    """Compute every statistic of the shards' rows exactly as one worker would, and write
    `<out_dir>/<role>.npz` as it does; return each role's slice index (its response's
    `slices`). `labels` name the models in messages. Raises HoldoutError as a worker would
    for the same rows (a label the model's outputs cannot have, too many slice values), and
    ModelLoadError for shards that do not tile the `rows` rows exactly."""
    from promoter.evaluation.bootstrap import N_BLOCKS, block_ids
    from promoter.evaluation.holdout import HoldoutBatch
    from promoter.evaluation.worker_streams import _ModelStream, accumulate

    slice_columns = [s["column"] for s in request.get("slices", [])]
    max_values = {s["column"]: int(s["maxValues"]) for s in request.get("slices", [])}
    task = request.get("task", "binary_classification")
    streams = {role: _ModelStream(task, request, slice_columns, max_values) for role in roles}
    loaded = [_load(path, roles, slice_columns) for path in paths]
    order = sorted((int(first), shard, batch) for shard, data in enumerate(loaded)
                   for batch, first in enumerate(data["first_rows"]))
    expected = 0
    for first, shard, batch in order:
        data = loaded[shard]
        size = int(data["batch_rows"][batch])
        if first != expected or size <= 0:
            raise _bad(f"rows {expected + 1}.. are missing or scored twice")
        start = int(data["starts"][batch])
        part = slice(start, start + size)
        holdout_batch = HoldoutBatch(
            lines=data["lines"][part], labels=data["labels"][part], numeric={},
            text={c: data[f"text.{c}"][part] for c in slice_columns},
            weights=data["weights"][part] if "weights" in data else None, first_row=first)
        ids = block_ids(first, size, blocks=N_BLOCKS)
        for role in roles:
            accumulate(streams[role], holdout_batch, data[f"scores.{role}"][part], ids,
                       holdout=Path(request["holdout"]), who=labels[role],
                       max_values=max_values)
        expected += size
    if expected != rows:
        raise _bad(f"{expected} of the holdout's {rows} rows were scored")
    return {role: streams[role].save(out_dir / f"{role}.npz") for role in roles}


def _load(path: Path, roles: Sequence[str], slice_columns: Sequence[str]) -> dict[str, Any]:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
        sizes = data["batch_rows"]
        total = int(sizes.sum())
        data["starts"] = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        columns = ["lines", "labels", *(f"scores.{r}" for r in roles),
                   *(f"text.{c}" for c in slice_columns),
                   *(["weights"] if bool(data["has_weights"]) else [])]
        if data["first_rows"].shape != sizes.shape or any(
                data[c].shape[0] != total for c in columns):
            raise ValueError("arrays of different lengths")
    except (OSError, KeyError, ValueError) as exc:
        raise _bad(f"its file {path.name} is unusable ({exc})") from exc
    return data


def _bad(what: str) -> ModelLoadError:
    return ModelLoadError(f"the evaluation workers returned inconsistent shards: {what}",
                          fix="report this as a bug in promoter")


def run_shards(requests: Sequence[dict[str, Any]], pooled: Sequence[PooledWorker], *,
               request: dict[str, Any], timeout_s: float, out: Path
               ) -> tuple[dict[str, Any], Path]:
    """Run each request (one per shard) in its worker, at the same time; return the payload
    one worker would have returned and the directory holding its result files.

    One request: as it is. Several: their statistics are replayed into `out` (`replay`).
    The first shard (by index) that fails raises its error, once the others have stopped (a
    pooled worker is killed at once; a fresh one runs to its end or its timeout); a shard
    read other bytes than the rest (the file changed meanwhile): HoldoutError."""
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    from promoter.evaluation.worker_client import run_worker

    def one(index: int) -> dict[str, Any]:
        if pooled:
            return pooled[index].run(requests[index], timeout_s=timeout_s)
        return run_worker(requests[index], timeout_s=timeout_s)

    if len(requests) == 1:
        return one(0), Path(requests[0]["outDir"])
    with ThreadPoolExecutor(len(requests), thread_name_prefix="promoter-shard") as executor:
        futures = [executor.submit(one, index) for index in range(len(requests))]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() is not None for f in done):
            for worker in pooled:
                worker.kill()
        wait(futures)
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
    payloads = [f.result() for f in futures]
    blocked = next((p for p in payloads if "blocked" in p), None)
    if blocked is not None:
        return blocked, out
    first = payloads[0]
    if any(p.get("holdout") != first["holdout"] or "shard" not in p for p in payloads):
        raise HoldoutError(f"the holdout {request['holdout']} changed while it was read: the "
                           "evaluation's workers read different bytes",
                           fix="do not modify a holdout while it is evaluated")
    roles = [spec["role"] for spec in request["models"]]
    slices = replay([Path(r["outDir"]) / SHARD_FILE for r in requests], requests[0],
                    roles=roles, rows=int(first["holdout"]["rows"]), out_dir=out,
                    labels={spec["role"]: f"the {spec['role']} model at {spec['path']}"
                            for spec in requests[0]["models"]})
    merged = dict(first)
    merged["models"] = {role: {**first["models"][role], "slices": slices[role],
                               "file": f"{role}.npz",
                               "seconds": sum(float(p["models"][role]["seconds"])
                                              for p in payloads)}
                        for role in roles}
    return merged, out
