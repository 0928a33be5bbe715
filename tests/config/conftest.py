"""Fixtures of the configuration tests.

- `example` -> Path: a copy of the repository's working example (promoter.yaml, environments,
  policies, manifests), safe to break.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from promoter.demo import copy_example


@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy_example(tmp_path)
    return tmp_path
