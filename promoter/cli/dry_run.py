"""`promoter reconcile --dry-run`: the real reconcile, over adapters that write nothing.

The promotion service decides and writes in one pass, with no planning call; so instead of a
second, look-alike implementation of the gates, the dry run runs the service itself over
wrappers of promoter.yaml's adapters that forward every read and record every write instead
of doing it. The gates are judged exactly as `reconcile` judges them: evaluations run (their
verdicts are kept in memory, not stored), statuses that would change, report comments,
merges, closes and sync requests are listed, and nothing reaches git, the forge, the cluster
or the verdict store.

Where the service would write a commit (a re-proposal because the environment moved, a
rollback after a failed rollout) the dry run cannot go on for that promotion, since what
follows reads the new commit: the promotion's outcome says what would have been written, and
the others go on.

Not covered: opening the local forge creates its database file when there is none yet (as
any command does), and the evaluation worker writes its scratch files in a temporary
directory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from promoter.cluster.port import ClusterReader, RolloutState
from promoter.config.loader import LoadedSettings
from promoter.config.schema import EnvironmentSpec
from promoter.domain.pull_requests import (
    Comment,
    CommitStatus,
    PullRequest,
    Review,
    ReviewState,
    StatusState,
)
from promoter.errors import PromoterError
from promoter.forge.base import Forge
from promoter.forge.capabilities import ExternalChecks, ForgeCapabilities
from promoter.gitops.port import CommitInfo, GitOpsRepository, Signature
from promoter.promotion.results import PromotionState, ReconcileOutcome
from promoter.promotion.verdicts import MemoryVerdictStore, StoredVerdict, VerdictStore

MERGE_PLACEHOLDER = "0" * 40
"""What a recorded merge answers instead of a merge commit (there is none)."""


class WouldWriteCommitError(PromoterError):
    """The dry run reached a write that what follows depends on (a new commit): it stops
    there for this promotion. Not a failure: exit code 0."""

    exit_code = 0


@dataclass(frozen=True, slots=True)
class Write:
    """One write the real command would have made."""

    operation: str
    """set_status, upsert_comment, merge, close, publish_check_run, request_reconcile,
    open_or_update_pull_request, submit_review, create_commit or update_branch."""
    target: str
    """What it would write to: `PR #7`, a commit sha, an environment."""
    detail: str

    def describe(self) -> str:
        return f"{self.operation} {self.target}: {self.detail}"

    def document(self) -> dict[str, str]:
        return {"operation": self.operation, "target": self.target, "detail": self.detail}


@dataclass
class Recorder:
    writes: list[Write] = field(default_factory=list)

    def add(self, operation: str, target: str, detail: str) -> None:
        self.writes.append(Write(operation, target, detail))


class DryRunRepository:
    """A GitOpsRepository that reads through and refuses to write (see the module doc)."""

    def __init__(self, repo: GitOpsRepository, recorder: Recorder) -> None:
        self._repo = repo
        self._recorder = recorder

    @property
    def url(self) -> str:
        return self._repo.url

    def branch_head(self, branch: str) -> str | None:
        return self._repo.branch_head(branch)

    def read_file(self, commit: str, path: str) -> bytes | None:
        return self._repo.read_file(commit, path)

    def list_files(self, commit: str, directory: str = "") -> list[str]:
        return self._repo.list_files(commit, directory)

    def commit_info(self, sha: str) -> CommitInfo:
        return self._repo.commit_info(sha)

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._repo.is_ancestor(ancestor, descendant)

    def tree_id(self, commit: str) -> str:
        return self._repo.tree_id(commit)

    def tree_of(self, files: Mapping[str, bytes]) -> str:
        return self._repo.tree_of(files)  # hashes only: nothing is written

    def create_commit(self, *, files: Mapping[str, bytes], parents: Sequence[str],
                      message: str, author: Signature) -> str:
        subject = message.splitlines()[0] if message else ""
        on = ", ".join(p[:12] for p in parents) or "no parent"
        self._recorder.add("create_commit", f"on {on}", f"{subject} ({len(files)} files)")
        raise WouldWriteCommitError(
            f"dry run: would write a new commit ({subject}) and judge that; what follows "
            "depends on it, so this promotion's dry run stops here")

    def update_branch(self, branch: str, new_sha: str, *, expected: str | None,
                      fast_forward_only: bool) -> None:  # pragma: no cover - after a commit
        self._recorder.add("update_branch", branch, new_sha[:12])
        raise WouldWriteCommitError(f"dry run: would move {branch}")


class _DryRunForgeBase:
    def __init__(self, forge: object, recorder: Recorder) -> None:
        self._forge: Any = forge  # the forge, or the provider of one of its capabilities
        self._recorder = recorder


class DryRunForge(_DryRunForgeBase):
    """The Forge port: reads forwarded, writes recorded. Build it with `dry_run_forge`,
    which gives it exactly the wrapped forge's optional capabilities."""

    @property
    def capabilities(self) -> ForgeCapabilities:
        inner = self._forge.capabilities
        return ForgeCapabilities(
            reviews=_wrap(inner.reviews, _ReviewRecording, self._recorder),
            external_checks=_wrap(inner.external_checks, _ExternalChecksReading,
                                  self._recorder),
            team_directory=_wrap(inner.team_directory, _TeamLookup, self._recorder),
            check_runs=_wrap(inner.check_runs, _CheckRunPublishing, self._recorder))

    def open_or_update_pull_request(self, *, head: str, base: str, title: str, body: str,
                                    author: str, labels: Sequence[str]) -> PullRequest:
        self._recorder.add("open_or_update_pull_request", f"{head} -> {base}", title)
        raise WouldWriteCommitError(f"dry run: would open or update the PR {head} -> {base}")

    def get_pull_request(self, number: int) -> PullRequest:
        pull: PullRequest = self._forge.get_pull_request(number)
        return pull

    def find_open_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        pull: PullRequest | None = self._forge.find_open_pull_request(head=head, base=base)
        return pull

    def list_open_pull_requests(self, *, label: str | None = None) -> list[PullRequest]:
        pulls: list[PullRequest] = self._forge.list_open_pull_requests(label=label)
        return pulls

    def find_last_closed_pull_request(self, *, head: str, base: str) -> PullRequest | None:
        pull: PullRequest | None = self._forge.find_last_closed_pull_request(head=head,
                                                                             base=base)
        return pull

    def set_status(self, sha: str, status: CommitStatus) -> None:
        self._recorder.add("set_status", sha[:12],
                           f"{status.context} {status.state}: {status.description}")

    def list_statuses(self, sha: str) -> list[CommitStatus]:
        statuses: list[CommitStatus] = self._forge.list_statuses(sha)
        return statuses

    def list_reviews(self, number: int) -> list[Review]:
        reviews: list[Review] = self._forge.list_reviews(number)
        return reviews

    def upsert_comment(self, number: int, *, key: str, body: str) -> Comment:
        first = body.strip().splitlines()[0] if body.strip() else ""
        self._recorder.add("upsert_comment", f"PR #{number}", f"{key}: {first}")
        return Comment(id=0, key=key, body=body, updated_at=datetime.now(UTC))

    def list_comments(self, number: int) -> list[Comment]:
        comments: list[Comment] = self._forge.list_comments(number)
        return comments

    def merge(self, number: int, *, expected_head: str, expected_base: str,
              message: str) -> str:
        self._recorder.add("merge", f"PR #{number}",
                           f"into {expected_base} at head {expected_head[:12]}")
        return MERGE_PLACEHOLDER

    def close(self, number: int, *, comment: str | None = None) -> None:
        self._recorder.add("close", f"PR #{number}", comment or "without a comment")


