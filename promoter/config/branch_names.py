"""Which branch names git accepts, checked when the configuration loads.

An environment's branch that git refuses (`environments/.hidden`, `a..b`, `dev.lock`) used to
pass `promoter validate` and fail at the first promotion, halfway through. The rules are
git-check-ref-format(1)'s for `refs/heads/<name>`, plus the two that `git check-ref-format
--branch` adds (no leading `-`, not `HEAD`). They are written out here rather than run as
`git check-ref-format`: loading the configuration stays a pure function of the files (no
process per environment on every reconcile, no answer that depends on the current directory,
where `--branch` would expand `@{-1}`), and tests/config/test_branch_names.py compares this
function with the installed git on generated names.

Promoter adds one rule of its own: every character must be printable. Git takes any byte
from 0x80 up, so a no-break space, a zero-width space or a right-to-left override would be a
valid branch name that reads as another one in pull requests and logs.
"""

from __future__ import annotations

_FORBIDDEN = frozenset(" ~^:?*[\\")
"""Characters git refuses anywhere in a ref name, besides control characters."""


def git_branch_problem(name: str) -> str | None:
    """Why `git check-ref-format --branch` refuses `name`, or None if git accepts it.

    The rule numbers in the comments are git-check-ref-format(1)'s.
    """
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-'"
    if name == "HEAD":
        return "'HEAD' is git's name for the checked-out commit"
    for char in name:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"it contains the control character {char!r}"  # rule 4
        if char in _FORBIDDEN:
            return f"it contains {char!r}"  # rules 4, 5 and 10
    if ".." in name:
        return "it contains '..'"  # rule 3
    if "@{" in name:
        return "it contains '@{'"  # rule 8
    if name.endswith("."):
        return "it ends with '.'"  # rule 7
    for component in name.split("/"):
        if not component:
            return "it has an empty path component (a leading or trailing '/', or '//')"  # 6
        if component.startswith("."):
            return f"the path component {component!r} starts with '.'"  # rule 1
        if component.endswith(".lock"):
            return f"the path component {component!r} ends with '.lock'"  # rule 1
    return None


def branch_problem(name: str) -> str | None:
    """Why promoter refuses `name` as a branch (git's rules and its own), or None."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "it is not valid Unicode text"
    problem = git_branch_problem(name)
    if problem is not None:
        return problem
    unprintable = next((char for char in name if not char.isprintable()), None)
    if unprintable is not None:
        return (f"it contains U+{ord(unprintable):04X}, which does not print as itself "
                "(promoter's rule; git would take it)")
    return None
