"""How every `promoter` command reports a PromoterError: on stderr, with its exit code.

`error: <message>` and `  fix: <fix>` as text; with `-o json` (or yaml) one document with the
same fields (see `promoter.cli.output.emit_error`). A module of its own so that each command
module can use it without importing the command group (which imports them: no cycle).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import NoReturn, ParamSpec, TypeVar

from promoter.cli.output import emit_error
from promoter.errors import PromoterError

P = ParamSpec("P")
R = TypeVar("R")


def report_error(exc: PromoterError) -> NoReturn:
    """Print `exc` as the command's error and exit with its code."""
    emit_error(exc.message, fix=exc.fix, kind=type(exc).__name__, exit_code=exc.exit_code)
    sys.exit(exc.exit_code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn PromoterError into the command's error output and its exit code; nothing else."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except PromoterError as exc:
            report_error(exc)

    return wrapper
