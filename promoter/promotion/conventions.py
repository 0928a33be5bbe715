"""Names promoter writes under and recognises its own work by: labels, its commit author, the
README it puts on environment branches. One place, so proposing, rollbacks and discovery agree.
"""

from __future__ import annotations

from promoter.gitops.port import Signature

PROMOTER_LABEL = "promoter"
"""Every pull request promoter opens carries it; reconcile looks only at those."""
ROLLBACK_LABEL = "rollback"
"""Rollback PRs (promoter.promotion.rollback) restore an earlier render: the evaluation gate
does not judge them and they are never re-hydrated. The label is for people and filters:
promoter tells a rollback by its head commit (`rollback.is_rollback_commit`), since anyone who
may label a pull request can add or remove it."""
ROLLBACK_OF = "Rollback-of"
"""Trailer of a rollback commit and its merge: the environment branch head that was rolled
back (its content is bad)."""
RESTORES = "Restores"
"""Trailer of a rollback commit and its merge: the earlier commit whose tree it restores."""
BOT = Signature(name="promoter", email="promoter@noreply.invalid")
"""Author of the commits promoter writes (hydrated manifests, merges, rollbacks)."""

ENV_BRANCH_README = b"""# Environment branch, written by promoter

Every commit here is rendered from the dry source (see hydrator.metadata) and reaches this
branch only through a promotion pull request. Do not commit here by hand.
"""
