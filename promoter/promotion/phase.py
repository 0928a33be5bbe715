"""Where a promotion stands, derived from git, the forge and the cluster, never stored.

Promoter keeps no state of its own (see `promoter.promotion.service`): a restarted process
must be able to say where every promotion is from what the forge and git already hold. This
module names those places (`PromotionPhase`) and derives the phase from the facts alone
(`derive_phase`, pure); `read_facts` gathers the facts through the ports.

The facts, and where they live:

- the pull request: open, merged or closed, and its labels (the forge);
- the latest commit status per `promoter/*` context on the PR's head: one per gate
  (the forge);
- the `promoter/rollout` status on the environment-branch commit the merge produced (the
  forge; promoter writes it from what the cluster reports);
- whether a later rollback restored the commit before that merge (git: a rollback commit
  or its merge carries the trailer `Rollback-of: <merge sha>`).

Transitions (each row is one rule of `derive_phase`, checked top to bottom):

| PR     | facts                                                     | phase                |
|--------|-----------------------------------------------------------|----------------------|
| closed | -                                                         | closed               |
| merged | a later rollback names the merge commit                   | rolled_back          |
| merged | `promoter/rollout` failure or error                       | failed               |
| merged | `promoter/rollout` success                                | healthy              |
| merged | `promoter/rollout` pending                                | rolling_out          |
| merged | no `promoter/rollout` status (no cluster, not read yet)   | merged               |
| open   | no `promoter/*` status on the head                        | proposed             |
| open   | a gate failure or error                                   | blocked              |
| open   | a core gate missing (see below), or evaluation pending    | evaluating           |
| open   | `promoter/approvals` pending                              | waiting_for_approval |
| open   | `promoter/soak` pending                                   | waiting_for_soak     |
| open   | `promoter/change-window` pending                          | waiting_for_window   |
| open   | any other gate pending (unknown contexts included)        | waiting              |
| open   | every gate success                                        | ready                |

So a promotion moves proposed → evaluating → waiting_for_* / waiting → ready → merged →
rolling_out → healthy, or stops at blocked, failed, rolled_back or closed. Proposing a new
commit moves it back to proposed (statuses belong to a head commit). The core gates
(`promoter/upstream`, `promoter/evaluation`, `promoter/approvals`) are always published
together by one reconcile, so a head with only some of them was judged by a
reconcile that has not finished (or died): it is still being evaluated. `ready` is short-lived
with auto-merge (the same reconcile merges) and lasts while a person must merge.

When several gates wait, the phase names the one a reader can act on first: an approval needs
a person; a soak and a change window only need time.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from promoter.cluster.gate import ROLLOUT_CONTEXT
from promoter.domain.pull_requests import CommitStatus, PullRequest, PullRequestState, StatusState
from promoter.forge.base import Forge
from promoter.gitops.port import GitOpsRepository
from promoter.policy import APPROVALS_CONTEXT, EVALUATION_CONTEXT, UPSTREAM_CONTEXT
from promoter.promotion.conventions import ROLLBACK_OF

SOAK_CONTEXT = "promoter/soak"
"""The soak gate (time run healthy upstream); named here by string, as the gate's module may
not exist in every deployment of this code."""
CHANGE_WINDOW_CONTEXT = "promoter/change-window"
"""The change-window gate (merge only inside a window)."""
_OWN_PREFIX = "promoter/"
_CORE_GATES = (UPSTREAM_CONTEXT, EVALUATION_CONTEXT, APPROVALS_CONTEXT)
"""Gates every reconcile of a promotion publishes; see the module docstring."""
_MAX_HISTORY = 1000
"""First-parent commits walked at most, from an environment branch's head back to a merge."""


class PromotionPhase(enum.StrEnum):
    """One promotion's phase; the module docstring has the transitions."""

    PROPOSED = "proposed"
    """The PR is open and no gate has been published on its head yet."""
    EVALUATING = "evaluating"
    """Gates are being computed: the evaluation verdict (or a core gate) is not in yet."""
    WAITING_FOR_APPROVAL = "waiting_for_approval"
    """The approvals gate waits for a release manager."""
    WAITING_FOR_SOAK = "waiting_for_soak"
    """The version has not run long enough in the environment it comes from."""
    WAITING_FOR_WINDOW = "waiting_for_window"
    """Outside a change window, or inside a freeze."""
    WAITING = "waiting"
    """Another gate is pending (e.g. the upstream rollout, other tools' checks)."""
    READY = "ready"
    """Every gate passed and the PR is not merged yet (auto-merge off: a person merges)."""
    BLOCKED = "blocked"
    """A gate failed: waiting will not help, the proposal must change."""
    MERGED = "merged"
    """Merged; nothing has reported on the rollout (no cluster, or not read yet)."""
    ROLLING_OUT = "rolling_out"
    """Merged; the cluster has not finished applying it."""
    HEALTHY = "healthy"
    """Merged and running healthy."""
    FAILED = "failed"
    """Merged; the rollout failed or timed out."""
    ROLLED_BACK = "rolled_back"
    """Merged, then a rollback restored what ran before it."""
    CLOSED = "closed"
    """Closed without merging (superseded, or refused)."""


