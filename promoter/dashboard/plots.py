"""The promotion page's plots: SVG drawn on the server by matplotlib, from the report's JSON.

Why matplotlib on the server rather than a JavaScript charting library in the browser: the
page then works with JavaScript off and in an air-gapped cluster with nothing vendored but
the CSS, the plots are the same bytes in a screenshot, a test and a browser, and matplotlib is
the plotting library a data scientist already reads (its SVG keeps text as text, so the
labels can be read, searched and zoomed). Why not PNG: SVG scales and stays small.

Each report is drawn once: `PlotCache` keeps the SVGs of the last reports by a digest of
their JSON, so a page that is reloaded, or watched by several people, does not draw again.
matplotlib is imported on the first drawing only (it takes about a second), and drawing is
serialized by a lock: `rc_context` changes process-wide settings while a figure is saved.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CANDIDATE = "#1f5fbf"
BASELINE = "#6b6b6b"
PASS = "#1b7f3b"
FAIL = "#c62828"
WAIT = "#b26a00"
_TONE = {"pass": PASS, "fail": FAIL, "inconclusive": WAIT, "skipped": BASELINE}


@dataclass(frozen=True, slots=True)
class Plot:
    """One drawn figure, or why there is none."""

    key: str
    title: str
    svg: str | None
    """Inline SVG (no XML prolog), or None when the report holds nothing to draw."""
    missing: str | None = None
    """Why there is no plot, for the page to say instead."""
    note: str | None = None
    """How to read it, for the caption."""
    wide: bool = False
    """Wants two columns of the page's grid."""
    aside: str | None = None
    """What a part of the plot has nothing to draw for, said as text beside it (e.g. no
    latency measured), where empty axes would say nothing."""


class PlotCache:
    """The plots of the last `size` reports, keyed by a digest of the report's JSON."""

    def __init__(self, size: int = 32) -> None:
        self._size = size
        self._plots: OrderedDict[str, tuple[Plot, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.drawn = 0
        """How many reports were drawn (not found in the cache); for tests and benchmarks."""

    def plots(self, report: Mapping[str, Any]) -> tuple[Plot, ...]:
        key = hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest()
        with self._lock:
            found = self._plots.get(key)
            if found is not None:
                self._plots.move_to_end(key)
                return found
            # Drawn under the lock: matplotlib's settings are process-wide (module docstring).
            drawn = draw_all(report)
            self.drawn += 1
            self._plots[key] = drawn
            if len(self._plots) > self._size:
                self._plots.popitem(last=False)
            return drawn


def draw_all(report: Mapping[str, Any]) -> tuple[Plot, ...]:
    """Every plot of the promotion page for `report`, in page order."""
    return tuple(draw(report) for draw in _DRAWINGS)


# --- the figures ------------------------------------------------------------------------------


def _models(report: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    out = [("candidate", CANDIDATE, report["candidate"])]
    if report.get("baseline"):
        out.append(("baseline", BASELINE, report["baseline"]))
    return out


def _curves(report: Mapping[str, Any], part: str) -> list[tuple[str, str, Mapping[str, Any]]]:
    found = []
    for label, colour, model in _models(report):
        points = (model.get("plots") or {}).get(part)
        if points:
            found.append((label, colour, points))
    return found


def _roc(report: Mapping[str, Any]) -> Plot:
    title = "ROC curve"
    curves = _curves(report, "roc")
    if not curves:
        return Plot("roc", title, None, _no_curves(report, "ROC curve"))

    def paint(ax: Any) -> None:
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=1, linestyle=":", label="chance")
        for label, colour, roc in curves:
            auc = _metric(report, label, "auc")
            ax.plot(roc["fpr"], roc["tpr"], color=colour, linewidth=2,
                    linestyle="-" if label == "candidate" else "--",
                    label=f"{label}" + (f" (AUC {auc:.3f})" if auc is not None else ""))
        ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1),
               ylim=(0, 1.01))
        ax.legend(loc="lower right", frameon=False)

    return Plot("roc", title, _figure(paint, title=title))


def _precision_recall(report: Mapping[str, Any]) -> Plot:
    title = "Precision-recall curve"
    curves = _curves(report, "precisionRecall")
    if not curves:
        return Plot("pr", title, None, _no_curves(report, "precision-recall curve"))

    def paint(ax: Any) -> None:
        for label, colour, pr in curves:
            ax.plot(pr["recall"], pr["precision"], color=colour, linewidth=2,
                    linestyle="-" if label == "candidate" else "--", label=label)
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower left", frameon=False)

    return Plot("pr", title, _figure(paint, title=title))


