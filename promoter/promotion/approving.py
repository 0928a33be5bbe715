"""Approvals recorded through promoter (the local forge has no site to review on).

A review is refused, and nothing recorded, when the reviewer may not approve promotions to the
environment or proposed the promotion: the same rules the approvals gate applies when it counts
reviews, checked early so a person hears "no" at once instead of a gate that never passes.
"""

from __future__ import annotations

from promoter.domain.pull_requests import Review, ReviewState, login_key
from promoter.errors import ApprovalError, ForgeError
from promoter.promotion.authorship import authors_of
from promoter.promotion.context import PromotionContext


class Approver:
    """Records approvals and change requests on a forge that takes them from promoter."""

    def __init__(self, context: PromotionContext) -> None:
        self._ctx = context

    def approve(self, number: int, *, user: str, reject: bool = False) -> Review:
        """Record `user`'s approval (or change request, with `reject`) of PR `number`.

        Raises ApprovalError, recording nothing, when `user` is not an approver of the
        environment's policy or authored any revision of the promotion (names compare as
        logins: trimmed, case-insensitive); ForgeError on a forge that takes reviews on its
        own site.
        """
        forge = self._ctx.forge
        recorder = forge.capabilities.reviews
        if recorder is None:
            raise ForgeError("this forge takes reviews on its own site, not from the CLI",
                             fix="review the pull request on the forge")
        pull = forge.get_pull_request(number)
        target = self._ctx.target_for_branch(pull.base_branch)
        if target is None:
            raise ApprovalError(f"PR #{number} is not a promotion pull request")
        env, approvals = target.environment, target.policy.approvals
        authors = authors_of(self._ctx.repo, pull)
        if login_key(user) in {login_key(a) for a in authors}:
            raise ApprovalError(
                f"{user} proposed a revision of PR #{number} and cannot approve it",
                fix="ask another release manager: " + ", ".join(approvals.approvers or ["-"]),
            )
        if login_key(user) not in {login_key(a) for a in approvals.approvers}:
            named = ", ".join(approvals.approvers) or "nobody"
            raise ApprovalError(
                f"{user} may not approve promotions to {env.name}",
                fix=f"policies/{env.policy}.yaml names the approvers: {named}",
            )
        state = ReviewState.CHANGES_REQUESTED if reject else ReviewState.APPROVED
        return recorder.submit_review(number, user=user, state=state)