class _ReviewRecording(_DryRunForgeBase):
    def submit_review(self, number: int, *, user: str, state: ReviewState) -> Review:
        self._recorder.add("submit_review", f"PR #{number}", f"{user}: {state}")
        raise WouldWriteCommitError("dry run: would record a review")


class _ExternalChecksReading(_DryRunForgeBase):
    def external_checks_state(self, pull: PullRequest) -> ExternalChecks:
        checks: ExternalChecks = self._forge.external_checks_state(pull)
        return checks


class _TeamLookup(_DryRunForgeBase):
    def team_members_among(self, users: Iterable[str], *, team: str | None = None
                           ) -> frozenset[str]:
        members: frozenset[str] = self._forge.team_members_among(users, team=team)
        return members


class _CheckRunPublishing(_DryRunForgeBase):
    def publish_check_run(self, sha: str, *, name: str, state: StatusState, title: str,
                          summary: str, text: str | None = None) -> int:
        self._recorder.add("publish_check_run", sha[:12], f"{name} {state}: {title}")
        return 0


def dry_run_forge(forge: Forge, recorder: Recorder) -> DryRunForge:
    """`forge` with its writes recorded instead of made; its capabilities (the record) are
    exactly those of `forge`, each wrapped the same way."""
    return DryRunForge(forge, recorder)


