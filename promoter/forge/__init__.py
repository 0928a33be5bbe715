"""The forge: where promotions are proposed, gated, approved and merged.

`Forge` and `ReviewRecorder` are the ports (`promoter.forge.base`); `LocalForge` is the embedded
adapter (`promoter.forge.local`). A GitHub adapter will sit beside it.
"""

from promoter.forge.base import (
    Comment,
    CommitStatus,
    Forge,
    PullRequest,
    PullRequestState,
    Review,
    ReviewRecorder,
    ReviewState,
    StatusState,
)
from promoter.forge.local import LocalForge

__all__ = [
    "Comment",
    "CommitStatus",
    "Forge",
    "LocalForge",
    "PullRequest",
    "PullRequestState",
    "Review",
    "ReviewRecorder",
    "ReviewState",
    "StatusState",
]
