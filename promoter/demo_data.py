"""Synthetic churn data for the demo and the tests: pure numpy, deterministic given a seed.

Each row is a customer with four numeric features and a 0/1 `churned` label drawn from a known
probability. The probability mixes linear effects (short tenure, many support calls, a drop in
usage) with non-linear ones (a U-shape in monthly spend, and an interaction between support
calls and usage drop), so that:

- a logistic regression on all features (demo v1) reaches an AUC of about 0.84,
- a small neural network (demo v2) finds the non-linear part too, about 0.92,
- a logistic regression on monthly spend alone (demo v3) is weak, about 0.56,

which is what the demo's policies (`policies/*.yaml`) are tuned against.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURE_COLUMNS = ("tenure_months", "monthly_spend", "support_calls", "usage_drop")
"""The model inputs, in the order the demo models concatenate them."""
LABEL_COLUMN = "churned"
"""The label column; promoter.yaml's `labelColumn` for the `churn` model."""
ID_COLUMN = "customer_id"
"""An extra, non-feature column: evaluation must ignore columns the signature does not use."""


@dataclass(frozen=True, slots=True, eq=False)
class ChurnData:
    """A synthetic sample of customers."""

    features: dict[str, np.ndarray]
    """Feature column name -> float64 values, shape [rows]."""
    labels: np.ndarray
    """0/1 int64 labels, shape [rows]."""
    probability: np.ndarray
    """The true churn probability each label was drawn from (the Bayes-optimal score)."""

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])


def generate_churn(rows: int, *, seed: int) -> ChurnData:
    """Draw `rows` customers; the same `rows` and `seed` always give the same data."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    tenure = np.clip(np.round(rng.gamma(2.0, 14.0, rows)), 1, 72)
    spend = np.round(np.clip(rng.normal(70.0, 25.0, rows), 15.0, 150.0), 2)
    calls = rng.poisson(1.5, rows).astype(np.float64)
    drop = np.round(rng.beta(2.0, 5.0, rows), 3)

    spend_z = (spend - 70.0) / 25.0
    logit = (
        -0.9
        - 1.8 * (tenure - 28.0) / 20.0
        + 1.0 * (calls - 1.5) / 1.2
        + 1.8 * (drop - 0.28) / 0.16
        + 0.5 * spend_z
        + 1.6 * (spend_z**2 - 1.0)  # very low and very high spenders both leave
        + 1.0 * ((calls >= 3) & (drop > 0.35))  # frustrated and already drifting away
    )
    probability = 1.0 / (1.0 + np.exp(-logit))
    labels = (rng.random(rows) < probability).astype(np.int64)
    features: dict[str, np.ndarray] = {
        "tenure_months": tenure,
        "monthly_spend": spend,
        "support_calls": calls,
        "usage_drop": drop,
    }
    return ChurnData(features=features, labels=labels, probability=probability)


def write_holdout_csv(path: Path, rows: int, seed: int) -> Path:
    """Write a holdout CSV (header, `customer_id`, the features, `churned`) and return `path`.

    Values are written with Python's shortest round-trip repr, so reading the file back gives
    exactly the generated float64 values.
    """
    data = generate_churn(rows, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([ID_COLUMN, *FEATURE_COLUMNS, LABEL_COLUMN])
        columns = [data.features[name].tolist() for name in FEATURE_COLUMNS]
        for index, label in enumerate(data.labels.tolist()):
            writer.writerow([f"c{seed:04d}-{index:07d}", *(_number(c[index]) for c in columns),
                             label])
    return path


def _number(value: float) -> str:
    # Whole numbers (tenure, support calls) print as integers, like an export from a warehouse.
    return str(int(value)) if float(value).is_integer() else repr(float(value))


DEMO_HOLDOUTS: dict[str, tuple[int, int]] = {
    "dev": (2_000, 101),
    "staging": (4_000, 202),
    "prod": (8_000, 303),
}
"""Environment -> (rows, seed) of the demo's holdout sets: each environment has its own rows."""


def write_demo_holdouts(data_dir: Path, model_name: str = "churn") -> dict[str, Path]:
    """Write `data_dir/<model>-holdout-<env>.csv` for dev, staging and prod; return them by env.

    The environment files of the demo point at `data/{model}-holdout-<env>.csv`.
    """
    return {
        env: write_holdout_csv(data_dir / f"{model_name}-holdout-{env}.csv", rows, seed)
        for env, (rows, seed) in DEMO_HOLDOUTS.items()
    }
