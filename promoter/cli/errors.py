"""How every `promoter` command reports a PromoterError: one line on stderr and its exit code.

A module of its own so that each command module can use it without importing the command
group (which imports them: no cycle).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import click

from promoter.errors import PromoterError

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn PromoterError into `error: ...` on stderr and its exit code; nothing else."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PromoterError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper
