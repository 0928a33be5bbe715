"""`promoter evaluate`: run the evaluation gate on one SavedModel, outside any promotion.

Exit status: 0 the gate passes (also when it passes only with an approval: inconclusive
checks under `onInconclusive: requireApproval`, which the report says), 1 it fails, 2 bad
input (arguments, policy file, model, holdout). The report goes to stdout (Markdown, or one
JSON/YAML document with -o); errors go to stderr (`error: <message>`, or a document with
-o). `--output` here names the signature output, as promoter.yaml's `output` does; the
format is `-o` (or `--format`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from promoter.cli.errors import handle_errors
from promoter.cli.output import Format, emit, reports
from promoter.cli.progress import progress_for
from promoter.config.loader import parse_yaml, validate_model
from promoter.config.schema import ModelSpec, PolicySpec
from promoter.errors import BadInputError, ConfigError

_DIR = click.Path(file_okay=True, dir_okay=True, path_type=Path)

@reports(long_name=None)
@click.command("evaluate")
@click.option("--model-dir", required=True, type=_DIR,
              help="SavedModel directory of the candidate.")
@click.option("--holdout", required=True, type=_DIR,
              help="Holdout: CSV with a header row, or TFRecord of tf.train.Example "
                   "(.tfrecord, .tfrecords, .tfrec).")
@click.option("--baseline-dir", type=_DIR,
              help="SavedModel to compare with (the model deployed now), on the same rows.")
@click.option("--policy", "policy_file", type=_DIR,
              help="A policies/*.yaml file; without it only metrics are reported.")
@click.option("--label-column", default="label", show_default=True,
              help="Holdout column with the 0/1 label.")
@click.option("--output", default=None,
              help="Signature output with the probability [default: the only output]. Not "
                   "the output format: that is -o.")
@click.option("--signature", default="serving_default", show_default=True,
              help="SavedModel signature to call.")
@click.option("--threshold", default=0.5, show_default=True,
              type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              help="Score at or above which a prediction is positive (accuracy).")
@click.option("--task", default="binary_classification", show_default=True,
              type=click.Choice(["binary_classification", "multiclass_classification",
                                 "regression"]), help="What the model predicts.")
@click.option("--weight-column", default=None, help="Holdout column with example weights.")
@click.option("--top-k", default=2, show_default=True, type=click.IntRange(1),
              help="k of top_k_accuracy (multi-class).")
@click.option("--memory-limit-mb", default=16384, show_default=True, type=click.IntRange(512),
              help="Address-space limit of the scoring process.")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True,
              type=click.FloatRange(0.0, min_open=True),
              help="Seconds before scoring is stopped.")
@handle_errors
def evaluate(model_dir: Path, holdout: Path, baseline_dir: Path | None,
             policy_file: Path | None, label_column: str, output: str | None,
             signature: str, threshold: float, task: str, weight_column: str | None,
             top_k: int, memory_limit_mb: int, timeout_s: float) -> None:
    """Score a SavedModel on a holdout and check it against a policy's thresholds."""
    # Imported here so `promoter --help` does not pay for numpy.
    from promoter.evaluation import evaluate_models
    from promoter.model_store import require_saved_model, saved_model_digest

    if output in {f.value for f in Format}:
        raise BadInputError(
            f"--output {output}: evaluate's --output names the signature output",
            fix=f"for the report's format use -o {output}; if the signature's output really "
                f"is named {output!r}, set `output` for the model in promoter.yaml")
    policy = _load_policy(policy_file) if policy_file is not None else None
    spec = ModelSpec(name=_model_name(model_dir), signature=signature, output=output,
                     label_column=label_column, threshold=threshold, task=task,
                     weight_column=weight_column, top_k=top_k)
    require_saved_model(model_dir)
    if baseline_dir is not None:
        require_saved_model(baseline_dir)
    with progress_for(live_only=True) as progress:
        progress.stage(f"scoring {spec.name}" + (" and its baseline" if baseline_dir else "")
                       + f" on {holdout.name}")
        report = evaluate_models(
            candidate_dir=model_dir, baseline_dir=baseline_dir, holdout=holdout, model=spec,
            policy=policy.evaluation if policy else None, timeout_s=timeout_s,
            candidate_digest=saved_model_digest(model_dir),
            baseline_digest=saved_model_digest(baseline_dir) if baseline_dir else None,
            memory_limit_mb=memory_limit_mb,
        )
    emit(report.to_json_dict(), lambda: report.to_markdown().removesuffix("\n"))
    sys.exit(0 if report.passed else 1)


def _load_policy(path: Path) -> PolicySpec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found",
                          fix="pass a policies/<name>.yaml file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read the file ({exc})") from exc
    data = parse_yaml(text, str(path))
    if isinstance(data, dict):
        data.setdefault("name", path.stem)
    return validate_model(PolicySpec, data, str(path))


def _model_name(model_dir: Path) -> str:
    # ModelSpec needs a DNS-style name; in the store layout <model>/<version>/ it is the parent.
    parts = [p for p in model_dir.resolve().parts if p not in ("/", "")]
    candidates = [parts[-2]] if len(parts) >= 2 and parts[-1].isdigit() else []
    candidates += parts[-1:]
    for raw in candidates:
        name = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:40].strip("-")
        if name:
            return name
    return "model"
