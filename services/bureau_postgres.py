"""The bureau store (:mod:`mra.services.bureau_store`) in PostgreSQL: one read model shared by a group of bureau
instances, on one machine or several.

Every instance of a jurisdiction's bureau opens the same database and schema (:func:`schema_for`). One batch is
one transaction (positions, applied ids, facts, decisions and outbox), so an instance that
takes over a partition reads the positions the last owner committed and resumes there: nothing is applied twice,
and what was decided is queued once (the outbox keys rows by event id).

Two instances may decide the same holder at once: the one that owns the holder's partition, and the one that owns
the catalogue partition a withdrawal arrived on (catalogue events change the decisions of holders on every
partition). Deciding a holder takes a transaction-scoped advisory lock on the holder id first, and every batch
takes its holders in sorted order, so the two decide one after the other on committed facts, never on each
other's half, and never deadlock.

The outbox is relayed by one instance at a time (a session advisory lock held from :meth:`unsent` to
:meth:`mark_sent`; a killed instance's session ends and releases it), so no two instances publish the same rows at
once. Every instance publishes under one transactional id (:meth:`relay_key`), and the store keeps what the next
relay needs to publish nothing twice (:meth:`relay_state`): the positions on the topics up to which the committed
rows are accounted for, and a mark while a relay is in flight (see :meth:`mra.services.bureau.BureauStore.relay`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

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

__all__ = ["PostgresBureauStore", "schema_for"]

SCHEMA_VERSION = "2"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tracking (
    topic TEXT NOT NULL, "partition" INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (topic, "partition")
);
CREATE TABLE IF NOT EXISTS applied (
    publisher TEXT NOT NULL, event_id TEXT NOT NULL, hash TEXT NOT NULL, type TEXT NOT NULL,
    topic TEXT NOT NULL, "partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL, PRIMARY KEY (publisher, event_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    topic TEXT NOT NULL, "partition" INTEGER NOT NULL, "offset" BIGINT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (topic, "partition", "offset")
);
CREATE TABLE IF NOT EXISTS holders (
    holder_id TEXT PRIMARY KEY, category TEXT NOT NULL, birth_date TEXT, erased BOOLEAN NOT NULL DEFAULT FALSE,
    event_time TEXT NOT NULL, event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS employments (
    holder_id TEXT NOT NULL, jurisdiction TEXT NOT NULL, started TEXT NOT NULL, employer TEXT NOT NULL,
    region TEXT NOT NULL, ended TEXT, body TEXT NOT NULL, event_time TEXT NOT NULL, event_id TEXT NOT NULL,
    ended_time TEXT, employer_code TEXT NOT NULL, PRIMARY KEY (holder_id, jurisdiction, started)
);
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
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, holder_id TEXT NOT NULL, certificate_key TEXT NOT NULL, code TEXT NOT NULL,
    outcome TEXT NOT NULL, body TEXT NOT NULL, active BOOLEAN NOT NULL, withdrawn_reason TEXT
);
CREATE INDEX IF NOT EXISTS decisions_holder ON decisions (holder_id);
CREATE TABLE IF NOT EXISTS erasures (
    holder_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL, decisions TEXT NOT NULL, ages TEXT NOT NULL,
    event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq BIGSERIAL PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, body TEXT NOT NULL,
    time TEXT NOT NULL, sent BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (seq) WHERE NOT sent;
CREATE TABLE IF NOT EXISTS relay_positions (
    topic TEXT NOT NULL, "partition" INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (topic, "partition")
);
"""


def schema_for(jurisdiction: str, topic_prefix: str = "") -> str:
    """The schema a jurisdiction's bureau group shares: ``<topic prefix>bureau_<jurisdiction>`` (``mra_bureau_beijing``
    for the default prefix ``mra.``), so deployments that share a cluster by topic prefix share a database the same
    way."""
    name = re.sub(r"[^a-z0-9_]", "_", f"{topic_prefix}bureau_{jurisdiction}".lower())
    return ("s_" + name if name[0].isdigit() else name)[:63]


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - an optional dependency
        raise MraError("a PostgreSQL store needs the 'psycopg' package: pip install 'mra[postgres]'") from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise MraError(f"cannot open the PostgreSQL store: {str(e).strip().splitlines()[0]}") from None


_HOLDER = "holder_id, category, birth_date, erased, event_time, event_id"
_EMPLOYMENT = "body, event_time, event_id, ended_time, employer_code"
_CERT = (
    "certificate_key, holder_id, entry_id, issuer, code, verified_at, verified_by, expires, event_id, revoked_at, "
    "revoke_reason"
)
_WITHDRAWN = "entry_id, effective, reason, event_time, event_id"


