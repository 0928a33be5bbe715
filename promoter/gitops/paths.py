"""Names and paths in commits promoter writes, checked, and trees built from them in memory
(for `LocalGitRepository`): pure functions, no git process."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from promoter.errors import GitError

Tree = dict[str, "bytes | Tree"]
"""Nested directories: name -> file bytes, or name -> a directory's Tree."""


def check_rev(rev: str) -> None:
    # A name starting with "-" would be read as an option by git.
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n"):
        raise GitError(f"{rev!r} is not a valid revision or branch name")


def split_path(path: str) -> list[str]:
    """The components of a repository path; GitError unless it is a clean relative path."""
    parts = path.split("/")
    if (not path or "\0" in path or "\n" in path
            or any(p in ("", ".", "..") or p.lower() == ".git" for p in parts)):
        raise GitError(f"invalid path {path!r} in a commit",
                       fix="use a relative POSIX path without '.', '..', '.git' or '//'")
    return parts


def object_id(kind: str, data: bytes) -> bytes:
    """The binary id git gives an object of `kind` with `data` (SHA-1 object format)."""
    return hashlib.sha1(f"{kind} {len(data)}\0".encode() + data).digest()


def build_tree(files: Mapping[str, bytes]) -> Tree:
    """Nest `files` (path -> bytes) into directories; GitError on a file/directory clash."""
    root: Tree = {}
    for path in sorted(files):
        data = files[path]
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"{path}: file content must be bytes, not {type(data).__name__}")
        *dirs, name = split_path(path)
        node = root
        for depth, part in enumerate(dirs):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise GitError(f"{'/'.join(dirs[:depth + 1])} is both a file and a directory "
                               f"(because of {path})")
            node = child
        if name in node:
            raise GitError(f"{path} is both a file and a directory")
        node[name] = bytes(data)
    return root
