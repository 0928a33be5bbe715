"""What a model's signature needs from a holdout, and the arrays a holdout's batches feed it.

The seam between the readers (`holdout`, `arrow_csv`, `parquet_holdout`, `tfrecord`), which
know files and give `HoldoutBatch`es of columns, and the worker, which knows signatures:
`columns_for` says which columns a signature's inputs need (the readers read only those), and
`feed_inputs` casts and shapes a batch's columns for one model call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from promoter.errors import HoldoutError
from promoter.evaluation.holdout import ColumnRequest, HoldoutBatch
from promoter.evaluation.signature import TEXT_DTYPES, SignatureInfo, feed_shape, input_width


def columns_for(info: SignatureInfo, *, model: str) -> list[ColumnRequest]:
    """The holdout columns `info`'s inputs need; `model` names it in messages."""
    return [ColumnRequest(name=t.name, text=t.dtype in TEXT_DTYPES,
                          needed_by=f"input {t.name!r} ({t.describe()}) of {model}'s "
                                    f"signature {info.name!r}", width=input_width(t))
            for t in info.inputs]


def feed_inputs(info: SignatureInfo, batch: HoldoutBatch, *, model: str,
                source: Path) -> dict[str, np.ndarray]:
    """Arrays for each of `info`'s inputs from `batch`: cast to the input's dtype and shaped
    [N] or [N, 1] like the input. Raises HoldoutError for a value the dtype cannot hold (a
    fraction for an integer input, say), naming `source`'s line and column."""
    feeds: dict[str, np.ndarray] = {}
    for tensor in info.inputs:
        shape = feed_shape(tensor, batch.rows)
        if tensor.dtype in TEXT_DTYPES:
            feeds[tensor.name] = batch.text[tensor.name].reshape(shape)
            continue
        values = batch.numeric[tensor.name]
        dtype = np.dtype(tensor.dtype)
        if dtype.kind in "iub":
            if dtype.kind == "b":
                fits = (values == 0) | (values == 1)
                want = "0 or 1"
            else:
                limits = np.iinfo(dtype)
                fits = (values == np.round(values)) & (values >= limits.min) & (
                    values <= limits.max)
                want = f"a whole number in {dtype.name}'s range"
            if not fits.all():
                first = int(np.argmax(~fits))
                raise HoldoutError(
                    f"{source}, line {int(batch.lines[first])}, column {tensor.name!r}: "
                    f"{float(values[first])!r} is not {want}, as input {tensor.name!r} "
                    f"({tensor.describe()}) of {model} needs",
                    fix="fix the value, or export the input as a float")
        feeds[tensor.name] = values.astype(dtype, copy=False).reshape(shape)
    return feeds
