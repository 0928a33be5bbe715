"""`instrument_forge`: every call forwarded and reported, and exactly the wrapped forge's
optional capabilities, which the promotion service reads from `Forge.capabilities`.

The wrapper is also held to the whole `Forge` contract (tests/contract, `instrumented`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import github
import pytest

from promoter.domain.pull_requests import PullRequest, PullRequestState, ReviewState, StatusState
from promoter.errors import PullRequestNotFoundError
from promoter.forge.base import Forge
from promoter.forge.capabilities import ExternalChecks, ForgeCapabilities
from promoter.forge.github import GitHubForge
from promoter.forge.instrumented import OnCall, instrument_forge
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository

NAMES = tuple(f.name for f in fields(ForgeCapabilities))
Calls = list[tuple[str, str]]


def recorder(calls: Calls) -> OnCall:
    def on_call(operation: str, result: str, seconds: float) -> None:
        assert seconds >= 0
        calls.append((operation, result))
    return on_call


def present(forge: Forge) -> list[bool]:
    """Which capabilities `forge` declares, in `ForgeCapabilities` field order."""
    return [getattr(forge.capabilities, name) is not None for name in NAMES]


class _Reviews:
    def submit_review(self, number: int, *, user: str, state: ReviewState) -> object:
        raise NotImplementedError  # only its presence matters here


class _ExternalChecks:
    def external_checks_state(self, pull: object) -> ExternalChecks:
        return ExternalChecks(StatusState.SUCCESS, "no required checks")


class _Teams:
    def team_members_among(self, users: Iterable[str], *, team: str | None = None
                           ) -> frozenset[str]:
        return frozenset(u for u in users if u.startswith("rm-"))


class _CheckRuns:
    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None,
                          details_url: str | None = None) -> int:
        return 42


PROVIDERS = (_Reviews, _ExternalChecks, _Teams, _CheckRuns)
"""One per field of ForgeCapabilities, in the same order."""


class ScriptedForge(LocalForge):
    """LocalForge declaring exactly the capabilities the test gives it."""

    def __init__(self, state: Path, repo: LocalGitRepository,
                 providers: tuple[type, ...]) -> None:
        super().__init__(state, repo)
        self._declared = ForgeCapabilities(**{
            name: provider() for name, provider in zip(NAMES, PROVIDERS, strict=True)
            if provider in providers})

    @property
    def capabilities(self) -> ForgeCapabilities:
        return self._declared


@pytest.mark.parametrize("providers", [combo for n in range(5)
                                       for combo in itertools.combinations(PROVIDERS, n)],
                         ids=lambda combo: "+".join(c.__name__.strip("_") for c in combo)
                         or "port-only")
def test_the_wrapper_has_exactly_the_wrapped_forges_capabilities(
        providers: tuple[type, ...], gitops_repo: LocalGitRepository, tmp_path: Path) -> None:
    forge = ScriptedForge(tmp_path / "forge.sqlite", gitops_repo, providers)
    assert present(forge) == [p in providers for p in PROVIDERS]
    wrapped = instrument_forge(forge, on_call=lambda *_: None)
    assert present(wrapped) == present(forge)
    assert type(wrapped) is type(instrument_forge(LocalForge(tmp_path / "x.sqlite",
                                                             gitops_repo),
                                                  on_call=lambda *_: None))  # no new classes


def test_the_real_forges_keep_their_capabilities(tmp_path: Path,
                                                 gitops_repo: LocalGitRepository) -> None:
    local = LocalForge(tmp_path / "forge.sqlite", gitops_repo)
    gh = GitHubForge(github.Github(lazy=True), "acme/ml-gitops",  # lazy: no request is made
                     marker_key=b"k" * 32)
    assert present(instrument_forge(local, on_call=lambda *_: None)) == [
        True, False, False, False]
    assert present(instrument_forge(gh, on_call=lambda *_: None)) == [
        False, True, True, True]


def test_capability_calls_are_forwarded_and_reported(gitops_repo: LocalGitRepository,
                                                     tmp_path: Path) -> None:
    calls: Calls = []
    forge = instrument_forge(ScriptedForge(tmp_path / "forge.sqlite", gitops_repo,
                                           PROVIDERS[1:]), on_call=recorder(calls))
    capabilities = forge.capabilities
    assert capabilities.team_directory is not None
    assert capabilities.check_runs is not None
    assert capabilities.external_checks is not None
    assert capabilities.team_directory.team_members_among(["rm-rita", "mia"]) == frozenset(
        {"rm-rita"})
    assert capabilities.check_runs.publish_check_run(
        "a" * 40, name="promoter/evaluation", state=StatusState.SUCCESS, title="t",
        summary="s") == 42
    pull = _any_pull()
    assert capabilities.external_checks.external_checks_state(pull).state is StatusState.SUCCESS
    assert calls == [("team_members_among", "ok"), ("publish_check_run", "ok"),
                     ("external_checks_state", "ok")]


def test_errors_are_reported_by_class_and_raised_unchanged(
        gitops_repo: LocalGitRepository, tmp_path: Path) -> None:
    calls: Calls = []
    inner = LocalForge(tmp_path / "forge.sqlite", gitops_repo)
    forge: Forge = instrument_forge(inner, on_call=recorder(calls))
    with pytest.raises(PullRequestNotFoundError):
        forge.get_pull_request(404)
    reviews = forge.capabilities.reviews
    assert reviews is not None
    with pytest.raises(PullRequestNotFoundError):
        reviews.submit_review(404, user="rita", state=ReviewState.APPROVED)

    class Broken(LocalForge):
        def list_statuses(self, sha: str) -> list:  # type: ignore[type-arg]
            raise RuntimeError("a bug, not a forge error")

    broken = instrument_forge(Broken(tmp_path / "broken.sqlite", gitops_repo),
                              on_call=recorder(calls))
    with pytest.raises(RuntimeError, match="a bug"):
        broken.list_statuses("a" * 40)
    assert calls == [("get_pull_request", "PullRequestNotFoundError"),
                     ("submit_review", "PullRequestNotFoundError"),
                     ("list_statuses", "unexpected")]
    assert broken.wrapped.__class__ is Broken


def _any_pull() -> PullRequest:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return PullRequest(number=1, head_branch="environments/dev-next",
                       base_branch="environments/dev", head_sha="a" * 40, title="t", body="",
                       author="mia", state=PullRequestState.OPEN, labels=("promoter",),
                       created_at=now, updated_at=now)
