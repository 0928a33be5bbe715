"""What a rollback commit is, told from the commit itself: its trailers, its parent and its
tree. Shared by rollback (which writes them), proposing and reconciling (which must not
overwrite or gate one as a promotion).
"""

from __future__ import annotations

import re

from promoter.errors import GitError
from promoter.gitops.port import GitOpsRepository
from promoter.promotion.conventions import RESTORES, ROLLBACK_OF

ROLLBACK_TRAILER = re.compile(r"^(?P<key>Rollback-of|Restores): (?P<sha>[0-9a-f]{40})$",
                              re.MULTILINE)
"""The `Rollback-of:` and `Restores:` trailers of a rollback commit (and of its merge)."""


def is_rollback_commit(repo: GitOpsRepository, sha: str) -> bool:
    """True if `sha` is a rollback commit as promoter writes one: its message carries
    `Rollback-of:` and `Restores:` trailers, its one parent is the `Rollback-of` commit, and
    its tree is exactly the tree of the `Restores` commit. False for anything else, including
    a commit this repository lacks.

    This, not the `rollback` label, says whether a pull request is a rollback: anyone who may
    label a PR (GitHub's triage role) can add or remove a label, but a PR's head sha is the one
    promoter recorded (the signed marker on GitHub), and a commit's message and tree are what
    its sha names."""
    try:
        info = repo.commit_info(sha)
        found = {m["key"]: m["sha"] for m in ROLLBACK_TRAILER.finditer(info.body)}
        rolled_back, restores = found.get(ROLLBACK_OF), found.get(RESTORES)
        return (rolled_back is not None and restores is not None
                and info.parents == (rolled_back,)
                and repo.tree_id(sha) == repo.tree_id(restores))
    except GitError:
        return False
