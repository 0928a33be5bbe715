"""A fresh clone must build, run and test with nothing beside it.

Developers have a folder of notes and schemas named `shared` next to their checkout; a user who
clones only this repository does not, so no tracked file may read it, or send a user to it.
The schemas the project needs are packaged in promoter/schemas (tests/test_schema_data.py).
The patterns below are written so that they do not match their own source.
"""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO_ROOT

_OUTSIDE = re.compile("|".join([
    r"[.][.][/\\]shared",                      # a relative path to the sibling folder
    r"/shared/schema[s]",                      # the schemas there, by any absolute path
    r"parents?(\[\d+\])?\s*/\s*[\"']share[d]",  # the sibling folder built from a Path
    r"FLUX-ARGO[.]md|STYLE[.]md",              # the notes that exist only there
]))


def _tracked_text_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True,
                            check=True).stdout.decode("utf-8")
    return [name for name in listed.split("\0") if name]


def test_no_tracked_file_reads_or_mentions_the_folder_beside_the_clone() -> None:
    files = _tracked_text_files()
    assert "pyproject.toml" in files
    assert "promoter/schemas/crd.py" in files
    offending = []
    for name in files:
        path = REPO_ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                offending.append(f"{name}:{number}: {line.strip()}")
    assert offending == [], "\n".join(offending)


def test_the_pattern_catches_what_it_is_for() -> None:
    assert _OUTSIDE.search('SHARED = REPO_ROOT.parent / "' 'shared"')
    assert _OUTSIDE.search("see ../" "shared/FLUX-ARGO" ".md")
    assert _OUTSIDE.search("/work/shared/schema" "s/crds")
    assert not _OUTSIDE.search("a shared library; shared by the worker")
