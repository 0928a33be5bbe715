"""Attacks on "a person closed this proposal": discovery must take that only from the forge.

Anything on `<env>-next` is untrusted: whoever can push to it can plant a commit whose
hydrator.metadata names any version. A version counts as closed without merging only when the
forge records a promotion PR into the environment branch closed unmerged, whose recorded head
is promoter's own render of that version. Real git repositories and the local forge.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promoter.gitops.local import LocalGitRepository
from promoter.promotion.autopropose import AutoProposer
from promoter.render.metadata import METADATA_FILE
from tests.fixtures.git import push_commit
from tests.promotion.test_autopropose import auto_world, proposer
from tests.promotion.world import World, fake_saved_model, git

ENV = "environments/dev"
NEXT = "environments/dev-next"


@pytest.fixture
def world(tmp_path: Path) -> World:
    return auto_world(tmp_path / "gitops")


def plant(world: World, version: int, *, onto: str = ENV) -> str:
    """Someone pushes to dev-next a commit on `onto` whose hydrator.metadata names churn
    `version` (the deployed metadata with the version changed); its sha."""
    meta = world.metadata(onto)
    meta["promoter"]["version"] = version
    return push_commit(LocalGitRepository(world.root), NEXT,
                       {METADATA_FILE: json.dumps(meta).encode()}, onto=onto,
                       message=f"Hydrate churn v{version} for dev")


def proposed_versions(auto: AutoProposer) -> list[int]:
    return [a.proposal.version for a in auto.run().attempts if a.error is None]


def test_a_planted_commit_naming_the_newest_version_does_not_hold_it_back(
        world: World) -> None:
    world.promote("dev", 1)
    plant(world, 3)
    # No PR was ever closed: the newest version is still proposed, over the planted commit.
    assert proposed_versions(proposer(world)) == [3]
    [pull] = world.forge.list_open_pull_requests()
    assert world.metadata(NEXT)["promoter"]["version"] == 3
    assert git(world.root, "rev-parse", NEXT) == pull.head_sha


def test_a_planted_copy_of_promoters_render_is_not_a_closed_proposal(world: World) -> None:
    """Even byte for byte promoter's render on dev-next says nothing: no PR was closed."""
    world.promote("dev", 1)
    other = auto_world(world.root.parent / "twin")  # the same render, made elsewhere
    other.promote("dev", 1)
    other.service.propose(environment="dev", model="churn", version=3, author="mia")
    repo = LocalGitRepository(world.root)
    env_head = repo.branch_head(ENV)
    assert env_head is not None
    twin = LocalGitRepository(other.root)
    next_head = twin.branch_head(NEXT)
    assert next_head is not None
    files = {p: twin.read_file(next_head, p) or b"" for p in twin.list_files(next_head)}
    push_commit(repo, NEXT, files, onto=ENV, replace=True)
    assert proposed_versions(proposer(world)) == [3]


def test_a_planted_older_version_does_not_reopen_a_closed_proposal(world: World) -> None:
    world.promote("dev", 1)
    [first] = proposer(world).run().attempts
    assert first.result is not None
    assert first.result.pull_request is not None
    assert first.proposal.version == 3
    world.forge.close(first.result.pull_request.number, comment="not v3")
    # The branch is force-pushed after the close to name another version: the forge's record
    # of the closed PR (its head, promoter's v3 render) still decides.
    plant(world, 2)
    run = proposer(world).run()
    assert run.attempts == ()
    assert "its proposal to dev was closed without merging" in run.plan.held[0].reason
    # A newer version is a new chance.
    fake_saved_model(world.root / "models" / "churn" / "4", "graph v4")
    assert proposed_versions(proposer(world)) == [4]


def test_a_closed_pr_whose_recorded_head_is_not_promoters_render_holds_nothing(
        world: World) -> None:
    """A PR the forge recorded at a foreign head (someone pushed before it was opened) and a
    person closed: its metadata names v3, but it is not promoter's v3, so v3 is proposed."""
    world.promote("dev", 1)
    planted = plant(world, 3)
    pull = world.forge.open_or_update_pull_request(
        head=NEXT, base=ENV, title="Promote churn v3 to dev", body="", author="promoter",
        labels=["promoter"])
    assert pull.head_sha == planted
    world.forge.close(pull.number)
    assert proposed_versions(proposer(world)) == [3]


def test_a_real_closed_proposal_stays_closed_after_the_branch_is_deleted(
        world: World) -> None:
    world.promote("dev", 1)
    [first] = proposer(world).run().attempts
    assert first.result is not None
    assert first.result.pull_request is not None
    world.forge.close(first.result.pull_request.number)
    git(world.root, "update-ref", "-d", f"refs/heads/{NEXT}")
    run = proposer(world).run()
    assert run.attempts == ()
    assert "closed without merging" in run.plan.held[0].reason


def test_a_merged_proposal_after_a_closed_one_clears_it(world: World) -> None:
    """Only the newest PR that is no longer open counts: v3 closed, then v3 proposed by hand
    and merged; v3 is deployed, and v4 flows."""
    [first] = proposer(world).run().attempts
    assert first.result is not None
    assert first.result.pull_request is not None
    world.forge.close(first.result.pull_request.number)
    world.promote("dev", 3)
    fake_saved_model(world.root / "models" / "churn" / "4", "graph v4")
    assert proposed_versions(proposer(world)) == [4]


def test_a_closed_version_whose_render_changed_is_a_new_proposal(world: World) -> None:
    """What a person closed is that render: a dry-source change that changes the manifests
    makes the same version a different proposal, which discovery makes."""
    [first] = proposer(world).run().attempts
    assert first.result is not None
    assert first.result.pull_request is not None
    world.forge.close(first.result.pull_request.number)
    (world.root / "NOTES.md").write_text("an unrelated dry commit\n")
    git(world.root, "add", "NOTES.md")
    git(world.root, "commit", "-q", "-m", "notes")
    assert proposer(world).run().attempts == ()  # the same render: still closed
    assert proposer(world).run().attempts == ()
    world.commit_dry_change("environments/dev.yaml", "  replicas: 1", "  replicas: 2")
    assert proposed_versions(proposer(world)) == [3]
