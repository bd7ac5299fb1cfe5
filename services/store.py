"""Local read models in SQLite, with tracking positions stored in the same transaction as each change.

A read model is a cache of the topics: it can always be rebuilt by replay. What makes it safe to kill
at any moment is that the change an event causes, the event's id and the partition's next offset are
committed together, and an event already applied is never applied again. A store that publishes what it
decides does it through an :class:`Outbox`, on the same terms.

Idempotency is keyed by (publisher identity, event id): an event is "already applied" only if the same identity
published an event with that id before, so no publisher can take another's id (a revocation's or an erasure's,
which are computable in advance) and make the genuine event look like a redelivery. The same key with other
content (its content hash differs: another type, body, time, subject or source) is not a redelivery either: the
event is refused (:class:`~mra.events.consumer.EventRefused`) and goes to the dead-letter topic with the reason,
and ``mra audit verify`` reports it as tampering. See docs/interfaces.md for what every store must record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from mra.core.errors import MraError
from mra.events.bus import TopicPartition
from mra.events.consumer import DeadLetter, Delivery, EventRefused
from mra.events.envelope import Envelope
from mra.events.publisher import Publisher
from mra.events.schemas import Event, upcast
from mra.services.files import private_dir, private_sqlite

__all__ = ["Outbox", "SqliteStore", "id_reused", "open_sqlite", "publisher_of"]

_BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracking (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS applied (
    publisher TEXT NOT NULL, event_id TEXT NOT NULL, hash TEXT NOT NULL, type TEXT NOT NULL,
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY (publisher, event_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def publisher_of(env: Envelope) -> str:
    """The identity an event is applied under: its publisher stamp's (verified before it gets here unless
    verification is off), or "" for an unstamped event."""
    return env.stamp.publisher if env.stamp is not None else ""


def id_reused(env: Envelope, where: str, first_hash: str, first_type: str) -> EventRefused:
    """The refusal of an event whose (publisher, id) was applied before with other content."""
    other = f"type {first_type}" if first_type != env.type else "other content"
    return EventRefused(
        f"id reused: {publisher_of(env) or 'an unstamped publisher'} published event {env.id} ({env.type}) before "
        f"with {other} (content hash {first_hash[:16]}…, now {env.hash[:16]}…, first at {where}): "
        "not a redelivery; not applied"
    )


def open_sqlite(path: Path | str) -> tuple[Path | None, sqlite3.Connection]:
    """Open a read model's database (a file, or ``":memory:"``): private, in autocommit, WAL on a file."""
    file = Path(path) if str(path) != ":memory:" else None
    if file is not None:
        private_dir(file.parent)
        private_sqlite(file)  # 0600 before SQLite opens it: its -wal and -shm files take this mode
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    if file is not None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # durable across a killed process, which is what we face
    return file, db


class SqliteStore:
    """Base of every read model. Subclasses add tables in ``SCHEMA`` and implement :meth:`apply_event`."""

    SCHEMA = ""

    def __init__(self, path: Path | str) -> None:
        self.path, self.db = open_sqlite(path)
        columns = {r[0] for r in self.db.execute("SELECT name FROM pragma_table_info('applied')")}
        if columns and "publisher" not in columns:
            raise MraError(
                f"the read model {path} records applied events by id alone (an older layout): rebuild it from the "
                "log (mra replay, or remove the file and run the service again)"
            )
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
        """Apply a batch once: skip events already applied (same publisher, id and content), refuse an id reused
        with other content, record every position, all in one transaction."""
        last: dict[TopicPartition, int] = {}
        with self.transaction() as db:
            for d in deliveries:
                r = d.record
                env = d.envelope
                if self.record_applied(db, env, r.topic, r.partition, r.offset):
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

    @staticmethod
    def record_applied(db: sqlite3.Connection, env: Envelope, topic: str, partition: int, offset: int) -> bool:
        """Record ``env`` as applied under (publisher, id); say whether it is new. The same key with the same
        content hash is a redelivery (False); with another, :class:`EventRefused` is raised."""
        publisher = publisher_of(env)
        if db.execute(
            "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?, ?, ?, ?)",
            (publisher, env.id, env.hash, env.type, topic, partition, offset),
        ).rowcount:
            return True
        first = db.execute(
            "SELECT hash, type, topic, partition, offset FROM applied WHERE publisher = ? AND event_id = ?",
            (publisher, env.id),
        ).fetchone()
        if first is None or first[0] == env.hash:
            return False
        raise id_reused(env, f"{first[2]}[{first[3]}]@{first[4]}", first[0], first[1])

    def apply_event(self, db: sqlite3.Connection, delivery: Delivery) -> None:
        """Change the read model for one new event (inside the batch's transaction)."""
        raise NotImplementedError

    def end_batch(self, db: sqlite3.Connection) -> None:
        """Work owed once per batch after its events are applied, in the same transaction: a read model that
        derives state from several events does it here once rather than once per event."""

    def after_commit(self) -> None:
        """Work that must follow a committed batch (an outbox relay, say)."""

    def dead_letter_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def applied_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM applied").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


