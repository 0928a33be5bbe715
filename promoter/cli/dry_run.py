"""`promoter reconcile --dry-run`: the real reconcile, over adapters that write nothing.

The promotion service decides and writes in one pass, with no planning call; so instead of a
second, look-alike implementation of the gates, the dry run runs the service itself over
wrappers of promoter.yaml's adapters that forward every read and keep every write in memory
(`DryRunRepository`, `DryRunForge`), answering later reads as the real adapters would after
the write. So the whole plan is judged as `reconcile` judges it: a re-proposal (the
environment moved) is written in memory and its gates judged, a merge moves the environment
branch in memory before the next promotion is judged, a failed rollout's rollback is opened.
Evaluations run (their verdicts are kept in memory, not stored), and every write is listed;
nothing reaches git, the forge, the cluster or the verdict store.

What it cannot know: the number the forge would give a new pull request, the sha of a commit
written at another second, and other tools' checks on a head not yet pushed (pending).
Not covered: opening the local forge creates its database file when there is none yet (as
any command does), and the evaluation worker writes its scratch files in a temporary
directory.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from promoter.cli.dry_run_forge import DryRunForge
from promoter.cli.dry_run_git import DryRunRepository, Recorder, Write
from promoter.cluster.port import ClusterReader, RolloutState
from promoter.config.loader import LoadedSettings
from promoter.config.schema import EnvironmentSpec
from promoter.promotion.results import PromotionState, ReconcileOutcome
from promoter.promotion.verdicts import MemoryVerdictStore, StoredVerdict, VerdictStore

if TYPE_CHECKING:
    from promoter.wiring import Adapters

__all__ = ["DryRunForge", "DryRunRepository", "Recorder", "Write", "dry_run_reconcile"]


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


def dry_run_reconcile(loaded: LoadedSettings, *, adapters: Adapters | None = None
                      ) -> tuple[list[ReconcileOutcome], list[Write]]:
    """What `reconcile` would decide and write now over `adapters` (default: those
    promoter.yaml names); writes nothing through them (see the module doc)."""
    from promoter.wiring import build_adapters, build_service

    recorder = Recorder()
    real = adapters or build_adapters(loaded)
    repo = DryRunRepository(real.repo, recorder)
    wrapped = replace(
        real, repo=repo, forge=DryRunForge(real.forge, repo, recorder),
        cluster=DryRunCluster(real.cluster, recorder) if real.cluster is not None else None,
        verdicts=ReadOnlyVerdicts(real.verdicts))
    outcomes = build_service(loaded, adapters=wrapped).reconcile()
    return [_as_planned(o, repo) for o in outcomes], recorder.writes


def _as_planned(outcome: ReconcileOutcome, repo: DryRunRepository) -> ReconcileOutcome:
    """A merge held in memory is not a merge: the promotion is ready and would be merged."""
    if (outcome.state is PromotionState.MERGED and outcome.merge_sha is not None
            and repo.is_planned(outcome.merge_sha)):
        return replace(outcome, state=PromotionState.READY, merge_sha=None,
                       note="dry run: every gate passes; reconcile would merge it now")
    return outcome
