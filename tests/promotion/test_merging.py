"""Every merge promoter makes into an environment branch goes through
`promoter.promotion.merging.EnvironmentMerger`, which asks the controller to sync now: no other
module may call a forge's `merge` (a rollback once did, and its rollout waited for Flux's
interval). Read from the source, so a new merge path fails here before it ships."""

from __future__ import annotations

import ast
from pathlib import Path

import promoter

PACKAGE = Path(promoter.__file__).parent
ALLOWED = {PACKAGE / "promotion" / "merging.py"}
"""The one merge path. promoter/forge/ itself (the adapters and their wrappers) is the forge."""


def _receiver(node: ast.expr) -> str:
    """`self._ctx.forge` for `self._ctx.forge.merge`: the dotted receiver, lower-cased."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts)).lower()


def forge_merges(source: str) -> list[int]:
    """Lines of `source` calling `<something forge>.merge(...)`."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "merge" and "forge" in _receiver(node.func.value)]


def test_the_finder_sees_the_ways_a_forge_merge_is_written() -> None:
    """The check below could only pass vacuously if this did not find them."""
    assert forge_merges("ctx.forge.merge(1, expected_head='a', expected_base='b', message='')\n"
                        "self._forge.merge(1)\nself._ctx.forge.merge(1)\n"
                        "forge.merge(2)\n") == [1, 2, 3, 4]
    assert forge_merges("metrics.merge(part)\nself._merger.merge(env, request)\n") == []


def test_only_the_merger_merges_into_environment_branches() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in ALLOWED or (PACKAGE / "forge") in path.parents:
            continue
        lines = forge_merges(path.read_text())
        if lines:
            found[str(path.relative_to(PACKAGE.parent))] = lines
    assert found == {}, ("merge through promoter.promotion.merging.EnvironmentMerger, which "
                         "asks Flux/Argo CD to sync now")
    assert forge_merges((PACKAGE / "promotion" / "merging.py").read_text()) != []
