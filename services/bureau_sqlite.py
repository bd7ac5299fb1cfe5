"""The bureau store (:mod:`mra.services.bureau_store`) in one SQLite file per bureau."""

from __future__ import annotations

import json
import socket
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from mra.core.errors import MraError
from mra.core.facts import (
    CertificateFact,
    EmploymentFact,
    ErasureFact,
    HolderFact,
    HolderFile,
    StoredDecision,
    WithdrawnEntry,
)
from mra.core.models import BenefitDecision, Employment, Outcome
from mra.events.bus import TopicPartition
from mra.events.consumer import EventRefused
from mra.services.bureau_store import OutboxRow, RelayState, StoreCounts
from mra.services.decision_codec import DecisionCodec, SetRow
from mra.services.store import open_sqlite

__all__ = ["SqliteBureauStore"]

SCHEMA_VERSION = "3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracking (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS applied (
    publisher TEXT NOT NULL, event_id TEXT NOT NULL, hash TEXT NOT NULL, type TEXT NOT NULL,
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, PRIMARY KEY (publisher, event_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead_letters (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (topic, partition, offset)
);
CREATE TABLE IF NOT EXISTS holders (
    holder_id TEXT PRIMARY KEY, category TEXT NOT NULL, birth_date TEXT, erased INTEGER NOT NULL DEFAULT 0,
    event_time TEXT NOT NULL, event_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS employments (
    holder_id TEXT NOT NULL, jurisdiction TEXT NOT NULL, started TEXT NOT NULL, employer TEXT NOT NULL,
    region TEXT NOT NULL, ended TEXT, body TEXT NOT NULL, event_time TEXT NOT NULL, event_id TEXT NOT NULL,
    ended_time TEXT, employer_code TEXT NOT NULL, PRIMARY KEY (holder_id, jurisdiction, started)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS certificates (
    certificate_key TEXT PRIMARY KEY, holder_id TEXT NOT NULL, entry_id TEXT NOT NULL, issuer TEXT NOT NULL,
    code TEXT NOT NULL, verified_at TEXT NOT NULL, verified_by TEXT NOT NULL, expires TEXT,
    revoked_at TEXT, revoke_reason TEXT, event_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_holder ON certificates (holder_id);
CREATE INDEX IF NOT EXISTS certificates_entry ON certificates (entry_id);
CREATE TABLE IF NOT EXISTS withdrawn_entries (
    entry_id TEXT PRIMARY KEY, effective TEXT NOT NULL, reason TEXT NOT NULL, event_time TEXT NOT NULL,
    event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS editions (
    catalogue TEXT NOT NULL, edition TEXT NOT NULL, effective TEXT NOT NULL, event_id TEXT NOT NULL,
    PRIMARY KEY (catalogue, edition)
);
CREATE TABLE IF NOT EXISTS decision_sets (
    holder_id TEXT NOT NULL, certificate_key TEXT NOT NULL, active INTEGER NOT NULL, eligible INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (holder_id, certificate_key)
);
CREATE TABLE IF NOT EXISTS decision_parts (part_id INTEGER PRIMARY KEY, hash INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decision_parts_hash ON decision_parts (hash);
CREATE TABLE IF NOT EXISTS erasures (
    holder_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL, decisions TEXT NOT NULL, ages TEXT NOT NULL,
    event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, body TEXT NOT NULL,
    time TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS relay_positions (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL, PRIMARY KEY (topic, partition)
);
"""


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _holder(r: sqlite3.Row) -> HolderFact:
    return HolderFact(r[0], r[1], r[2], bool(r[3]), _dt(r[4]), r[5])


_EMPLOYMENT_COLUMNS = {"holder_id", "jurisdiction", "started", "employer", "employer_region", "ended"}


def _employment(r: sqlite3.Row) -> EmploymentFact:
    e = Employment(
        holder_id=r["holder_id"], jurisdiction=r["jurisdiction"], started=date.fromisoformat(r["started"]),
        employer=r["employer"], employer_region=r["region"], ended=_day(r["ended"]), **json.loads(r["body"]),
    )  # fmt: skip
    return EmploymentFact(
        e, _dt(r["event_time"]), r["event_id"],
        _dt(r["ended_time"]) if r["ended_time"] else None, r["employer_code"],
    )  # fmt: skip


def _certificate(r: sqlite3.Row) -> CertificateFact:
    return CertificateFact(
        r["certificate_key"], r["holder_id"], r["entry_id"], r["issuer"], r["code"], _dt(r["verified_at"]),
        r["verified_by"], _day(r["expires"]), r["event_id"], _dt(r["revoked_at"]) if r["revoked_at"] else None,
        r["revoke_reason"],
    )  # fmt: skip


def _withdrawn(r: sqlite3.Row) -> WithdrawnEntry:
    return WithdrawnEntry(r["entry_id"], date.fromisoformat(r["effective"]), r["reason"], _dt(r["event_time"]),
                          r["event_id"])  # fmt: skip


class _Batch:
    """One transaction of a :class:`SqliteBureauStore` (see :class:`~mra.services.bureau_store.BureauBatch`)."""

    def __init__(self, store: SqliteBureauStore, db: sqlite3.Connection) -> None:
        self.store = store
        self.db = db

    def claim(
        self,
        identity: str,
        event_id: str,
        topic: str,
        partition: int,
        offset: int,
        *,
        content_hash: str = "",
        ce_type: str = "",
    ) -> bool:
        if self.db.execute(
            "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?, ?, ?, ?)",
            (identity, event_id, content_hash, ce_type, topic, partition, offset),
        ).rowcount:
            return True
        first = self.db.execute(
            "SELECT hash, type, topic, partition, offset FROM applied WHERE publisher = ? AND event_id = ?",
            (identity, event_id),
        ).fetchone()
        if first is None or first[0] == content_hash:
            return False
        other = f"type {first[1]}" if first[1] != ce_type else "other content"
        raise EventRefused(
            f"id reused: {identity or 'an unstamped publisher'} published event {event_id} ({ce_type}) before "
            f"with {other} (content hash {first[0][:16]}…, now {content_hash[:16]}…, first at "
            f"{first[2]}[{first[3]}]@{first[4]}): not a redelivery; not applied"
        )

    def track(self, topic: str, partition: int, offset: int) -> None:
        self.db.execute(
            "INSERT INTO tracking VALUES (?, ?, ?) ON CONFLICT(topic, partition) "
            "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
            (topic, partition, offset + 1),
        )

    def dead_letter(self, topic: str, partition: int, offset: int, reason: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?)", (topic, partition, offset, reason))

    def put_holder(self, holder: HolderFact) -> None:
        self.db.execute(
            "INSERT INTO holders VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(holder_id) DO UPDATE SET "
            "category = excluded.category, birth_date = excluded.birth_date",
            (holder.holder_id, holder.category, holder.birth_date, int(holder.erased), _ts(holder.event_time),
             holder.event_id),
        )  # fmt: skip

    def erase_holder(self, erasure: ErasureFact) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO erasures VALUES (?, ?, ?, ?, ?)",
            (erasure.holder_id, _ts(erasure.erased_at), json.dumps(sorted(erasure.decisions)),
             json.dumps(dict(erasure.ages)), erasure.event_id),
        )  # fmt: skip
        self.db.execute("UPDATE holders SET erased = 1, birth_date = NULL WHERE holder_id = ?", (erasure.holder_id,))

    def start_employment(self, employment: EmploymentFact) -> None:
        e = employment.employment
        self.db.execute(
            "INSERT OR REPLACE INTO employments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (e.holder_id, e.jurisdiction, e.started.isoformat(), e.employer, e.employer_region,
             e.ended and e.ended.isoformat(), e.model_dump_json(exclude=_EMPLOYMENT_COLUMNS, exclude_defaults=True),
             _ts(employment.event_time), employment.event_id,
             employment.ended_time and _ts(employment.ended_time), employment.employer_code),
        )  # fmt: skip

    def end_employment(self, holder_id: str, jurisdiction: str, ended: date, event_time: datetime) -> None:
        self.db.execute(
            "UPDATE employments SET ended = ?, ended_time = ? WHERE holder_id = ? AND jurisdiction = ? "
            "AND started <= ? AND ended IS NULL",
            (ended.isoformat(), _ts(event_time), holder_id, jurisdiction, ended.isoformat()),
        )

    def put_certificate(self, certificate: CertificateFact) -> None:
        c = certificate
        self.db.execute(
            "INSERT OR IGNORE INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (c.certificate_key, c.holder_id, c.entry_id, c.issuer, c.verification_code, _ts(c.verified_at),
             c.verified_by, c.expires and c.expires.isoformat(), c.revoked_at and _ts(c.revoked_at), c.revoke_reason,
             c.event_id),
        )  # fmt: skip

    def revoke_certificate(self, certificate_key: str, revoked_at: datetime, reason: str) -> None:
        self.db.execute(
            "UPDATE certificates SET revoked_at = ?, revoke_reason = ? "
            "WHERE certificate_key = ? AND revoked_at IS NULL",  # the first revocation read stands
            (_ts(revoked_at), reason, certificate_key),
        )

    def put_edition(self, catalogue: str, edition: str, effective: date, event_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO editions VALUES (?, ?, ?, ?)", (catalogue, edition, effective.isoformat(), event_id)
        )

    def withdraw_entry(self, withdrawn: WithdrawnEntry) -> None:
        w = withdrawn
        self.db.execute(
            "INSERT OR IGNORE INTO withdrawn_entries VALUES (?, ?, ?, ?, ?)",
            (w.entry_id, w.effective.isoformat(), w.reason, _ts(w.event_time), w.event_id),
        )

    def holders_with_entries(self, entry_ids: Iterable[str]) -> set[str]:
        ids = list(entry_ids)
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            q = f"SELECT holder_id FROM certificates WHERE entry_id IN ({marks})"
            out |= {r[0] for r in self.db.execute(q, chunk)}
        return out

    def holder_file(self, holder_id: str) -> HolderFile:
        return self.store._file(self.db, holder_id)

    def active_decisions(self, holder_id: str) -> dict[str, BenefitDecision]:
        rows = self.store._rows(self.db, holder_id)
        return {d.decision_id: d.decision for d in self.store.codec.decode(self.db, rows, True)}

    def save_decisions(self, holder_id: str, decided: Sequence[BenefitDecision], withdrawn: Mapping[str, str]) -> None:
        if not decided and not withdrawn:
            return
        codec = self.store.codec
        rows = {r.certificate_key: r for r in self.store._rows(self.db, holder_id)}
        changed: set[str] = set()
        for row in rows.values():
            for ident in withdrawn.keys() & row.items.keys():
                row.items[ident][4] = withdrawn[ident]
                changed.add(row.certificate_key)
        for d in decided:
            into = rows.get(d.certificate_key)
            if into is None:
                into = rows[d.certificate_key] = SetRow(holder_id, d.certificate_key)
            into.items[d.decision_id] = codec.item(self.db, into, d)
            changed.add(d.certificate_key)
        self.db.executemany(
            "INSERT OR REPLACE INTO decision_sets VALUES (?, ?, ?, ?, ?, ?)",
            [self.store._counted(rows[key]) for key in sorted(changed)],
        )

    def queue(self, event_id: str, type_name: str, body: str, time: datetime) -> bool:
        return bool(
            self.db.execute(
                "INSERT OR IGNORE INTO outbox (event_id, type, body, time) VALUES (?, ?, ?, ?)",
                (event_id, type_name, body, time.isoformat()),
            ).rowcount
        )


class SqliteBureauStore:
    """A bureau's read model in SQLite (a file, or ``":memory:"``)."""

    def __init__(self, path: Path | str) -> None:
        self.path, self.db = open_sqlite(path)
        found = self._version()
        if found is not None and found != SCHEMA_VERSION:
            self.db.close()
            raise MraError(
                f"{path} holds a bureau read model of another layout (version {found}, this is {SCHEMA_VERSION}): "
                "it is a cache of the topics; move it aside and rebuild it with `mra replay`"
            )
        self.db.executescript(_SCHEMA)
        self.db.execute("INSERT OR IGNORE INTO meta VALUES ('bureau_schema', ?)", (SCHEMA_VERSION,))
        self.codec = DecisionCodec()
        self._memory_key = uuid.uuid4().hex

    def _version(self) -> str | None:
        known = self.db.execute(
            "SELECT name FROM sqlite_master WHERE name IN ('meta', 'decisions', 'decision_sets')"
        ).fetchall()
        if not known:
            return None
        if "meta" not in {r[0] for r in known}:
            return "1"
        row = self.db.execute("SELECT value FROM meta WHERE key = 'bureau_schema'").fetchone()
        return "1" if row is None else str(row[0])

    def close(self) -> None:
        self.db.close()

    def disk_bytes(self) -> int:
        """Bytes the read model takes on disk after a checkpoint (the file and its write-ahead log; 0 in memory)."""
        if self.path is None:
            return 0
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sides = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return sum(p.stat().st_size for p in sides if p.exists())

    @contextmanager
    def batch(self) -> Iterator[_Batch]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield _Batch(self, self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            self.codec.forget()
            raise
        else:
            self.db.execute("COMMIT")

    def positions(self) -> Mapping[TopicPartition, int]:
        rows = self.db.execute("SELECT topic, partition, next_offset FROM tracking").fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    # reads, shared by the batch and the queries ----------------------------------------------------------------
    def _file(self, db: sqlite3.Connection, holder_id: str) -> HolderFile:
        row = db.execute("SELECT * FROM holders WHERE holder_id = ?", (holder_id,)).fetchone()
        emps = db.execute("SELECT * FROM employments WHERE holder_id = ? ORDER BY jurisdiction, started", (holder_id,))
        certs = db.execute(
            "SELECT * FROM certificates WHERE holder_id = ? ORDER BY certificate_key", (holder_id,)
        ).fetchall()
        erasure = db.execute("SELECT * FROM erasures WHERE holder_id = ?", (holder_id,)).fetchone()
        entries = sorted({c["entry_id"] for c in certs})
        withdrawn: dict[str, WithdrawnEntry] = {}
        if entries:
            marks = ",".join("?" * len(entries))
            for w in db.execute(f"SELECT * FROM withdrawn_entries WHERE entry_id IN ({marks})", entries):
                withdrawn[w["entry_id"]] = _withdrawn(w)
        return HolderFile(
            holder_id=holder_id,
            holder=_holder(row) if row is not None else None,
            employments=tuple(_employment(e) for e in emps),
            certificates=tuple(_certificate(c) for c in certs),
            erasure=None
            if erasure is None
            else ErasureFact(
                holder_id,
                _dt(erasure["erased_at"]),
                frozenset(json.loads(erasure["decisions"])),
                json.loads(erasure["ages"]),
                erasure["event_id"],
            ),
            withdrawn=withdrawn,
        )

    @staticmethod
    def _rows(db: sqlite3.Connection, holder_id: str | None) -> list[SetRow]:
        q = "SELECT holder_id, certificate_key, body FROM decision_sets"
        rows = db.execute(q + " WHERE holder_id = ?", (holder_id,)) if holder_id is not None else db.execute(q)
        return [SetRow(r[0], r[1], r[2]) for r in rows]

    def _counted(self, row: SetRow) -> tuple[str, str, int, int, int, str]:
        active = [i for i in row.items.values() if i[4] is None]
        eligible = sum(1 for i in active if self.codec.outcome(self.db, i[1]) is Outcome.ELIGIBLE)
        return (row.holder_id, row.certificate_key, len(active), eligible, len(row.items) - len(active), row.body())

    def _decisions(self, db: sqlite3.Connection, holder_id: str | None, active: bool | None) -> list[StoredDecision]:
        return self.codec.decode(db, self._rows(db, holder_id), active)

    # queries ---------------------------------------------------------------------------------------------------
    def holder_file(self, holder_id: str) -> HolderFile | None:
        f = self._file(self.db, holder_id)
        return None if f.holder is None and not f.certificates and not f.employments else f

    def decisions(self, holder_id: str | None = None, *, active: bool | None = True) -> list[StoredDecision]:
        return self._decisions(self.db, holder_id, active)

    def holders_by_employer(self, jurisdiction: str, text: str, limit: int) -> list[tuple[str, str]]:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.execute(
            "SELECT holder_id, employer FROM employments WHERE jurisdiction = ? AND "
            "(employer LIKE ? ESCAPE '\\' OR employer_code LIKE ? ESCAPE '\\') ORDER BY started DESC LIMIT ?",
            (jurisdiction, like, like, limit),
        )
        return [(r[0], r[1]) for r in rows]

    def withdrawn_entries(self) -> dict[str, WithdrawnEntry]:
        return {r["entry_id"]: _withdrawn(r) for r in self.db.execute("SELECT * FROM withdrawn_entries")}

    def counts(self) -> StoreCounts:
        def one(q: str) -> int:
            return int(self.db.execute(q).fetchone()[0])

        return StoreCounts(
            events_applied=one("SELECT count(*) FROM applied"),
            holders=one("SELECT count(*) FROM holders"),
            certificates=one("SELECT count(*) FROM certificates"),
            decisions_active=one("SELECT coalesce(sum(active), 0) FROM decision_sets"),
            decisions_eligible=one("SELECT coalesce(sum(eligible), 0) FROM decision_sets"),
            decisions_withdrawn=one("SELECT coalesce(sum(withdrawn), 0) FROM decision_sets"),
            outbox_unsent=one("SELECT count(*) FROM outbox WHERE sent = 0"),
            dead_letters=one("SELECT count(*) FROM dead_letters"),
        )

    def unsent(self) -> list[OutboxRow]:
        rows = self.db.execute("SELECT seq, event_id, type, body, time FROM outbox WHERE sent = 0 ORDER BY seq")
        return [OutboxRow(r[0], r[1], r[2], r[3], _dt(r[4])) for r in rows]

    def mark_sent(self, upto_seq: int, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Sent rows are deleted: readers dedupe by event id, and a bureau's outbox would otherwise keep every
        event it ever published."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,))
            self.db.executemany(
                "INSERT INTO relay_positions VALUES (?, ?, ?) ON CONFLICT (topic, partition) "
                "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)",
                [(t, p, o) for (t, p), o in (positions or {}).items()],
            )
            self.db.execute("DELETE FROM meta WHERE key = 'relay_in_flight'")

    def relay_key(self) -> str:
        if self.path is None:  # in memory: this object alone
            return f"sqlite:memory:{self._memory_key}"
        return f"sqlite:{socket.gethostname()}:{Path(self.path).resolve()}"

    def relay_state(self) -> RelayState:
        found = self.db.execute("SELECT key, value FROM meta WHERE key IN ('relay_in_flight', 'relay_owner')")
        meta = {str(r[0]): str(r[1]) for r in found}
        rows = self.db.execute("SELECT topic, partition, next_offset FROM relay_positions").fetchall()
        flight = meta.get("relay_in_flight")
        return RelayState({(r[0], r[1]): r[2] for r in rows}, int(flight) if flight else None, meta.get("relay_owner"))

    def begin_relay(self, upto_seq: int, owner: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('relay_in_flight', ?)", (str(upto_seq),))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('relay_owner', ?)", (owner,))
