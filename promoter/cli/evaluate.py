"""`promoter evaluate`: run the evaluation gate on one SavedModel, outside any promotion.

The model's settings (task, signature, output, label column, threshold, weights, top k) come
from promoter.yaml when there is one (`--config`, `$PROMOTER_CONFIG` or ./promoter.yaml) and
it names the model: by `--model`, or by the store layout `<store>/<model>/<version>` of
`--model-dir`. An option given on the command line wins over the file; without a file, or for
a directory outside the store, the options' defaults apply.

Exit status: 0 the gate passes (also when it passes only with an approval: inconclusive
checks under `onInconclusive: requireApproval`, which the report says), 1 it fails, 2 bad
input (arguments, promoter.yaml, policy file, model, holdout). The report goes to stdout
(Markdown, or one JSON/YAML document with -o); errors go to stderr (`error: <message>`, or a
document with -o). `--output` here names the signature output, as promoter.yaml's `output`
does; the format is `-o` (or `--format`).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from promoter.cli.errors import handle_errors
from promoter.cli.output import Format, emit, reports
from promoter.cli.progress import progress_for
from promoter.config.loader import find_settings_file, load_settings
from promoter.config.schema import ModelSpec, PolicySpec
from promoter.config.yaml_documents import parse_yaml, validate_model
from promoter.errors import BadInputError, ConfigError

log = logging.getLogger(__name__)

_DIR = click.Path(file_okay=True, dir_okay=True, path_type=Path)

_SPEC_OPTIONS = {"signature": "signature", "output": "output", "label_column": "label_column",
                 "threshold": "threshold", "task": "task", "weight_column": "weight_column",
                 "top_k": "top_k"}
"""Command-line parameter -> ModelSpec field, for the options promoter.yaml can also set."""


@reports(long_name=None)
@click.command("evaluate")
@click.option("--model-dir", required=True, type=_DIR,
              help="SavedModel directory of the candidate.")
@click.option("--holdout", required=True,
              help="Holdout: CSV with a header row, Parquet (.parquet, .pq), or "
                   "TFRecord of tf.train.Example (.tfrecord, .tfrecords, .tfrec); a local "
                   "path, or an s3:// or gs:// URL (fetched into "
                   "$PROMOTER_CACHE_DIR/holdouts).")
@click.option("--holdout-digest", default=None, metavar="sha256:HEX",
              help="Refuse the holdout unless its bytes have this digest (as "
                   "evaluation.holdoutDigest does for an environment).")
@click.option("--baseline-dir", type=_DIR,
              help="SavedModel to compare with (the model deployed now), on the same rows.")
@click.option("--policy", "policy_file", type=_DIR,
              help="A policies/*.yaml file; without it only metrics are reported.")
@click.option("--model", "model_name", default=None,
              help="Model of promoter.yaml whose settings to use [default: the model of the "
                   "store layout <store>/<model>/<version> of --model-dir, if any].")
@click.option("--label-column", default="label", show_default=True,
              help="Holdout column with the 0/1 label [default: the model's labelColumn].")
@click.option("--output", default=None,
              help="Signature output with the probability [default: the model's output, "
                   "else the only output]. Not the output format: that is -o.")
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
@click.option("--shards", default=None, type=click.IntRange(1, 32),
              help="Worker processes that score the holdout together, each every n-th batch "
                   "(the same report as one) [default: 1 on at most 2 cores, else "
                   "min(cores, 4)].")
@click.option("--timeout", "timeout_s", default=600.0, show_default=True,
              type=click.FloatRange(0.0, min_open=True),
              help="Seconds before scoring is stopped.")
@click.pass_context
@handle_errors
def evaluate(ctx: click.Context, model_dir: Path, holdout: str, holdout_digest: str | None,
             baseline_dir: Path | None,
             policy_file: Path | None, model_name: str | None, label_column: str,
             output: str | None, signature: str, threshold: float, task: str,
             weight_column: str | None, top_k: int, memory_limit_mb: int,
             shards: int | None, timeout_s: float) -> None:
    """Score a SavedModel on a holdout and check it against a policy's thresholds."""
    # Imported here so `promoter --help` does not pay for numpy.
    from promoter.evaluation import evaluate_models
    from promoter.evaluation.shards import default_shards
    from promoter.model_store import require_saved_model, saved_model_digest

    if output in {f.value for f in Format}:
        raise BadInputError(
            f"--output {output}: evaluate's --output names the signature output",
            fix=f"for the report's format use -o {output}; if the signature's output really "
                f"is named {output!r}, set `output` for the model in promoter.yaml")
    policy = _load_policy(policy_file) if policy_file is not None else None
    given = {"signature": signature, "output": output, "label_column": label_column,
             "threshold": threshold, "task": task, "weight_column": weight_column,
             "top_k": top_k}
    spec = _model_spec(ctx, model_dir, model_name, given)
    require_saved_model(model_dir)
    if baseline_dir is not None:
        require_saved_model(baseline_dir)
    holdout_file = _holdout_file(holdout, holdout_digest)
    with progress_for(live_only=True) as progress:
        progress.stage(f"scoring {spec.name}" + (" and its baseline" if baseline_dir else "")
                       + f" on {holdout_file.name}")
        report = evaluate_models(
            candidate_dir=model_dir, baseline_dir=baseline_dir, holdout=holdout_file,
            model=spec,
            policy=policy.evaluation if policy else None, timeout_s=timeout_s,
            candidate_digest=saved_model_digest(model_dir),
            baseline_digest=saved_model_digest(baseline_dir) if baseline_dir else None,
            memory_limit_mb=memory_limit_mb, shards=shards or default_shards(),
        )
    emit(report.to_json_dict(), lambda: report.to_markdown().removesuffix("\n"))
    sys.exit(0 if report.passed else 1)


