"""The promotion service on a real git repository and the real LocalForge.

Scoring is scripted here (see fakes.py) so these tests are about promotion logic: branches,
pull requests, gates, approvals and idempotence. `test_end_to_end.py` runs real SavedModels.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from promoter.config.loader import load_settings
from promoter.domain.pull_requests import PullRequest, ReviewState, StatusState
from promoter.errors import (
    ApprovalError,
    ConfigError,
    HoldoutError,
    ModelStoreError,
    PromotionError,
)
from promoter.forge.capabilities import ExternalChecks, ForgeCapabilities
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import Signature
from promoter.model_store import LocalModelStore
from promoter.promotion import PromotionService, PromotionState, ProposalOutcome
from tests.fakes.scripted import ScriptedEvaluator
from tests.promotion.world import World, git, refs


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path / "gitops", ScriptedEvaluator())


def test_propose_writes_one_commit_on_next_and_opens_a_pr(world: World) -> None:
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.outcome is ProposalOutcome.OPENED
    pull = result.pull_request
    assert pull is not None
    assert (pull.head_branch, pull.base_branch) == ("environments/dev-next", "environments/dev")
    assert {"promoter", "env:dev", "model:churn"} <= set(pull.labels)
    assert pull.author == "mia"
    # One commit on top of the environment branch, which holds only the bootstrap commit.
    assert git(world.root, "rev-parse", "environments/dev-next^") == git(
        world.root, "rev-parse", "environments/dev")
    meta = world.metadata("environments/dev-next")
    assert meta["drySha"] == git(world.root, "rev-parse", "main")
    assert meta["promoter"]["version"] == 1
    assert meta["promoter"]["digest"] == result.digest
    assert meta["promoter"]["environment"] == "dev"
    files = git(world.root, "ls-tree", "-r", "--name-only", "environments/dev-next").split()
    assert "kustomization.yaml" in files
    assert any(f.startswith("serving/") for f in files)
    assert any(f.startswith("training/") for f in files)
    # The dry branch and the work tree are untouched.
    assert git(world.root, "status", "--porcelain") == ""


def test_proposing_the_same_thing_again_writes_nothing(world: World) -> None:
    first = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    before = refs(world.root)
    again = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert again.outcome is ProposalOutcome.UNCHANGED
    assert again.commit == first.commit
    assert again.pull_request
    assert first.pull_request
    assert again.pull_request.number == first.pull_request.number
    assert refs(world.root) == before
    assert len(world.forge.list_open_pull_requests()) == 1


def test_proposing_another_version_updates_the_same_pr(world: World) -> None:
    first = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    second = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert second.outcome is ProposalOutcome.UPDATED
    assert second.pull_request
    assert first.pull_request
    assert second.pull_request.number == first.pull_request.number
    assert second.pull_request.title == "Promote churn v2 to dev"
    assert world.metadata("environments/dev-next")["promoter"]["version"] == 2


def test_reconcile_merges_into_the_environment_branch(world: World) -> None:
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    base_before = git(world.root, "rev-parse", "environments/dev")
    outcomes = world.service.reconcile()
    assert [o.state for o in outcomes] == [PromotionState.MERGED]
    head = git(world.root, "rev-parse", "environments/dev")
    assert head == outcomes[0].merge_sha
    assert git(world.root, "rev-parse", f"{head}^1") == base_before
    assert git(world.root, "rev-parse", f"{head}^2") == result.commit
    assert world.metadata("environments/dev")["promoter"]["version"] == 1
    statuses = {s.context: s.state for s in world.forge.list_statuses(result.commit or "")}
    assert statuses == {"promoter/upstream": StatusState.SUCCESS,
                        "promoter/evaluation": StatusState.SUCCESS,
                        "promoter/approvals": StatusState.SUCCESS}
    # First deployment: no baseline was given to the evaluator.
    assert world.evaluator.calls == [(1, None, world.root / "data/churn-holdout-dev.csv")]
    # A second run has nothing to do and changes nothing.
    before = refs(world.root)
    assert world.service.reconcile() == []
    assert refs(world.root) == before


def test_already_deployed_version_is_not_proposed_again(world: World) -> None:
    world.promote("dev", 1)
    before = refs(world.root)
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.outcome is ProposalOutcome.ALREADY_DEPLOYED
    assert result.pull_request is None
    assert refs(world.root) == before


def test_baseline_is_the_model_deployed_in_the_environment(world: World) -> None:
    world.promote("dev", 1)
    world.promote("dev", 2)
    assert world.evaluator.calls[-1][:2] == (2, 1)


def test_version_must_be_deployed_upstream_first(world: World) -> None:
    world.promote("dev", 1)
    before = refs(world.root)
    with pytest.raises(PromotionError) as info:
        world.service.propose(environment="staging", model="churn", version=2, author="mia")
    assert "dev runs churn v1, not churn v2" in str(info.value)
    assert "promote churn v2 to dev first" in str(info.value)
    assert refs(world.root) == before
    with pytest.raises(PromotionError, match="nothing is deployed in staging"):
        world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert refs(world.root) == before


def test_prod_waits_for_an_eligible_approval(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    number = result.pull_request.number
    outcome = world.service.reconcile_pull(number)
    assert outcome.state is PromotionState.WAITING
    approvals = next(g for g in outcome.gates if g.context == "promoter/approvals")
    assert approvals.state is StatusState.PENDING

    with pytest.raises(ApprovalError, match="mia proposed a revision of PR"):
        world.service.approve(number, user="mia")
    with pytest.raises(ApprovalError, match="eve may not approve promotions to prod"):
        world.service.approve(number, user="eve")
    assert world.forge.list_reviews(number) == []

    world.service.approve(number, user="rita")
    outcome = world.service.reconcile_pull(number)
    assert outcome.state is PromotionState.MERGED
    assert world.metadata("environments/prod")["promoter"]["version"] == 1


def test_a_new_proposal_commit_needs_a_new_approval(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    world.service.approve(result.pull_request.number, user="rita")
    world.commit_dry_change("environments/prod.yaml", "replicas: 3", "replicas: 4")
    updated = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert updated.outcome is ProposalOutcome.UPDATED
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.WAITING
    assert "0 of 1" in next(g.description for g in outcome.gates
                            if g.context == "promoter/approvals")


def test_rejection_blocks(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    world.service.approve(result.pull_request.number, user="sam", reject=True)
    world.service.approve(result.pull_request.number, user="rita")
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED


def test_failed_evaluation_blocks_and_leaves_the_environment_alone(world: World) -> None:
    world.evaluator.failing_versions.add(3)
    world.promote("dev", 1)
    dev_before = git(world.root, "rev-parse", "environments/dev")
    result = world.service.propose(environment="dev", model="churn", version=3, author="mia")
    assert result.pull_request is not None
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    assert git(world.root, "rev-parse", "environments/dev") == dev_before
    report = world.service.evaluation_report(result.pull_request.number)
    assert report is not None
    assert "candidate v3, baseline v1" in report


def test_reconcile_is_idempotent_and_does_not_score_twice(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    number = result.pull_request.number
    world.service.reconcile()
    calls = len(world.evaluator.calls)
    comments = world.forge.list_comments(number)
    statuses = world.forge.list_statuses(result.commit or "")
    before = refs(world.root)
    world.service.reconcile()
    # A new service (a restart) derives the same state from git and the forge.
    world.service = world.build()
    world.service.reconcile()
    assert len(world.evaluator.calls) == calls
    assert world.forge.list_comments(number) == comments
    assert world.forge.list_statuses(result.commit or "") == statuses
    assert refs(world.root) == before


def test_policy_change_on_main_is_applied_and_rescored(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    assert world.service.reconcile_pull(result.pull_request.number).state is (
        PromotionState.WAITING)
    calls = len(world.evaluator.calls)
    world.commit_dry_change("policies/prod.yaml", "required: 1", "required: 0")
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.MERGED
    assert len(world.evaluator.calls) == calls  # only approvals changed: no re-scoring


def test_policies_on_the_proposal_branch_are_ignored(world: World) -> None:
    """A proposal that carries its own, weaker policy does not change its gate."""
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    assert result.commit
    weak = (world.root / "policies/prod.yaml").read_text().replace("required: 1",
                                                                     "required: 0")
    # Someone with push access rewrites the proposal to carry a weaker policy of its own.
    repo = LocalGitRepository(world.root)
    files = {p: repo.read_file(result.commit, p) or b"" for p in repo.list_files(result.commit)}
    files["policies/prod.yaml"] = weak.encode()
    parent = git(world.root, "rev-parse", "environments/prod")
    smuggled = repo.create_commit(files=files, parents=[parent], message="weaker gate",
                                  author=Signature("eve", "eve@example.com"))
    git(world.root, "update-ref", "refs/heads/environments/prod-next", smuggled)
    pull = world.forge.open_or_update_pull_request(
        head="environments/prod-next", base="environments/prod", title="t", body="b",
        author="mia", labels=["promoter"])
    assert pull.head_sha == smuggled
    outcome = world.service.reconcile_pull(pull.number)
    assert outcome.state is PromotionState.WAITING
    assert any(g.context == "promoter/approvals" and g.state is StatusState.PENDING
               for g in outcome.gates)


def test_evaluation_that_cannot_run_fails_the_gate_without_crashing(world: World) -> None:
    world.evaluator.error = HoldoutError("data/churn-holdout-dev.csv: column 'tenure' missing")
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    gate = next(g for g in outcome.gates if g.context == "promoter/evaluation")
    assert gate.state is StatusState.FAILURE
    assert "column 'tenure' missing" in gate.description
    assert not git(world.root, "ls-tree", "environments/dev", "hydrator.metadata")


def test_missing_model_version_writes_nothing(world: World) -> None:
    before = refs(world.root)
    with pytest.raises(ModelStoreError, match="version 9 not found"):
        world.service.propose(environment="dev", model="churn", version=9, author="mia")
    assert refs(world.root) == before


def test_not_a_saved_model_writes_nothing(world: World) -> None:
    bad = world.root / "models" / "churn" / "4"
    bad.mkdir()
    (bad / "model.keras").write_text("not a SavedModel")
    before = refs(world.root)
    with pytest.raises(ModelStoreError, match="not a SavedModel"):
        world.service.propose(environment="dev", model="churn", version=4, author="mia")
    assert refs(world.root) == before


def test_unknown_model_or_environment_writes_nothing(world: World) -> None:
    before = refs(world.root)
    with pytest.raises(ConfigError, match="no model named 'fraud'"):
        world.service.propose(environment="dev", model="fraud", version=1, author="mia")
    with pytest.raises(ConfigError, match="no environment named 'qa'"):
        world.service.propose(environment="qa", model="churn", version=1, author="mia")
    assert refs(world.root) == before


def test_broken_config_on_main_writes_nothing(world: World) -> None:
    world.commit_dry_change("policies/dev.yaml", "min: 0.70", "min: high")
    before = refs(world.root)
    with pytest.raises(ConfigError, match=r"policies/dev.yaml: evaluation.metrics\[0\].min"):
        world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert refs(world.root) == before


def test_a_push_to_the_proposal_branch_is_not_overwritten(world: World) -> None:
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    assert result.commit
    git(world.root, "branch", "-f", "environments/dev-next", "main")  # a person's push
    pushed = git(world.root, "rev-parse", "environments/dev-next")
    with pytest.raises(PromotionError, match="someone else pushed"):
        world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert git(world.root, "rev-parse", "environments/dev-next") == pushed
    warning = next(c for c in world.forge.list_comments(result.pull_request.number)
                   if c.key == "foreign-push")
    assert pushed in warning.body
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.BLOCKED
    assert "outside promoter" in (outcome.note or "")
    assert git(world.root, "rev-parse", "environments/dev") != pushed


def test_status_reports_deployed_and_proposed(world: World) -> None:
    world.promote("dev", 1)
    world.service.propose(environment="dev", model="churn", version=2, author="mia")
    status = {s.environment: s for s in world.service.status()}
    assert status["dev"].deployed is not None
    assert status["dev"].deployed.version == 1
    assert status["dev"].proposed is not None
    assert status["dev"].proposed.version == 2
    assert status["staging"].deployed is None
    assert status["staging"].head is None


def test_one_broken_promotion_does_not_stop_the_others(world: World) -> None:
    world.promote("dev", 1)
    world.promote("staging", 1)
    prod = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    dev = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert prod.pull_request is not None
    assert dev.pull_request is not None
    # Someone commits unreadable metadata to staging by hand: prod's upstream check cannot run.
    repo = LocalGitRepository(world.root)
    broken = repo.create_commit(files={"hydrator.metadata": b"{not json"},
                                parents=[git(world.root, "rev-parse", "environments/staging")],
                                message="hand edit", author=Signature("eve", "eve@example.com"))
    git(world.root, "update-ref", "refs/heads/environments/staging", broken)
    outcomes = {o.pull_number: o for o in world.service.reconcile()}
    assert outcomes[dev.pull_request.number].state is PromotionState.MERGED
    assert outcomes[prod.pull_request.number].state is PromotionState.BLOCKED
    assert "hydrator.metadata is not valid" in (outcomes[prod.pull_request.number].note or "")


def test_status_reads_every_environment_in_one_batch_as_before(world: World) -> None:
    """status() reads all branch heads and metadata at once: an unreadable proposal shows no
    proposed version and hides nothing else; an unreadable environment branch is an error
    naming it, as when each was read on its own."""
    from promoter.render.metadata import MetadataError

    world.promote("dev", 1)
    staging = world.service.propose(environment="staging", model="churn", version=1,
                                    author="mia")
    assert staging.pull_request is not None
    repo = LocalGitRepository(world.root)
    hand_edit = Signature("eve", "eve@example.com")
    broken = repo.create_commit(files={"hydrator.metadata": b"{not json"},
                                parents=[git(world.root, "rev-parse", "environments/dev")],
                                message="hand edit", author=hand_edit)
    next_head = git(world.root, "rev-parse", "environments/staging-next")
    git(world.root, "update-ref", "refs/heads/environments/staging-next", broken)
    world.forge.open_or_update_pull_request(
        head="environments/staging-next", base="environments/staging", title="t", body="b",
        author="mia", labels=["promoter"])
    status = {s.environment: s for s in world.service.status()}
    assert status["staging"].open_promotion is not None
    assert status["staging"].open_promotion.head_sha == broken
    assert status["staging"].proposed is None
    assert status["dev"].deployed is not None
    assert status["dev"].deployed.version == 1
    assert status["dev"].head == git(world.root, "rev-parse", "environments/dev")
    assert status["prod"].head is None
    git(world.root, "update-ref", "refs/heads/environments/staging-next", next_head)
    git(world.root, "update-ref", "refs/heads/environments/dev", broken)
    with pytest.raises(MetadataError, match="environments/dev@"):
        world.service.status()


def test_rollback_prs_merge_through_reconcile_without_evaluation(world: World) -> None:
    from promoter.promotion.rollback import RollbackService

    world.promote("dev", 1)
    world.promote("dev", 2)
    _, dry = world.service.dry_config()
    rollback = RollbackService(repo=LocalGitRepository(world.root), forge=world.forge).propose(
        dry.environment("dev"), reason="rollout failed", author="promoter")
    assert rollback.pull_request is not None
    # A promotion cannot overwrite it on the shared -next branch...
    with pytest.raises(PromotionError, match="a rollback of dev is open"):
        world.service.propose(environment="dev", model="churn", version=3, author="mia")
    # ...and reconcile merges it (dev's policy needs no approval), without scoring anything.
    calls = len(world.evaluator.calls)
    [outcome] = world.service.reconcile()
    assert outcome.state is PromotionState.MERGED, outcome
    assert len(world.evaluator.calls) == calls
    assert world.metadata("environments/dev")["promoter"]["version"] == 1


class ForgeWithRequiredChecks(LocalForge):
    """LocalForge plus the GitHub-only capabilities, scripted by the test."""

    @property
    def capabilities(self) -> ForgeCapabilities:
        return ForgeCapabilities(reviews=self, external_checks=self, team_directory=self,
                                 check_runs=self)

    checks = ExternalChecks(StatusState.PENDING, "ci/e2e is pending", pending=("ci/e2e",))
    team: frozenset[str] = frozenset()
    check_runs: list[tuple[str, str, StatusState, str]]

    def external_checks_state(self, pull: PullRequest) -> ExternalChecks:
        return self.checks

    def team_members_among(self, users: Iterable[str], *, team: str | None = None
                           ) -> frozenset[str]:
        return frozenset(users) & self.team

    details_urls: list[str | None]

    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None,
                          details_url: str | None = None) -> int:
        self.check_runs.append((sha, name, state, summary))
        self.details_urls = [*getattr(self, "details_urls", []), details_url]
        return len(self.check_runs)

def test_required_external_checks_hold_the_merge(world: World) -> None:
    forge = ForgeWithRequiredChecks(world.forge.db_path, LocalGitRepository(world.root))
    forge.check_runs = []
    world.forge = forge
    world.service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=LocalGitRepository(world.root),
        forge=forge, store=LocalModelStore(world.root / "models"), evaluator=world.evaluator)
    result = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    before = refs(world.root)
    outcome = world.service.reconcile_pull(result.pull_request.number)
    assert outcome.state is PromotionState.WAITING
    assert refs(world.root) == before
    # The report went out once as a check run on the head, and is not re-sent when reused.
    assert [(sha, name, state) for sha, name, state, _ in forge.check_runs] == [
        (result.commit, "promoter/evaluation", StatusState.SUCCESS)]
    assert "## Evaluation" in forge.check_runs[0][3]
    assert forge.details_urls == [None]  # no service.publicUrl: no page to link to
    forge.checks = ExternalChecks(StatusState.FAILURE, "ci/e2e failed", failing=("ci/e2e",))
    assert world.service.reconcile_pull(result.pull_request.number).state is (
        PromotionState.BLOCKED)
    forge.checks = ExternalChecks(StatusState.SUCCESS, "all required checks passed")
    assert world.service.reconcile_pull(result.pull_request.number).state is (
        PromotionState.MERGED)


def test_comment_and_check_run_link_to_the_promotion_page_with_a_public_url(
        world: World) -> None:
    settings = world.root / "promoter.yaml"
    assert "\nservice:" not in settings.read_text()
    settings.write_text(settings.read_text()
                        + "\nservice:\n  publicUrl: https://promoter.example.com/\n")
    forge = ForgeWithRequiredChecks(world.forge.db_path, LocalGitRepository(world.root))
    forge.check_runs = []
    forge.checks = ExternalChecks(StatusState.SUCCESS, "none required")
    service = PromotionService(
        settings=load_settings(settings), repo=LocalGitRepository(world.root), forge=forge,
        store=LocalModelStore(world.root / "models"), evaluator=world.evaluator)
    result = service.propose(environment="dev", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    number = result.pull_request.number
    service.reconcile_pull(number)
    page = f"https://promoter.example.com/promotions/{number}"  # the trailing / is dropped
    assert forge.details_urls == [page]
    report = service.evaluation_report(number)
    assert report is not None
    assert report.endswith(f"[Open this promotion in promoter]({page})\n")


def test_members_of_the_approver_team_count(world: World) -> None:
    forge = ForgeWithRequiredChecks(world.forge.db_path, LocalGitRepository(world.root))
    forge.check_runs = []
    forge.checks = ExternalChecks(StatusState.SUCCESS, "none required")
    world.forge = forge
    world.service = PromotionService(
        settings=load_settings(world.root / "promoter.yaml"), repo=LocalGitRepository(world.root),
        forge=forge, store=LocalModelStore(world.root / "models"), evaluator=world.evaluator)
    world.promote("dev", 1)
    world.promote("staging", 1)
    result = world.service.propose(environment="prod", model="churn", version=1, author="mia")
    assert result.pull_request is not None
    forge.submit_review(result.pull_request.number, user="tess", state=ReviewState.APPROVED)
    assert world.service.reconcile_pull(result.pull_request.number).state is (
        PromotionState.WAITING)  # tess is neither named nor (yet) in the team
    forge.team = frozenset({"tess"})
    assert world.service.reconcile_pull(result.pull_request.number).state is (
        PromotionState.MERGED)


def test_inconclusive_evaluation_waits_for_an_approval(world: World) -> None:
    world.commit_dry_change("policies/dev.yaml", "required: 0", "required: 0\n  approvers: [rita]")
    world.evaluator.inconclusive_versions.add(2)
    world.promote("dev", 1)
    result = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert result.pull_request is not None
    number = result.pull_request.number
    assert world.service.reconcile_pull(number).state is PromotionState.WAITING
    calls = len(world.evaluator.calls)
    # Reusing the cached verdict keeps asking for the approval.
    assert world.service.reconcile_pull(number).state is PromotionState.WAITING
    assert len(world.evaluator.calls) == calls
    world.service.approve(number, user="rita")
    assert world.service.reconcile_pull(number).state is PromotionState.MERGED


def test_reconciling_a_finished_pull_request_is_a_quiet_no_op(world: World) -> None:
    """A webhook's job can run after a resync merged the PR, or after a person closed it."""
    merged = world.service.propose(environment="dev", model="churn", version=1, author="mia")
    assert merged.pull_request is not None
    world.service.reconcile()
    dev_head = git(world.root, "rev-parse", "environments/dev")
    again = world.service.reconcile_pull(merged.pull_request.number)
    assert (again.state, again.note, again.merge_sha) == (PromotionState.MERGED,
                                                         "already merged", None)
    assert (again.model, again.version) == ("churn", 1)

    closed = world.service.propose(environment="dev", model="churn", version=2, author="mia")
    assert closed.pull_request is not None
    world.forge.close(closed.pull_request.number, comment="not now")
    outcome = world.service.reconcile_pull(closed.pull_request.number)
    assert (outcome.state, outcome.note) == (PromotionState.BLOCKED, "closed without merging")
    assert world.forge.list_statuses(closed.pull_request.head_sha) == []
    assert git(world.root, "rev-parse", "environments/dev") == dev_head


def test_dry_config_is_loaded_once_per_dry_commit(world: World) -> None:
    sha, first = world.service.dry_config()
    assert world.service.dry_config() == (sha, first)
    assert world.service.dry_config()[1] is first  # not parsed again
    world.commit_dry_change("policies/dev.yaml", "min: 0.70", "min: 0.71")
    new_sha, changed = world.service.dry_config()
    assert new_sha != sha
    assert changed.policies["dev"].evaluation.metrics[0].min == 0.71
