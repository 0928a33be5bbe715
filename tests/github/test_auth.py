"""Token and GitHub App authentication; secrets never appear in errors, logs or reprs."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from promoter.config.schema import GitHubAuthSpec
from promoter.domain.pull_requests import StatusState
from promoter.errors import ConfigError, ForgeError
from promoter.forge.capabilities import CheckRunPublisher
from promoter.forge.github import GitHubForge
from promoter.forge.github_auth import build_auth, build_client
from promoter.gitops.local import LocalGitRepository
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import (
    FAST_RETRY,
    MARKER_KEY,
    TOKEN,
    github_spec,
    running_fake,
    token_forge,
)
from tests.github.scenario import open_pr, propose

SECRET = "ghp_this_is_not_the_right_token_42"


def _auth(spec: dict[str, object], environ: dict[str, str], tmp_path: Path):
    return build_auth(GitHubAuthSpec.model_validate(spec), environ=environ,
                      resolve=lambda p: tmp_path / p, config_file="promoter.yaml")


def _app_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo
                                           ).decode()
    return private, public


def test_token_from_env_and_from_file(fake_github: FakeGitHub, tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    for spec, environ in (({"type": "token", "tokenEnv": "GH_TOKEN"}, {"GH_TOKEN": TOKEN}),
                          ({"type": "token", "tokenFile": "token"}, {})):
        client = build_client(github_spec(fake_github), _auth(spec, environ, tmp_path),
                              retry=FAST_RETRY)
        forge = GitHubForge(client, "acme/gitops", marker_key=MARKER_KEY)
        assert forge.list_open_pull_requests() == []


def test_missing_secret_names_the_variable_not_a_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GH_TOKEN") as caught:
        _auth({"type": "token", "tokenEnv": "GH_TOKEN"}, {}, tmp_path)
    assert caught.value.field == "forge.github.auth.tokenEnv"
    with pytest.raises(ConfigError, match="tokenFile"):
        _auth({"type": "token", "tokenFile": "nope"}, {}, tmp_path)
    with pytest.raises(ConfigError, match="PEM"):
        _auth({"type": "app", "appId": 1, "installationId": 2, "privateKeyEnv": "K"},
              {"K": SECRET}, tmp_path)


def test_a_bad_token_never_shows_in_errors_logs_or_reprs(
        fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    auth = _auth({"type": "token", "tokenEnv": "GH_TOKEN"}, {"GH_TOKEN": SECRET}, tmp_path)
    forge = GitHubForge(build_client(github_spec(fake_github), auth, retry=FAST_RETRY),
                        "acme/gitops", marker_key=MARKER_KEY)
    with pytest.raises(ForgeError) as caught:
        forge.list_open_pull_requests()
    error = caught.value
    assert "401" in str(error)
    assert "credentials" in (error.fix or "")
    seen = [str(error), repr(error), repr(forge), repr(auth), caplog.text,
            str(error.__cause__), repr(error.__cause__)]
    assert not [text for text in seen if SECRET in text]
    assert fake_github.requests  # the request was really made, with the token


def test_github_app_installation_token_is_requested_and_refreshed(
        fake_github: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    private, public = _app_key()
    # Tokens that expire in 10 s are inside PyGithub's 20 s refresh margin: each request
    # must fetch a fresh one.
    fake_github.enable_app(app_id=4242, installation_id=77, public_key_pem=public,
                           token_ttl=timedelta(seconds=10))
    (tmp_path / "app.pem").write_text(private)
    auth = _auth({"type": "app", "appId": 4242, "installationId": 77,
                  "privateKeyFile": "app.pem"}, {}, tmp_path)
    forge = GitHubForge(build_client(github_spec(fake_github), auth, retry=FAST_RETRY),
                        "acme/gitops", marker_key=MARKER_KEY)
    assert forge.list_open_pull_requests() == []
    assert fake_github.app is not None
    assert len(fake_github.app.issued) == 1
    assert forge.list_open_pull_requests() == []
    assert len(fake_github.app.issued) == 2  # refreshed before expiry
    token_posts = [r for r in fake_github.requests
                   if r == ("POST", "/app/installations/77/access_tokens")]
    assert len(token_posts) == 2
    assert "PRIVATE KEY" not in caplog.text
    assert not [t for t in fake_github.app.issued if t in caplog.text]


def test_long_lived_installation_token_is_reused(fake_github: FakeGitHub,
                                                 tmp_path: Path) -> None:
    private, public = _app_key()
    fake_github.enable_app(app_id=1, installation_id=2, public_key_pem=public)
    auth = _auth({"type": "app", "appId": 1, "installationId": 2, "privateKeyEnv": "KEY"},
                 {"KEY": private}, tmp_path)
    forge = GitHubForge(build_client(github_spec(fake_github), auth, retry=FAST_RETRY),
                        "acme/gitops", marker_key=MARKER_KEY)
    forge.list_open_pull_requests()
    forge.list_open_pull_requests()
    assert fake_github.app is not None
    assert len(fake_github.app.issued) == 1


def test_wrong_app_key_is_refused(fake_github: FakeGitHub, tmp_path: Path) -> None:
    _, public = _app_key()
    other_private, _ = _app_key()
    fake_github.enable_app(app_id=1, installation_id=2, public_key_pem=public)
    auth = _auth({"type": "app", "appId": 1, "installationId": 2, "privateKeyEnv": "KEY"},
                 {"KEY": other_private}, tmp_path)
    forge = GitHubForge(build_client(github_spec(fake_github), auth, retry=FAST_RETRY),
                        "acme/gitops", marker_key=MARKER_KEY)
    with pytest.raises(ForgeError, match="401"):
        forge.list_open_pull_requests()


def test_enterprise_server_base_url(git_repo: Path, gitops_repo: LocalGitRepository) -> None:
    with running_fake(git_repo, path_prefix="/api/v3") as fake:
        assert fake.base_url.endswith("/api/v3")
        forge = token_forge(fake)
        head = propose(gitops_repo)
        pr = open_pr(forge)
        assert forge.merge(pr.number, expected_base="environments/prod",
                           expected_head=head, message="m")
        assert all(path.startswith("/repos/acme/gitops/") for _, path in fake.requests)


def test_on_enterprise_server_a_pull_request_links_to_its_own_site(
        git_repo: Path, gitops_repo: LocalGitRepository) -> None:
    """The PR's web page is the forge's `html_url` (the server's own host, without `/api/v3`),
    never a github.com address built from the repository's name."""
    with running_fake(git_repo, path_prefix="/api/v3") as fake:
        forge = token_forge(fake)
        propose(gitops_repo)
        pr = open_pr(forge)
        expected = f"{fake.html_root}/acme/gitops/pull/{pr.number}"
        assert "/api/v3" not in expected
        assert "github.com" not in expected
        assert pr.web_url == expected
        assert forge.get_pull_request(pr.number).web_url == expected
        assert [p.web_url for p in forge.list_open_pull_requests()] == [expected]


def test_app_publishes_the_report_as_one_check_run(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository, tmp_path: Path) -> None:
    private, public = _app_key()
    fake_github.enable_app(app_id=1, installation_id=2, public_key_pem=public)
    auth = _auth({"type": "app", "appId": 1, "installationId": 2, "privateKeyEnv": "KEY"},
                 {"KEY": private}, tmp_path)
    forge = GitHubForge(build_client(github_spec(fake_github), auth, retry=FAST_RETRY),
                        "acme/gitops", marker_key=MARKER_KEY,
                        identity="promoter-bot[bot]")
    assert isinstance(forge, CheckRunPublisher)
    head = propose(gitops_repo)
    first = forge.publish_check_run(head, name="promoter/evaluation",
                                    state=StatusState.PENDING, title="Evaluating",
                                    summary="Scoring v2 against v1")
    page = "https://promoter.example.com/promotions/7"
    again = forge.publish_check_run(head, name="promoter/evaluation",
                                    state=StatusState.SUCCESS, title="AUC 0.91",
                                    summary="## Evaluation\n\n| auc | 0.91 |",
                                    details_url=page)
    assert again == first
    (run,) = fake_github.check_runs[head]
    assert (run["status"], run["conclusion"], run["title"]) == ("completed", "success",
                                                                "AUC 0.91")
    assert run["details_url"] == page  # GitHub's "Details" link: the promotion's page
    pr = open_pr(forge)
    fake_github.required_checks["environments/prod"] = ["promoter/evaluation", "ci/lint"]
    fake_github.add_check_run(head, name="ci/lint", conclusion="success")
    assert forge.external_checks_state(pr).state is StatusState.SUCCESS


def test_a_check_run_of_another_app_is_never_taken_for_promoters(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository, tmp_path: Path) -> None:
    private, public = _app_key()
    fake_github.enable_app(app_id=1, installation_id=2, public_key_pem=public)
    auth = _auth({"type": "app", "appId": 1, "installationId": 2, "privateKeyEnv": "KEY"},
                 {"KEY": private}, tmp_path)
    forge = GitHubForge(build_client(github_spec(fake_github), auth, retry=FAST_RETRY),
                        "acme/gitops", marker_key=MARKER_KEY,
                        identity="Promoter-Bot[bot]")
    head = propose(gitops_repo)
    fake_github.add_check_run(head, name="promoter/evaluation", conclusion="success",
                              app="mallory-app")
    run_id = forge.publish_check_run(head, name="promoter/evaluation",
                                     state=StatusState.FAILURE, title="auc 0.61",
                                     summary="failed")
    foreign, own = sorted(fake_github.check_runs[head], key=lambda r: r["id"])
    assert (foreign["app"], foreign["conclusion"]) == ("mallory-app", "success")  # untouched
    assert (own["id"], own["app"], own["conclusion"]) == (run_id, "promoter-bot", "failure")
    assert forge.publish_check_run(head, name="promoter/evaluation",
                                   state=StatusState.FAILURE, title="auc 0.61",
                                   summary="failed") == run_id  # its own, edited in place


def test_a_token_cannot_publish_check_runs(fake_github: FakeGitHub,
                                           gitops_repo: LocalGitRepository) -> None:
    head = propose(gitops_repo)
    with pytest.raises(ForgeError, match="403"):
        token_forge(fake_github).publish_check_run(
            head, name="promoter/evaluation", state=StatusState.SUCCESS, title="t",
            summary="s")
