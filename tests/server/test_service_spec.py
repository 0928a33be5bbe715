"""`service:` in promoter.yaml (ServiceSpec)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from promoter.config.loader import load_settings
from promoter.config.schema import ServiceSpec, Settings
from promoter.errors import ConfigError

BASE = {"models": [{"name": "churn"}], "environments": ["dev"]}


def test_defaults_when_absent() -> None:
    service = Settings.model_validate(BASE).service
    assert service == ServiceSpec()
    assert service.api_tokens_file is None  # approvals over HTTP are off until one is named
    assert (service.host, service.port, service.webhook_secret_env, service.api_token_env) == (
        "127.0.0.1", 8080, "PROMOTER_WEBHOOK_SECRET", "PROMOTER_API_TOKEN")


def test_camel_case_fields() -> None:
    service = Settings.model_validate({**BASE, "service": {
        "port": 9000, "webhookSecretEnv": "HOOK", "repository": "acme/ml-gitops",
        "resyncIntervalSeconds": 60, "workers": 2, "apiTokensFile": "secrets/api-tokens",
        "evaluationWorkers": 0}}
    ).service
    assert (service.port, service.webhook_secret_env, service.repository,
            service.resync_interval_seconds, service.workers, service.api_tokens_file,
            service.evaluation_workers) == (
        9000, "HOOK", "acme/ml-gitops", 60.0, 2, "secrets/api-tokens", 0)
    assert ServiceSpec().evaluation_workers == 2
    assert ServiceSpec().evaluation_shards is None  # 1 on <= 2 cores, else min(cores, 4)
    assert Settings.model_validate({**BASE, "service": {"evaluationShards": 3}}
                                   ).service.evaluation_shards == 3


@pytest.mark.parametrize("bad", [
    {"webhookSecret": "inline secrets are not a field"},
    {"webhookSecretEnv": "lower-case"},
    {"port": 70000},
    {"resyncIntervalSeconds": 0},
    {"repository": "no-slash"},
    {"evaluationWorkers": -1},
    {"evaluationShards": 0},
    {"evaluationShards": 33},
    {"evaluationShards": "all"},
])
def test_mistakes_are_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({**BASE, "service": bad})


def test_public_url_is_kept_without_its_trailing_slash() -> None:
    service = Settings.model_validate({**BASE, "service": {
        "publicUrl": "https://promoter.example.com/ml/"}}).service
    assert service.public_url == "https://promoter.example.com/ml"
    assert Settings.model_validate(BASE).service.public_url is None


@pytest.mark.parametrize("bad", [
    "promoter.example.com", "ftp://promoter.example.com", "javascript:alert(1)",
    "https://", "https://user:pw@promoter.example.com", "https://p.example.com/?a=1",
    "https://p.example.com/#top", "https://p.example.com/a b", "https://p.example.com/\n"])
def test_a_public_url_that_is_not_a_plain_http_url_is_refused(tmp_path: Path,
                                                                bad: str) -> None:
    with pytest.raises(ValidationError, match=r"publicUrl|public_url"):
        Settings.model_validate({**BASE, "service": {"publicUrl": bad}})
    # Through the loader: the file and field are named, exit 2, with what to write.
    (tmp_path / "promoter.yaml").write_text(
        "models: [{name: churn}]\nenvironments: [dev]\nservice:\n  publicUrl: "
        + json.dumps(bad) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "promoter.yaml")
    assert caught.value.exit_code == 2
    assert "publicUrl" in str(caught.value)
    assert "promoter.yaml" in str(caught.value)
