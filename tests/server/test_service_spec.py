"""`service:` in promoter.yaml (ServiceSpec)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from promoter.config.schema import ServiceSpec, Settings

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


@pytest.mark.parametrize("bad", [
    {"webhookSecret": "inline secrets are not a field"},
    {"webhookSecretEnv": "lower-case"},
    {"port": 70000},
    {"resyncIntervalSeconds": 0},
    {"repository": "no-slash"},
    {"evaluationWorkers": -1},
])
def test_mistakes_are_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({**BASE, "service": bad})
