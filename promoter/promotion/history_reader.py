"""Reading the history of environment branches from git and the forge (through the ports).

Walks each environment branch's first-parent history from its head, and for every merge
commit gathers the `MergeFacts` that `promoter.promotion.history` turns into deployments:
the `hydrator.metadata` at the merge and before it, the PR the forge confirms merged as that
commit, its reviews, the statuses of the merged head and of the merge. At most `limit`
deployments per environment, newest first; older ones are not read (`truncated` says so).
A PR is found from the number a merge's subject ends with, as promoter writes it; GitHub's
`rebase` merge method keeps the proposal's own message, so such merges show with no PR.

What is remembered between calls (one reader lives as long as its service): commits and
their metadata (immutable, by sha), and the forge's facts of every deployment that is no
longer its branch's head. Promoter writes nothing more about those (rollouts are read and
published for heads only), so a history call costs the forge about five calls per
environment once warm instead of five per deployment: on GitHub, the difference between a
page view and a good part of the hourly API quota. A review someone adds on GitHub to a PR
long merged is not seen until the process restarts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime

from promoter.config.schema import EnvironmentSpec
from promoter.errors import BadInputError, ForgeError, GitError, PullRequestNotFoundError
from promoter.gitops.port import CommitInfo
from promoter.model_store import ModelStore
from promoter.promotion.context import PromotionContext
from promoter.promotion.history import (
    DEFAULT_LIMIT,
    EnvironmentHistory,
    MergeFacts,
    environment_history,
    pull_number_in,
)
from promoter.render.metadata import HydratorMetadata, MetadataError

log = logging.getLogger(__name__)

_MAX_WALK = 10_000
"""First-parent commits walked at most per environment (a runaway guard)."""
_MAX_REMEMBERED = 100_000
"""Commits (and settled deployments) remembered at most; beyond, the memory starts over."""


class HistoryReader:
    """Reads deployments of every environment of the dry config. Safe to share between
    threads (the server's request threads and its metrics scrapes)."""

    def __init__(self, context: PromotionContext) -> None:
        self._ctx = context
        self._lock = threading.Lock()
        self._commits: dict[str, tuple[CommitInfo, HydratorMetadata | None]] = {}
        self._settled: dict[tuple[str, str], MergeFacts] = {}
        """(branch, sha) -> the facts of a deployment that is no longer the branch head."""

    def history(self, *, environment: str | None = None,
                limit: int = DEFAULT_LIMIT) -> list[EnvironmentHistory]:
        """Per environment (in promotion order, or only `environment`), its deployments.

        Raises BadInputError (through the dry config) for an unknown `environment`.
        """
        _, dry = self._ctx.dry_config()
        if environment is not None and environment not in dry.environments:
            raise BadInputError(f"no environment named {environment!r}",
                                fix=f"use one of: {', '.join(dry.environments)}")
        envs = ([dry.environments[environment]] if environment is not None
                else list(dry.environments.values()))
        return [self._environment(env, limit=limit) for env in envs]

    def _environment(self, env: EnvironmentSpec, *, limit: int) -> EnvironmentHistory:
        repo = self._ctx.repo
        sha = repo.branch_head(env.branch)
        found: list[tuple[CommitInfo, HydratorMetadata]] = []
        metadata_of: dict[str, HydratorMetadata | None] = {}
        truncated = False
        for _ in range(_MAX_WALK):
            if sha is None:
                break
            info, metadata = self._commit(sha, env.branch)
            metadata_of[info.sha] = metadata
            # Every first-parent commit that renders something: a merge commit (the local
            # forge, GitHub's `merge`), a squashed one (GitHub's `squash`), or a commit someone
            # pushed by hand, which then shows with no PR. The branch's first commit (its
            # README) renders nothing.
            if metadata is not None:
                if len(found) == limit:
                    truncated = True
                    break
                found.append((info, metadata))
            sha = info.parents[0] if info.parents else None
        facts = []
        for index, (info, metadata) in enumerate(found):
            key = (env.branch, info.sha)
            with self._lock:  # the head's facts are always read afresh
                settled = self._settled.get(key) if index > 0 else None
            if settled is not None:
                facts.append(settled)
                continue
            # What ran before: the parent's metadata, already read by the walk but for the
            # oldest one kept.
            parent = info.parents[0] if info.parents else None
            previous = (None if parent is None else metadata_of[parent]
                        if parent in metadata_of else self._commit(parent, env.branch)[1])
            merge, complete = self._facts(env, info, metadata, previous)
            facts.append(merge)
            if index > 0 and complete:  # not the head, and the forge answered everything
                with self._lock:
                    if len(self._settled) >= _MAX_REMEMBERED:
                        self._settled.clear()
                    self._settled[key] = merge
        return EnvironmentHistory(environment=env.name, branch=env.branch,
                                  deployments=environment_history(facts), truncated=truncated)

    def _commit(self, sha: str, branch: str) -> tuple[CommitInfo, HydratorMetadata | None]:
        """The commit and its `hydrator.metadata` (None: none, or unreadable), remembered."""
        with self._lock:
            known = self._commits.get(sha)
        if known is not None:
            return known
        info = self._ctx.repo.commit_info(sha)
        read = (info, self._metadata(info.sha, branch))
        with self._lock:
            if len(self._commits) >= _MAX_REMEMBERED:
                self._commits.clear()
            self._commits[sha] = self._commits[info.sha] = read
        return read

    def _facts(self, env: EnvironmentSpec, info: CommitInfo, metadata: HydratorMetadata,
               previous: HydratorMetadata | None) -> tuple[MergeFacts, bool]:
        """The facts of one deployment, and whether the forge gave all of them (a PR it
        could not be asked about is no reason to remember "no PR")."""
        ctx = self._ctx
        forge = ctx.forge
        pull = None
        complete = True
        number = pull_number_in(info.subject)
        if number is not None:
            try:
                candidate = forge.get_pull_request(number)
            except PullRequestNotFoundError as exc:
                log.info("%s@%s names PR #%s, which the forge does not have: %s", env.branch,
                         info.sha[:12], number, exc.message)
            except ForgeError as exc:
                log.warning("%s@%s names PR #%s, which the forge did not give: %s",
                            env.branch, info.sha[:12], number, exc.message)
                complete = False
            else:
                # Only the PR that merged as this very commit into this branch is believed.
                if candidate.merge_sha == info.sha and candidate.base_branch == env.branch:
                    pull = candidate
        if pull is None:
            # No PR confirmed: nothing of a PR's trail (proposer, reviews, the gates on its
            # head) may be borrowed, whatever the merge's second parent is.
            return MergeFacts(environment=env.name, commit=info, metadata=metadata,
                              previous=previous, pull=None,
                              merge_statuses=tuple(forge.list_statuses(info.sha))), complete
        try:
            head = ctx.repo.commit_info(pull.head_sha)
        except GitError:
            head = None
        return MergeFacts(
            environment=env.name, commit=info, metadata=metadata, previous=previous, pull=pull,
            head=head, reviews=tuple(forge.list_reviews(pull.number)),
            head_statuses=tuple(forge.list_statuses(pull.head_sha)),
            merge_statuses=tuple(forge.list_statuses(info.sha))), complete

    def _metadata(self, commit: str, branch: str) -> HydratorMetadata | None:
        try:
            return self._ctx.metadata_at(commit, where=branch)
        except MetadataError as exc:
            log.warning("%s", exc.message)
            return None


def completion_times(store: ModelStore, models: Iterable[str]) -> dict[tuple[str, int], datetime]:
    """When each complete version of `models` was complete in the store: its newest change
    (`StoredVersion.last_changed`); versions without a readable time are left out."""
    times = {}
    for model in sorted(models):
        for stored in store.scan_versions(model):
            if stored.complete and stored.last_changed is not None:
                times[(model, stored.version)] = stored.last_changed
    return times
