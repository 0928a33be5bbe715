"""Everything the pages load ships in the package (no CDN): the package-data globs cover every
template and static file, and no page refers to anything off the server."""

from __future__ import annotations

import glob
import re
import tomllib

from tests.conftest import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "promoter" / "dashboard"
OFF_SERVER = re.compile(r"""(?:src|href|action)=["']?(?:https?:)?//[^"' >]+"""
                        r"""|url\(\s*["']?(?:https?:)?//|@import""")


def test_package_data_patterns_ship_every_template_and_static_file() -> None:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["promoter.dashboard"]
    shipped = {match for pattern in patterns
               for match in glob.glob(pattern, root_dir=PACKAGE_DIR)
               if (PACKAGE_DIR / match).is_file()}
    files = {str(path.relative_to(PACKAGE_DIR)) for folder in ("templates", "static")
             for path in (PACKAGE_DIR / folder).rglob("*") if path.is_file()}
    assert files
    assert sorted(files - shipped) == []


def test_no_page_refers_to_another_host() -> None:
    texts = {str(p.relative_to(PACKAGE_DIR)): p.read_text(encoding="utf-8")
             for folder in ("templates", "static") for p in (PACKAGE_DIR / folder).rglob("*")
             if p.is_file()}
    off_server = {name: OFF_SERVER.findall(text) for name, text in texts.items()}
    # The one absolute URL is the PR's page on GitHub, given by the server (pull_url).
    assert {name: found for name, found in off_server.items() if found} == {}
