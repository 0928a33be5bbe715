"""Promoter's own record of evaluation verdicts, the only place a cached verdict is read from.

A commit status or a PR comment is no proof: anyone with write access to the repository can
post a `promoter/evaluation: success` status or edit a comment. A verdict is reused only from
this store, which only promoter writes, under a key naming everything the verdict depends on:
the digests of the candidate, baseline and holdout bytes the worker actually read, and the
exact evaluation policy and model settings. Losing the store costs a re-evaluation, never a
wrong verdict: a corrupt or unreadable entry reads as absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredVerdict:
    """One evaluation's verdict, as promoter recorded it when it scored the models."""

    passed: bool
    summary: str
    """The report's one-line summary (the commit status description)."""
    needs_approval: bool
    report_markdown: str
    candidate_digest: str
    baseline_digest: str | None
    holdout_digest: str
    report_json: dict[str, Any] | None = None
    """The whole report (`EvaluationReport.to_json_dict()`), for the dashboard's plots; None
    in verdicts recorded before it was kept."""


def pull_report_key(number: int, head_sha: str) -> str:
    """The key under which the verdict judged for PR `number` at `head_sha` is also recorded,
    so the dashboard finds the report of a pull request without recomputing digests."""
    return verdict_key({"pull": number, "head": head_sha})


def verdict_key(parts: Mapping[str, object]) -> str:
    """A stable key for `parts` (JSON-able values): equal keys mean equal inputs."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class VerdictStore(Protocol):
    def get(self, key: str) -> StoredVerdict | None:
        """The verdict recorded under `key`, or None (never recorded, or unreadable)."""
        ...

    def put(self, key: str, verdict: StoredVerdict) -> None:
        """Record `verdict` under `key`, replacing any earlier one."""
        ...


class MemoryVerdictStore:
    """Verdicts of this process only: for one-shot use and tests. A restart re-evaluates."""

    def __init__(self) -> None:
        self._verdicts: dict[str, StoredVerdict] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> StoredVerdict | None:
        with self._lock:
            return self._verdicts.get(key)

    def put(self, key: str, verdict: StoredVerdict) -> None:
        with self._lock:
            self._verdicts[key] = verdict


class DirectoryVerdictStore:
    """One JSON file per verdict in a directory only promoter writes (mode 0700).

    The embedded default keeps it inside the repository's git directory, beside the local
    forge's database, so it is never committed. Writes are atomic (a temporary file renamed
    into place), so a crash leaves either the old entry or the new one.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def get(self, key: str) -> StoredVerdict | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return StoredVerdict(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("verdict %s unreadable (%s); the models will be scored again",
                        path, exc)
            return None

    def put(self, key: str, verdict: StoredVerdict) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self._dir, prefix=".verdict-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(asdict(verdict), handle, sort_keys=True)
            os.replace(temporary, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _path(self, key: str) -> Path:
        if not key.isalnum():
            raise ValueError(f"not a verdict key: {key!r}")
        return self._dir / f"{key}.json"
