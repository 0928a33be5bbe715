"""What a SavedModel's serving signature looks like, as plain values (no TensorFlow).

The TensorFlow adapter (`scoring.py`) describes a signature with these classes; everything that
decides from the description (which output to use, whether a holdout column can feed an input)
is here, pure and testable without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from promoter.errors import ModelLoadError

NUMERIC_DTYPES = frozenset({
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool",
})
"""Input dtypes fed from numeric holdout columns."""
TEXT_DTYPES = frozenset({"string"})
"""Input dtypes fed with the holdout's raw cell text."""


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One input or output of a signature."""

    name: str
    """Key in the signature's inputs or outputs (for inputs: the holdout column feeding it)."""
    dtype: str
    """TensorFlow dtype name, e.g. `float32`, `int64`, `string`."""
    shape: tuple[int | None, ...] | None
    """Dimensions, None for an unknown size; the whole shape is None if the rank is unknown."""

    def describe(self) -> str:
        """E.g. `float32, shape [None, 1]`."""
        if self.shape is None:
            return f"{self.dtype}, shape unknown"
        dims = ", ".join("None" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}, shape [{dims}]"

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype,
                "shape": None if self.shape is None else list(self.shape)}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> TensorInfo:
        shape = data.get("shape")
        return cls(name=str(data["name"]), dtype=str(data["dtype"]),
                   shape=None if shape is None else tuple(
                       None if d is None else int(d) for d in shape))


@dataclass(frozen=True, slots=True)
class SignatureInfo:
    """A signature of a loaded SavedModel and the output evaluation reads."""

    name: str
    """Signature key, e.g. `serving_default`."""
    inputs: tuple[TensorInfo, ...]
    """Sorted by name."""
    outputs: tuple[TensorInfo, ...]
    """Sorted by name."""
    output: str
    """The output holding the probability of class 1."""

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "output": self.output,
                "inputs": [t.to_json_dict() for t in self.inputs],
                "outputs": [t.to_json_dict() for t in self.outputs]}

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> SignatureInfo:
        return cls(name=str(data["name"]), output=str(data["output"]),
                   inputs=tuple(TensorInfo.from_json_dict(t) for t in data["inputs"]),
                   outputs=tuple(TensorInfo.from_json_dict(t) for t in data["outputs"]))


def choose_signature(available: list[str], wanted: str, *, model: str) -> str:
    """Return `wanted` if the model has it; else raise ModelLoadError listing what it has."""
    if wanted in available:
        return wanted
    listed = ", ".join(sorted(available)) or "none"
    raise ModelLoadError(
        f"{model} has no signature {wanted!r}; its signatures: {listed}",
        fix="set `signature` for the model in promoter.yaml (or pass --signature)",
    )


def choose_output(outputs: tuple[TensorInfo, ...], wanted: str | None, *, model: str,
                  signature: str) -> str:
    """Pick the output evaluation reads: `wanted`, or the only one there is.

    Raises ModelLoadError if `wanted` is absent, or if there are several outputs and none was
    configured (guessing could gate on the wrong tensor, e.g. logits instead of probabilities).
    """
    names = [t.name for t in outputs]
    listed = ", ".join(f"{t.name} ({t.describe()})" for t in outputs) or "none"
    if wanted is not None:
        if wanted in names:
            return wanted
        raise ModelLoadError(
            f"{model}: signature {signature!r} has no output {wanted!r}; its outputs: {listed}",
            fix="set `output` for the model in promoter.yaml (or pass --output) to one of them",
        )
    if len(names) == 1:
        return names[0]
    raise ModelLoadError(
        f"{model}: signature {signature!r} has {len(names)} outputs and none is configured: "
        f"{listed}",
        fix="set `output` for the model in promoter.yaml (or pass --output) to the one that "
            "holds the probability of class 1",
    )


def check_inputs(info: SignatureInfo, *, model: str) -> None:
    """Raise ModelLoadError unless every input can be fed from one holdout column per row:
    a known dtype, and a shape of [None], [None, 1] (any trailing 1s) or unknown; or, for a
    numeric input, a vector [None, d] that a TFRecord feature of d values feeds (a CSV holdout
    refuses it when read)."""
    for tensor in info.inputs:
        where = f"{model}: input {tensor.name!r} of signature {info.name!r} ({tensor.describe()})"
        if tensor.dtype not in NUMERIC_DTYPES | TEXT_DTYPES:
            raise ModelLoadError(f"{where} has a dtype evaluation cannot feed from a CSV column",
                                 fix="export a signature with numeric or string inputs")
        if tensor.shape is None:
            continue
        if len(tensor.shape) == 0:
            raise ModelLoadError(f"{where} is a scalar; evaluation feeds a batch of rows",
                                 fix="export the signature with a leading batch dimension None")
        if tensor.shape[0] is not None:
            raise ModelLoadError(f"{where} has a fixed batch size {tensor.shape[0]}",
                                 fix="export the signature with a leading batch dimension None")
        if input_width(tensor) > 1 and tensor.dtype in NUMERIC_DTYPES:
            continue
        if any(d not in (None, 1) for d in tensor.shape[1:]):
            raise ModelLoadError(
                f"{where} takes several values per row; a holdout column holds one",
                fix="export a signature with one input per feature, shape [None] or [None, 1]")