_OUTBOX_NEEDS = ("type", "body", "time")


class Outbox:
    """The ``outbox`` table of a store: events owed to the topics, queued in the transaction of the change that
    causes them, published after it commits under the ids and times they were queued with, then marked sent.

    A crash after publishing and before marking re-sends the same ids, which every reader dedupes; a crash before
    publishing leaves the rows for the next relay. ``columns`` are the table's columns between ``event_id`` and
    ``sent``, in their order, all ``TEXT NOT NULL``: ``type``, ``body`` and ``time``, and any the store adds (given
    to :meth:`queue` by name). The table is created here, so each store keeps the layout it has always had.
    """

    def __init__(self, store: SqliteStore, columns: Sequence[str] = _OUTBOX_NEEDS) -> None:
        missing = [c for c in _OUTBOX_NEEDS if c not in columns]
        if missing:
            raise ValueError(f"an outbox needs the columns {', '.join(missing)}")
        self.store = store
        self.columns = tuple(columns)
        self.extra = frozenset(self.columns) - set(_OUTBOX_NEEDS)
        self._insert = (
            f"INSERT OR IGNORE INTO outbox (event_id, {', '.join(self.columns)}) "
            f"VALUES ({', '.join('?' * (len(self.columns) + 1))})"
        )
        store.db.execute(self.schema(self.columns))

    @staticmethod
    def schema(columns: Sequence[str] = _OUTBOX_NEEDS) -> str:
        """The table's DDL (``CREATE TABLE IF NOT EXISTS``: an existing table is left as it is)."""
        middle = "".join(f"{c} TEXT NOT NULL, " for c in columns)
        return (
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            f"event_id TEXT NOT NULL UNIQUE, {middle}sent INTEGER NOT NULL DEFAULT 0)"
        )

    def queue(
        self, db: sqlite3.Connection, event_id: str, type_name: str, body: str, time: datetime, **extra: str
    ) -> bool:
        """Queue an event already serialised (``body``), inside the caller's transaction ``db``; say whether it is
        new (an id already queued is kept as it was). ``time`` is stored as its ISO text, offset and all."""
        if set(extra) != self.extra:
            raise ValueError(f"this outbox's extra columns are {sorted(self.extra)}, got {sorted(extra)}")
        values = {"type": type_name, "body": body, "time": time.isoformat(), **extra}
        return bool(db.execute(self._insert, (event_id, *(values[c] for c in self.columns))).rowcount)

    def unsent(self) -> list[sqlite3.Row]:
        """The rows not yet marked sent, in the order they were queued."""
        return self.store.db.execute("SELECT * FROM outbox WHERE sent = 0 ORDER BY seq").fetchall()

    def relay(self, publisher: Publisher, kinds: Mapping[str, type[Event]]) -> int:
        """Publish every unsent row in order, flush, then mark them sent; return how many were published.

        A row whose ``type`` is in ``kinds`` is published with its stored body bytes as they are; any other type
        is read as a CloudEvents type and upcast to its current version, then serialised again.
        """
        rows = self.unsent()
        if not rows:
            return 0
        for row in rows:
            body = row["body"].encode()
            at = datetime.fromisoformat(row["time"])
            cls = kinds.get(row["type"])
            if cls is not None:
                publisher.publish(cls.model_validate_json(body), id=row["event_id"], time=at, body=body)
            else:
                current, data = upcast(row["type"], json.loads(body))
                publisher.publish(current.model_validate(data), id=row["event_id"], time=at)
        publisher.flush()
        with self.store.transaction() as db:
            db.execute("UPDATE outbox SET sent = 1 WHERE seq <= ? AND sent = 0", (rows[-1]["seq"],))
        return len(rows)
