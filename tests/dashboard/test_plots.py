"""The promotion page's plots, drawn from a report's JSON by matplotlib."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from promoter.dashboard.plots import PlotCache, draw_all, slice_checks


def report(*, with_curves: bool = True) -> dict[str, Any]:
    def model(auc: float, shift: float) -> dict[str, Any]:
        plots = {
            "roc": {"thresholds": [None, 0.9, 0.5, 0.1], "fpr": [0, 0.1, 0.3 + shift, 1],
                    "tpr": [0, 0.5, 0.8, 1]},
            "precisionRecall": {"thresholds": [None, 0.9, 0.5, 0.1],
                                "precision": [1, 0.9, 0.7 - shift, 0.4],
                                "recall": [0, 0.5, 0.8, 1]},
            "calibration": {"edges": [0, 0.5, 1], "meanPredicted": [0.25, None],
                            "observed": [0.2 + shift, None], "count": [10, 0]},
        }
        return {"digest": "sha256:" + "ab" * 32, "metrics": {"auc": auc},
                "latencyMs": {"p50Ms": 1.0, "p99Ms": 4.0, "batchP50Ms": 2.0,
                              "batchP99Ms": 6.0, "batchSize": 256},
                "sizeBytes": 3_000_000, "plots": plots if with_curves else None}

    return {
        "task": "binary_classification", "candidate": model(0.91, 0.0),
        "baseline": model(0.85, 0.1),
        "checks": [
            {"name": "slice[region=eu].auc.min", "metric": "auc", "verdict": "pass",
             "observed": 0.9, "bound": 0.8, "interval": None, "slice": "region=eu"},
            {"name": "slice[region=us].auc.min", "metric": "auc", "verdict": "fail",
             "observed": 0.7, "bound": 0.8, "interval": None, "slice": "region=us"},
            {"name": "auc.vsBaseline", "metric": "auc", "verdict": "inconclusive",
             "observed": 0.01, "bound": 0.0, "interval": [-0.02, 0.04], "slice": None},
            {"name": "log_loss.vsBaseline", "metric": "log_loss", "verdict": "pass",
             "observed": 0.05, "bound": -0.01, "interval": [0.02, 0.08], "slice": None},
            {"name": "budget.p99LatencyMs", "metric": "budget", "verdict": "pass",
             "observed": 4.0, "bound": 10.0, "interval": None, "slice": None},
        ],
    }


def test_every_plot_is_drawn_as_inline_svg_with_a_name() -> None:
    plots = draw_all(report())
    assert [p.key for p in plots] == ["roc", "pr", "calibration", "forest", "slices",
                                      "budgets"]
    for plot in plots:
        assert plot.svg is not None, plot.missing
        assert plot.svg.startswith("<svg role=\"img\" aria-label=")
        assert "<?xml" not in plot.svg
        assert "<script" not in plot.svg
    by_key = {p.key: p.svg for p in plots}
    # Text stays text (svg.fonttype none): the legend and the labels can be read and found.
    assert "candidate (AUC 0.910)" in by_key["roc"]
    assert "baseline (AUC 0.850)" in by_key["roc"]
    assert "auc (inconclusive)" in by_key["forest"]
    assert "region=us: auc.min (fail)" in by_key["slices"]


def test_the_failing_slices_come_first() -> None:
    assert [c["slice"] for c in slice_checks(report())] == ["region=us", "region=eu"]


def test_what_cannot_be_drawn_says_why() -> None:
    bare = report(with_curves=False)
    bare["checks"] = []
    bare["baseline"] = None
    plots = {p.key: p for p in draw_all(bare)}
    assert plots["roc"].svg is None
    assert "no curve points" in str(plots["roc"].missing)
    assert "no vsBaseline checks" in str(plots["forest"].missing)
    assert "no slice thresholds" in str(plots["slices"].missing)
    assert plots["budgets"].svg is not None  # the candidate's latency alone
    regression = copy.deepcopy(bare)
    regression["task"] = "regression"
    assert "only binary classifiers" in str(draw_all(regression)[0].missing)


def test_the_same_bytes_for_the_same_report() -> None:
    first, second = draw_all(report()), draw_all(report())
    assert [p.svg for p in first] == [p.svg for p in second]


def test_a_report_is_drawn_once_however_often_its_page_is_shown() -> None:
    cache = PlotCache(size=2)
    one, two, three = report(), report(), report()
    two["candidate"]["metrics"]["auc"] = 0.92
    three["candidate"]["metrics"]["auc"] = 0.93
    assert cache.plots(one) is cache.plots(copy.deepcopy(one))
    assert cache.drawn == 1
    cache.plots(two)
    cache.plots(three)  # evicts `one`, the least recently used
    assert cache.drawn == 3
    cache.plots(one)
    assert cache.drawn == 4


@pytest.mark.parametrize("field", ["observed", "interval"])
def test_a_check_without_numbers_is_left_out_not_drawn_as_zero(field: str) -> None:
    data = report()
    for check in data["checks"]:
        check[field] = None
    forest = next(p for p in draw_all(data) if p.key == "forest")
    if field == "observed":
        assert forest.svg is None
    else:
        assert forest.svg is not None
        assert len(re.findall(r"\(inconclusive\)|\(pass\)", forest.svg)) == 2


def test_labels_from_the_data_are_text_not_markup_or_tex() -> None:
    data = report()
    data["checks"][1]["slice"] = "region=<script>alert(1)</script> $5 & more"
    slices = next(p for p in draw_all(data) if p.key == "slices")
    assert slices.svg is not None
    assert "<script" not in slices.svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; $5 &amp; more" in slices.svg


def test_without_a_latency_budget_the_page_says_latency_was_not_measured() -> None:
    """The evaluator measures latency only for a policy with budgets: then there are no
    latency axes to leave empty, only the sizes, and a sentence saying why."""
    unmeasured = report()
    for model in (unmeasured["candidate"], unmeasured["baseline"]):
        del model["latencyMs"]
    unmeasured["checks"] = [c for c in unmeasured["checks"] if c["metric"] != "budget"]
    budgets = {p.key: p for p in draw_all(unmeasured)}["budgets"]
    assert budgets.aside == "no latency budget set — latency not measured"
    assert budgets.svg is not None
    assert "MB on disk" in budgets.svg
    assert "milliseconds" not in budgets.svg
    measured = {p.key: p for p in draw_all(report())}["budgets"]
    assert measured.aside is None
    assert measured.svg is not None
    assert "milliseconds" in measured.svg
    for model in (unmeasured["candidate"], unmeasured["baseline"]):
        del model["sizeBytes"]
    nothing = {p.key: p for p in draw_all(unmeasured)}["budgets"]
    assert nothing.svg is None
    assert "latency not measured" in str(nothing.missing)
