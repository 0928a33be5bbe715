"""Helpers shared by the GitHub adapter's tests: a proposal branch and its PR."""

from __future__ import annotations

from promoter.domain.pull_requests import PullRequest
from promoter.forge.github import GitHubForge
from promoter.gitops.port import GitOpsRepository
from tests.fixtures.git import push_commit

BASE = "environments/prod"
HEAD = "environments/prod-next"


def propose(repo: GitOpsRepository, content: bytes = b"version: 2\n") -> str:
    if repo.branch_head(BASE) is None:
        push_commit(repo, BASE, {"serving.yaml": b"version: 1\n"}, onto="main")
    return push_commit(repo, HEAD, {"serving.yaml": content}, onto=BASE)


def open_pr(forge: GitHubForge, *, author: str = "mia") -> PullRequest:
    return forge.open_or_update_pull_request(head=HEAD, base=BASE, title="Promote v2",
                                             body="Evaluation pending.", author=author,
                                             labels=["promoter", "env:prod"])
