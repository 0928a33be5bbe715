"""Running the fake GitHub for a test, and building a `GitHubForge` client for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from promoter.config.schema import GitHubAuthSpec, GitHubSpec
from promoter.forge.github import GitHubForge
from promoter.forge.github_auth import RetryPolicy, build_client
from tests.github.fake_server import FakeGitHub
from tests.github.openapi import shared_validator

FAST_RETRY = RetryPolicy(total=3, backoff_factor=0.001, secondary_rate_wait=0.01,
                         max_rate_limit_wait=5.0, timeout=10)
"""Retries as in production, with waits of milliseconds so the tests stay fast."""
TOKEN = "ghp_fake_token_0123456789"
MARKER_KEY = b"test-marker-key-0123456789abcdef0123456789"
"""The key the tests' `GitHubForge`s sign their pull-request markers with."""


@contextmanager
def running_fake(repo_path: Path, **kwargs: str) -> Iterator[FakeGitHub]:
    """A started fake over `repo_path`; at exit every response it sent is validated against
    GitHub's OpenAPI description, and the test fails listing each violation."""
    fake = FakeGitHub(repo_path, token=TOKEN, **kwargs)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
    validator = shared_validator()
    problems = [p for r in fake.responses for p in validator.check(r)]
    assert not problems, "fake GitHub sent undocumented responses:\n" + "\n".join(problems[:20])


def github_spec(fake: FakeGitHub, **auth: object) -> GitHubSpec:
    auth_spec = GitHubAuthSpec.model_validate(auth or {"type": "token", "tokenEnv": "GH_TOKEN"})
    return GitHubSpec(repository=f"{fake.owner}/{fake.name}", base_url=fake.base_url,
                      auth=auth_spec, marker_key_env="PROMOTER_MARKER_KEY")


def token_forge(fake: FakeGitHub, *, token: str = TOKEN, retry: RetryPolicy = FAST_RETRY,
                identity: str | None = None, **kwargs: object) -> GitHubForge:
    """A `GitHubForge` over `fake` acting with `token` (default: promoter's own, whose login
    is `fake.bot`); `identity` is the login it trusts as its own (default: `fake.bot`)."""
    from github import Auth

    client = build_client(github_spec(fake), Auth.Token(token), retry=retry)
    kwargs.setdefault("marker_key", MARKER_KEY)
    return GitHubForge(client, f"{fake.owner}/{fake.name}", identity=identity or fake.bot,
                       **kwargs)  # type: ignore[arg-type]