def _withdrawn(r: Sequence[Any]) -> WithdrawnEntry:
    return WithdrawnEntry(r[0], date.fromisoformat(r[1]), r[2], _dt(r[3]), r[4])


def _certificate(c: Sequence[Any]) -> CertificateFact:
    return CertificateFact(
        c[0], c[1], c[2], c[3], c[4], _dt(c[5]), c[6], _day(c[7]), c[8], _dt(c[9]) if c[9] else None, c[10]
    )


def _decision(r: Sequence[Any]) -> StoredDecision:
    return StoredDecision(BenefitDecision.model_validate_json(r[0]), bool(r[1]), r[2])


class _Batch:
    """One transaction of a :class:`PostgresBureauStore` (see :class:`~mra.services.bureau_store.BureauBatch`)."""

    def __init__(self, store: PostgresBureauStore, cur: Any) -> None:
        self.store = store
        self.cur = cur
        self._locked: set[str] = set()

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
        self.cur.execute(
            "INSERT INTO applied VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (publisher, event_id) DO NOTHING",
            (identity, event_id, content_hash, ce_type, topic, partition, offset),
        )
        if self.cur.rowcount:
            return True
        self.cur.execute(
            'SELECT hash, type, topic, "partition", "offset" FROM applied WHERE publisher = %s AND event_id = %s',
            (identity, event_id),
        )
        first = self.cur.fetchone()
        if first is None or first[0] == content_hash:
            return False
        other = f"type {first[1]}" if first[1] != ce_type else "other content"
        raise EventRefused(
            f"id reused: {identity or 'an unstamped publisher'} published event {event_id} ({ce_type}) before "
            f"with {other} (content hash {first[0][:16]}…, now {content_hash[:16]}…, first at "
            f"{first[2]}[{first[3]}]@{first[4]}): not a redelivery; not applied"
        )

    def track(self, topic: str, partition: int, offset: int) -> None:
        self.cur.execute(
            'INSERT INTO tracking VALUES (%s, %s, %s) ON CONFLICT (topic, "partition") '
            "DO UPDATE SET next_offset = GREATEST(tracking.next_offset, excluded.next_offset)",
            (topic, partition, offset + 1),
        )

    def dead_letter(self, topic: str, partition: int, offset: int, reason: str) -> None:
        self.cur.execute(
            "INSERT INTO dead_letters VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (topic, partition, offset, reason),
        )

    def put_holder(self, holder: HolderFact) -> None:
        self.cur.execute(
            "INSERT INTO holders VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (holder_id) DO UPDATE SET "
            "category = excluded.category, birth_date = excluded.birth_date",
            (holder.holder_id, holder.category, holder.birth_date, holder.erased, _ts(holder.event_time),
             holder.event_id),
        )  # fmt: skip

    def erase_holder(self, erasure: ErasureFact) -> None:
        self.cur.execute(
            "INSERT INTO erasures VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (erasure.holder_id, _ts(erasure.erased_at), json.dumps(sorted(erasure.decisions)),
             json.dumps(dict(erasure.ages)), erasure.event_id),
        )  # fmt: skip
        self.cur.execute(
            "UPDATE holders SET erased = TRUE, birth_date = NULL WHERE holder_id = %s", (erasure.holder_id,)
        )

    def start_employment(self, employment: EmploymentFact) -> None:
        e = employment.employment
        self.cur.execute(
            "INSERT INTO employments VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (holder_id, jurisdiction, started) DO UPDATE SET employer = excluded.employer, "
            "region = excluded.region, ended = excluded.ended, body = excluded.body, "
            "event_time = excluded.event_time, event_id = excluded.event_id, ended_time = excluded.ended_time, "
            "employer_code = excluded.employer_code",
            (e.holder_id, e.jurisdiction, e.started.isoformat(), e.employer, e.employer_region,
             e.ended and e.ended.isoformat(), e.model_dump_json(), _ts(employment.event_time), employment.event_id,
             employment.ended_time and _ts(employment.ended_time), employment.employer_code),
        )  # fmt: skip

    def end_employment(self, holder_id: str, jurisdiction: str, ended: date, event_time: datetime) -> None:
        day = ended.isoformat()
        self.cur.execute(
            "SELECT started, body FROM employments WHERE holder_id = %s AND jurisdiction = %s AND started <= %s "
            "AND ended IS NULL",
            (holder_id, jurisdiction, day),
        )
        for started, body in self.cur.fetchall():
            closed = Employment.model_validate_json(body).model_copy(update={"ended": ended})
            self.cur.execute(
                "UPDATE employments SET ended = %s, ended_time = %s, body = %s WHERE holder_id = %s "
                "AND jurisdiction = %s AND started = %s",
                (day, _ts(event_time), closed.model_dump_json(), holder_id, jurisdiction, started),
            )

    def put_certificate(self, certificate: CertificateFact) -> None:
        c = certificate
        # a certificate and a change of its catalogue entry never pass each other (see holders_with_entries)
        self.cur.execute(
            "SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))", ("entry:" + c.entry_id,)
        )
        self.cur.execute(
            f"INSERT INTO certificates ({_CERT}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (c.certificate_key, c.holder_id, c.entry_id, c.issuer, c.verification_code, _ts(c.verified_at),
             c.verified_by, c.expires and c.expires.isoformat(), c.event_id, c.revoked_at and _ts(c.revoked_at),
             c.revoke_reason),
        )  # fmt: skip

    def revoke_certificate(self, certificate_key: str, revoked_at: datetime, reason: str) -> None:
        self.cur.execute(
            "UPDATE certificates SET revoked_at = %s, revoke_reason = %s "
            "WHERE certificate_key = %s AND revoked_at IS NULL",  # the first revocation read stands
            (_ts(revoked_at), reason, certificate_key),
        )

    def put_edition(self, catalogue: str, edition: str, effective: date, event_id: str) -> None:
        self.cur.execute(
            "INSERT INTO editions VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (catalogue, edition, effective.isoformat(), event_id),
        )

    def withdraw_entry(self, withdrawn: WithdrawnEntry) -> None:
        w = withdrawn
        self.cur.execute(
            "INSERT INTO withdrawn_entries VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (w.entry_id, w.effective.isoformat(), w.reason, _ts(w.event_time), w.event_id),
        )

    def holders_with_entries(self, entry_ids: Iterable[str]) -> set[str]:
        """The holders with a certificate on the entries, once no other instance is still writing one.

        The entries' locks are taken exclusively here, and shared by :meth:`put_certificate`: an instance adding a
        certificate on an entry while another withdraws the entry either commits first (and its holder is found
        here) or waits until the withdrawal is committed (and decides its holder with the withdrawal in view).
        """
        ids = sorted(set(entry_ids))
        if not ids:
            return set()
        for entry in ids:
            self.cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("entry:" + entry,))
        self.cur.execute("SELECT DISTINCT holder_id FROM certificates WHERE entry_id = ANY(%s)", (ids,))
        return {r[0] for r in self.cur.fetchall()}

    def _lock(self, holder_id: str) -> None:
        """Decide one holder at a time across the group (see the module's docstring)."""
        if holder_id not in self._locked:
            self.cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("holder:" + holder_id,))
            self._locked.add(holder_id)

    def holder_file(self, holder_id: str) -> HolderFile:
        self._lock(holder_id)
        return self.store._file(self.cur, holder_id)

    def active_decisions(self, holder_id: str) -> dict[str, BenefitDecision]:
        self._lock(holder_id)
        return {d.decision_id: d.decision for d in self.store._decisions(self.cur, holder_id, True)}

    def save_decisions(self, holder_id: str, decided: Sequence[BenefitDecision], withdrawn: Mapping[str, str]) -> None:
        self._lock(holder_id)
        if withdrawn:
            self.cur.executemany(
                "UPDATE decisions SET active = FALSE, withdrawn_reason = %s WHERE decision_id = %s",
                [(reason, ident) for ident, reason in withdrawn.items()],
            )
        if decided:
            self.cur.executemany(
                "INSERT INTO decisions VALUES (%s, %s, %s, %s, %s, %s, TRUE, NULL) ON CONFLICT (decision_id) "
                "DO UPDATE SET active = TRUE, withdrawn_reason = NULL",
                [
                    (d.decision_id, holder_id, d.certificate_key, d.code, d.outcome.value, d.model_dump_json())
                    for d in decided
                ],
            )

    def queue(self, event_id: str, type_name: str, body: str, time: datetime) -> bool:
        self.cur.execute(
            "INSERT INTO outbox (event_id, type, body, time) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (event_id, type_name, body, time.isoformat()),
        )
        return bool(self.cur.rowcount)


