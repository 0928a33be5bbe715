"""`promoter token`: make and hash the REST API's bearer tokens.

The tokens file of `promoter serve` holds `USER: sha256:<hex>` lines, never tokens (see
`promoter.server.tokens`). A token is read from stdin, never from an argument: a command line
is visible to every user of the machine (`ps`) and lands in shell history.
"""

from __future__ import annotations

import secrets
import sys

import click

from promoter.cli.errors import handle_errors
from promoter.errors import BadInputError


@click.group("token")
def token() -> None:
    """Bearer tokens of the REST API (approve/reject as a user)."""


@token.command("new")
@click.argument("user")
@handle_errors
def new(user: str) -> None:
    """Make a random token for USER: its tokens-file line on stdout, the token on stderr.

    `promoter token new rita >> api-tokens` appends the line and shows the token once, for
    rita alone; it is stored nowhere.
    """
    from promoter.server.tokens import hash_token

    _check_user(user)
    value = secrets.token_urlsafe(32)  # 256 random bits, 43 URL-safe characters
    click.echo(f"{user}: {hash_token(value)}")
    click.echo(f"token for {user} (shown once, not stored; send it as "
               f"`Authorization: Bearer <token>`):\n{value}", err=True)


@token.command("hash")
@click.option("--user", help="Print the whole tokens-file line `USER: sha256:<hex>`.")
@handle_errors
def hash_(user: str | None) -> None:
    """Hash a token read from stdin: `printf %s "$TOKEN" | promoter token hash`.

    Prints `sha256:<hex>`, the SHA-256 of the token's UTF-8 bytes (the same as
    `printf %s "$TOKEN" | sha256sum`). One trailing newline is ignored.
    """
    from promoter.server.tokens import check_new_token, hash_token

    if user is not None:
        _check_user(user)
    if sys.stdin.isatty():
        value = click.prompt("token", hide_input=True, err=True)
    else:
        value = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    check_new_token(value)
    digest = hash_token(value)
    click.echo(f"{user}: {digest}" if user else digest)


def _check_user(user: str) -> None:
    """The tokens file would refuse the line later, at `serve` start: refuse it now."""
    from promoter.server.tokens import USER_PATTERN

    if not USER_PATTERN.match(user):
        raise BadInputError(f"{user!r} is not a valid user name",
                            fix="use letters, digits and `_.@-`, starting with a letter or "
                                "digit, at most 100 characters")
