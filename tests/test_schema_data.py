"""The packaged schemas (promoter/schemas): every file is attributed, reachable as package data,
and the one its SOURCES.md row describes.

These checks need no built wheel: what an installed wheel holds is decided by
`[tool.setuptools.package-data]`, so its patterns are matched against the package directory
the way setuptools matches them (globs relative to the package, files only).
"""

from __future__ import annotations

import glob
import hashlib
import re
import tomllib
from importlib.resources import files
from importlib.resources.abc import Traversable

import pytest

from promoter.schemas import data_file
from tests.conftest import REPO_ROOT

PACKAGE = "promoter.schemas"
PACKAGE_DIR = REPO_ROOT / "promoter" / "schemas"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _rows() -> dict[str, str | None]:
    """File -> sha256 (None for rows without one) from every table in SOURCES.md."""
    rows: dict[str, str | None] = {}
    for line in data_file("SOURCES.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("File", "") or set(cells[0]) <= {"-"}:
            continue
        rows[cells[0]] = cells[-1] if _SHA256.match(cells[-1]) else None
    return rows


def _data_files(node: Traversable, prefix: str = "") -> list[str]:
    """Every non-Python file under `node`, as a path relative to the package."""
    found: list[str] = []
    for child in node.iterdir():
        name = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                found += _data_files(child, f"{name}/")
        elif not child.name.endswith((".py", ".pyc")):
            found.append(name)
    return sorted(found)


ROWS = _rows()
DATA_FILES = _data_files(files(PACKAGE))


def test_sources_lists_every_schema_and_licence() -> None:
    assert {"crds/kubeflow-tfjob.yaml", "crds/jobset.yaml", "crds/argocd-applicationset.yaml",
            "github/github-subset.json", "crds/LICENSE", "github/LICENSE.octokit-openapi",
            "github/webhooks/LICENSE.octokit-webhooks"} <= set(ROWS)
    assert sum(name.startswith("crds/") and name.endswith(".yaml") for name in ROWS) == 9


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_listed_file_is_reachable_through_importlib_resources(name: str) -> None:
    resource = files(PACKAGE).joinpath(*name.split("/"))
    assert resource.is_file(), f"SOURCES.md lists {name}, but the package has no such file"
    expected = ROWS[name]
    if expected is not None:
        assert hashlib.sha256(resource.read_bytes()).hexdigest() == expected, (
            f"{name} differs from the upstream file SOURCES.md describes: update its row")


def test_every_packaged_data_file_is_listed_in_sources() -> None:
    unlisted = [name for name in DATA_FILES if name != "SOURCES.md" and name not in ROWS]
    assert unlisted == [], "add these to promoter/schemas/SOURCES.md (upstream, licence)"


def test_package_data_patterns_ship_every_data_file() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"][PACKAGE]
    shipped = {match for pattern in patterns
               for match in glob.glob(pattern, root_dir=PACKAGE_DIR)
               if (PACKAGE_DIR / match).is_file()}
    missing = sorted(set(DATA_FILES) - shipped)
    assert missing == [], "an installed wheel would lack these: extend the package-data globs"