def input_width(tensor: TensorInfo) -> int:
    """Values per row of `tensor`: d for a vector input [None, d], else 1."""
    if tensor.shape is not None and len(tensor.shape) == 2 and isinstance(tensor.shape[1], int):
        return max(tensor.shape[1], 1)
    return 1


def feed_shape(tensor: TensorInfo, rows: int) -> tuple[int, ...]:
    """The array shape that feeds `rows` rows to `tensor` (checked by `check_inputs`)."""
    if tensor.shape is None:
        return (rows,)
    if input_width(tensor) > 1:
        return (rows, input_width(tensor))
    return (rows, *(1 for _ in tensor.shape[1:]))


def check_output_shape(shape: tuple[int, ...], rows: int, *, model: str, output: str,
                       task: str = "binary_classification") -> None:
    """Raise ModelLoadError unless an output of `shape` holds `task`'s prediction for each of
    `rows`: one number ([N] or [N, 1]), or for multi-class one probability per class [N, K]."""
    if task == "multiclass_classification":
        if len(shape) == 2 and shape[0] == rows and shape[1] >= 2:
            return
        raise ModelLoadError(
            f"{model}: output {output!r} has shape {list(shape)} for a batch of {rows} rows; "
            "multi-class evaluation needs class probabilities [N, K] with K >= 2",
            fix="configure the output that holds the softmax probabilities")
    if len(shape) >= 1 and shape[0] == rows and all(d == 1 for d in shape[1:]):
        return
    what = ("one probability per row ([N] or [N, 1])" if task == "binary_classification"
            else "one prediction per row ([N] or [N, 1])")
    raise ModelLoadError(
        f"{model}: output {output!r} has shape {list(shape)} for a batch of {rows} rows; "
        f"evaluation needs {what}",
        fix="configure the output that holds the probability of class 1"
        if task == "binary_classification" else "configure the output that holds the prediction",
    )


def compatibility_problems(deployed: SignatureInfo, candidate: SignatureInfo) -> list[str]:
    """Why the candidate's signature cannot take the deployed one's place; empty if it can.

    Clients send what the deployed signature accepts, so every deployed input must exist in
    the candidate with the same dtype (TF Serving does not convert request dtypes) and a shape
    that accepts the deployed shape (same rank; each candidate dimension unknown or equal). A
    candidate input the deployed signature lacks would be missing from every request. The
    output the policy reads must still exist with the same dtype.
    """
    problems: list[str] = []
    mine = {t.name: t for t in candidate.inputs}
    theirs = {t.name: t for t in deployed.inputs}
    for name, old in theirs.items():
        new = mine.get(name)
        if new is None:
            problems.append(f"input {name!r} ({old.describe()}) was removed")
            continue
        if new.dtype != old.dtype:
            problems.append(f"input {name!r} changed dtype {old.dtype} -> {new.dtype}")
        if not _accepts(new.shape, old.shape):
            problems.append(f"input {name!r} shape {_shape(old.shape)} -> {_shape(new.shape)} "
                            "does not accept what clients send")
    for name, new in mine.items():
        if name not in theirs:
            problems.append(f"input {name!r} ({new.describe()}) is new: clients do not send it")
    outputs = {t.name: t for t in candidate.outputs}
    used = next((t for t in deployed.outputs if t.name == deployed.output), None)
    if deployed.output not in outputs:
        problems.append(f"output {deployed.output!r}, which the policy reads, was removed")
    elif used is not None and outputs[deployed.output].dtype != used.dtype:
        problems.append(f"output {deployed.output!r} changed dtype {used.dtype} -> "
                        f"{outputs[deployed.output].dtype}")
    return problems


def signature_diff(deployed: SignatureInfo, candidate: SignatureInfo) -> list[str]:
    """A line diff of the two signatures (`-` deployed only, `+` candidate only, ` ` both)."""
    def lines(info: SignatureInfo) -> list[str]:
        return ([f"input  {t.name}: {t.describe()}" for t in info.inputs]
                + [f"output {t.name}: {t.describe()}" for t in info.outputs])
    old, new = lines(deployed), lines(candidate)
    keys = sorted(set(old) | set(new), key=lambda line: (line.split(":")[0], line not in old))
    return [("  " if k in old and k in new else "- " if k in old else "+ ") + k for k in keys]


def _accepts(new: tuple[int | None, ...] | None, old: tuple[int | None, ...] | None) -> bool:
    if new is None:
        return True
    if old is None or len(new) != len(old):
        return False
    return all(n is None or n == o for n, o in zip(new, old, strict=True))


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"
