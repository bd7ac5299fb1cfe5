"""The journal: every event read, in one table — the simplest read model, and the one ``mra events`` shows."""

from __future__ import annotations

import sqlite3

from mra.events.consumer import Delivery
from mra.services.store import SqliteStore

__all__ = ["Journal"]


class Journal(SqliteStore):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, type TEXT NOT NULL, subject TEXT NOT NULL,
        time TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, body TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL);
    """

    def apply_event(self, db: sqlite3.Connection, delivery: Delivery) -> None:
        env, r = delivery.envelope, delivery.record
        db.execute(
            "INSERT INTO events (event_id, type, subject, time, topic, partition, offset, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (env.id, env.type, env.subject, env.time.isoformat(), r.topic, r.partition, r.offset, env.body.decode()),
        )
        db.execute("INSERT INTO counts VALUES (?, 1) ON CONFLICT(type) DO UPDATE SET n = n + 1", (env.type,))

    def counts(self) -> dict[str, int]:
        return {r["type"]: r["n"] for r in self.db.execute("SELECT type, n FROM counts")}

    def event_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT event_id FROM events ORDER BY seq")]