_WAITS = (
    (APPROVALS_CONTEXT, PromotionPhase.WAITING_FOR_APPROVAL),
    (SOAK_CONTEXT, PromotionPhase.WAITING_FOR_SOAK),
    (CHANGE_WINDOW_CONTEXT, PromotionPhase.WAITING_FOR_WINDOW),
)
"""Pending gates with a phase of their own, in the order the module docstring explains."""


@dataclass(frozen=True, slots=True)
class PromotionFacts:
    """What `derive_phase` needs to know about one promotion pull request."""

    state: PullRequestState
    """Open, merged or closed, as the forge says."""
    gates: tuple[CommitStatus, ...] = ()
    """The latest status per context on the PR's head; contexts outside `promoter/` (other
    tools' checks) are ignored, promoter mirrors them as `promoter/external-checks`."""
    rollout: StatusState | None = None
    """The `promoter/rollout` status on the merge commit; None if there is none."""
    rolled_back: bool = False
    """A later rollback on the environment branch names the merge commit as rolled back."""


def derive_phase(facts: PromotionFacts) -> PromotionPhase:
    """The phase the facts put the promotion in, by the table in the module docstring."""
    if facts.state is PullRequestState.CLOSED:
        return PromotionPhase.CLOSED
    if facts.state is PullRequestState.MERGED:
        return _after_merge(facts)
    gates = {s.context: s.state for s in facts.gates
             if s.context.startswith(_OWN_PREFIX) and s.context != ROLLOUT_CONTEXT}
    if not gates:
        return PromotionPhase.PROPOSED
    if any(state in (StatusState.FAILURE, StatusState.ERROR) for state in gates.values()):
        return PromotionPhase.BLOCKED
    if (any(context not in gates for context in _CORE_GATES)
            or gates[EVALUATION_CONTEXT] is StatusState.PENDING):
        return PromotionPhase.EVALUATING
    for context, phase in _WAITS:
        if gates.get(context) is StatusState.PENDING:
            return phase
    if any(state is StatusState.PENDING for state in gates.values()):
        return PromotionPhase.WAITING
    return PromotionPhase.READY


def _after_merge(facts: PromotionFacts) -> PromotionPhase:
    if facts.rolled_back:
        return PromotionPhase.ROLLED_BACK
    if facts.rollout is None:
        return PromotionPhase.MERGED
    return {
        StatusState.PENDING: PromotionPhase.ROLLING_OUT,
        StatusState.SUCCESS: PromotionPhase.HEALTHY,
        StatusState.FAILURE: PromotionPhase.FAILED,
        StatusState.ERROR: PromotionPhase.FAILED,
    }[facts.rollout]


# --- gathering the facts (through the ports) ------------------------------------------------


def read_facts(pull: PullRequest, *, repo: GitOpsRepository, forge: Forge) -> PromotionFacts:
    """Gather `pull`'s facts from the forge and git; reads only.

    For an open PR: its head's statuses. For a merged one: the rollout status of its merge
    commit, and whether a rollback merged after it named that commit (the environment
    branch's first-parent history from its head back to the merge).
    """
    if pull.state is PullRequestState.OPEN:
        return PromotionFacts(pull.state, tuple(forge.list_statuses(pull.head_sha)))
    if pull.state is PullRequestState.CLOSED or pull.merge_sha is None:
        return PromotionFacts(pull.state)
    rollout = next((s.state for s in forge.list_statuses(pull.merge_sha)
                    if s.context == ROLLOUT_CONTEXT), None)
    return PromotionFacts(pull.state, rollout=rollout,
                          rolled_back=_rolled_back(repo, pull.base_branch, pull.merge_sha))


def _rolled_back(repo: GitOpsRepository, branch: str, merge_sha: str) -> bool:
    """True if a commit after `merge_sha` on `branch` says it rolls `merge_sha` back."""
    head = repo.branch_head(branch)
    if head is None or not repo.is_ancestor(merge_sha, head):
        return False
    trailer = re.compile(rf"^{ROLLBACK_OF}: {re.escape(merge_sha)}$", re.MULTILINE)
    commit = head
    for _ in range(_MAX_HISTORY):
        if commit == merge_sha:
            return False
        info = repo.commit_info(commit)
        # The rollback commit carries the trailer, and so does promoter's merge of it; a
        # person's merge on the forge may not, so the merged-in parents are read too.
        bodies: Iterable[str] = [info.body, *(repo.commit_info(p).body
                                              for p in info.parents[1:])]
        if any(trailer.search(body) for body in bodies):
            return True
        if not info.parents:
            return False
        commit = info.parents[0]
    return False
