"""Who authored a proposal: every person who wrote a revision of it, not only who opened it.

Each proposal commit promoter writes carries one `Proposed-by: <name>` trailer per author of
any revision of its pull request, carried over from the commit it replaces, so re-proposing
another version does not launder authorship: whoever proposed any revision cannot approve it.
A person pushing to `<env>-next` is not a revision promoter takes over (that is a foreign
push, and the promotion halts). Names compare as logins do (`login_key`: trimmed,
case-insensitive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from promoter.domain.pull_requests import PullRequest, login_key
from promoter.errors import BadInputError
from promoter.gitops.port import GitOpsRepository

PROPOSED_BY = "Proposed-by"
_TRAILER = re.compile(rf"^{PROPOSED_BY}: (?P<name>.+)$", re.MULTILINE)


def require_author_name(name: str) -> str:
    """`name` trimmed, as it will be recorded; BadInputError for one that could not be.

    A name is one line of printable text: a newline in it could forge another trailer."""
    trimmed = name.strip()
    if not trimmed or not trimmed.isprintable():
        raise BadInputError(f"{name!r} is not a user name",
                            fix="pass one line of printable text with --as (or the token's user)")
    return trimmed


def merge_authors(*groups: Iterable[str]) -> tuple[str, ...]:
    """The names of `groups` in order of first appearance, each login once."""
    seen: dict[str, str] = {}
    for group in groups:
        for name in group:
            seen.setdefault(login_key(name), name.strip())
    return tuple(seen.values())


def authors_in(message: str) -> tuple[str, ...]:
    """The `Proposed-by` trailers of a commit message, in order."""
    return merge_authors(m["name"] for m in _TRAILER.finditer(message))


def trailers(authors: Iterable[str]) -> str:
    """`Proposed-by` lines for `authors`, one each."""
    return "".join(f"{PROPOSED_BY}: {name}\n" for name in authors)


def authors_of(repo: GitOpsRepository, pull: PullRequest) -> tuple[str, ...]:
    """Everyone who authored a revision of `pull`: its author and the trailers of the head
    promoter recorded (a commit promoter wrote: its sha covers the message)."""
    info = repo.commit_info(pull.head_sha)
    return merge_authors([pull.author], authors_in(info.body))