def _holdout_file(holdout: str, digest: str | None) -> Path:
    """The local file to score on: `holdout` itself, or an object's verified copy in the
    cache; checked against `digest` when given (HoldoutError, exit 2, otherwise)."""
    if digest is None and "://" not in holdout:
        return Path(holdout)  # read once, by the worker, which reports its digest
    from promoter.wiring import build_holdouts

    return build_holdouts(resolve=Path).locate(holdout, digest=digest,
                                               pinned_by="--holdout-digest").path


def _model_spec(ctx: click.Context, model_dir: Path, model_name: str | None,
                given: dict[str, Any]) -> ModelSpec:
    """The ModelSpec to evaluate with: promoter.yaml's model where it names one, each field
    replaced by the option when that was given on the command line (or its variable)."""
    configured = _configured_model(ctx, model_dir, model_name)
    fields: dict[str, Any] = {}
    for param, field in _SPEC_OPTIONS.items():
        source = ctx.get_parameter_source(param)
        explicit = source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        fields[field] = (given[param] if explicit or configured is None
                         else getattr(configured, field))
    name = configured.name if configured is not None else _model_name(model_dir)
    return ModelSpec(name=name, **fields)


def _configured_model(ctx: click.Context, model_dir: Path,
                      model_name: str | None) -> ModelSpec | None:
    path = getattr(ctx.find_object(object), "config_path", None)
    if not isinstance(path, Path):
        path = find_settings_file(ctx.meta.get("promoter.config"))
    if not path.exists():
        if model_name is not None:
            raise ConfigError(str(path), "file not found",
                              fix="--model names a model of promoter.yaml: pass --config "
                                  "PATH, or drop --model and pass the model's options")
        return None
    loaded = load_settings(path)
    if model_name is None:
        store = loaded.resolve(loaded.settings.model_store.url)
        try:
            parts = model_dir.resolve().relative_to(store).parts
        except ValueError:
            return None
        if len(parts) != 2 or not parts[1].isdigit():
            return None
        spec = loaded.settings.model(parts[0])
        if spec is not None:
            log.info("evaluate: the settings of model %s from %s", spec.name, path)
        return spec
    spec = loaded.settings.model(model_name)
    if spec is None:
        known = ", ".join(m.name for m in loaded.settings.models)
        raise ConfigError(str(path), f"no model named {model_name!r}", field="models",
                          fix=f"--model takes one of: {known}")
    return spec


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
