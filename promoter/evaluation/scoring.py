"""The TensorFlow adapter: load a SavedModel, describe its signature, score batches.

This module and `promoter.demo_models` are the only ones that import TensorFlow, and only
inside functions. It runs in the evaluation worker process (`promoter.evaluation.worker`),
never in promoter's own process: a SavedModel is code that promoter did not write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promoter.errors import ModelLoadError
from promoter.evaluation.signature import (
    SignatureInfo,
    TensorInfo,
    check_inputs,
    check_output_shape,
    choose_output,
    choose_signature,
)
from promoter.model_store import require_saved_model


@dataclass(frozen=True, slots=True, eq=False)
class TensorFlowModel:
    """A loaded SavedModel signature that turns input arrays into scores."""

    label: str
    """How messages name the model, e.g. "the candidate model at models/churn/2"."""
    info: SignatureInfo
    _function: Any
    _loaded: Any
    """The loaded object; kept alive because the signature function only holds weak
    references to the model's variables."""
    memory_limit_bytes: int | None = None
    """The worker's address-space limit, named when the model runs out of memory."""

    def score(self, feeds: dict[str, np.ndarray], *,
              task: str = "binary_classification") -> np.ndarray:
        """Run the signature on one batch; return the chosen output as a 1-D array ([N, K] for
        multi-class) in its own float dtype, so log loss clips like scikit-learn would.

        Raises ModelLoadError if the model fails on the batch or returns the wrong shape.
        """
        import tensorflow as tf

        rows = next(iter(feeds.values())).shape[0] if feeds else 0
        try:
            outputs = self._function(**{name: tf.constant(value)
                                        for name, value in feeds.items()})
        except tf.errors.ResourceExhaustedError as exc:
            raise out_of_memory(self.label, self.memory_limit_bytes, exc) from exc
        except tf.errors.InvalidArgumentError as exc:
            raise ModelLoadError(f"{self.label} failed while scoring {rows} rows: an op "
                                 f"rejected its input: {_first_line(exc)}",
                                 fix="check that the holdout's columns (names, types, "
                                     "shapes) match what the model was trained on") from exc
        except tf.errors.OpError as exc:
            raise ModelLoadError(f"{self.label} failed while scoring: "
                                 f"{type(exc).__name__} from the model's own ops: "
                                 f"{_first_line(exc)}",
                                 fix="the model fails by itself; reproduce it with "
                                     "`saved_model_cli run` on a few rows") from exc
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{self.label} cannot take the holdout's columns: "
                                 f"{_first_line(exc)}",
                                 fix="check that the holdout's columns match what the model "
                                     "was trained on") from exc
        result = np.asarray(outputs[self.info.output].numpy())
        check_output_shape(result.shape, rows, model=self.label, output=self.info.output,
                           task=task)
        if not np.issubdtype(result.dtype, np.floating):
            if task != "regression":
                raise ModelLoadError(
                    f"{self.label}: output {self.info.output!r} has dtype {result.dtype}; "
                    "evaluation needs probabilities (a float output)",
                    fix="configure the output that holds the probability of class 1")
            result = result.astype(np.float64)
        return result if task == "multiclass_classification" else result.reshape(rows)

    def call(self, feeds: dict[str, Any]) -> None:
        """Run the signature once and wait for the result (latency measurement)."""
        import tensorflow as tf

        self._function(**{name: tf.constant(value) for name, value in feeds.items()})[
            self.info.output].numpy()


def load_model(path: Path, *, signature: str, output: str | None, label: str,
               memory_limit_bytes: int | None = None) -> TensorFlowModel:
    """Load the SavedModel at `path` and prepare `signature` for scoring.

    Raises ModelStoreError if `path` is not a SavedModel directory, and ModelLoadError if it
    cannot be loaded, lacks the signature, or has outputs/inputs evaluation cannot use.
    `label` names the model in messages, `memory_limit_bytes` the worker's limit in an
    out-of-memory message.
    """
    require_saved_model(path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))
    except tf.errors.ResourceExhaustedError as exc:
        raise out_of_memory(label, memory_limit_bytes, exc) from exc
    except Exception as exc:  # TF raises many unrelated types for a corrupt model
        raise ModelLoadError(f"{label} cannot be loaded: {_first_line(exc)}",
                             fix="re-export the SavedModel; the directory may be incomplete "
                                 "or from an incompatible TensorFlow version") from exc
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    name = choose_signature(list(signatures), signature, model=label)
    function = signatures[name]
    _, input_specs = function.structured_input_signature
    inputs = tuple(_tensor(key, spec) for key, spec in sorted(input_specs.items()))
    outputs_spec = function.structured_outputs
    if not isinstance(outputs_spec, dict):
        raise ModelLoadError(f"{label}: signature {name!r} does not return named outputs",
                             fix="export the signature with a dict of outputs")
    outputs = tuple(_tensor(key, spec) for key, spec in sorted(outputs_spec.items()))
    info = SignatureInfo(name=name, inputs=inputs, outputs=outputs,
                         output=choose_output(outputs, output, model=label, signature=name))
    check_inputs(info, model=label)
    return TensorFlowModel(label=label, info=info, _function=function, _loaded=loaded,
                           memory_limit_bytes=memory_limit_bytes)


def out_of_memory(label: str, limit: int | None, exc: BaseException) -> ModelLoadError:
    """The error for a model that ran out of memory: which limit, and how to raise it (rather
    than blaming the holdout's columns, as any op error once was)."""
    within = (f"within the worker's memory limit of {limit // 2**20} MiB" if limit
              else "(no memory limit was set: the machine itself ran out)")
    return ModelLoadError(
        f"{label} ran out of memory {within}: {_first_line(exc)}",
        fix=("raise the limit (`promoter evaluate --memory-limit-mb`, the evaluator's "
             "memory_limit_mb) if the model needs more; a model that allocates far beyond its "
             "size is not promotable") if limit
        else "give the worker a memory limit, or a machine with more memory")


def _tensor(name: str, spec: Any) -> TensorInfo:
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(name=name, dtype=spec.dtype.name, shape=shape)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
