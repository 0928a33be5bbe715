"""Reading the history of environment branches from git and the forge (through the ports).

Walks each environment branch's first-parent history from its head, and for every merge
commit gathers the `MergeFacts` that `promoter.promotion.history` turns into deployments:
the `hydrator.metadata` at the merge and before it, the PR the forge confirms merged as that
commit, its reviews, the statuses of the merged head and of the merge. At most `limit`
deployments per environment, newest first; older ones are not read (`truncated` says so).
A PR is found from the number a merge's subject ends with, as promoter writes it; GitHub's
`rebase` merge method keeps the proposal's own message, so such merges show with no PR.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from promoter.config.schema import EnvironmentSpec
from promoter.errors import BadInputError, ForgeError, GitError
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


class HistoryReader:
    """Reads deployments of every environment of the dry config."""

    def __init__(self, context: PromotionContext) -> None:
        self._ctx = context

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
        facts: list[MergeFacts] = []
        truncated = False
        for _ in range(_MAX_WALK):
            if sha is None:
                break
            info = repo.commit_info(sha)
            # Every first-parent commit that renders something: a merge commit (the local
            # forge, GitHub's `merge`), a squashed one (GitHub's `squash`), or a commit someone
            # pushed by hand, which then shows with no PR. The branch's first commit (its
            # README) renders nothing.
            metadata = self._metadata(info.sha, env.branch)
            if metadata is not None:
                if len(facts) == limit:
                    truncated = True
                    break
                facts.append(self._facts(env, info, metadata))
            sha = info.parents[0] if info.parents else None
        return EnvironmentHistory(environment=env.name, branch=env.branch,
                                  deployments=environment_history(facts), truncated=truncated)

    def _facts(self, env: EnvironmentSpec, info: CommitInfo,
               metadata: HydratorMetadata) -> MergeFacts:
        ctx = self._ctx
        forge = ctx.forge
        previous = self._metadata(info.parents[0], env.branch) if info.parents else None
        pull = None
        number = pull_number_in(info.subject)
        if number is not None:
            try:
                candidate = forge.get_pull_request(number)
            except ForgeError as exc:
                log.info("%s@%s names PR #%s, which the forge does not give: %s", env.branch,
                         info.sha[:12], number, exc.message)
            else:
                # Only the PR that merged as this very commit into this branch is believed.
                if candidate.merge_sha == info.sha and candidate.base_branch == env.branch:
                    pull = candidate
        if pull is None:
            # No PR confirmed: nothing of a PR's trail (proposer, reviews, the gates on its
            # head) may be borrowed, whatever the merge's second parent is.
            return MergeFacts(environment=env.name, commit=info, metadata=metadata,
                              previous=previous, pull=None,
                              merge_statuses=tuple(forge.list_statuses(info.sha)))
        try:
            head = ctx.repo.commit_info(pull.head_sha)
        except GitError:
            head = None
        return MergeFacts(
            environment=env.name, commit=info, metadata=metadata, previous=previous, pull=pull,
            head=head, reviews=tuple(forge.list_reviews(pull.number)),
            head_statuses=tuple(forge.list_statuses(pull.head_sha)),
            merge_statuses=tuple(forge.list_statuses(info.sha)))

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
