"""The hidden markers `GitHubForge` keeps in pull request bodies and comments, and their signing.

What GitHub does not keep, promoter keeps in hidden HTML comments:
- the PR body ends with `<!-- promoter:pull {"author": ..., "head": ..., "sig": ...} -->`:
  who proposed the promotion (the PR's GitHub author is promoter's own identity) and the head
  sha promoter last opened or updated the PR with. GitHub's PR head follows the branch, but the
  port's `head_sha` is what promoter saw, so a push behind promoter's back is noticed
  (StaleHeadError) instead of merged unseen;
- each of promoter's comments ends with `<!-- promoter:key=KEY -->`, so it is found and edited
  in place instead of added again.
Both markers are stripped from the bodies the port returns.

Anyone with write access can edit a PR's description, so the pull marker is signed:
`sig` is HMAC-SHA256, under a key only promoter holds (`forge.github.markerKeyEnv`/`File`, or
derived from the App's private key), of the repository, the PR's head and base branches, the
author and the head sha. A PR whose marker is missing or does not verify is untrusted: reading
it (`get_pull_request`, `find_open_pull_request`) raises UntrustedPullRequestError, writing
it (`open_or_update_pull_request`, `merge`) refuses without writing, and `list_open_pull_requests`
lists it with an empty `author` and `head_sha`, so nothing can take it for a usable proposal.
A valid marker copied to another PR of the same branches says only what promoter signed (this
author proposed that commit there), as reopening the PR it came from would. Nothing else in a
PR's title or description is trusted.

This module is the whole of that trust decision (what is signed, how, what verifies), kept
apart from the GitHub calls so that it can be reviewed on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promoter.domain.pull_requests import Comment
from promoter.errors import UntrustedPullRequestError
from promoter.forge.github_calls import _aware

if TYPE_CHECKING:
    import github.PullRequest

log = logging.getLogger(__name__)

_PULL_MARKER = re.compile(r"\n*<!-- promoter:pull (\{[^\n]*?\}) -->(?:\s*\Z)?")
"""The pull marker, wherever it is (a person may add text below it); the last one counts."""
_MARKER_LABEL = b"promoter:pull-marker:v1\n"
"""Prefix of every signed message: a MAC for this purpose is never valid for another."""
_KEY_MARKER = re.compile(r"\n*<!-- promoter:key=([A-Za-z0-9_.:/-]+) -->\s*\Z")
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:/-]+$")


@dataclass(frozen=True, slots=True)
class _PullMeta:
    """A pull marker whose signature verified."""

    author: str
    """Who proposed the promotion."""
    head: str
    """The head sha promoter last opened or updated the PR with."""


class PullMarkers:
    """Mixin of `GitHubForge`: writes and verifies the signed pull marker under
    `_marker_key`, bound to the repository `_full_name`."""

    _marker_key: bytes
    _full_name: str

    def _signature(self, *, head_branch: str, base_branch: str, author: str,
                   head: str) -> str:
        """HMAC-SHA256 (hex) of what a pull marker vouches for, bound to this repository
        (names compared as GitHub does, case-insensitively) and the PR's branches."""
        message = json.dumps({"repository": self._full_name.casefold(),
                              "head_branch": head_branch, "base_branch": base_branch,
                              "author": author, "head": head},
                             sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hmac.new(self._marker_key, _MARKER_LABEL + message.encode(),
                        hashlib.sha256).hexdigest()

    def _with_marker(self, body: str, *, head_branch: str, base_branch: str, author: str,
                     head: str) -> str:
        sig = self._signature(head_branch=head_branch, base_branch=base_branch,
                              author=author, head=head)
        meta = json.dumps({"author": author, "head": head, "sig": sig}, sort_keys=True)
        return f"{_without_pull_marker(body)}\n\n<!-- promoter:pull {meta} -->"

    def _verified(self, raw: github.PullRequest.PullRequest) -> _PullMeta | None:
        """The PR's pull marker if its signature verifies for this PR's branches, else None
        (no marker, not JSON, a field missing, or signed for something else)."""
        markers = list(_PULL_MARKER.finditer(raw.body or ""))
        if not markers:
            return None
        try:
            data = json.loads(markers[-1].group(1))
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        author, head, sig = data.get("author"), data.get("head"), data.get("sig")
        if not (isinstance(author, str) and isinstance(head, str) and isinstance(sig, str)
                and author and head):
            return None
        expected = self._signature(head_branch=raw.head.ref, base_branch=raw.base.ref,
                                   author=author, head=head)
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            return None
        return _PullMeta(author=author, head=head)

    def _untrusted(self, raw: github.PullRequest.PullRequest) -> UntrustedPullRequestError:
        number = raw.number
        why = ("does not verify" if _PULL_MARKER.search(raw.body or "")
               else "is missing")
        log.warning("pull request #%d: its promoter marker %s; not acted on", number, why)
        return UntrustedPullRequestError(
            f"pull request #{number}: promoter's signed marker in its description {why}, so "
            "who proposed it and which head promoter wrote cannot be trusted; promoter does "
            "not act on it",
            fix=f"close #{number} and propose the promotion again (if forge.github's marker "
                "key or the App key changed, every open promotion needs this)")


def _without_pull_marker(body: str) -> str:
    return _PULL_MARKER.sub("", body)


def _comment_key(body: str | None) -> str | None:
    match = _KEY_MARKER.search(body or "")
    return match.group(1) if match else None


def _to_comment(raw: Any, key: str) -> Comment:
    return Comment(id=raw.id, key=key, body=_KEY_MARKER.sub("", raw.body or ""),
                   updated_at=_aware(raw.updated_at))

