"""Configuration loading: the working example is valid, and each mistake names file and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from promoter.config import DirectorySource, load_dry_config, load_settings
from promoter.errors import ConfigError


def load(root: Path):
    loaded = load_settings(root / "promoter.yaml")
    return loaded, load_dry_config(DirectorySource(root), loaded.settings)


def error_of(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(root)
    assert info.value.exit_code == 2
    return info.value


def test_working_example_is_valid(example: Path) -> None:
    loaded, dry = load(example)
    assert [m.name for m in loaded.settings.models] == ["churn"]
    assert list(dry.environments) == ["dev", "staging", "prod"]
    assert dry.environments["dev"].promotes_from is None
    assert dry.environments["staging"].promotes_from == "dev"
    assert dry.environments["prod"].promotes_from == "staging"
    assert dry.environments["prod"].proposal_branch == "environments/prod-next"
    assert dry.policy_for(dry.environments["prod"]).approvals.required == 1
    assert any(path.startswith("serving/") for path in dry.templates)


def test_promotes_from_defaults_to_previous_environment(example: Path) -> None:
    path = example / "environments/staging.yaml"
    path.write_text(path.read_text().replace("promotesFrom: dev\n", ""))
    _, dry = load(example)
    assert dry.environments["staging"].promotes_from == "dev"


def test_wrong_type_names_file_field_and_expectation(example: Path) -> None:
    path = example / "policies/prod.yaml"
    path.write_text(path.read_text().replace("min: 0.80", "min: high"))
    err = error_of(example)
    assert str(err).startswith(
        "policies/prod.yaml: evaluation.metrics[0].min: expected a number, got 'high'")


def test_unknown_field_is_an_error_not_ignored(example: Path) -> None:
    path = example / "policies/prod.yaml"
    path.write_text(path.read_text().replace("autoMerge: true", "autoMerge: true\nautoMrge: no"))
    err = error_of(example)
    assert "policies/prod.yaml: autoMrge: unknown field" in str(err)


def test_malformed_yaml_names_line(example: Path) -> None:
    (example / "environments/dev.yaml").write_text("branch: [unclosed\nnamespace: x\n")
    err = error_of(example)
    assert "environments/dev.yaml: invalid YAML at line" in str(err)


def test_empty_file(example: Path) -> None:
    (example / "policies/dev.yaml").write_text("")
    assert "policies/dev.yaml: expected a mapping" in str(error_of(example))


def test_missing_environment_file(example: Path) -> None:
    (example / "environments/staging.yaml").unlink()
    err = error_of(example)
    assert "environments/staging.yaml: file not found" in str(err)
    assert err.fix
    assert "promoter.yaml" in err.fix


def test_missing_policy_file(example: Path) -> None:
    (example / "policies/prod.yaml").unlink()
    assert "policies/prod.yaml: file not found" in str(error_of(example))


def test_missing_required_field(example: Path) -> None:
    path = example / "environments/prod.yaml"
    path.write_text(path.read_text().replace("namespace: ml-prod\n", ""))
    assert "environments/prod.yaml: namespace: required field is missing" in str(
        error_of(example))


def test_promotes_from_a_later_environment_is_refused(example: Path) -> None:
    path = example / "environments/staging.yaml"
    path.write_text(path.read_text().replace("promotesFrom: dev", "promotesFrom: prod"))
    err = error_of(example)
    assert "environments/staging.yaml: promotesFrom: 'prod' is not an environment before" in str(
        err)


def test_shared_branch_is_refused(example: Path) -> None:
    path = example / "environments/staging.yaml"
    path.write_text(path.read_text().replace("environments/staging", "environments/dev"))
    assert "already used by environment 'dev'" in str(error_of(example))


def set_branch(root: Path, env: str, branch: str) -> None:
    path = root / f"environments/{env}.yaml"
    # A JSON string is a YAML double-quoted scalar: control characters survive the trip.
    path.write_text(path.read_text().replace(f"branch: environments/{env}\n",
                                             f"branch: {json.dumps(branch)}\n"))


def set_dry_branch(root: Path, branch: str) -> None:
    path = root / "promoter.yaml"
    path.write_text(path.read_text().replace("dryBranch: main", f"dryBranch: '{branch}'"))


def test_dry_branch_is_refused_as_an_environment_branch(example: Path) -> None:
    # Merging a promotion there would replace promoter.yaml and the policies with manifests.
    set_branch(example, "staging", "main")
    err = error_of(example)
    assert str(err).startswith(
        "environments/staging.yaml: branch: the branch 'main' is the dry branch "
        "(repository.dryBranch in promoter.yaml)")
    assert err.fix == "give staging a branch of its own, e.g. environments/staging"


def test_the_configured_dry_branch_is_the_one_refused(example: Path) -> None:
    set_dry_branch(example, "config")
    set_branch(example, "dev", "main")
    _, dry = load(example)
    assert dry.environments["dev"].branch == "main"
    set_branch(example, "prod", "config")
    assert "environments/prod.yaml: branch: the branch 'config' is the dry branch" in str(
        error_of(example))


def test_dry_branch_is_refused_as_a_proposal_branch(example: Path) -> None:
    set_dry_branch(example, "environments/dev-next")
    err = error_of(example)
    assert str(err).startswith(
        "environments/dev.yaml: branch: the proposal branch 'environments/dev-next' is the dry "
        "branch")
    assert err.fix == "give dev a branch of its own, e.g. deploy/dev"


@pytest.mark.parametrize(("dry_branch", "branch"), [
    ("main", "main/dev"), ("environments/dev/config", "environments/dev")])
def test_branch_nested_with_the_dry_branch_is_refused(example: Path, dry_branch: str,
                                                      branch: str) -> None:
    set_dry_branch(example, dry_branch)
    set_branch(example, "dev", branch)
    assert (f"environments/dev.yaml: branch: branch {branch!r} and the dry branch "
            f"{dry_branch!r} (repository.dryBranch in promoter.yaml) cannot both exist in git"
            ) in str(error_of(example))


def test_at_sign_is_refused_as_an_environment_branch(example: Path) -> None:
    set_branch(example, "prod", "@")
    assert str(error_of(example)).startswith(
        "environments/prod.yaml: branch: '@' is git's name for HEAD")


@pytest.mark.parametrize(("branch", "problem"), [
    ("environments/.hidden", "the path component '.hidden' starts with '.'"),
    ("dev.", "it ends with '.'"),
    ("a.lock/b", "the path component 'a.lock' ends with '.lock'"),
    ("environments/dev.lock", "the path component 'dev.lock' ends with '.lock'"),
    ("a..b", "it contains '..'"),
    ("a b", "it contains ' '"),
    ("~", "it contains '~'"),
    ("^", "it contains '^'"),
    (":", "it contains ':'"),
    ("?", "it contains '?'"),
    ("*", "it contains '*'"),
    ("[", "it contains '['"),
    ("\\", "it contains '\\\\'"),
    ("environments/dev/", "it has an empty path component"),
    ("environments//dev", "it has an empty path component"),
    ("dev@{1}", "it contains '@{'"),
    ("dev\x01", "it contains the control character '\\x01'"),
    ("dev\x7f", "it contains the control character '\\x7f'"),
    ("-dev", "it starts with '-'"),
    ("HEAD", "'HEAD' is git's name for the checked-out commit"),
    ("dev\u202e", "it contains U+202E, which does not print as itself"),
])
def test_branch_git_would_refuse_is_refused(example: Path, branch: str, problem: str) -> None:
    set_branch(example, "dev", branch)
    err = error_of(example)
    assert str(err).startswith(
        f"environments/dev.yaml: branch: {branch!r} is not usable as a git branch: {problem}")
    assert "git-check-ref-format(1)" in str(err)


def test_dry_branch_git_would_refuse_is_refused(example: Path) -> None:
    set_dry_branch(example, "main..x")
    with pytest.raises(ConfigError) as info:
        load_settings(example / "promoter.yaml")
    assert ("promoter.yaml: repository.dryBranch: 'main..x' is not usable as a git branch: "
            "it contains '..'") in str(info.value)


def set_holdout(root: Path, template: str) -> None:
    path = root / "environments/prod.yaml"
    path.write_text(path.read_text().replace("holdout: data/{model}-holdout-prod.csv",
                                             f"holdout: {json.dumps(template)}"))


@pytest.mark.parametrize(("template", "problem"), [
    ("data/{0}.csv", "has the placeholder '{0}'"),
    ("data/{}.csv", "has the placeholder '{}'"),
    ("data/{model.__class__}.csv", "has the placeholder '{model.__class__}'"),
    ("data/{model[0]}.csv", "has the placeholder '{model[0]}'"),
    ("data/{unknown}.csv", "has the placeholder '{unknown}'"),
    ("data/{model!r}.csv", "has the placeholder '{model!r}'"),
    ("data/{model:>20}.csv", "has the placeholder '{model:>20}'"),
    ("{", "has a '{' or '}' without its pair"),
    ("data/{.csv", "has a '{' or '}' without its pair"),
    ("data/}.csv", "has a '{' or '}' without its pair"),
    ("data/{model", "has a '{' or '}' without its pair"),
])
def test_holdout_template_with_other_placeholders_is_refused(example: Path, template: str,
                                                             problem: str) -> None:
    set_holdout(example, template)
    err = error_of(example)
    assert str(err).startswith(f"environments/prod.yaml: evaluation.holdout: {template!r} "
                               f"{problem}")
    assert err.fix == ("the only placeholder is {model} (the model's name), e.g. "
                       "data/{model}-holdout.csv; write a literal brace as {{ or }}")


@pytest.mark.parametrize("template", ["data/prod.csv", "data/{model}/{model}.csv",
                                      "data/{{literal}}/{model}.csv"])
def test_holdout_template_with_only_model_is_accepted(example: Path, template: str) -> None:
    set_holdout(example, template)
    _, dry = load(example)
    assert dry.environments["prod"].evaluation.holdout == template


def test_branch_ending_in_next_is_refused(example: Path) -> None:
    path = example / "environments/dev.yaml"
    path.write_text(path.read_text().replace("environments/dev", "environments/dev-next"))
    assert "environments/dev.yaml: branch:" in str(error_of(example))


def test_more_approvals_required_than_approvers(example: Path) -> None:
    path = example / "policies/prod.yaml"
    path.write_text(path.read_text().replace("required: 1", "required: 3"))
    err = error_of(example)
    assert "policies/prod.yaml: approvals: required is 3 but only 2 approvers" in str(err)


def test_baseline_rule_needs_exactly_one_bound(example: Path) -> None:
    path = example / "policies/staging.yaml"
    path.write_text(path.read_text().replace(
        "maxRegression: 0.005", "maxRegression: 0.005\n        minImprovement: 0.01"))
    err = error_of(example)
    assert "evaluation.metrics[0].vsBaseline: set exactly one" in str(err)


def test_unknown_metric_name(example: Path) -> None:
    path = example / "policies/dev.yaml"
    path.write_text(path.read_text().replace("name: auc", "name: auroc"))
    err = error_of(example)
    assert "policies/dev.yaml: evaluation.metrics[0].name: expected one of" in str(err)
    assert "'auroc'" in str(err)


def test_unlisted_environment_file_is_refused(example: Path) -> None:
    shutil.copy(example / "environments/dev.yaml", example / "environments/qa.yaml")
    assert "environments/qa.yaml: environment file not listed" in str(error_of(example))


def test_settings_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "promoter.yaml")
    assert "file not found" in str(info.value)
    assert "PROMOTER_CONFIG" in str(info.value)


def test_settings_bad_environment_name(example: Path) -> None:
    path = example / "promoter.yaml"
    path.write_text(path.read_text().replace("[dev, staging, prod]", "[dev, Staging_1]"))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "promoter.yaml: environments[1]: 'Staging_1' is not valid here" in str(info.value)


def test_replicas_above_max_replicas(example: Path) -> None:
    path = example / "environments/prod.yaml"
    path.write_text(path.read_text().replace("maxReplicas: 10", "maxReplicas: 2"))
    assert "serving: maxReplicas (2) must be at least replicas (3)" in str(error_of(example))


def test_an_object_store_without_a_fetch_image_is_refused(example: Path) -> None:
    """The default fetch image is a local build's name: a cluster serving from a bucket
    would pull it from no registry, and the pods would never start."""
    path = example / "environments/prod.yaml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line for line in lines if "fetchImage:" not in line))
    err = error_of(example)
    assert str(err).startswith(
        "environments/prod.yaml: serving.fetchImage: is required with modelBaseUri gs://…")
    assert err.fix is not None
    assert "docker build --target fetch" in err.fix


def test_a_local_store_keeps_the_local_fetch_image(example: Path) -> None:
    path = example / "environments/dev.yaml"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(line.replace("gs://example-ml-models", "/models") for line in lines
                            if "fetchImage:" not in line))
    _, dry = load(example)
    assert dry.environments["dev"].serving.fetch_image == "promoter-fetch-model:0.1.0"
