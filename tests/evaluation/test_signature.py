"""Choosing the signature and output, and which inputs a CSV column can feed. Pure."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.errors import ModelLoadError
from promoter.evaluation.signature import (
    SignatureInfo,
    TensorInfo,
    check_inputs,
    check_output_shape,
    choose_output,
    choose_signature,
    feed_shape,
)

PROBABILITY = TensorInfo("probability", "float32", (None, 1))
LOGIT = TensorInfo("logit", "float32", (None, 1))


def test_choose_signature_lists_what_exists() -> None:
    assert choose_signature(["serving_default"], "serving_default", model="m") == "serving_default"
    with pytest.raises(ModelLoadError, match="m has no signature 'predict'; its signatures: a, "
                                             "serving_default"):
        choose_signature(["serving_default", "a"], "predict", model="m")


def test_choose_output() -> None:
    assert choose_output((PROBABILITY,), None, model="m", signature="s") == "probability"
    assert choose_output((LOGIT, PROBABILITY), "probability", model="m",
                         signature="s") == "probability"
    with pytest.raises(ModelLoadError, match="2 outputs and none is configured: logit "
                                             r"\(float32, shape \[None, 1\]\), probability"):
        choose_output((LOGIT, PROBABILITY), None, model="m", signature="s")
    with pytest.raises(ModelLoadError, match="has no output 'score'; its outputs: probability"):
        choose_output((PROBABILITY,), "score", model="m", signature="s")


@pytest.mark.parametrize(("tensor", "match"), [
    (TensorInfo("x", "float32", ()), "is a scalar"),
    (TensorInfo("x", "float32", (1,)), "fixed batch size 1"),
    (TensorInfo("x", "float32", (None, 3, 2)), "several values per row"),
    (TensorInfo("x", "string", (None, 3)), "several values per row"),
    (TensorInfo("x", "complex64", (None,)), "dtype evaluation cannot feed"),
])
def test_inputs_a_column_cannot_feed(tensor: TensorInfo, match: str) -> None:
    info = SignatureInfo("s", (tensor,), (PROBABILITY,), "probability")
    with pytest.raises(ModelLoadError, match=match):
        check_inputs(info, model="m")


@pytest.mark.parametrize(("shape", "fed"), [
    ((None,), (5,)), ((None, 1), (5, 1)), ((None, None), (5, 1)), (None, (5,)),
    ((None, 1, 1), (5, 1, 1)),
])
def test_feed_shape(shape: tuple[int | None, ...] | None, fed: tuple[int, ...]) -> None:
    tensor = TensorInfo("x", "float32", shape)
    check_inputs(SignatureInfo("s", (tensor,), (PROBABILITY,), "probability"), model="m")
    assert feed_shape(tensor, 5) == fed


def test_output_must_hold_one_score_per_row() -> None:
    check_output_shape((5,), 5, model="m", output="p")
    check_output_shape((5, 1), 5, model="m", output="p")
    with pytest.raises(ModelLoadError, match=r"shape \[5, 2\] for a batch of 5 rows"):
        check_output_shape((5, 2), 5, model="m", output="p")


def test_signature_info_json_round_trip() -> None:
    info = SignatureInfo("s", (TensorInfo("x", "float32", None), LOGIT), (PROBABILITY,),
                         "probability")
    assert SignatureInfo.from_json_dict(info.to_json_dict()) == info


def test_vector_inputs_are_fed_from_one_tfrecord_feature_and_refused_from_csv(
        tmp_path: Path) -> None:
    from promoter.errors import HoldoutError
    from promoter.evaluation.holdout import HoldoutReader
    from promoter.evaluation.holdout_feeds import columns_for
    from promoter.evaluation.signature import (
        SignatureInfo,
        check_inputs,
        feed_shape,
        input_width,
    )

    vector = TensorInfo("features", "float32", (None, 32))
    assert input_width(vector) == 32
    assert feed_shape(vector, 5) == (5, 32)
    info = SignatureInfo(name="serving_default", inputs=(vector,), outputs=(), output="p")
    check_inputs(info, model="m")  # accepted: a TFRecord feature of 32 values feeds it
    holdout = tmp_path / "h.csv"
    holdout.write_text("features,label\n1,0\n")
    with pytest.raises(HoldoutError, match="takes 32 values per row, but a CSV column"):
        HoldoutReader(holdout, label_column="label", columns=columns_for(info, model="m"))
