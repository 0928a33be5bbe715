"""Train the demo's three churn models and export them as SavedModels, in seconds.

- v1: logistic regression on all four features: decent (AUC about 0.84).
- v2: a small neural network on all four features: clearly better (about 0.92); it learns the
  non-linear effects `promoter.demo_data` puts in the labels.
- v3: logistic regression on monthly spend alone, a model someone trained with the wrong
  feature list: clearly worse (about 0.56) and meant to be stopped by the dev gate.

Every version exports the same serving signature, the contract `promoter evaluate` and
TensorFlow Serving rely on: `serving_default` with one float32 input per feature column,
shape [None, 1], named like the column, and a dict output whose `probability` key holds the
churn probability, shape [None, 1]. Normalization is part of the model, so the inputs are raw
holdout values.

TensorFlow and Keras are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promoter.demo_data import FEATURE_COLUMNS, generate_churn, write_demo_holdouts
from promoter.errors import ModelStoreError

__all__ = ["DEMO_VERSIONS", "train_demo_models", "write_demo_holdouts"]

DEMO_VERSIONS = (1, 2, 3)
TRAINING_ROWS = 6_000


def train_demo_models(store_root: Path, *, model_name: str = "churn", seed: int = 0,
                      overwrite: bool = False,
                      progress: Callable[[str], None] | None = None) -> dict[int, Path]:
    """Train v1, v2 and v3 and export them to `store_root/<model_name>/<version>/`.

    `progress`, when given, is called as each version's training starts (it takes seconds,
    so a command can show that work is going on).

    Returns the SavedModel directory of each version. Raises ModelStoreError if a version
    directory exists already, unless `overwrite` (versions in a store are meant to be
    immutable, so replacing one must be asked for).

    Deterministic for a given `seed` up to float rounding in TensorFlow's threaded kernels.
    Side effect: seeds Python's, NumPy's and TensorFlow's global random generators (Keras
    offers no other way to seed weight initialization and shuffling).
    """
    targets = {version: store_root / model_name / str(version) for version in DEMO_VERSIONS}
    existing = [path for path in targets.values() if path.exists()]
    if existing and not overwrite:
        raise ModelStoreError(
            f"{existing[0]} exists already; model versions are immutable",
            fix="use an empty model store directory, or pass overwrite=True",
        )

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow's first import
    import keras

    keras.utils.set_random_seed(seed)
    train = generate_churn(TRAINING_ROWS, seed=10_000 + seed)
    features = {name: values.reshape(-1, 1).astype("float32")
                 for name, values in train.features.items()}
    labels = train.labels.astype("float32").reshape(-1, 1)

    builders = {
        1: lambda: _linear(keras, features, FEATURE_COLUMNS),
        2: lambda: _network(keras, features),
        3: lambda: _linear(keras, features, ("monthly_spend",)),
    }
    fit = {1: (0.05, 12, 256), 2: (0.01, 20, 256), 3: (0.05, 12, 256)}  # (lr, epochs, batch)
    what = {1: "logistic regression, 4 features", 2: "neural network, 4 features",
            3: "logistic regression, 1 feature"}
    for version, build in builders.items():
        if progress is not None:
            progress(f"training {model_name} v{version} ({what[version]}) and exporting it")
        model = build()
        learning_rate, epochs, batch_size = fit[version]
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                      loss={"probability": "binary_crossentropy"})
        model.fit(features, {"probability": labels}, epochs=epochs, batch_size=batch_size,
                  shuffle=True, verbose=0)
        _export(model, targets[version])
    return targets


def _inputs(keras: Any) -> dict[str, Any]:
    return {name: keras.Input(shape=(1,), name=name, dtype="float32")
            for name in FEATURE_COLUMNS}


def _normalized(keras: Any, inputs: dict[str, Any], features: dict[str, Any],
                columns: tuple[str, ...]) -> Any:
    import numpy as np

    stacked = np.concatenate([features[name] for name in columns], axis=1)
    joined = (keras.layers.Concatenate()([inputs[name] for name in columns])
              if len(columns) > 1 else inputs[columns[0]])
    # Fixed statistics instead of adapt(): the layer becomes constants in the SavedModel.
    return keras.layers.Normalization(mean=stacked.mean(axis=0),
                                      variance=stacked.var(axis=0))(joined)


def _linear(keras: Any, features: dict[str, Any], columns: tuple[str, ...]) -> Any:
    # Every feature is an input even when unused, so all versions share one signature.
    inputs = _inputs(keras)
    hidden = _normalized(keras, inputs, features, columns)
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
    return keras.Model(inputs=inputs, outputs={"probability": probability})


def _network(keras: Any, features: dict[str, Any]) -> Any:
    inputs = _inputs(keras)
    hidden = _normalized(keras, inputs, features, FEATURE_COLUMNS)
    hidden = keras.layers.Dense(32, activation="relu")(hidden)
    hidden = keras.layers.Dense(16, activation="relu")(hidden)
    probability = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
    return keras.Model(inputs=inputs, outputs={"probability": probability})


def _export(model: Any, target: Path) -> None:
    # Export next to the target and rename, so a crash never leaves half a version in the store.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        exported = staging / "model"
        model.export(str(exported), format="tf_saved_model", verbose=False)
        if target.exists():
            shutil.rmtree(target)
        exported.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