def _wrap(part: object | None, wrapper: type[_DryRunForgeBase],
          recorder: Recorder) -> Any:
    return None if part is None else wrapper(part, recorder)


class DryRunCluster:
    """A ClusterReader that reads the cluster and records sync requests."""

    def __init__(self, cluster: ClusterReader, recorder: Recorder) -> None:
        self._cluster = cluster
        self._recorder = recorder

    def rollout_state(self, env: EnvironmentSpec, *, commit: str) -> RolloutState:
        return self._cluster.rollout_state(env, commit=commit)

    def request_reconcile(self, env: EnvironmentSpec, *, requested_at: str) -> None:
        self._recorder.add("request_reconcile", env.name, "ask Flux/Argo CD to sync now")


class ReadOnlyVerdicts:
    """Verdicts read from the real store, new ones kept in this process only."""

    def __init__(self, store: VerdictStore | None) -> None:
        self._store = store
        self._new = MemoryVerdictStore()

    def get(self, key: str) -> StoredVerdict | None:
        return self._new.get(key) or (self._store.get(key) if self._store else None)

    def put(self, key: str, verdict: StoredVerdict) -> None:
        self._new.put(key, verdict)


def dry_run_reconcile(loaded: LoadedSettings) -> tuple[list[ReconcileOutcome], list[Write]]:
    """What `reconcile` would decide and write now; writes nothing (see the module doc)."""
    from promoter.wiring import build_adapters, build_service

    recorder = Recorder()
    real = build_adapters(loaded)
    adapters = replace(
        real, repo=DryRunRepository(real.repo, recorder),
        forge=dry_run_forge(real.forge, recorder),
        cluster=DryRunCluster(real.cluster, recorder) if real.cluster is not None else None,
        verdicts=ReadOnlyVerdicts(real.verdicts))
    outcomes = [_as_planned(o) for o in build_service(loaded, adapters=adapters).reconcile()]
    return outcomes, recorder.writes


def _as_planned(outcome: ReconcileOutcome) -> ReconcileOutcome:
    """A recorded merge is not a merge: the promotion is ready and would be merged. A stop
    at a commit is not a failure: it is what the dry run could not follow."""
    if outcome.state is PromotionState.MERGED and outcome.merge_sha == MERGE_PLACEHOLDER:
        return replace(outcome, state=PromotionState.READY, merge_sha=None,
                       note="dry run: every gate passes; reconcile would merge it now")
    if outcome.error is not None and outcome.error.exit_code == 0:
        return replace(outcome, error=None,
                       note=outcome.error.message.removeprefix("reconcile failed: "))
    return outcome
