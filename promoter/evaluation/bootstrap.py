"""Paired Poisson bootstrap from per-block sufficient statistics. Pure (numpy only).

Resampling rows one by one costs resamples x rows work (10^10 for 1,000 resamples of 10M
rows). Instead every row goes to one of `N_BLOCKS` blocks by a hash of its row number (so a
block is a pseudo-random subset of rows, whatever the file's order), each block keeps the
additive statistics of its rows (`BlockAccumulator`), and a resample draws one Poisson(1)
weight per block: the resampled statistics of every replicate at once are the matrix product
`weights (R x B) @ block_statistics (B x k)`. Candidate and baseline use the same weights, so
the bootstrap is paired: the interval is that of the *difference* on the same rows.

For a metric that is a smooth function of sums (all of ours), the variance of the block
bootstrap is that of the row bootstrap in expectation over the hash, because each block's
centred influence sums to zero. AUC and AUC-PR are resampled from `AUC_HISTOGRAM_BINS` score
bins per block; the interval is shifted so that it is centred on the exact point estimate
(`interval()`): point values always come from the exact statistics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from promoter.evaluation.binary_stats import _calibration_bins, _log_loss_terms
from promoter.evaluation.metrics import AUC_HISTOGRAM_BINS, CALIBRATION_BINS

N_BLOCKS = 1024
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def block_ids(first_row: int, rows: int, *, blocks: int = N_BLOCKS) -> np.ndarray:
    """The block of each of `rows` consecutive rows starting at row number `first_row`: a
    multiplicative hash, so a sorted file still spreads every class over every block."""
    index = np.arange(first_row, first_row + rows, dtype=np.uint64)
    return (((index * _GOLDEN) >> np.uint64(40)) % np.uint64(blocks)).astype(np.int64)


def _sums(ids: np.ndarray, columns: list[np.ndarray], blocks: int) -> np.ndarray:
    return np.stack([np.bincount(ids, weights=c, minlength=blocks) for c in columns], axis=1)


def _grouped(ids: np.ndarray, group: np.ndarray, groups: int, weights: np.ndarray,
             blocks: int) -> np.ndarray:
    return np.bincount(ids * groups + group, weights=weights,
                       minlength=blocks * groups).reshape(blocks, groups)


def binary_block_sums(ids: np.ndarray, labels: np.ndarray, scores: np.ndarray, *,
                      threshold: float, weights: np.ndarray, blocks: int = N_BLOCKS
                      ) -> np.ndarray:
    """[blocks, 6 + 3*CALIBRATION_BINS + 2*AUC_HISTOGRAM_BINS] additive statistics."""
    positive = labels == 1
    predicted = scores >= threshold
    p64 = scores.astype(np.float64)
    ll = _log_loss_terms(positive, scores)
    w = weights
    dense = _sums(ids, [w * (positive & predicted), w * (~positive & predicted),
                        w * (~positive & ~predicted), w * (positive & ~predicted), w * ll,
                        w * (positive - p64) ** 2], blocks)
    cal = _calibration_bins(p64)
    calibration = [_grouped(ids, cal, CALIBRATION_BINS, v, blocks)
                   for v in (w, w * positive, w * p64)]
    hist = np.minimum((p64 * AUC_HISTOGRAM_BINS).astype(np.int64), AUC_HISTOGRAM_BINS - 1)
    pos = _grouped(ids, hist, AUC_HISTOGRAM_BINS, w * positive, blocks)
    neg = _grouped(ids, hist, AUC_HISTOGRAM_BINS, w * ~positive, blocks)
    return np.concatenate([dense, *calibration, pos, neg], axis=1)


def multiclass_block_sums(ids: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, *,
                          top_k: int, weights: np.ndarray, blocks: int = N_BLOCKS
                          ) -> np.ndarray:
    """[blocks, 3 + K*K]: weight, top-k hits, log-loss sum, confusion matrix."""
    k = probabilities.shape[1]
    y = labels.astype(np.int64)
    true_score = probabilities[np.arange(y.shape[0]), y]
    index = np.arange(k)
    rank = ((probabilities > true_score[:, None]).sum(axis=1)
            + ((probabilities == true_score[:, None]) & (index[None, :] > y[:, None])).sum(1))
    eps = np.finfo(probabilities.dtype).eps
    ll = -np.log(np.clip(true_score, eps, 1 - eps).astype(np.float64))
    dense = _sums(ids, [weights, weights * (rank < top_k), weights * ll], blocks)
    confusion = _grouped(ids, y * k + np.argmax(probabilities, axis=1), k * k, weights, blocks)
    return np.concatenate([dense, confusion], axis=1)


def regression_block_sums(ids: np.ndarray, labels: np.ndarray, predictions: np.ndarray, *,
                          center: float, weights: np.ndarray, blocks: int = N_BLOCKS
                          ) -> np.ndarray:
    """[blocks, 6]: weight, |e|, e², APE, (y - center), (y - center)² (all weighted)."""
    y = labels.astype(np.float64)
    error = np.abs(predictions.astype(np.float64) - y)
    ape = error / np.maximum(np.abs(y), np.finfo(np.float64).eps)
    yc = y - center
    w = weights
    return _sums(ids, [w, w * error, w * error ** 2, w * ape, w * yc, w * yc ** 2], blocks)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)


def replicate_metrics(task: str, sums: np.ndarray, *, classes: int = 0
                      ) -> dict[str, np.ndarray]:
    """Metric values of each replicate from resampled sums [R, k]; NaN where undefined."""
    if task == "binary_classification":
        tp, fp, tn, fn, ll, brier = (sums[:, i] for i in range(6))
        total = tp + fp + tn + fn
        c0 = 6
        cal = sums[:, c0:c0 + 3 * CALIBRATION_BINS].reshape(-1, 3, CALIBRATION_BINS)
        h0 = c0 + 3 * CALIBRATION_BINS
        pos = sums[:, h0:h0 + AUC_HISTOGRAM_BINS]
        neg = sums[:, h0 + AUC_HISTOGRAM_BINS:]
        below = np.cumsum(neg, axis=1) - neg
        correct = (pos * below).sum(1) + 0.5 * (pos * neg).sum(1)
        tp_cum = np.cumsum(pos[:, ::-1], axis=1)
        predicted = tp_cum + np.cumsum(neg[:, ::-1], axis=1)
        precision_at = _div(tp_cum, predicted)
        ap = _div(np.nansum(pos[:, ::-1] * precision_at, axis=1), tp_cum[:, -1])
        return {
            "accuracy": _div(tp + tn, total), "precision": _div(tp, tp + fp),
            "recall": _div(tp, tp + fn), "f1": _div(2 * tp, 2 * tp + fp + fn),
            "auc": _div(correct, pos.sum(1) * neg.sum(1)), "auc_pr": ap,
            "log_loss": _div(ll, total), "brier": _div(brier, total),
            "calibration_error": _div(np.abs(cal[:, 1] - cal[:, 2]).sum(1), total),
        }
    if task == "multiclass_classification":
        total, top, ll = sums[:, 0], sums[:, 1], sums[:, 2]
        confusion = sums[:, 3:].reshape(-1, classes, classes)
        tp = np.diagonal(confusion, axis1=1, axis2=2)
        true_w, pred_w = confusion.sum(2), confusion.sum(1)
        den = true_w + pred_w
        f1 = _div(2 * tp, den)
        present = den > 0
        macro = _div(np.where(present, np.nan_to_num(f1), 0).sum(1), present.sum(1))
        accuracy = _div(tp.sum(1), total)
        return {"accuracy": accuracy, "top_k_accuracy": _div(top, total), "macro_f1": macro,
                "micro_f1": accuracy, "log_loss": _div(ll, total)}
    if task == "regression":
        total, abs_sum, sq_sum, ape_sum, yc, yc2 = (sums[:, i] for i in range(6))
        sst = yc2 - _div(yc * yc, total)
        return {"mae": _div(abs_sum, total), "rmse": np.sqrt(_div(sq_sum, total)),
                "r2": 1 - _div(sq_sum, np.where(sst > 0, sst, 0)), "mape": _div(ape_sum, total)}
    raise ValueError(f"unknown task {task!r}")


def poisson_weights(resamples: int, *, blocks: int = N_BLOCKS, seed: int = 0) -> np.ndarray:
    """[resamples + 1, blocks] Poisson(1) weights; the last row is all ones (the full sample
    through the same approximation, used to centre intervals on the exact estimate)."""
    rng = np.random.default_rng(seed)
    weights = rng.poisson(1.0, size=(resamples + 1, blocks)).astype(np.float64)
    weights[-1] = 1.0
    return weights


@dataclass(frozen=True, slots=True, eq=False)
class Replicates:
    """One model's metric values in each resample, paired with the other model's by row."""

    values: Mapping[str, np.ndarray]
    """Metric name -> [resamples] values (NaN where undefined in that resample)."""
    full: Mapping[str, float]
    """Metric name -> the value on all rows through the same approximation."""


def resample(task: str, block_sums: np.ndarray, weights: np.ndarray, *,
             classes: int = 0) -> Replicates:
    """Every replicate of every metric of one model: one matrix product."""
    values = replicate_metrics(task, weights @ block_sums, classes=classes)
    return Replicates(values={k: v[:-1] for k, v in values.items()},
                      full={k: float(v[-1]) for k, v in values.items()})


def interval(exact: float, replicates: np.ndarray, approx_full: float, *,
             confidence: float) -> tuple[float, float] | None:
    """Percentile interval of a statistic, shifted to be centred like the exact estimate:
    `exact + quantiles(replicates - approx_full)`. None if too many replicates are undefined
    (more than 1 - confidence of them)."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0 or finite.size < confidence * replicates.size \
            or not np.isfinite(approx_full):
        return None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(finite - approx_full, [alpha, 1 - alpha])
    return exact + float(low), exact + float(high)
