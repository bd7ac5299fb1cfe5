"""Local read models in SQLite, with tracking positions stored in the same transaction as each change.

A read model is a cache of the topics: it can always be rebuilt by replay. What makes it safe to kill
at any moment is that the change an event causes, the event's id and the partition's next offset are
committed together, and an event id already applied is never applied again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from mra.events.bus import TopicPartition
from mra.events.consumer import DeadLetter, Delivery

__all__ = ["SqliteStore"]

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracking (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS applied (
    event_id TEXT PRIMARY KEY, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqliteStore:
    """Base of every read model. Subclasses add tables in ``SCHEMA`` and implement :meth:`apply_event`."""

    SCHEMA = ""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        if self.path is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process, which is what we face
        self.db.executescript(_BASE_SCHEMA + self.SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # tracking ----------------------------------------------------------------------------------------------------
    def positions(self) -> Mapping[TopicPartition, int]:
        rows = self.db.execute("SELECT topic, partition, next_offset FROM tracking").fetchall()
        return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}

    def _track(self, db: sqlite3.Connection, topic: str, partition: int, offset: int) -> None:
        db.execute(
            "INSERT INTO tracking VALUES (?, ?, ?) ON CONFLICT(topic, partition) "
            "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
            (topic, partition, offset + 1),
        )

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        """Apply a batch once: skip event ids already applied, record every position, all in one transaction."""
        last: dict[TopicPartition, int] = {}
        with self.transaction() as db:
            for d in deliveries:
                r = d.record
                fresh = db.execute(
                    "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?)", (d.envelope.id, r.topic, r.partition, r.offset)
                ).rowcount
                if fresh:
                    self.apply_event(db, d)
                tp = (r.topic, r.partition)
                last[tp] = max(last.get(tp, -1), r.offset)
            self.end_batch(db)
            for letter in dead:
                r = letter.record
                db.execute(
                    "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?)",
                    (r.topic, r.partition, r.offset, letter.reason),
                )
                tp = (r.topic, r.partition)
                last[tp] = max(last.get(tp, -1), r.offset)
            for (topic, partition), offset in last.items():  # one write per partition per batch, same transaction
                self._track(db, topic, partition, offset)
        self.after_commit()

    def apply_event(self, db: sqlite3.Connection, delivery: Delivery) -> None:
        """Change the read model for one new event (inside the batch's transaction)."""
        raise NotImplementedError

    def end_batch(self, db: sqlite3.Connection) -> None:
        """Work owed once per batch after its events are applied, in the same transaction: a read model that
        derives state from several events does it here once rather than once per event."""

    def after_commit(self) -> None:
        """Work that must follow a committed batch (an outbox relay, say)."""

    def applied_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM applied").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))
