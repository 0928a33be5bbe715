"""The worker's running statistics: each model's, overall, per bootstrap block and per slice.

`worker.run` feeds every scored batch to one `_ModelStream` per model; what they hold is
written to `<outDir>/<role>.npz` at the end (`save`), which `worker_results` reads back in the
parent. numpy and the statistics modules are imported inside the methods, as in the rest of
the worker: importing this module must not start threads before the worker confines itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class _Stream:
    """Exact statistics of one model on some rows, merged in amortised O(n log n).

    Unweighted binary rows go to a `ScoreTable` (a few bytes per row, where the three float64
    arrays of `BinaryClassificationStats` cost 24 bytes per distinct score and several times
    that while merging); the rest of their statistics is summed per batch (`summary`).
    Weighted binary statistics wait in `pending` until they hold as many distinct scores as
    the merged table (at least 2**20, 24 MB): one merge of many sorted runs costs about what
    merging two does, and memory stays within twice the merged table's size.
    """

    def __init__(self, task: str, request: dict[str, Any]) -> None:
        self.task = task
        self.threshold = float(request.get("threshold", 0.5))
        self.top_k = int(request.get("topK", 2))
        self.merged: Any = None
        self.pending: list[Any] = []
        self.pending_size = 0
        self.summary: Any = None
        self.table: Any = None

    def add(self, labels: Any, scores: Any, weights: Any) -> None:
        import numpy as np

        from promoter.evaluation.binary_stats import BinaryClassificationStats
        from promoter.evaluation.multiclass_stats import MulticlassStats
        from promoter.evaluation.regression_stats import RegressionStats
        from promoter.evaluation.score_table import ScoreTable
        if self.task == "binary_classification" and weights is None:
            part: Any = BinaryClassificationStats.from_batch(  # checks labels and shapes
                labels, scores, threshold=self.threshold, distinct_scores=False)
            if self.table is None:
                self.table = ScoreTable()
            self.table.add(np.asarray(labels) == 1, np.asarray(scores))
            self.summary = part if self.summary is None else self.summary.merge(part)
            return
        if self.task == "binary_classification":
            part = BinaryClassificationStats.from_batch(labels, scores,
                                                        threshold=self.threshold,
                                                        weights=weights)
            self.pending.append(part)
            self.pending_size += part.scores.shape[0]
            size = 0 if self.merged is None else self.merged.scores.shape[0]
            if self.pending_size >= max(size, 1 << 20):
                self._flush()
            return
        if self.task == "multiclass_classification":
            part = MulticlassStats.from_batch(labels, scores, top_k=self.top_k, weights=weights)
        else:
            part = RegressionStats.from_batch(labels, scores, weights=weights)
        self.merged = part if self.merged is None else self.merged.merge(part)

    def _flush(self) -> None:
        from promoter.evaluation.binary_stats import BinaryClassificationStats

        parts = ([] if self.merged is None else [self.merged]) + self.pending
        self.merged = BinaryClassificationStats.merge_all(parts, threshold=self.threshold)
        self.pending, self.pending_size = [], 0

    def arrays(self) -> dict[str, Any]:
        """What `save` writes: the statistics' `to_arrays()`, with an unweighted binary
        stream's score table as it is (`task_stats.stats_from_arrays` turns it into distinct
        scores in the parent, whose memory TensorFlow does not fill)."""
        if self.summary is None or self.merged is not None or self.pending:
            return dict(self.result().to_arrays())
        return {**self.summary.to_arrays(), **self.table.to_arrays()}

    def result(self) -> Any:
        import dataclasses

        from promoter.evaluation.binary_stats import BinaryClassificationStats

        if self.pending:
            self._flush()
        if self.summary is None:
            return self.merged
        # The table hands its arrays over (`ScoreTable.distinct`): what they become is kept
        # in `merged`, so a second call gives the same statistics, not an empty table's.
        scores, at_positive, at_negative = self.table.distinct()
        counted = dataclasses.replace(self.summary, scores=scores, score_positives=at_positive,
                                      score_negatives=at_negative)
        self.summary = self.table = None
        self.merged = counted if self.merged is None else BinaryClassificationStats.merge_all(
            [self.merged, counted], threshold=self.threshold)
        return self.merged


class _ModelStream:
    """One model's statistics: overall, per bootstrap block, per slice value."""

    def __init__(self, task: str, request: dict[str, Any], slice_columns: list[str],
                 max_values: dict[str, int]) -> None:
        self.task = task
        self.request = request
        self.overall = _Stream(task, request)
        self.blocks: Any = None
        self.bootstrap = bool(request.get("bootstrap", True))
        self.pending: list[tuple[Any, Any, Any, Any]] = []
        self.pending_rows = 0
        self.center: float | None = None
        self.slices: dict[str, dict[str, _Stream]] = {c: {} for c in slice_columns}

    def add(self, batch: Any, scores: Any, ids: Any, *, who: str) -> None:
        import numpy as np

        from promoter.evaluation.metrics import check_scores

        check_scores(scores, who=who, lines=batch.lines,
                     probabilities=self.task != "regression")
        weights = batch.weights
        self.overall.add(batch.labels, scores, weights)
        if self.bootstrap:
            w = np.ones(batch.rows) if weights is None else weights
            self.pending.append((ids, batch.labels, scores, w))
            self.pending_rows += batch.rows
            # Block sums over many batches at once: a histogram's bincount costs its size
            # (blocks x bins) per call, so calling it per batch would dominate.
            if self.pending_rows >= 1 << 18:
                self._flush_blocks()
        for column, streams in self.slices.items():
            values = batch.text[column]
            for value in np.unique(values):
                mask = values == value
                stream = streams.get(str(value))
                if stream is None:
                    stream = streams[str(value)] = _Stream(self.task, self.request)
                stream.add(batch.labels[mask], scores[mask],
                           None if weights is None else weights[mask])

    def _flush_blocks(self) -> None:
        import numpy as np

        from promoter.evaluation import bootstrap

        if not self.pending:
            return
        ids, labels, scores, w = (np.concatenate(parts) for parts in zip(*self.pending,
                                                                          strict=True))
        self.pending, self.pending_rows = [], 0
        if self.task == "binary_classification":
            sums = bootstrap.binary_block_sums(ids, labels, scores,
                                               threshold=self.overall.threshold, weights=w)
        elif self.task == "multiclass_classification":
            sums = bootstrap.multiclass_block_sums(ids, labels, scores,
                                                   top_k=self.overall.top_k, weights=w)
        else:
            if self.center is None:
                self.center = float(np.mean(labels))
            sums = bootstrap.regression_block_sums(ids, labels, scores, center=self.center,
                                                   weights=w)
        self.blocks = sums if self.blocks is None else self.blocks + sums

    def save(self, path: Path) -> list[dict[str, Any]]:
        """Write every statistic to `path` (npz); return the slices' index."""
        import numpy as np

        self._flush_blocks()
        arrays = {f"overall.{k}": v for k, v in self.overall.arrays().items()}
        arrays["blocks"] = self.blocks if self.blocks is not None else np.zeros((0, 0))
        index = []
        for column, streams in self.slices.items():
            for value, stream in sorted(streams.items()):
                key = f"slice{len(index)}"
                index.append({"column": column, "value": value, "key": key})
                arrays |= {f"{key}.{k}": v for k, v in stream.arrays().items()}
        np.savez(path, **arrays)
        return index


def accumulate(stream: _ModelStream, batch: Any, scores: Any, ids: Any, *, holdout: Path,
               who: str, max_values: dict[str, int]) -> None:
    """Add one model's scores of one batch to its statistics (`ids`: the rows' bootstrap
    blocks), as the worker does for every batch and `shards.replay` for every shard's batch.

    Raises HoldoutError for labels the statistics refuse (naming the rows) and for a slice
    column with more than its `maxValues` distinct values; ModelLoadError for bad scores."""
    from promoter.errors import HoldoutError

    try:
        stream.add(batch, scores, ids, who=who)
    except ValueError as exc:
        raise HoldoutError(f"{holdout}, rows {batch.first_row + 1}-"
                           f"{batch.first_row + batch.rows}: {exc}",
                           fix="check the label column against the model's task "
                               "and outputs") from exc
    for name, values in stream.slices.items():
        if len(values) > max_values[name]:
            raise HoldoutError(
                f"slice column {name!r} of {holdout} has more than {max_values[name]} "
                "distinct values", fix="slice by a categorical column, or raise "
                                       "maxValues in the policy")