def _calibration(report: Mapping[str, Any]) -> Plot:
    title = "Calibration"
    curves = _curves(report, "calibration")
    if not curves:
        return Plot("calibration", title, None, _no_curves(report, "calibration diagram"))

    def paint(ax: Any) -> None:
        ax.plot([0, 1], [0, 1], color="#bbbbbb", linewidth=1, linestyle=":",
                label="perfectly calibrated")
        for label, colour, bins in curves:
            points = [(p, o) for p, o in zip(bins["meanPredicted"], bins["observed"],
                                             strict=True) if p is not None and o is not None]
            ax.plot([p for p, _ in points], [o for _, o in points], color=colour, marker="o",
                    markersize=4, linewidth=1.5,
                    linestyle="-" if label == "candidate" else "--", label=label)
        ax.set(xlabel="mean predicted probability (bin)", ylabel="observed positive rate",
               xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="upper left", frameon=False)

    return Plot("calibration", title, _figure(paint, title=title))


def slice_checks(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The slice checks with a value, failing ones first (then in the report's order)."""
    rows = [c for c in report.get("checks", ())
            if c.get("slice") is not None and c.get("observed") is not None]
    return sorted(rows, key=lambda c: c["verdict"] != "fail")


def _forest(report: Mapping[str, Any]) -> Plot:
    """Each vsBaseline check: the improvement, its interval, and the bound it must reach."""
    title = "Change against the baseline"
    rows = [c for c in report.get("checks", ())
            if c["name"].endswith(".vsBaseline") and c.get("slice") is None
            and c.get("observed") is not None]
    if not rows:
        return Plot("forest", title, None, "no vsBaseline checks with a value (a first "
                    "deployment, or a policy without vsBaseline thresholds)")
    rows = rows[::-1]  # matplotlib counts rows from the bottom: the first check on top

    def paint(ax: Any) -> None:
        for y, check in enumerate(rows):
            colour = _TONE.get(check["verdict"], BASELINE)
            low_high = check.get("interval")
            if low_high and None not in low_high:
                ax.plot(low_high, [y, y], color=colour, linewidth=2.5, solid_capstyle="butt")
            ax.plot([check["observed"]], [y], marker="o", color=colour, markersize=7)
            if check.get("bound") is not None:
                ax.plot([check["bound"]], [y], marker="|", color="#222222", markersize=18,
                        markeredgewidth=2)
        ax.axvline(0, color="#bbbbbb", linewidth=1, linestyle=":")
        ax.set_yticks(range(len(rows)), [f"{c['metric']} ({c['verdict']})" for c in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel("improvement over the baseline")

    return Plot("forest", title, _figure(paint, title=title, height=1.2 + 0.55 * len(rows)),
                note="dot: the candidate's improvement (negative: worse); bar: its bootstrap "
                     "interval, where the policy asks for one; |: the least improvement the "
                     "policy accepts")


def _slices(report: Mapping[str, Any]) -> Plot:
    """Each slice check as a bar of its value beside its bound, failing ones first."""
    title = "Slices against their thresholds"
    rows = slice_checks(report)
    if not rows:
        return Plot("slices", title, None, "no slice thresholds in this environment's policy")
    rows = rows[::-1]  # matplotlib counts rows from the bottom: the first one on top

    def paint(ax: Any) -> None:
        ys = range(len(rows))
        ax.barh(list(ys), [c["observed"] for c in rows],
                color=[_TONE.get(c["verdict"], BASELINE) for c in rows], height=0.6)
        for y, check in zip(ys, rows, strict=True):
            if check.get("bound") is not None:
                ax.plot([check["bound"]], [y], marker="|", color="#222222", markersize=20,
                        markeredgewidth=2)
        ax.set_yticks(list(ys), [f"{c['slice']}: {c['name'].split('].', 1)[-1]} "
                                 f"({c['verdict']})" for c in rows])
        ax.set_xlabel("value")

    return Plot("slices", title, _figure(paint, title=title, height=1.2 + 0.45 * len(rows)),
                note="bar: the slice's value (red: failing, listed first); |: its threshold")


_LATENCIES = (("p50Ms", "p50, 1 row"), ("p99Ms", "p99, 1 row"),
              ("batchP50Ms", "p50, batch"), ("batchP99Ms", "p99, batch"))
_BUDGET_OF = {"p50Ms": "budget.p50LatencyMs", "p99Ms": "budget.p99LatencyMs",
              "batchP99Ms": "budget.batchP99LatencyMs"}


NO_LATENCY = "no latency budget set — latency not measured"
"""The evaluator measures latency only for a policy with `budgets` (promotion.evaluator)."""


def _budgets(report: Mapping[str, Any]) -> Plot:
    """Latency and size of both models, with the policy's budgets where it sets them; size
    alone, and `NO_LATENCY` said, when latency was not measured."""
    title = "Latency and size"
    models = [(label, colour, model) for label, colour, model in _models(report)
              if model.get("latencyMs") or model.get("sizeBytes")]
    if not models:
        return Plot("budgets", title, None, f"{NO_LATENCY}; no model size recorded")
    bounds = {c["name"]: c.get("bound") for c in report.get("checks", ())}
    latency_measured = any(model.get("latencyMs") for _, _, model in models)

    def paint_size(size_ax: Any) -> None:
        for index, (label, colour, model) in enumerate(models):
            size_ax.bar([index], [(model.get("sizeBytes") or 0) / 1e6], color=colour,
                        width=0.6, label=label)
        size_ax.set_xticks(range(len(models)), [label for label, _, _ in models])
        size_ax.set_ylabel("MB on disk")
        if bounds.get("budget.maxModelMb") is not None:
            size_ax.axhline(bounds["budget.maxModelMb"], color="#222222", linewidth=2)

    if not latency_measured:
        return Plot("budgets", "Model size", _figure(paint_size, title="Model size"),
                    note="black line: the policy's size budget, where it sets one",
                    aside=NO_LATENCY)

    def paint(axes: Sequence[Any]) -> None:
        latency_ax, size_ax = axes
        width = 0.8 / len(models)
        for index, (label, colour, model) in enumerate(models):
            latency = model.get("latencyMs") or {}
            xs = [i + index * width for i in range(len(_LATENCIES))]
            latency_ax.bar(xs, [latency.get(k) or 0 for k, _ in _LATENCIES], width=width,
                           color=colour, label=label)
        for i, (key, _) in enumerate(_LATENCIES):
            bound = bounds.get(_BUDGET_OF.get(key, ""))
            if bound is not None:
                latency_ax.hlines(bound, i - width / 2, i + 0.8 - width / 2, colors="#222222",
                                  linewidth=2, label="budget" if i == 0 else None)
        latency_ax.set_xticks([i + 0.4 - width / 2 for i in range(len(_LATENCIES))],
                              [name for _, name in _LATENCIES])
        latency_ax.set_ylabel("milliseconds")
        latency_ax.legend(frameon=False)
        paint_size(size_ax)

    return Plot("budgets", title, _figure(paint, title=title, panels=2), wide=True,
                note="black lines: the policy's budgets, where it sets them")


_DRAWINGS: tuple[Callable[[Mapping[str, Any]], Plot], ...] = (
    _roc, _precision_recall, _calibration, _forest, _slices, _budgets)


# --- drawing ------------------------------------------------------------------------------------

_lock = threading.Lock()


def _figure(paint: Callable[[Any], None], *, title: str, height: float = 3.6,
            panels: int = 1) -> str:
    """Draw with `paint` on a fresh figure and return it as inline SVG with `title`."""
    import matplotlib  # lazily: about a second to import, and only this page draws
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    # parse_math off: a label is data (a slice's value may be "$5"), never TeX to interpret.
    with _lock, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "promoter",
                                       "text.parse_math": False,
                                       "font.size": 9, "axes.spines.top": False,
                                       "axes.spines.right": False}):
        figure = Figure(figsize=(4.6 * panels, height),
                        layout="constrained")
        FigureCanvasSVG(figure)
        axes = figure.subplots(1, panels, squeeze=True)
        paint(axes)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    # Accessible as one image with a name; fixed size replaced by the container's width.
    return re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"',
                  lambda m: f'<svg role="img" aria-label="{title}" {m.group(1)}',
                  svg, count=1)


def _metric(report: Mapping[str, Any], label: str, name: str) -> float | None:
    value = (report.get(label) or {}).get("metrics", {}).get(name)
    return None if value is None else float(value)


def _no_curves(report: Mapping[str, Any], what: str) -> str:
    if report.get("task", "binary_classification") != "binary_classification":
        return f"no {what}: only binary classifiers have one"
    return (f"no {what}: the report has no curve points (evaluated before they were "
            "recorded, or the holdout lacks a class)")
