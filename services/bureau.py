"""A jurisdiction's bureau: reads verification, holder and catalogue events, decides benefits, publishes them.

The read model is a pure fold of the facts read. After every change to a holder's facts the holder's
whole decision set is recomputed from those facts, with the decision time taken from the facts' own
event times, so the result does not depend on how the three topics interleaved: a live bureau and a
replay converge. Decisions go to an outbox in the same transaction as the facts and their tracking
positions; the outbox is relayed after commit, with deterministic event ids, so a crash between the two
re-publishes the same events rather than new ones.

A holder's birth date arrives sealed under their data key and is kept sealed; it is opened through the key store
each time an age is needed. Once a holder is erased (``HolderErased``), no new decision is made for them: the
decisions recorded before stand, recomputed from the ages on their decision dates that the erasure event keeps, so
that a replay after the erasure reproduces them.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from mra.core.errors import MraError
from mra.core.ids import stable_id
from mra.core.models import (
    BenefitDecision,
    DecisionContext,
    Employment,
    HolderCategory,
    HolderFacts,
    Outcome,
    VerifiedCertificate,
    full_years,
)
from mra.core.plugins import Registry
from mra.events.consumer import Delivery
from mra.events.publisher import Publisher
from mra.events.schemas import (
    BenefitDecided,
    BenefitWithdrawn,
    CatalogueEditionPublished,
    CatalogueEntryWithdrawn,
    CertificateRevoked,
    CertificateVerified,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderErased,
    HolderRegistered,
)
from mra.services.privacy import ErasedHolder, PersonalData, is_sealed
from mra.services.store import Outbox, SqliteStore

__all__ = ["BUREAU_TOPICS", "ActiveDecision", "BureauStore"]

BUREAU_TOPICS = ("catalogue", "verification", "holders")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveDecision:
    decision_id: str
    holder_id: str
    code: str
    outcome: str
    decision: BenefitDecision


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _with_decision_id(ident: str, content: str) -> str:
    """A decision's JSON with its id, from the JSON serialised without it (``decision_id`` is the model's first
    field): the id is a hash of that JSON, so the decision is serialised once, not again to carry the id."""
    return f'{{"decision_id":{json.dumps(ident)},{content[1:]}'


def _with_review(d: BenefitDecision, review: str | None) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(d.model_dump_json())
    if review:
        out["review"] = review
    return out


def _personal_state(row: sqlite3.Row | None) -> str | None:
    """How the read model holds a birth date: erased, sealed (readable through the key store), plain, or not at all."""
    if row is None:
        return None
    if row["erased"]:
        return "erased"
    if not row["birth_date"]:
        return None
    return "sealed" if is_sealed(row["birth_date"]) else "plain"


class BureauStore(SqliteStore):
    """The read model of one jurisdiction's bureau."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS holders (
        holder_id TEXT PRIMARY KEY, category TEXT NOT NULL, birth_date TEXT, erased INTEGER NOT NULL DEFAULT 0,
        event_time TEXT NOT NULL, event_id TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS employments (
        holder_id TEXT NOT NULL, jurisdiction TEXT NOT NULL, started TEXT NOT NULL, employer TEXT NOT NULL,
        region TEXT NOT NULL, ended TEXT, body TEXT NOT NULL, event_time TEXT NOT NULL, event_id TEXT NOT NULL,
        ended_time TEXT, PRIMARY KEY (holder_id, jurisdiction, started)
    );
    CREATE TABLE IF NOT EXISTS certificates (
        certificate_key TEXT PRIMARY KEY, holder_id TEXT NOT NULL, entry_id TEXT NOT NULL, issuer TEXT NOT NULL,
        code TEXT NOT NULL, verified_at TEXT NOT NULL, verified_by TEXT NOT NULL, expires TEXT,
        revoked_at TEXT, revoke_reason TEXT, event_id TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS certificates_holder ON certificates (holder_id);
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
        outcome TEXT NOT NULL, body TEXT NOT NULL, active INTEGER NOT NULL, withdrawn_reason TEXT
    );
    CREATE INDEX IF NOT EXISTS decisions_holder ON decisions (holder_id, active);
    CREATE TABLE IF NOT EXISTS erasures (
        holder_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL, decisions TEXT NOT NULL, ages TEXT NOT NULL,
        event_id TEXT NOT NULL
    );
    """

    def __init__(
        self,
        path: str | Any,
        jurisdiction: str,
        registry: Registry,
        publisher: Publisher | None = None,
        settings: Mapping[str, object] | None = None,
        personal: PersonalData | None = None,
    ) -> None:
        super().__init__(path)
        self.personal = personal
        self.jurisdiction = jurisdiction
        self.registry = registry
        self.info = registry.jurisdiction(jurisdiction)
        self.publisher = publisher
        self.settings = registry.settings(jurisdiction, settings)
        self.outbox = Outbox(self)  # columns type, body, time: ``type`` is the event class's name
        self.published = 0
        self._dirty: set[str] = set()

    def close(self) -> None:
        super().close()
        if self.personal is not None:
            self.personal.close()

    # applying events ---------------------------------------------------------------------------------------------
    def apply_event(self, db: sqlite3.Connection, delivery: Delivery) -> None:
        env = delivery.envelope
        data = env.data
        when = _ts(env.time)
        affected: set[str] = set()
        if isinstance(data, HolderRegistered):
            born = data.birth_date.isoformat() if data.birth_date else data.personal.get("birth_date")  # sealed
            db.execute(
                "INSERT INTO holders VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT(holder_id) DO UPDATE SET "
                "category = excluded.category, birth_date = excluded.birth_date",
                (data.holder_id, data.category.value, born, when, env.id),
            )
            affected.add(data.holder_id)
        elif isinstance(data, HolderErased):
            db.execute(
                "INSERT OR IGNORE INTO erasures VALUES (?, ?, ?, ?, ?)",
                (data.holder_id, _ts(data.erased_at), json.dumps(list(data.decisions)), json.dumps(data.ages), env.id),
            )
            db.execute("UPDATE holders SET erased = 1, birth_date = NULL WHERE holder_id = ?", (data.holder_id,))
            affected.add(data.holder_id)
        elif isinstance(data, EmploymentStarted):
            db.execute(
                "INSERT OR REPLACE INTO employments VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, NULL)",
                (
                    data.holder_id,
                    data.jurisdiction,
                    data.started.isoformat(),
                    data.employer.name,
                    data.employer.region,
                    data.model_dump_json(),
                    when,
                    env.id,
                ),
            )
            affected.add(data.holder_id)
        elif isinstance(data, EmploymentEnded):
            db.execute(
                "UPDATE employments SET ended = ?, ended_time = ? WHERE holder_id = ? AND jurisdiction = ? "
                "AND started <= ? AND ended IS NULL",
                (data.ended.isoformat(), when, data.holder_id, data.jurisdiction, data.ended.isoformat()),
            )
            affected.add(data.holder_id)
        elif isinstance(data, CertificateVerified):
            db.execute(
                "INSERT OR IGNORE INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
                (
                    data.certificate_key,
                    data.holder_id,
                    data.entry_id,
                    data.issuer,
                    data.verification_code,
                    _ts(data.verified_at),
                    data.verified_by,
                    data.expires and data.expires.isoformat(),
                    env.id,
                ),
            )
            affected.add(data.holder_id)
        elif isinstance(data, CertificateRevoked):
            db.execute(
                "UPDATE certificates SET revoked_at = ?, revoke_reason = ? WHERE certificate_key = ?",
                (_ts(data.revoked_at), data.reason, data.certificate_key),
            )
            affected.add(data.holder_id)
        elif isinstance(data, CatalogueEditionPublished):
            e = data.edition
            db.execute(
                "INSERT OR IGNORE INTO editions VALUES (?, ?, ?, ?)",
                (e.catalogue, e.edition, e.effective.isoformat(), env.id),
            )
            affected |= self._holders_with_entries(db, [x.id for x in e.entries])
        elif isinstance(data, CatalogueEntryWithdrawn):
            db.execute(
                "INSERT OR IGNORE INTO withdrawn_entries VALUES (?, ?, ?, ?, ?)",
                (data.entry_id, data.effective.isoformat(), data.reason, when, env.id),
            )
            affected |= self._holders_with_entries(db, [data.entry_id])
        self._dirty |= affected

    def end_batch(self, db: sqlite3.Connection) -> None:
        """Recompute each holder the batch touched, once: the result depends only on the facts, not on how many
        of them arrived in the batch. (A batch rolled back leaves its holders here; recomputing them again with
        the next batch changes nothing.)"""
        dirty, self._dirty = self._dirty, set()
        if not dirty:
            return
        withdrawn = {r["entry_id"]: r for r in db.execute("SELECT * FROM withdrawn_entries")}
        for holder_id in sorted(dirty):
            self.recompute(db, holder_id, withdrawn)

    @staticmethod
    def _holders_with_entries(db: sqlite3.Connection, entry_ids: Iterable[str]) -> set[str]:
        ids = list(entry_ids)
        out: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            out |= {r[0] for r in db.execute(f"SELECT holder_id FROM certificates WHERE entry_id IN ({marks})", chunk)}
        return out

    # deciding ----------------------------------------------------------------------------------------------------
    def _employment(self, db: sqlite3.Connection, holder_id: str) -> tuple[Employment, str, str] | None:
        """The holder's current employment in this jurisdiction, with its event time and id."""
        row = db.execute(
            "SELECT * FROM employments WHERE holder_id = ? AND jurisdiction = ? AND ended IS NULL "
            "ORDER BY started DESC LIMIT 1",
            (holder_id, self.jurisdiction),
        ).fetchone()
        if row is None or row["region"] not in self.info.regions:
            return None
        body = EmploymentStarted.model_validate_json(row["body"])
        employment = body.employment()
        return employment, row["event_time"], row["event_id"]

    def _born(self, holder_id: str, text: str | None) -> date | None:
        """The holder's birth date, opened through the key store; None where unknown or unreadable here."""
        if not text:
            return None
        if not is_sealed(text):
            return date.fromisoformat(text)
        if self.personal is None:
            return None
        try:
            return date.fromisoformat(self.personal.open(holder_id, "birth_date", text))
        except ErasedHolder:
            raise
        except MraError as e:
            log.warning("the birth date of %s cannot be read here (%s): its age counts as unknown", holder_id, e)
            return None

    @staticmethod
    def _age(day: date, born: date | None, recorded_ages: Mapping[str, int] | None) -> int | None:
        if recorded_ages is not None:
            return recorded_ages.get(day.isoformat())
        return full_years(born, day) if born else None

    def _wanted(
        self, db: sqlite3.Connection, holder_id: str, withdrawn: Mapping[str, sqlite3.Row]
    ) -> dict[str, tuple[BenefitDecision, str]] | None:
        """The decisions the holder's facts call for now, by deterministic id, each with its JSON body; None to leave
        them as they are.

        For an erased holder only decisions recorded before the erasure can stand, each with the age its erasure
        event keeps for its date. A holder erased in the key store whose erasure event is not yet read keeps its
        decisions until the event comes.
        """
        holder = db.execute("SELECT * FROM holders WHERE holder_id = ?", (holder_id,)).fetchone()
        if holder is None:
            return {}
        erasure = db.execute("SELECT * FROM erasures WHERE holder_id = ?", (holder_id,)).fetchone()
        recorded: set[str] | None = None
        ages: dict[str, int] = {}
        born: date | None = None
        if erasure is not None:
            recorded, ages = set(json.loads(erasure["decisions"])), json.loads(erasure["ages"])
        else:
            try:
                born = self._born(holder_id, holder["birth_date"])
            except ErasedHolder:
                return None
        found = self._employment(db, holder_id)
        if found is None:
            return {}
        employment, emp_time, emp_event = found
        out: dict[str, tuple[BenefitDecision, str]] = {}
        revokes = self._withdrawal_policy() == "revoke"
        for cert in db.execute(
            "SELECT * FROM certificates WHERE holder_id = ? AND revoked_at IS NULL ORDER BY certificate_key",
            (holder_id,),
        ).fetchall():
            try:
                edition, entry = self.registry.find_entry(cert["entry_id"])
            except MraError:
                continue  # an entry no loaded catalogue knows: nothing to decide on
            at, caused_by = max((_dt(cert["verified_at"]), cert["event_id"]), (_dt(emp_time), emp_event))
            if cert["expires"] and date.fromisoformat(cert["expires"]) < at.date():
                continue
            gone = withdrawn.get(cert["entry_id"])
            if gone is not None and (revokes or at.date() >= date.fromisoformat(gone["effective"])):
                continue
            facts = HolderFacts(
                holder_id=holder_id,
                category=HolderCategory(holder["category"]),
                age=self._age(at.date(), born, ages if recorded is not None else None),
            )
            certificate = VerifiedCertificate(
                certificate_key=cert["certificate_key"],
                holder_id=holder_id,
                entry_id=cert["entry_id"],
                issuer=cert["issuer"],
                verification_code=cert["code"],
                verified_at=_dt(cert["verified_at"]),
                verified_by=cert["verified_by"],
                expires=date.fromisoformat(cert["expires"]) if cert["expires"] else None,
            )
            context = DecisionContext(
                holder=facts,
                employment=employment,
                certificate=certificate,
                entry=entry,
                edition=edition.edition,
                at=at,
                platform_verified=True,
                caused_by=caused_by,
            )
            for d in self.registry.decide(self.jurisdiction, context, self.settings):
                content = d.model_dump_json(exclude={"decision_id"})
                ident = stable_id(
                    "decision",
                    self.jurisdiction,
                    holder_id,
                    d.certificate_key or cert["certificate_key"],
                    employment.started,
                    d.code,
                    d.outcome.value,
                    content,
                )
                if recorded is not None and ident not in recorded:
                    continue  # no new decision for an erased holder
                out[ident] = (d, _with_decision_id(ident, content))
        return out

    def recompute(self, db: sqlite3.Connection, holder_id: str, withdrawn: Mapping[str, sqlite3.Row]) -> None:
        """Bring the holder's active decisions in line with their facts (``withdrawn``: the withdrawn catalogue
        entries by id); queue what changed."""
        wanted = self._wanted(db, holder_id, withdrawn)
        if wanted is None:
            return
        active = {
            r["decision_id"]: r
            for r in db.execute(
                "SELECT decision_id, certificate_key, code FROM decisions WHERE holder_id = ? AND active = 1",
                (holder_id,),
            )
        }
        gone = sorted(active.keys() - wanted.keys())
        if gone:
            latest = self._latest_fact_time(db, holder_id)
            for ident in gone:
                row = active[ident]
                reason = self._withdrawal_reason(db, holder_id, row["certificate_key"], latest)
                db.execute(
                    "UPDATE decisions SET active = 0, withdrawn_reason = ? WHERE decision_id = ?", (reason, ident)
                )
                withdrawal = BenefitWithdrawn(
                    decision_id=ident,
                    holder_id=holder_id,
                    jurisdiction=self.jurisdiction,
                    code=row["code"],
                    reason=reason,
                    withdrawn_at=latest,
                )
                self._queue(db, ("withdrawn", ident), BenefitWithdrawn, withdrawal.model_dump_json(), latest)
        new = [(ident, *wanted[ident]) for ident in sorted(wanted.keys() - active.keys())]
        db.executemany(
            "INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, 1, NULL) ON CONFLICT(decision_id) DO UPDATE SET "
            "active = 1, withdrawn_reason = NULL",
            [(ident, holder_id, d.certificate_key, d.code, d.outcome.value, body) for ident, d, body in new],
        )
        for ident, d, body in new:
            self._queue(db, ("decided", ident), BenefitDecided, f'{{"decision":{body}}}', d.decided_at)

    def _latest_fact_time(self, db: sqlite3.Connection, holder_id: str) -> datetime:
        times = [
            r[0]
            for q in (
                "SELECT max(event_time) FROM employments WHERE holder_id = ?",
                "SELECT max(ended_time) FROM employments WHERE holder_id = ?",
                "SELECT max(coalesce(revoked_at, verified_at)) FROM certificates WHERE holder_id = ?",
                "SELECT event_time FROM holders WHERE holder_id = ?",
            )
            for r in db.execute(q, (holder_id,))
            if r[0]
        ]
        return max((_dt(t) for t in times), default=datetime(1970, 1, 1, tzinfo=UTC))

    def _withdrawal_policy(self) -> str:
        """What an entry's withdrawal does to benefits decided before it: the jurisdiction's policy setting
        ``<prefix>.withdrawal.decided_benefits``. "revoke" withdraws them; "keep" lets them stand; "review" lets
        them stand and lists them for review (:meth:`under_review`, ``holder show``, ``bureau status``). Whatever
        it says, nothing new is decided on a withdrawn entry from its effective date."""
        return str(self.settings.get(f"{self.info.prefix}.withdrawal.decided_benefits", "revoke"))

    def under_review(self, holder_id: str | None = None) -> dict[str, str]:
        """Active decisions on withdrawn catalogue entries, by id, with why they are to be reviewed: empty unless
        the withdrawal policy is "review"."""
        if self._withdrawal_policy() != "review":
            return {}
        q = (
            "SELECT d.decision_id, w.entry_id, w.effective, w.reason FROM decisions d "
            "JOIN certificates c ON c.certificate_key = d.certificate_key "
            "JOIN withdrawn_entries w ON w.entry_id = c.entry_id WHERE d.active = 1"
        )
        rows = self.db.execute(q + " AND d.holder_id = ?", (holder_id,)) if holder_id else self.db.execute(q)
        key = f"{self.info.prefix}.withdrawal.decided_benefits"
        return {r[0]: f"catalogue entry {r[1]} withdrawn from {r[2]} ({r[3]}): review ({key} = review)" for r in rows}

    def _withdrawal_reason(
        self, db: sqlite3.Connection, holder_id: str, certificate_key: str, latest: datetime
    ) -> str:
        cert = db.execute("SELECT * FROM certificates WHERE certificate_key = ?", (certificate_key,)).fetchone()
        if cert is not None and cert["revoked_at"]:
            return f"certificate revoked: {cert['revoke_reason']}"
        if (
            cert is not None
            and cert["expires"]
            and cert["expires"] < latest.date().isoformat()
        ):
            return f"certificate expired on {cert['expires']}"
        if cert is not None:
            w = db.execute("SELECT * FROM withdrawn_entries WHERE entry_id = ?", (cert["entry_id"],)).fetchone()
            if w is not None:
                return f"catalogue entry {cert['entry_id']} withdrawn from {w['effective']}: {w['reason']}"
        if self._employment(db, holder_id) is None:
            return f"no current employment in {self.jurisdiction}"
        if db.execute("SELECT 1 FROM erasures WHERE holder_id = ?", (holder_id,)).fetchone():
            return "the holder's personal data was erased before this decision was recorded"
        return "superseded: the holder's facts changed"

    # outbox ------------------------------------------------------------------------------------------------------
    def _queue(
        self, db: sqlite3.Connection, id_parts: tuple[str, str], kind: type[Event], body: str, time: datetime
    ) -> None:
        """Queue an event, already serialised, for the relay under the deterministic id of ``id_parts``; a replay
        decides but never publishes."""
        if self.publisher is None:
            return
        self.outbox.queue(db, stable_id(*id_parts), kind.__name__, body, time.astimezone(UTC))

    def after_commit(self) -> None:
        self.relay()

    def relay(self) -> int:
        """Publish unsent outbox rows, flush, then mark them sent. A crash in between re-sends the same ids."""
        if self.publisher is None:
            return 0
        kinds: dict[str, type[Event]] = {"BenefitDecided": BenefitDecided, "BenefitWithdrawn": BenefitWithdrawn}
        sent = self.outbox.relay(self.publisher, kinds)
        self.published += sent
        return sent

    # queries -----------------------------------------------------------------------------------------------------
    def active_decisions(self, holder_id: str | None = None) -> list[BenefitDecision]:
        q = "SELECT body FROM decisions WHERE active = 1"
        args: tuple[str, ...] = ()
        if holder_id is not None:
            q += " AND holder_id = ?"
            args = (holder_id,)
        return [BenefitDecision.model_validate_json(r[0]) for r in self.db.execute(q + " ORDER BY decision_id", args)]

    def holder(self, holder_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM holders WHERE holder_id = ?", (holder_id,)).fetchone()
        reviews = self.under_review(holder_id)
        certs = self.db.execute("SELECT * FROM certificates WHERE holder_id = ?", (holder_id,)).fetchall()
        emps = self.db.execute(
            "SELECT * FROM employments WHERE holder_id = ? ORDER BY started", (holder_id,)
        ).fetchall()
        if row is None and not certs and not emps:
            return None
        return {
            "holder_id": holder_id,
            "category": row["category"] if row else None,
            "erased": bool(row["erased"]) if row else False,
            "birth_date": _personal_state(row),
            "certificates": [
                {
                    "certificate_key": c["certificate_key"],
                    "entry_id": c["entry_id"],
                    "issuer": c["issuer"],
                    "verification_code": c["code"],
                    "verified_at": c["verified_at"],
                    "verified_by": c["verified_by"],
                    "revoked": c["revoked_at"] is not None,
                    "revoke_reason": c["revoke_reason"],
                }
                for c in certs
            ],
            "employments": [
                {
                    "jurisdiction": e["jurisdiction"],
                    "employer": e["employer"],
                    "region": e["region"],
                    "started": e["started"],
                    "ended": e["ended"],
                }
                for e in emps
            ],
            "decisions": [_with_review(d, reviews.get(d.decision_id)) for d in self.active_decisions(holder_id)],
        }

    def counts(self) -> dict[str, int]:
        def one(q: str) -> int:
            return int(self.db.execute(q).fetchone()[0])

        return {
            "events_applied": self.applied_count(),
            "holders": one("SELECT count(*) FROM holders"),
            "certificates": one("SELECT count(*) FROM certificates"),
            "decisions_active": one("SELECT count(*) FROM decisions WHERE active = 1"),
            "decisions_eligible": one(
                f"SELECT count(*) FROM decisions WHERE active = 1 AND outcome = '{Outcome.ELIGIBLE.value}'"
            ),
            "decisions_withdrawn": one("SELECT count(*) FROM decisions WHERE active = 0"),
            "decisions_under_review": len(self.under_review()),
            "outbox_unsent": one("SELECT count(*) FROM outbox WHERE sent = 0"),
            "dead_letters": one("SELECT count(*) FROM dead_letters"),
        }
