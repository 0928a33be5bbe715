"""Merging into an environment branch: the one way promoter does it.

Every merge promoter makes into an environment branch (a promotion, a rollback, any other)
goes through `EnvironmentMerger.merge`: the forge's guarded merge, then a request that the
environment's controller (Flux, Argo CD) sync now instead of at its next interval. A merge
path that called the forge itself would leave the rollout waiting, which is what
tests/promotion/test_merging.py refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from promoter.cluster.errors import ClusterError
from promoter.cluster.port import ClusterReader
from promoter.config.schema import EnvironmentSpec
from promoter.forge.base import Forge

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """One pull request to merge into an environment branch, at the head that was judged."""

    number: int
    expected_head: str
    """The head the gates (or the rollback's checks) saw; the forge refuses any other."""
    message: str


class EnvironmentMerger:
    """Merges pull requests into environment branches and asks their controllers to sync.

    `cluster` None (the demo, a CLI without cluster access): merges only.
    """

    def __init__(self, forge: Forge, cluster: ClusterReader | None,
                 clock: Callable[[], datetime]) -> None:
        self._forge = forge
        self._cluster = cluster
        self._clock = clock

    def merge(self, env: EnvironmentSpec, request: MergeRequest) -> str:
        """Merge `request` into `env.branch` (StaleHeadError/NotMergeableError from the forge
        if its head or the branch moved) and return the merge commit; then ask `env`'s
        controller to sync now. A failed sync request only delays the rollout: logged."""
        merge_sha = self._forge.merge(request.number, expected_head=request.expected_head,
                                      expected_base=env.branch, message=request.message)
        self.request_sync(env)
        return merge_sha

    def request_sync(self, env: EnvironmentSpec) -> None:
        """Ask `env`'s controller to sync now; a failure only delays it (logged)."""
        if self._cluster is None:
            return
        try:
            self._cluster.request_reconcile(env, requested_at=self._clock().isoformat())
        except ClusterError as exc:
            log.warning("could not ask %s's controller to sync now: %s (it will at its "
                        "next interval)", env.name, exc.message)
