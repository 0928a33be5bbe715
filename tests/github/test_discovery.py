"""Discovery on (fake) GitHub: a proposal a person closed there stays closed, decided by the
closed PR's signed record, and a pass costs a bounded number of API calls."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from promoter.config.loader import load_settings
from promoter.forge.github import GitHubForge
from promoter.gitops.local import LocalGitRepository
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService
from promoter.promotion.autopropose import AutoProposer
from promoter.promotion.rollback import RollbackService
from tests.fixtures.git import push_commit
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import running_fake, token_forge
from tests.promotion.test_autopropose import Clock, auto_world
from tests.promotion.world import World

PASS_BUDGET = 6
"""GitHub API calls of one discovery pass that proposes nothing, three environments, one of
them in autoPropose (measured: 2: one `list_open_pull_requests` for the status of every
environment, and one `find_last_closed_pull_request` for dev; 4 when the status asked
`find_open_pull_request` per environment)."""


def _on_github(world: World, fake: FakeGitHub) -> tuple[GitHubForge, AutoProposer]:
    """Promoter's GitHub forge over `fake`, and discovery over `world` with it."""
    forge = token_forge(fake)
    repo = LocalGitRepository(world.root)
    settings = load_settings(world.root / "promoter.yaml")
    service = PromotionService(settings=settings, repo=repo, forge=forge,
                               store=LocalModelStore(world.root / "models"),
                               evaluator=world.evaluator, identity=fake.bot)
    return forge, AutoProposer(service=service, store=LocalModelStore(world.root / "models"),
                               settings=settings.settings,
                               rollbacks=RollbackService(repo=repo, forge=forge),
                               author=fake.bot, clock=Clock())


def test_a_pr_closed_on_github_is_not_reproposed_and_a_pass_stays_in_budget(
        tmp_path: Path) -> None:
    world = auto_world(tmp_path / "gitops")
    with running_fake(world.root) as fake:
        forge, auto = _on_github(world, fake)
        repo = LocalGitRepository(world.root)
        [attempt] = auto.run().attempts
        assert attempt.result is not None
        assert attempt.result.pull_request is not None
        forge.close(attempt.result.pull_request.number, comment="not v3")
        # Someone force-pushes dev-next after the close, naming another version.
        push_commit(repo, "environments/dev-next", {"hydrator.metadata": b"{}"})

        before = len(fake.requests)
        run = auto.run()
        calls = Counter(f"{m} {p}" for m, p in fake.requests[before:])
        print(f"\nGitHub API calls of one discovery pass: {sum(calls.values())}: "
              f"{dict(calls)}")
        assert run.attempts == ()
        assert "closed without merging" in run.plan.held[0].reason
        assert sum(calls.values()) <= PASS_BUDGET
        assert all(call.startswith("GET ") for call in calls)


def test_a_rollback_label_on_a_closed_proposal_does_not_reopen_it(tmp_path: Path) -> None:
    """Anyone who may label a PR (GitHub's triage role) labels the closed proposal `rollback`:
    discovery tells a rollback by the PR's recorded head commit, so the person's "no" stands.
    (Before, a `rollback` label took the PR out of the closed-proposal rule.)"""
    world = auto_world(tmp_path / "gitops")
    with running_fake(world.root) as fake:
        forge, auto = _on_github(world, fake)
        [attempt] = auto.run().attempts
        assert attempt.result is not None
        assert attempt.result.pull_request is not None
        number = attempt.result.pull_request.number
        forge.close(number, comment="not v3")
        mallory = token_forge(fake, token=fake.add_user("mallory"), identity="mallory")
        mallory._repo.get_pull(number).add_to_labels("rollback")
        assert "rollback" in fake.pulls[number]["labels"]

        run = auto.run()
        assert run.attempts == ()
        assert "closed without merging" in run.plan.held[0].reason
