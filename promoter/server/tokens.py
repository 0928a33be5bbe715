"""REST API tokens: each bearer token belongs to one user, and the server keeps only hashes.

The tokens file (`$PROMOTER_API_TOKENS_FILE` or `service.apiTokensFile`, e.g. a Kubernetes
Secret mounted as a file) has one line per token:

    # comments and blank lines are ignored
    rita: sha256:3f1a...   # 64 hex digits: SHA-256 of the token's UTF-8 bytes
    sam:  sha256:9c0d...
    rita: sha256:77be...   # a user may have several (rotation: add the new, then drop the old)

It has the shape of a YAML mapping but is read line by line, not as YAML: a user may appear on
several lines, and every error names its line. `promoter token new USER` makes a random token
and prints its line; `printf %s "$TOKEN" | promoter token hash` hashes an existing one.

Why hashes: whoever reads the file (a backup, `kubectl get secret -o yaml`, a debug dump)
learns no token. Why plain SHA-256 and not a slow password hash: the tokens are 256-bit random
strings, not passwords a person chose, so there is nothing to guess; a slow hash would only
make every approve request slow. `promoter token hash` refuses short tokens for that reason.

Why identity from the token: the request body is whatever the caller writes, so a user named
there proves nothing; the token is what the caller holds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from promoter.errors import ApiTokensFileError, BadInputError

TOKENS_FILE_ENV = "PROMOTER_API_TOKENS_FILE"
"""Environment variable naming the tokens file; it wins over `service.apiTokensFile`."""

HASH_PREFIX = "sha256:"
MIN_TOKEN_LENGTH = 32
"""`promoter token hash` refuses shorter tokens: an unsalted hash is only safe for random ones."""

USER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
"""User names, as the API's `user` field and the forge's reviews accept them."""

_LINE = re.compile(r"^(?P<user>[^:\s]+)\s*:\s*(?P<value>\S+)(?:\s+#.*)?$")
_HEX_DIGEST = re.compile(r"^[0-9a-fA-F]{64}$")

_LINE_FIX = "write each line as `USER: sha256:<64 hex digits>` (`promoter token new USER` " \
            "prints one)"


def hash_token(token: str) -> str:
    """The file's form of `token`: `sha256:<hex of SHA-256 over its UTF-8 bytes>`."""
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_new_token(token: str) -> None:
    """Refuse a token too short or oddly formed to be stored as a plain hash."""
    if not token:
        raise BadInputError("the token is empty", fix="pass the token on stdin")
    if any(c.isspace() for c in token) or not token.isprintable():
        raise BadInputError("the token contains spaces or control characters, which an "
                            "Authorization header cannot carry",
                            fix="use `promoter token new USER`, which makes a random one")
    if len(token) < MIN_TOKEN_LENGTH:
        raise BadInputError(
            f"the token has {len(token)} characters; at least {MIN_TOKEN_LENGTH} are needed "
            "because the file keeps an unsalted hash",
            fix="use `promoter token new USER`, which makes a 256-bit random one")


@dataclass(frozen=True, slots=True)
class _Entry:
    user: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class ApiTokens:
    """The hashed tokens of the REST API and the user each one acts as."""

    entries: tuple[_Entry, ...]

    @classmethod
    def of(cls, users_by_token: dict[str, str]) -> ApiTokens:
        """From plain tokens (tests, embedding); the plain tokens are not kept."""
        return cls(tuple(_Entry(user, hashlib.sha256(token.encode("utf-8")).digest())
                         for token, user in users_by_token.items()))

    @property
    def users(self) -> tuple[str, ...]:
        """Every user with at least one token, sorted."""
        return tuple(sorted({entry.user for entry in self.entries}))

    def user_for(self, token: str) -> str | None:
        """The user whose token this is, or None.

        Every entry is compared, in constant time, whether or not one matched already: how
        long the answer takes says nothing about which entry (or how much of one) matched.
        """
        given = hashlib.sha256(token.encode("utf-8")).digest()
        found: str | None = None
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, given):
                found = entry.user
        return found

    def __len__(self) -> int:
        return len(self.entries)


def load_api_tokens(path: Path, *, named_by: str) -> ApiTokens:
    """Read and check the tokens file at `path`; `named_by` says where its path came from
    (`$PROMOTER_API_TOKENS_FILE`, `service.apiTokensFile`) so the fix can point there.

    Raises ApiTokensFileError naming the file, the line and the fix. The messages never
    quote a value from the file: a line that is wrong may well be a plain token.
    """
    where = str(path)
    off = f"or unset {named_by} to turn approvals over HTTP off"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ApiTokensFileError(where, "no such file", fix=f"create it with `promoter token "
                                 f"new USER >> {where}`, {off}") from None
    except IsADirectoryError:
        raise ApiTokensFileError(where, "is a directory", fix="a Secret mounted as a volume "
                                 "is a directory with a file per key: name that file, e.g. "
                                 f"{path / 'api-tokens'}") from None
    except OSError as exc:
        raise ApiTokensFileError(where, f"cannot be read: {exc.strerror}",
                                 fix="let the user running `promoter serve` read it") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiTokensFileError(where, "is not UTF-8 text", fix=_LINE_FIX) from None
    return ApiTokens(tuple(_parse(text, where, off)))


def _parse(text: str, where: str, off: str) -> list[_Entry]:
    entries: list[_Entry] = []
    line_of: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        field = f"line {number}"
        match = _LINE.match(stripped)
        if match is None:
            raise ApiTokensFileError(where, "expected `USER: sha256:<hex>`", field=field,
                                     fix=_LINE_FIX)
        user, value = match["user"], match["value"]
        if not USER_PATTERN.match(user):
            raise ApiTokensFileError(
                where, "the user name is not valid (letters, digits, `_.@-`, starting with a "
                "letter or digit, at most 100)", field=field, fix=_LINE_FIX)
        if not value.lower().startswith(HASH_PREFIX):
            raise ApiTokensFileError(
                where, f"{user}'s value is not `sha256:<hex>`; the file holds hashes of tokens, "
                "never the tokens", field=field,
                fix=f"replace it by the output of `printf %s \"$TOKEN\" | promoter token hash`; "
                    "if it was a real token it has been stored in plain text: issue a new one "
                    f"with `promoter token new {user}`")
        hexdigest = value[len(HASH_PREFIX):]
        if not _HEX_DIGEST.match(hexdigest):
            raise ApiTokensFileError(where, f"{user}'s hash is not 64 hexadecimal digits",
                                     field=field,
                                     fix="copy the whole output of `promoter token hash`")
        digest = bytes.fromhex(hexdigest)
        if digest in line_of:
            raise ApiTokensFileError(
                where, f"the same token as line {line_of[digest]}: a token must name one user",
                field=field, fix=f"give {user} a token of their own (`promoter token new "
                                 f"{user}`)")
        line_of[digest] = number
        entries.append(_Entry(user, digest))
    if not entries:
        raise ApiTokensFileError(where, "has no tokens",
                                 fix=f"add a line with `promoter token new USER >> {where}`, "
                                     f"{off}")
    return entries