class PostgresBureauStore:
    """A bureau's read model in a PostgreSQL schema, shared by every instance of the jurisdiction's bureau."""

    def __init__(self, url: str, schema: str = "bureau") -> None:
        if not _NAME.match(schema):
            raise MraError(f"not a schema name: {schema!r} (lower-case letters, digits and _)")
        self.url = url
        self.schema = schema
        self.db = _connect(url)
        self._lock = threading.RLock()
        self._relaying = False
        with self.db.cursor() as cur:
            # one instance creates the tables at a time: CREATE ... IF NOT EXISTS is not safe against a racing twin
            cur.execute("SELECT pg_advisory_lock(hashtextextended('mra-bureau-schema', 0))")
            try:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                cur.execute(f"SET search_path TO {schema}")
                cur.execute(
                    "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = 'meta'", (schema,)
                )
                if cur.fetchone() is not None:
                    cur.execute("SELECT value FROM meta WHERE key = 'bureau_schema'")
                    row = cur.fetchone()
                    if row is not None and row[0] != SCHEMA_VERSION:
                        raise MraError(
                            f"schema {schema} holds a bureau read model of another layout (version {row[0]}, this is "
                            f"{SCHEMA_VERSION}): it is a cache of the topics; drop it and rebuild it with `mra replay`"
                        )
                cur.execute(_TABLES)
                cur.execute(
                    "INSERT INTO meta VALUES ('bureau_schema', %s) ON CONFLICT DO NOTHING", (SCHEMA_VERSION,)
                )
            finally:
                cur.execute("SELECT pg_advisory_unlock(hashtextextended('mra-bureau-schema', 0))")

    @property
    def path(self) -> None:
        return None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def batch(self) -> Iterator[_Batch]:
        with self._lock, self.db.transaction(), self.db.cursor() as cur:
            yield _Batch(self, cur)

    def positions(self) -> Mapping[TopicPartition, int]:
        with self._lock, self.db.cursor() as cur:
            cur.execute('SELECT topic, "partition", next_offset FROM tracking')
            return {(r[0], int(r[1])): int(r[2]) for r in cur.fetchall()}

    # reads, shared by the batch and the queries ----------------------------------------------------------------
    def _file(self, cur: Any, holder_id: str) -> HolderFile:
        cur.execute(f"SELECT {_HOLDER} FROM holders WHERE holder_id = %s", (holder_id,))
        row = cur.fetchone()
        cur.execute(
            f"SELECT {_EMPLOYMENT} FROM employments WHERE holder_id = %s ORDER BY jurisdiction, started", (holder_id,)
        )
        emps = cur.fetchall()
        cur.execute(f"SELECT {_CERT} FROM certificates WHERE holder_id = %s ORDER BY certificate_key", (holder_id,))
        certs = cur.fetchall()
        cur.execute("SELECT erased_at, decisions, ages, event_id FROM erasures WHERE holder_id = %s", (holder_id,))
        erasure = cur.fetchone()
        entries = sorted({c[2] for c in certs})
        withdrawn: dict[str, WithdrawnEntry] = {}
        if entries:
            cur.execute(f"SELECT {_WITHDRAWN} FROM withdrawn_entries WHERE entry_id = ANY(%s)", (entries,))
            for w in cur.fetchall():
                withdrawn[w[0]] = _withdrawn(w)
        return HolderFile(
            holder_id=holder_id,
            holder=None if row is None else HolderFact(row[0], row[1], row[2], bool(row[3]), _dt(row[4]), row[5]),
            employments=tuple(
                EmploymentFact(Employment.model_validate_json(e[0]), _dt(e[1]), e[2], _dt(e[3]) if e[3] else None, e[4])
                for e in emps
            ),
            certificates=tuple(_certificate(c) for c in certs),
            erasure=None
            if erasure is None
            else ErasureFact(
                holder_id, _dt(erasure[0]), frozenset(json.loads(erasure[1])), json.loads(erasure[2]), erasure[3]
            ),
            withdrawn=withdrawn,
        )

    def _decisions(self, cur: Any, holder_id: str | None, active: bool | None) -> list[StoredDecision]:
        q = "SELECT body, active, withdrawn_reason FROM decisions"
        where: list[str] = []
        args: list[object] = []
        if holder_id is not None:
            where.append("holder_id = %s")
            args.append(holder_id)
        if active is not None:
            where.append("active = %s")
            args.append(active)
        if where:
            q += " WHERE " + " AND ".join(where)
        cur.execute(q + " ORDER BY decision_id", args)
        return [_decision(r) for r in cur.fetchall()]

    # queries ---------------------------------------------------------------------------------------------------
    def holder_file(self, holder_id: str) -> HolderFile | None:
        with self._lock, self.db.cursor() as cur:
            f = self._file(cur, holder_id)
        return None if f.holder is None and not f.certificates and not f.employments else f

    def decisions(self, holder_id: str | None = None, *, active: bool | None = True) -> list[StoredDecision]:
        with self._lock, self.db.cursor() as cur:
            return self._decisions(cur, holder_id, active)

    def holders_by_employer(self, jurisdiction: str, text: str, limit: int) -> list[tuple[str, str]]:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self._lock, self.db.cursor() as cur:
            cur.execute(
                "SELECT holder_id, employer FROM employments WHERE jurisdiction = %s AND "
                "(employer LIKE %s OR employer_code LIKE %s) ORDER BY started DESC LIMIT %s",
                (jurisdiction, like, like, limit),
            )
            return [(r[0], r[1]) for r in cur.fetchall()]

    def withdrawn_entries(self) -> dict[str, WithdrawnEntry]:
        with self._lock, self.db.cursor() as cur:
            cur.execute(f"SELECT {_WITHDRAWN} FROM withdrawn_entries")
            return {r[0]: _withdrawn(r) for r in cur.fetchall()}

    def counts(self) -> StoreCounts:
        with self._lock, self.db.cursor() as cur:

            def one(q: str) -> int:
                cur.execute(q)
                return int(cur.fetchone()[0])

            return StoreCounts(
                events_applied=one("SELECT count(*) FROM applied"),
                holders=one("SELECT count(*) FROM holders"),
                certificates=one("SELECT count(*) FROM certificates"),
                decisions_active=one("SELECT count(*) FROM decisions WHERE active"),
                decisions_eligible=one(
                    f"SELECT count(*) FROM decisions WHERE active AND outcome = '{Outcome.ELIGIBLE.value}'"
                ),
                decisions_withdrawn=one("SELECT count(*) FROM decisions WHERE NOT active"),
                outbox_unsent=one("SELECT count(*) FROM outbox WHERE NOT sent"),
                dead_letters=one("SELECT count(*) FROM dead_letters"),
            )

    # the relay: one instance of the group at a time ------------------------------------------------------------
    def _release(self, cur: Any) -> None:
        if self._relaying:
            cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", ("relay:" + self.schema,))
            self._relaying = False

    def unsent(self) -> list[OutboxRow]:
        """Unsent rows, for this instance to relay; none while another instance of the group relays."""
        with self._lock, self.db.cursor() as cur:
            if not self._relaying:
                cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", ("relay:" + self.schema,))
                if not cur.fetchone()[0]:
                    return []
                self._relaying = True
            cur.execute("SELECT seq, event_id, type, body, time FROM outbox WHERE NOT sent ORDER BY seq")
            rows = [OutboxRow(int(r[0]), r[1], r[2], r[3], _dt(r[4])) for r in cur.fetchall()]
            if not rows:
                self._release(cur)
            return rows

    def mark_sent(self, upto_seq: int, positions: Mapping[TopicPartition, int] | None = None) -> None:
        with self._lock:
            with self.db.transaction(), self.db.cursor() as cur:
                cur.execute("UPDATE outbox SET sent = TRUE WHERE seq <= %s AND NOT sent", (upto_seq,))
                if positions:
                    cur.executemany(
                        'INSERT INTO relay_positions VALUES (%s, %s, %s) ON CONFLICT (topic, "partition") '
                        "DO UPDATE SET next_offset = GREATEST(relay_positions.next_offset, excluded.next_offset)",
                        [(t, p, o) for (t, p), o in positions.items()],
                    )
                cur.execute("DELETE FROM meta WHERE key = 'relay_in_flight'")
            with self.db.cursor() as cur:
                self._release(cur)

    def relay_key(self) -> str:
        info = self.db.info
        return f"postgresql:{info.host}:{info.port}/{info.dbname}/{self.schema}"

    def relay_state(self) -> RelayState:
        with self._lock, self.db.cursor() as cur:
            cur.execute("SELECT key, value FROM meta WHERE key IN ('relay_in_flight', 'relay_owner')")
            meta = {str(r[0]): str(r[1]) for r in cur.fetchall()}
            cur.execute('SELECT topic, "partition", next_offset FROM relay_positions')
            positions = {(r[0], int(r[1])): int(r[2]) for r in cur.fetchall()}
        flight = meta.get("relay_in_flight")
        return RelayState(positions, int(flight) if flight else None, meta.get("relay_owner"))

    def begin_relay(self, upto_seq: int, owner: str) -> None:
        with self._lock, self.db.transaction(), self.db.cursor() as cur:
            for key, value in (("relay_in_flight", str(upto_seq)), ("relay_owner", owner)):
                cur.execute(
                    "INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
