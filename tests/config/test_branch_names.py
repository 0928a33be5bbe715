"""Branch names: promoter accepts exactly what `git check-ref-format --branch` accepts, less
names that do not print as themselves, and says which rule a refused name breaks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promoter.config.branch_names import branch_problem, git_branch_problem


@pytest.fixture(scope="module")
def outside_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory in no git repository: there `--branch` expands neither `@` nor `@{-1}`."""
    return tmp_path_factory.mktemp("not-a-repository")


def git_accepts(name: str, cwd: Path) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(cwd.parent)
    result = subprocess.run(["git", "check-ref-format", "--branch", name], cwd=cwd, env=env,
                            capture_output=True, check=False)
    return result.returncode == 0


UNUSUAL = [
    "environments/dev", "a", "a/b/c", "a.b", "a./b", "a-", "a/-b", "a@", "@", "@@", "@/a",
    "a/@", "{", "a}", "lock", "a.loc", "a.lo.ck", "HEAD/x", "x/HEAD", "refs/heads/HEAD",
    "\u00e9/\u00fc", "a\u00a0b", "a\u200bb", "a\u202eb",
    # refused by git
    "", "environments/.hidden", ".a", "dev.", "a/b.", ".", "a/.", "a.lock/b", "a/.lock",
    "dev.lock", ".lock", "a..b", "..a", "a/./b", "a/../b", "a b", "a\tb", "~", "a~1", "^",
    "a^", ":", "a:b", "?", "*", "a*", "[", "a[b", "\\", "a\\b", "a/", "/a", "/", "a//b",
    "@{", "a@{b", "@{-1}", "a\x01b", "a\x1fb", "a\x7fb", "-", "-a", "HEAD",
]


@pytest.mark.parametrize("name", UNUSUAL)
def test_agrees_with_git_on_unusual_names(name: str, outside_repository: Path) -> None:
    assert (git_branch_problem(name) is None) is git_accepts(name, outside_repository)


_PIECES = ["a", "b", "0", "\u00e9", "\u00a0", ".", "/", "@", "{", "}", "-", "-next", "lock",
           "x.lock", "y.", "HEAD"]
"""Mostly valid on their own; joined, they make most of git's rules matter."""
_BREAKERS = ["..", "//", "/.", "@{", ".lock", " ", "~", "^", ":", "?", "*", "[", "\\", "\t",
             "\x01", "\x1f", "\x7f"]
"""Each breaks a rule in most places it lands."""


@st.composite
def one_breaker_among_pieces(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(st.sampled_from(_PIECES), max_size=6))
    position = draw(st.integers(0, len(pieces)))
    pieces.insert(position, draw(st.sampled_from(_BREAKERS)))
    return "".join(pieces)


names = st.one_of(
    st.lists(st.sampled_from(_PIECES), max_size=8).map("".join),
    one_breaker_among_pieces(),
    # Any text git can be handed as an argument: no NUL, no lone surrogate.
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12),
)


@settings(max_examples=400, deadline=None, database=None)
@given(name=names)
def test_agrees_with_git_on_generated_names(name: str, outside_repository: Path) -> None:
    assert (git_branch_problem(name) is None) is git_accepts(name, outside_repository)


@pytest.mark.parametrize(("name", "problem"), [
    ("", "it is empty"),
    ("-a", "it starts with '-'"),
    ("HEAD", "'HEAD' is git's name for the checked-out commit"),
    ("a\x00b", "it contains the control character '\\x00'"),
    ("a b", "it contains ' '"),
    ("a..b", "it contains '..'"),
    ("a@{b", "it contains '@{'"),
    ("dev.", "it ends with '.'"),
    ("a//b", "it has an empty path component (a leading or trailing '/', or '//')"),
    ("environments/.hidden", "the path component '.hidden' starts with '.'"),
    ("a.lock/b", "the path component 'a.lock' ends with '.lock'"),
])
def test_says_which_rule(name: str, problem: str) -> None:
    assert git_branch_problem(name) == problem
    assert branch_problem(name) == problem


@pytest.mark.parametrize("name", ["a\u00a0b", "a\u200bb", "a\u202eb", "a\u2028b"])
def test_refuses_what_does_not_print_as_itself(name: str, outside_repository: Path) -> None:
    assert git_accepts(name, outside_repository)  # promoter's own rule, not git's
    assert git_branch_problem(name) is None
    problem = branch_problem(name)
    assert problem is not None
    assert problem.startswith(f"it contains U+{ord(name[1]):04X}, which does not print")


def test_refuses_a_lone_surrogate() -> None:
    assert branch_problem("a\ud800") == "it is not valid Unicode text"
