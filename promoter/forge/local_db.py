"""The SQLite file under `LocalForge`: schema and its version, connections, transactions, rows.

Concurrency. Several `promoter` processes and the threads of a service may share the file.
Every operation opens its own connection and runs in one transaction; operations that write
start it with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front, so a
read-check-write sequence can never interleave with another writer (other processes wait up to
`BUSY_TIMEOUT_S`). WAL mode lets readers go on while a writer works. A partial unique index
enforces "at most one open pull request per (head, base)" in the database itself.

Kept apart from the forge operations (`local`) so that the storage format, its upgrade check
and the mapping of rows to the port's values are in one place.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from promoter.domain.pull_requests import Comment, PullRequest, PullRequestState
from promoter.errors import ForgeDatabaseCorruptError, ForgeError, PullRequestNotFoundError

BUSY_TIMEOUT_S = 30.0
"""How long an operation waits for another process's write transaction before failing."""
_SCHEMA_VERSION = 1
_SCHEMA = (
    """CREATE TABLE pull_requests (
        number INTEGER PRIMARY KEY AUTOINCREMENT,
        head TEXT NOT NULL,
        base TEXT NOT NULL,
        head_sha TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        author TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('open', 'merged', 'closed')),
        labels TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        merge_sha TEXT
    )""",
    # The database itself guarantees at most one open pull request per pair of branches.
    """CREATE UNIQUE INDEX one_open_pull_request_per_branch_pair
        ON pull_requests (head, base) WHERE state = 'open'""",
    """CREATE TABLE statuses (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sha TEXT NOT NULL,
        context TEXT NOT NULL,
        state TEXT NOT NULL,
        description TEXT NOT NULL,
        target_url TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX statuses_by_commit ON statuses (sha, context, id)",
    """CREATE TABLE reviews (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pr INTEGER NOT NULL REFERENCES pull_requests (number),
        user TEXT NOT NULL,
        state TEXT NOT NULL,
        commit_sha TEXT NOT NULL,
        submitted_at TEXT NOT NULL
    )""",
    "CREATE INDEX reviews_by_pr ON reviews (pr, id)",
    """CREATE TABLE comments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        pr INTEGER NOT NULL REFERENCES pull_requests (number),
        key TEXT NOT NULL,
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (pr, key)
    )""",
)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ForgeDatabase:
    """Base of `LocalForge`: the database `_db_path`, timestamps from `_clock`."""

    _db_path: Path
    _clock: Callable[[], datetime]

    def _upsert_comment(self, conn: sqlite3.Connection, number: int, key: str, body: str,
                        now: str) -> Comment:
        conn.execute(
            "INSERT INTO comments (pr, key, body, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (pr, key) DO UPDATE SET body = excluded.body,"
            " updated_at = excluded.updated_at WHERE body != excluded.body",
            (number, key, body, now),
        )
        row = conn.execute("SELECT * FROM comments WHERE pr = ? AND key = ?",
                           (number, key)).fetchone()
        return _comment(row)

    @staticmethod
    def _require_row(conn: sqlite3.Connection, number: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM pull_requests WHERE number = ?", (number,)).fetchone()
        if row is None:
            raise PullRequestNotFoundError(f"no pull request #{number}",
                                           fix="list the open ones with `promoter status`")
        return row

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat()

    def _create_schema(self) -> None:
        # WAL: readers never block the writer; the setting is stored in the file. Switching
        # needs an exclusive lock and SQLite answers "locked" at once instead of calling the
        # busy handler, so processes opening a new forge together retry here, within the
        # same time budget as any other lock wait.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.005
        while True:
            with self._connection() as conn:
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        conn.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise self._database_error(exc) from exc
                except sqlite3.Error as exc:
                    raise self._database_error(exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        with self._transaction(write=True) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise ForgeError(
                    f"{self._db_path} was written by a newer promoter (schema {version})",
                    fix="upgrade promoter")
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            # isolation_level=None: no implicit transactions; `_transaction` says BEGIN itself.
            conn = sqlite3.connect(self._db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._database_error(exc) from exc
        try:
            conn.row_factory = sqlite3.Row
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction on a fresh connection; committed on success, else rolled back.

        `write` takes the write lock at BEGIN, so what the transaction reads cannot change
        before it writes.
        """
        with self._connection() as conn:
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(conn)
                raise self._database_error(exc) from exc
            except BaseException:
                _rollback(conn)
                raise

    def _database_error(self, exc: sqlite3.Error) -> ForgeError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            fix = "another promoter process held the forge too long; run the command again"
        elif "not a database" in text or "malformed" in text:
            return ForgeDatabaseCorruptError(
                f"forge database {self._db_path}: {text}",
                fix=f"move {self._db_path} away (its pull requests are lost) and run again")
        else:
            fix = None
        return ForgeError(f"forge database {self._db_path}: {text}", fix=fix)

def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with suppress(sqlite3.Error):  # the original error is what the caller needs to see
            conn.execute("ROLLBACK")


def _normalize_labels(labels: Sequence[str]) -> str:
    if isinstance(labels, str):
        raise TypeError("labels must be a sequence of label names, not one string")
    return json.dumps(sorted(set(labels)))


def _pull_request(row: sqlite3.Row) -> PullRequest:
    return PullRequest(
        number=int(row["number"]),
        head_branch=row["head"],
        base_branch=row["base"],
        head_sha=row["head_sha"],
        title=row["title"],
        body=row["body"],
        author=row["author"],
        state=PullRequestState(row["state"]),
        labels=tuple(json.loads(row["labels"])),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        merge_sha=row["merge_sha"],
    )


def _comment(row: sqlite3.Row) -> Comment:
    return Comment(id=int(row["id"]), key=row["key"], body=row["body"],
                   updated_at=datetime.fromisoformat(row["updated_at"]))
