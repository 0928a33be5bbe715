"""Issue #14's hostile SavedModels (`hostile_models.py`): each is refused before loading, with
a failed check naming the op and the function holding it, nothing is written, no traceback
reaches the report, and promoter goes on evaluating. Slow: TensorFlow builds the models, and
the end-to-end cases start workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.config.schema import EvaluationPolicy, ModelSpec
from promoter.evaluation import evaluate_models
from promoter.evaluation.graph_scan import scan_saved_model
from tests.evaluation.hostile_models import build_hostile_models

pytestmark = pytest.mark.slow

TINY = ModelSpec(name="tiny", label_column="label")
REFUSED = {
    # model: (op, function name prefix, reason fragment)
    "csv_dataset": ("CSVDatasetV2", "__inference_csv_dataset_", "reads or writes files"),
    "sql_dataset": ("SqlDataset", "__inference_sql_dataset_", "reads or writes files"),
    "csv_cache": ("CacheDatasetV2", "__inference_csv_cache_", "reads or writes files"),
    "traced_save": ("SaveV2", "__inference__traced_save_x_", "outside the SavedModel's saver"),
    "saver_method": ("SaveV2", "__inference__traced_save_x_", "outside the SavedModel's saver"),
    "record_input": ("RecordInput", "__inference_record_input_", "reads or writes files"),
    "unigram_sampler": ("FixedUnigramCandidateSampler", "__inference_unigram_sampler_",
                        "reads or writes files"),
    "decode_proto": ("DecodeProtoV2", "__inference_decode_proto_", "descriptor"),
    "table_from_path": ("InitializeTableFromTextFileV2", "__inference_table_from_path_",
                        "not one of the model's own assets"),
    "asset_escape": ("InitializeTableFromTextFileV2", "__inference__initializer_",
                     "is not a plain name inside assets/"),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    secret = root / "secret.db"
    secret.write_text("API_TOKEN=hunter2\n")
    return build_hostile_models(root / "models", secret_file=secret, out_file=root / "pwned")


@pytest.fixture(scope="module")
def out_file(hostile: dict[str, Path]) -> Path:
    return hostile["csv_dataset"].parent.parent / "pwned"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_hostile_model_is_refused_by_the_scan(hostile: dict[str, Path], name: str) -> None:
    op, function, why = REFUSED[name]
    findings = scan_saved_model(hostile[name])
    assert any(f.op == op and f.where.startswith(f"function {function}") and why in f.why
               for f in findings), [f.describe() for f in findings]


def test_the_harmless_asset_table_passes_the_scan(hostile: dict[str, Path]) -> None:
    assert scan_saved_model(hostile["asset_table"]) == []
    assert (hostile["asset_table"] / "assets" / "vocab.txt").is_file()


@pytest.mark.parametrize("name", ["csv_cache", "traced_save", "sql_dataset", "asset_escape"])
def test_hostile_models_fail_the_gate_before_loading(hostile: dict[str, Path], out_file: Path,
                                                     tiny_holdout: Path, name: str) -> None:
    op, function, _ = REFUSED[name]
    report = evaluate_models(candidate_dir=hostile[name], baseline_dir=None,
                             holdout=tiny_holdout, model=TINY, policy=EvaluationPolicy(),
                             measure_latency=False)
    assert not report.passed
    [check] = report.checks
    assert check.name == "security.graphScan"
    assert op in check.reason
    assert function in check.reason
    assert report.holdout.rows == 0  # nothing was scored
    markdown = report.to_markdown()
    assert "Traceback" not in markdown
    assert "Traceback" not in check.reason
    assert "landlock" in report.confinement["mechanisms"] or report.confinement["missing"]
    assert not out_file.exists()


def test_promoter_keeps_evaluating_after_refusals(hostile: dict[str, Path],
                                                  tiny_holdout: Path) -> None:
    # A model initialising its lookup table from its own assets/ loads and scores confined.
    report = evaluate_models(candidate_dir=hostile["asset_table"], baseline_dir=None,
                             holdout=tiny_holdout, model=TINY, policy=EvaluationPolicy(),
                             measure_latency=False)
    assert report.holdout.rows == 6
    assert report.candidate.metrics["accuracy"] == pytest.approx(1.0)  # sigmoid(x) vs label
