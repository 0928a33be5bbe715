"""`reconcile --dry-run`'s forge over GitHub: it offers exactly the capabilities of the forge
it wraps (a capability it dropped would make the dry run judge another pipeline than the real
one), reads other tools' checks for real heads, and writes nothing to GitHub."""

from __future__ import annotations

from dataclasses import fields

from promoter.cli.dry_run_forge import DryRunForge
from promoter.cli.dry_run_git import DryRunRepository, Recorder
from promoter.domain.pull_requests import CommitStatus, StatusState
from promoter.forge.capabilities import ForgeCapabilities
from promoter.forge.local import LocalForge
from promoter.gitops.local import LocalGitRepository
from promoter.gitops.port import Signature
from tests.github.fake_server import FakeGitHub
from tests.github.fixtures import token_forge
from tests.github.scenario import BASE, open_pr, propose


def _offered(capabilities: ForgeCapabilities) -> set[str]:
    return {f.name for f in fields(capabilities) if getattr(capabilities, f.name) is not None}


def test_every_capability_of_github_is_offered_and_writes_are_kept(
        fake_github: FakeGitHub, gitops_repo: LocalGitRepository) -> None:
    forge = token_forge(fake_github)
    head = propose(gitops_repo)
    pr = open_pr(forge)
    recorder = Recorder()
    repo = DryRunRepository(gitops_repo, recorder)
    dry = DryRunForge(forge, repo, recorder)
    assert _offered(dry.capabilities) == _offered(forge.capabilities) == {
        "external_checks", "team_directory", "check_runs"}

    fake_github.required_checks[BASE] = ["ci/policy-scan"]
    external = dry.capabilities.external_checks
    assert external is not None
    assert external.external_checks_state(pr).pending == ("ci/policy-scan",)  # read for real
    planned = repo.create_commit(files={"a.yaml": b"a: 1\n"}, parents=[head], message="x",
                                 author=Signature("promoter", "promoter@localhost"))
    repo.update_branch(pr.head_branch, planned, expected=head, fast_forward_only=False)
    updated = dry.open_or_update_pull_request(head=pr.head_branch, base=BASE, title="t",
                                              body="b", author="mia", labels=())
    assert (updated.number, updated.head_sha) == (pr.number, planned)
    assert external.external_checks_state(updated).state is StatusState.PENDING
    dry.set_status(planned, CommitStatus("promoter/evaluation", StatusState.SUCCESS, "ok"))
    assert [s.context for s in dry.list_statuses(planned)] == ["promoter/evaluation"]
    check_runs = dry.capabilities.check_runs
    assert check_runs is not None
    check_runs.publish_check_run(planned, name="promoter/evaluation",
                                 state=StatusState.SUCCESS, title="t", summary="s")

    # GitHub saw none of it.
    assert forge.get_pull_request(pr.number).head_sha == head
    assert forge.list_statuses(head) == []
    assert [w.operation for w in recorder.writes] == [
        "create_commit", "update_branch", "update_pull_request", "set_status",
        "publish_check_run"]


def test_the_local_forge_offers_reviews_only(local_forge: LocalForge,
                                             gitops_repo: LocalGitRepository) -> None:
    dry = DryRunForge(local_forge, DryRunRepository(gitops_repo, Recorder()), Recorder())
    assert _offered(dry.capabilities) == _offered(local_forge.capabilities) == {"reviews"}
