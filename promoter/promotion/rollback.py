"""Rollback: restore an environment branch to an earlier hydrated commit, through a pull request.

A rollback is a *new* commit on `<env>-next`, on top of the environment branch as it is now,
whose tree is exactly the tree of the earlier commit (manifests and `hydrator.metadata`
alike, so promoter reads the restored version as deployed once it merges). The environment
branch only moves forward, through the forge's guarded merge: never a reset, never a force.
Argo CD refuses its own rollback under automated sync, and Flux has none: git is where a
rollback happens.

Which commit is restored:
- `to_version=None`: the previous *distinct* deployment on the branch's first-parent history,
  skipping content that was itself rolled back (a rollback commit or its merge carries
  `Rollback-of: <sha>` and `Restores: <sha>` trailers), so rolling back twice goes v3 -> v2 ->
  v1, not back to v3.
- `to_version=N`: the most recent commit on that history deploying version N.

Only the ports are used (`GitOpsRepository`, `Forge`), so this works on any forge.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from promoter.cluster.port import RolloutPhase, RolloutState
from promoter.config.schema import EnvironmentSpec
from promoter.domain.pull_requests import PullRequest
from promoter.errors import GitError, PromotionError
from promoter.forge.base import Forge
from promoter.gitops.port import GitOpsRepository, Signature
from promoter.promotion.authorship import trailers
from promoter.promotion.conventions import (
    BOT,
    PROMOTER_LABEL,
    RESTORES,
    ROLLBACK_LABEL,
    ROLLBACK_OF,
)
from promoter.promotion.merging import EnvironmentMerger, MergeRequest
from promoter.promotion.rollback_commits import ROLLBACK_TRAILER, is_rollback_commit
from promoter.render.metadata import METADATA_FILE, HydratorMetadata, MetadataError

log = logging.getLogger(__name__)


_MAX_HISTORY = 10_000
"""Commits walked at most when looking for the commit to restore (a runaway guard)."""


class RollbackOutcome(enum.StrEnum):
    OPENED = "opened"
    """A rollback PR was opened (or an open promotion PR became the rollback)."""
    UPDATED = "updated"
    """The open rollback PR now restores a different commit or sits on a newer base."""
    UNCHANGED = "unchanged"
    """The open rollback PR already restores this commit on this base."""


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """What a rollback of one environment would do; computed without writing anything."""

    environment: str
    branch: str
    current: str
    """The environment branch head being rolled back."""
    target: str
    """The earlier commit whose tree is restored."""
    current_metadata: HydratorMetadata
    target_metadata: HydratorMetadata

    def describe(self) -> str:
        now, then = self.current_metadata.deployed, self.target_metadata.deployed
        return (f"{self.environment}: {now.model} v{now.version} -> {then.model} "
                f"v{then.version} (restores {self.target[:12]})")


@dataclass(frozen=True, slots=True)
class RollbackResult:
    plan: RollbackPlan
    outcome: RollbackOutcome
    commit: str
    """Head of `<env>-next`: the rollback commit."""
    pull_request: PullRequest
    merge_sha: str | None = None
    """The merge on the environment branch, when the rollback was merged."""


class RollbackService:
    """Rollback pull requests for environment branches, on any forge."""

    def __init__(self, *, repo: GitOpsRepository, forge: Forge, author: Signature = BOT) -> None:
        self._repo = repo
        self._forge = forge
        self._author = author

    # --- reading ------------------------------------------------------------------------------

    def is_rollback(self, pull: PullRequest) -> bool:
        """Whether `pull` is a rollback PR, read from its recorded head commit, never from its
        labels (`is_rollback_commit`)."""
        return bool(pull.head_sha) and is_rollback_commit(self._repo, pull.head_sha)

    def plan(self, env: EnvironmentSpec, *, to_version: int | None = None) -> RollbackPlan:
        """Find the commit to restore on `env.branch` (rules in the module doc).

        Raises PromotionError (exit 2) when there is nothing to roll back to: no branch, no
        deployment, no earlier distinct deployment, or no commit deploying `to_version`.
        """
        head = self._repo.branch_head(env.branch)
        current = self._metadata(head, env.branch) if head else None
        if head is None or current is None:
            raise PromotionError(f"{env.branch} deploys nothing yet: there is nothing to roll "
                                 "back", fix=f"promote a version to {env.name} first")
        if to_version is not None and current.deployed.version == to_version:
            raise PromotionError(
                f"{env.name} already runs {current.deployed.model} v{to_version}",
                fix="name another version with --to, or leave it out to restore the "
                    "previous one")
        skipped = {current.deployed.manifests_digest}
        for sha, metadata, rolled_back in self._history(head, env.branch):
            skipped.update(rolled_back)
            if metadata is None:
                continue
            deployed = metadata.deployed
            if to_version is not None:
                if deployed.version == to_version:
                    return self._plan(env, head, current, sha, metadata)
            elif deployed.manifests_digest not in skipped:
                return self._plan(env, head, current, sha, metadata)
        if to_version is not None:
            raise PromotionError(
                f"no commit on {env.branch} ever deployed version {to_version}",
                fix=f"see `git log {env.branch} -- {METADATA_FILE}` for the versions it ran")
        raise PromotionError(
            f"{env.branch} has no earlier deployment than {current.deployed.model} "
            f"v{current.deployed.version} to roll back to",
            fix="promote a known-good version instead")

    def rolled_back_versions(self, env: EnvironmentSpec) -> frozenset[tuple[str, int]]:
        """(model, version) of what rollbacks took out of `env` since its last promotion:
        the rollbacks at the head of the branch's first-parent history, read from their
        `Rollback-of` trailers.

        Discovery does not propose these to `env` again by itself (a person still may):
        re-proposing what was just rolled back would repeat the failure, every resync.
        """
        found: set[tuple[str, int]] = set()
        sha = self._repo.branch_head(env.branch)
        for _ in range(_MAX_HISTORY):
            if sha is None:
                break
            info = self._repo.commit_info(sha)
            messages = [info.body] + [self._repo.commit_info(p).body for p in info.parents[1:]]
            bad = {m["sha"] for message in messages for m in ROLLBACK_TRAILER.finditer(message)
                   if m["key"] == ROLLBACK_OF}
            if not bad:
                break
            for rolled_back in sorted(bad):
                metadata = self._metadata_or_none(rolled_back, env.branch)
                if metadata is not None:
                    found.add((metadata.deployed.model, metadata.deployed.version))
            sha = info.parents[0] if info.parents else None
        return frozenset(found)

    # --- writing ------------------------------------------------------------------------------

    def propose(self, env: EnvironmentSpec, *, to_version: int | None = None,
                reason: str, author: str) -> RollbackResult:
        """Open (or refresh) the rollback PR `<env>-next` -> `<env>` restoring the planned
        commit's tree, labeled `promoter`, `rollback`, `env:<env>`, `model:<model>`.

        An open promotion PR for the environment is never reused or renamed: it is closed as
        superseded, with a comment saying why, and the rollback gets a PR of its own (a
        promotion's title, author, approvals and report must not carry over to a rollback).
        Raises PromotionError if someone else pushed to `<env>-next` since promoter last wrote
        it. Idempotent: a second call with nothing changed writes nothing.
        """
        plan = self.plan(env, to_version=to_version)
        existing = self._forge.find_open_pull_request(head=env.proposal_branch, base=env.branch)
        if existing is not None and not self.is_rollback(existing):
            self._supersede(existing, plan)
            existing = None
        next_head = self._repo.branch_head(env.proposal_branch)
        # A crash between moving `<env>-next` and updating the PR leaves the branch ahead of
        # the PR at exactly the rollback commit this call would write (same parent, same
        # tree): taking it over loses nothing. Anything else is someone else's push.
        if (existing is not None and next_head is not None and next_head != existing.head_sha
                and not self._is_rollback_commit(next_head, plan)):
            raise PromotionError(
                f"{env.proposal_branch} is at {next_head[:12]} but promoter last wrote "
                f"{existing.head_sha[:12]}: someone else pushed to the proposal branch",
                fix=f"look at the extra commits on {env.proposal_branch}, then close "
                    f"PR #{existing.number} and delete the branch to start over")
        if next_head is not None and self._is_rollback_commit(next_head, plan):
            commit = next_head
            outcome = (RollbackOutcome.UNCHANGED if existing is not None
                       else RollbackOutcome.OPENED)
        else:
            commit = self._write_commit(plan, reason, author=author)
            # Lease on what promoter last saw; a concurrent writer makes this fail.
            self._repo.update_branch(env.proposal_branch, commit, expected=next_head,
                                     fast_forward_only=False)
            outcome = (RollbackOutcome.UPDATED if existing is not None
                       else RollbackOutcome.OPENED)
        target = plan.target_metadata.deployed
        pull = self._forge.open_or_update_pull_request(
            head=env.proposal_branch, base=env.branch,
            title=f"Roll back {env.name} to {target.model} v{target.version}",
            body=self._body(plan, reason, commit),
            author=existing.author if existing else author,
            labels=[PROMOTER_LABEL, ROLLBACK_LABEL, f"env:{env.name}", f"model:{target.model}"],
        )
        log.info("rollback %s as PR #%s (%s)", plan.describe(), pull.number, outcome)
        return RollbackResult(plan=plan, outcome=outcome, commit=commit, pull_request=pull)

    def verify(self, env: EnvironmentSpec, pull: PullRequest) -> RollbackPlan:
        """The plan an open rollback PR carries out, read from its head commit's trailers,
        if that head is still a rollback promoter would merge: directly on the environment
        head it rolls back, with exactly the tree of an earlier commit of that branch.

        Raises PromotionError naming what no longer holds (the environment moved, the tree
        is not the restored one): then `promoter rollback` must be asked again.
        """
        head = pull.head_sha
        info = self._repo.commit_info(head)
        found = {m["key"]: m["sha"] for m in ROLLBACK_TRAILER.finditer(info.body)}
        current, target = found.get(ROLLBACK_OF), found.get(RESTORES)
        env_head = self._repo.branch_head(env.branch)
        if current is None or target is None:
            raise PromotionError(f"PR #{pull.number}'s head {head[:12]} is not a rollback "
                                 "commit promoter wrote (no Rollback-of/Restores trailers)",
                                 fix=f"close it and run `promoter rollback --env {env.name}`")
        if env_head is None or info.parents != (env_head,) or current != env_head:
            raise PromotionError(
                f"{env.branch} moved since rollback PR #{pull.number} was written",
                fix=f"run `promoter rollback --env {env.name}` again to roll back what runs now")
        if (self._repo.tree_id(head) != self._repo.tree_id(target)
                or not self._repo.is_ancestor(target, env_head)):
            raise PromotionError(
                f"PR #{pull.number}'s head does not restore an earlier commit of {env.branch}",
                fix=f"close it and run `promoter rollback --env {env.name}`")
        current_meta, target_meta = (self._metadata(current, env.branch),
                                     self._metadata(target, env.branch))
        if current_meta is None or target_meta is None:
            raise PromotionError(f"PR #{pull.number} restores a commit without "
                                 f"{METADATA_FILE}", fix="close it")
        return self._plan(env, current, current_meta, target, target_meta)

    def merge(self, env: EnvironmentSpec, result: RollbackResult, *,
              merger: EnvironmentMerger) -> RollbackResult:
        """Merge the rollback PR of `result` through `merger` (which asks `env`'s controller
        to sync now), only at the head promoter wrote.

        The forge's guarded merge refuses (StaleHeadError/NotMergeableError) if the PR's head
        or the environment branch moved since; re-run `propose` then.
        """
        pull = result.pull_request
        if pull.base_branch != env.branch or not self.is_rollback(pull):
            raise PromotionError(f"PR #{pull.number} is not a rollback of {env.name}")
        target = result.plan.target_metadata.deployed
        merge_sha = merger.merge(env, MergeRequest(
            pull.number, expected_head=result.commit,
            message=(f"Roll back {env.name} to {target.model} v{target.version} "
                     f"(#{pull.number})\n\n{ROLLBACK_OF}: {result.plan.current}\n"
                     f"{RESTORES}: {result.plan.target}\n")))
        log.info("merged rollback PR #%s into %s as %s", pull.number, env.branch, merge_sha)
        return RollbackResult(plan=result.plan, outcome=result.outcome, commit=result.commit,
                              pull_request=pull, merge_sha=merge_sha)

    def after_rollout(self, env: EnvironmentSpec, state: RolloutState, *,
                      merger: EnvironmentMerger,
                      author: str = "promoter") -> RollbackResult | None:
        """Roll back automatically after a failed or timed-out rollout, as `env.delivery`
        says (`autoRollback`, `autoMergeRollback`: merged through `merger`); None when
        nothing is to be done.

        Only the commit at the head of the environment branch is rolled back: a failure of
        an older commit that a newer merge already replaced is no reason to touch the branch.
        """
        if state.phase not in (RolloutPhase.FAILED, RolloutPhase.TIMED_OUT):
            return None
        if not env.delivery.auto_rollback:
            log.warning("%s: rollout of %s %s; autoRollback is off", env.name,
                        state.commit[:12], state.phase)
            return None
        head = self._repo.branch_head(env.branch)
        if head != state.commit:
            log.info("%s: %s is no longer the head (%s); no rollback", env.name,
                     state.commit[:12], (head or "none")[:12])
            return None
        result = self.propose(env, reason=f"The rollout of {state.commit[:12]} "
                              f"{state.phase.replace('_', ' ')}: {state.reason}", author=author)
        if env.delivery.auto_merge_rollback:
            result = self.merge(env, result, merger=merger)
        # Otherwise it waits for the policy's rollback approvals; reconcile merges it then.
        return result

    # --- internals ----------------------------------------------------------------------------

    def _plan(self, env: EnvironmentSpec, head: str, current: HydratorMetadata, target: str,
              metadata: HydratorMetadata) -> RollbackPlan:
        return RollbackPlan(environment=env.name, branch=env.branch, current=head,
                            target=target, current_metadata=current, target_metadata=metadata)

    def _history(self, head: str, branch: str
                 ) -> Iterator[tuple[str, HydratorMetadata | None, set[str]]]:
        """First-parent history from `head`: each commit, its metadata (None if it has none
        or it is unreadable) and the manifest digests its rollback trailers mark as bad."""
        sha: str | None = head
        for _ in range(_MAX_HISTORY):
            if sha is None:
                return
            info = self._repo.commit_info(sha)
            messages = [info.body] + [self._repo.commit_info(p).body for p in info.parents[1:]]
            bad: set[str] = set()
            for message in messages:
                for match in ROLLBACK_TRAILER.finditer(message):
                    if match["key"] == ROLLBACK_OF:
                        meta = self._metadata_or_none(match["sha"], branch)
                        if meta is not None:
                            bad.add(meta.deployed.manifests_digest)
            yield sha, self._metadata_or_none(sha, branch), bad
            sha = info.parents[0] if info.parents else None

    def _metadata(self, sha: str, branch: str) -> HydratorMetadata | None:
        raw = self._repo.read_file(sha, METADATA_FILE)
        if raw is None:
            return None
        return HydratorMetadata.from_json(raw, where=f"{branch}@{sha[:12]}")

    def _metadata_or_none(self, sha: str, branch: str) -> HydratorMetadata | None:
        try:
            return self._metadata(sha, branch)
        except (MetadataError, GitError) as exc:
            log.warning("skipping %s in %s history: %s", sha[:12], branch, exc)
            return None

    def _is_rollback_commit(self, sha: str, plan: RollbackPlan) -> bool:
        info = self._repo.commit_info(sha)
        return (info.parents == (plan.current,)
                and self._repo.tree_id(sha) == self._repo.tree_id(plan.target))

    def _supersede(self, promotion: PullRequest, plan: RollbackPlan) -> None:
        """Close the open promotion `promotion` because a rollback replaces its branch."""
        then = plan.target_metadata.deployed
        self._forge.close(promotion.number, comment=(
            f"Closed: {plan.environment} is being rolled back to {then.model} "
            f"v{then.version}, which replaces `{promotion.head_branch}`. This promotion was "
            "not merged; propose it again once the environment is healthy."))
        log.info("closed promotion PR #%s: superseded by a rollback of %s", promotion.number,
                 plan.environment)

    def _write_commit(self, plan: RollbackPlan, reason: str, *, author: str) -> str:
        files = {path: self._read(plan.target, path)
                 for path in self._repo.list_files(plan.target)}
        now, then = plan.current_metadata.deployed, plan.target_metadata.deployed
        message = (
            f"Roll back {plan.environment} to {then.model} v{then.version}\n\n"
            f"{reason.strip()}\n\n"
            f"Rolled back: {now.model} v{now.version} ({now.digest})\n"
            f"Restored: {then.model} v{then.version} ({then.digest})\n\n"
            f"{ROLLBACK_OF}: {plan.current}\n"
            f"{RESTORES}: {plan.target}\n"
            f"{trailers([author])}"
        )
        commit = self._repo.create_commit(files=files, parents=[plan.current], message=message,
                                          author=self._author)
        if self._repo.tree_id(commit) != self._repo.tree_id(plan.target):
            raise GitError(f"rollback commit {commit[:12]} does not reproduce the tree of "
                           f"{plan.target[:12]}; nothing was pushed")
        return commit

    def _read(self, commit: str, path: str) -> bytes:
        data = self._repo.read_file(commit, path)
        if data is None:
            raise GitError(f"{path} is listed at {commit[:12]} but cannot be read")
        return data

    def _body(self, plan: RollbackPlan, reason: str, commit: str) -> str:
        now, then = plan.current_metadata.deployed, plan.target_metadata.deployed
        return (
            f"Rolls **{plan.environment}** back to **{then.model} v{then.version}**.\n\n"
            f"{reason.strip()}\n\n"
            f"| | |\n|---|---|\n"
            f"| Rolled back | {now.model} v{now.version} (`{now.digest[:19]}`) at "
            f"`{plan.current}` |\n"
            f"| Restored | {then.model} v{then.version} (`{then.digest[:19]}`) from "
            f"`{plan.target}` |\n"
            f"| Rollback commit | `{commit}` (same tree as `{plan.target[:12]}`) |\n"
        )
