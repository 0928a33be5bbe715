"""GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.

The HMAC is computed over the raw request body exactly as received, before anything parses
it: a parser never sees bytes from an unauthenticated sender.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    """The header value GitHub sends for `body` signed with `secret`."""
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """True only if `header` is `sha256=<hex>` and the HMAC of `body` matches it.

    Constant-time comparison, so the answer time says nothing about how much matched. Other
    algorithms (GitHub's legacy `sha1=` header) are refused, not downgraded to.
    """
    if not secret:
        raise ValueError("an empty webhook secret would accept forged deliveries")
    if header is None or not header.startswith(_PREFIX):
        return False
    expected = sign(secret, body)
    return hmac.compare_digest(expected.encode("ascii"), header.strip().encode("ascii", "replace"))
