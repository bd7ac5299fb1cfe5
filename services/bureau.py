"""A jurisdiction's bureau: reads verification, holder and catalogue events, decides benefits, publishes them.

The read model is a pure fold of the facts read. After every change to a holder's facts the holder's
whole decision set is recomputed from those facts by :func:`mra.core.decide.decide_holder`, with the decision time
taken from the facts' own event times, so the result does not depend on how the three topics interleaved: a live
bureau and a replay converge. Facts, decisions, tracking positions, applied event ids and the outbox are written
through a :class:`~mra.services.bureau_store.BureauStore` in one transaction per batch; the outbox is relayed after
commit, with deterministic event ids, in one Kafka transaction per relay, so that each event is published once
(:meth:`BureauStore.relay`).

A holder's birth date arrives sealed under their data key and is kept sealed; it is opened through the key store
each time an age is needed. Once a holder is erased (``HolderErased``), no new decision is made for them: the
decisions recorded before stand, recomputed from the ages on their decision dates that the erasure event keeps, so
that a replay after the erasure reproduces them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mra.core.decide import decide_holder, latest_fact_time, withdrawal_policy, withdrawal_reason
from mra.core.errors import MraError
from mra.core.facts import CertificateFact, EmploymentFact, ErasureFact, HolderFact, HolderFile, WithdrawnEntry
from mra.core.ids import stable_id
from mra.core.models import BenefitDecision
from mra.core.plugins import Registry
from mra.events.bus import PublishError, TopicPartition
from mra.events.consumer import DeadLetter, Delivery
from mra.events.envelope import Envelope, Record
from mra.events.publisher import Publisher
from mra.events.schemas import (
    BenefitDecided,
    BenefitWithdrawn,
    CatalogueEditionPublished,
    CatalogueEntryWithdrawn,
    CertificateRevoked,
    CertificateVerified,
    DecisionSetChanged,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderErased,
    HolderRegistered,
    OutcomeWithdrawn,
    event_class,
    upcast,
)
from mra.services.bureau_sqlite import SqliteBureauStore
from mra.services.bureau_store import BureauBatch, OutboxRow
from mra.services.bureau_store import BureauStore as Store
from mra.services.privacy import ErasedHolder, PersonalData, is_sealed
from mra.services.store import publisher_of

__all__ = ["BUREAU_TOPICS", "BureauStore", "decision_set_events"]

BUREAU_TOPICS = ("catalogue", "verification", "holders")

log = logging.getLogger(__name__)

RECOVERY_TIMEOUT_S = 120.0
"""How long a relay may read the topics for what a previous relay committed before it gives up (and tries again
on its next call)."""

_KINDS: dict[str, type[Event]] = {
    "BenefitDecided": BenefitDecided,
    "BenefitWithdrawn": BenefitWithdrawn,
    "DecisionSetChanged": DecisionSetChanged,
}


def _topic_of(type_name: str) -> str:
    """The logical topic an outbox row's event goes to."""
    return (_KINDS.get(type_name) or event_class(type_name)).TOPIC


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _with_review(d: BenefitDecision, review: str | None) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(d.model_dump_json())
    if review:
        out["review"] = review
    return out


def _personal_state(holder: HolderFact | None) -> str | None:
    """How the read model holds a birth date: erased, sealed (readable through the key store), plain, or not at all."""
    if holder is None:
        return None
    if holder.erased:
        return "erased"
    if not holder.birth_date:
        return None
    return "sealed" if is_sealed(holder.birth_date) else "plain"


def decision_set_events(
    holder_id: str,
    jurisdiction: str,
    decided: Sequence[BenefitDecision],
    before: Mapping[str, BenefitDecision],
    withdrawn: Mapping[str, str],
    withdrawn_at: datetime,
    cause: str,
) -> list[DecisionSetChanged]:
    """What a change of a holder's decisions owes the topics: one event per certificate (and decision context)
    whose outcomes changed, with the new outcomes and the withdrawals (``withdrawn``: id to reason, of decisions
    in ``before``)."""
    groups: dict[tuple[str, ...], list[BenefitDecision]] = {}
    times: dict[int, str] = {}  # decisions of one context share their time: written once (each is held by decided)
    for d in decided:
        at = times.get(id(d.decided_at))
        if at is None:
            at = times[id(d.decided_at)] = d.decided_at.isoformat()
        key = (d.certificate_key, d.entry_id, d.edition, d.verification_code, d.plugin, d.caused_by, at)
        groups.setdefault(key, []).append(d)
    gone: dict[str, list[OutcomeWithdrawn]] = {}
    for ident, reason in sorted(withdrawn.items()):
        was = before[ident]
        gone.setdefault(was.certificate_key, []).append(
            OutcomeWithdrawn(decision_id=ident, code=was.code, outcome=was.outcome, reason=reason)
        )
    out: list[DecisionSetChanged] = []
    for group, ds in sorted(groups.items()):
        out.append(
            DecisionSetChanged.of(
                ds, gone.pop(group[0], []), holder_id=holder_id, jurisdiction=jurisdiction, certificate_key=group[0],
                cause=cause, withdrawn_at=withdrawn_at,
            )
        )
    for left, ws in sorted(gone.items()):
        out.append(
            DecisionSetChanged.of(
                [], ws, holder_id=holder_id, jurisdiction=jurisdiction, certificate_key=left, cause=cause,
                withdrawn_at=withdrawn_at,
            )
        )
    return out


class BureauStore:
    """The read model of one jurisdiction's bureau: applies batches of facts and decides the holders they touch.

    ``store`` is where it keeps them: a path (or ``":memory:"``) for the SQLite store, or any
    :class:`~mra.services.bureau_store.BureauStore`.
    """

    def __init__(
        self,
        store: Path | str | Store,
        jurisdiction: str,
        registry: Registry,
        publisher: Publisher | None = None,
        settings: Mapping[str, object] | None = None,
        personal: PersonalData | None = None,
    ) -> None:
        self.store: Store = SqliteBureauStore(store) if isinstance(store, Path | str) else store
        self.personal = personal
        self.jurisdiction = jurisdiction
        self.registry = registry
        self.info = registry.jurisdiction(jurisdiction)
        self.publisher = publisher
        self.settings = registry.settings(jurisdiction, settings)
        self.published = 0
        self._relay_owner = uuid.uuid4().hex  # who relays, as the store records it

    @property
    def db(self) -> Any:
        """The SQLite connection of a SQLite-backed store (for inspection)."""
        return getattr(self.store, "db", None)

    @property
    def path(self) -> Path | None:
        found: Path | None = getattr(self.store, "path", None)
        return found

    def close(self) -> None:
        self.store.close()
        if self.personal is not None:
            self.personal.close()

    # the consumer's handler ----------------------------------------------------------------------------------
    def positions(self) -> Mapping[TopicPartition, int]:
        return self.store.positions()

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        """Apply a batch once: skip events applied before, decide each holder touched once, record every
        position, all in one transaction; then relay what was decided."""
        with self.store.batch() as b:
            dirty: dict[str, str] = {}  # holder id: the last event read about them
            for d in deliveries:
                env, r = d.envelope, d.record
                who = publisher_of(env)
                if b.claim(who, env.id, r.topic, r.partition, r.offset, content_hash=env.hash, ce_type=env.type):
                    dirty.update(dict.fromkeys(self._apply_event(b, env), env.id))
            for holder_id in sorted(dirty):
                self._recompute(b, holder_id, dirty[holder_id])
            for letter in dead:
                r = letter.record
                b.dead_letter(r.topic, r.partition, r.offset, letter.reason)
            last: dict[TopicPartition, int] = {}
            for rec in [d.record for d in deliveries] + [x.record for x in dead]:
                tp = (rec.topic, rec.partition)
                last[tp] = max(last.get(tp, -1), rec.offset)
            for (topic, partition), offset in last.items():  # one write per partition per batch
                b.track(topic, partition, offset)
        self.relay()

    def track(self, records: Sequence[Record]) -> None:
        """Record records as read without applying them (a replay's records outside its window)."""
        with self.store.batch() as b:
            for r in records:
                b.track(r.topic, r.partition, r.offset)

    def _apply_event(self, b: BureauBatch, env: Envelope) -> set[str]:
        """Write one event's facts; return the holders whose decisions it may change."""
        data = env.data
        when = _utc(env.time)
        if isinstance(data, HolderRegistered):
            born = data.birth_date.isoformat() if data.birth_date else data.personal.get("birth_date")  # sealed
            b.put_holder(HolderFact(data.holder_id, data.category.value, born, False, when, env.id))
            return {data.holder_id}
        if isinstance(data, HolderErased):
            b.erase_holder(
                ErasureFact(data.holder_id, _utc(data.erased_at), frozenset(data.decisions), dict(data.ages), env.id)
            )
            return {data.holder_id}
        if isinstance(data, EmploymentStarted):
            code = data.employer.credit_code
            b.start_employment(EmploymentFact(data.employment(), when, env.id, employer_code=code))
            return {data.holder_id}
        if isinstance(data, EmploymentEnded):
            b.end_employment(data.holder_id, data.jurisdiction, data.ended, when)
            return {data.holder_id}
        if isinstance(data, CertificateVerified):
            cert = CertificateFact(
                data.certificate_key, data.holder_id, data.entry_id, data.issuer, data.verification_code,
                _utc(data.verified_at), data.verified_by, data.expires, env.id,
            )  # fmt: skip
            b.put_certificate(cert)
            return {data.holder_id}
        if isinstance(data, CertificateRevoked):
            b.revoke_certificate(data.certificate_key, _utc(data.revoked_at), data.reason)
            return {data.holder_id}
        if isinstance(data, CatalogueEditionPublished):
            e = data.edition
            b.put_edition(e.catalogue, e.edition, e.effective, env.id)
            return b.holders_with_entries([x.id for x in e.entries])
        if isinstance(data, CatalogueEntryWithdrawn):
            b.withdraw_entry(WithdrawnEntry(data.entry_id, data.effective, data.reason, when, env.id))
            return b.holders_with_entries([data.entry_id])
        return set()

    # deciding ----------------------------------------------------------------------------------------------------
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

    def _opened(self, facts: HolderFile) -> HolderFile | None:
        """``facts`` with the birth date opened; None while the key store has erased the holder and the
        erasure event is not yet read (their decisions stand until it comes)."""
        if facts.holder is None or facts.erasure is not None:
            return facts
        try:
            born = self._born(facts.holder_id, facts.holder.birth_date)
        except ErasedHolder:
            return None
        return dataclasses.replace(facts, born=born)

    def _recompute(self, b: BureauBatch, holder_id: str, cause: str) -> None:
        """Bring the holder's active decisions in line with their facts; queue one decision-set event per
        certificate whose outcomes changed (``cause``: the last event read about the holder)."""
        facts = self._opened(b.holder_file(holder_id))
        if facts is None:
            return
        wanted = decide_holder(facts, self.registry, self.settings, jurisdiction=self.jurisdiction)
        active = b.active_decisions(holder_id)
        gone = sorted(active.keys() - wanted.keys())
        latest = latest_fact_time(facts)
        reasons = {i: withdrawal_reason(facts, active[i].certificate_key, self.info, latest) for i in gone}
        new = [wanted[ident] for ident in sorted(wanted.keys() - active.keys())]
        if not gone and not new:
            return
        b.save_decisions(holder_id, new, reasons)
        if self.publisher is None:
            return  # a replay decides but never publishes
        for event in decision_set_events(holder_id, self.jurisdiction, new, active, reasons, latest, cause):
            ident = stable_id(
                "decision_set", self.jurisdiction, holder_id, event.certificate_key,
                *sorted(o.decision_id for o in event.decisions), "-", *sorted(o.decision_id for o in event.withdrawn),
            )  # fmt: skip
            at = event.decided_at or event.withdrawn_at or latest
            b.queue(ident, "DecisionSetChanged", event.model_dump_json(), _utc(at))

    def under_review(self, holder_id: str | None = None) -> dict[str, str]:
        """Active decisions on withdrawn catalogue entries, by id, with why they are to be reviewed: empty unless
        the withdrawal policy is "review"."""
        if withdrawal_policy(self.settings, self.info) != "review":
            return {}
        withdrawn = self.store.withdrawn_entries()
        if not withdrawn:
            return {}
        key = f"{self.info.prefix}.withdrawal.decided_benefits"
        out: dict[str, str] = {}
        for s in self.store.decisions(holder_id):
            w = withdrawn.get(s.decision.entry_id)
            if w is not None:
                out[s.decision_id] = (
                    f"catalogue entry {w.entry_id} withdrawn from {w.effective.isoformat()} ({w.reason}): "
                    f"review ({key} = review)"
                )
        return out

    # outbox ------------------------------------------------------------------------------------------------------
    def transactional_id(self) -> str:
        """The transactional id the relay publishes under: one per read model (every instance of a group sharing one
        read model uses the same), so an instance that takes the relay over fences its predecessors."""
        assert self.publisher is not None
        digest = hashlib.sha256(self.store.relay_key().encode()).hexdigest()[:16]
        return f"{self.publisher.topics.prefix}relay-{self.publisher.identity}-{digest}"

    def relay(self) -> int:
        """Publish the unsent outbox rows exactly once: in one Kafka transaction, under the read model's
        transactional id, then mark them sent with where they were written.

        Before publishing, the store records that a relay is in flight. A relay that does not reach
        :meth:`~mra.services.bureau_store.BureauStore.mark_sent` (killed, fenced, or the cluster gone after the
        commit) leaves that mark, and the next relay, of this instance or another, first takes the transactional id
        over (its predecessors' open transactions end: aborted, or completed if they were committing), then reads the
        topic read_committed from the positions recorded at the last mark to the end, marks sent every unsent row
        whose event id it finds there, and publishes only the rest. An instance that relays after another one takes
        the id over too. Returns how many events were published.
        """
        if self.publisher is None:
            return 0
        rows = self.store.unsent()
        if not rows:
            return 0
        transport, tid = self.publisher.transport, self.transactional_id()
        state = self.store.relay_state()
        positions = dict(state.positions)
        todo = rows
        if state.in_flight is not None or state.owner != self._relay_owner:
            transport.fence(tid)
        if state.in_flight is not None:
            found, positions = self._committed(rows, positions)
            todo = [r for r in rows if r.event_id not in found]
            log.warning(
                "relay: the previous relay did not finish; %d of %d unsent event(s) were committed by it and are "
                "marked sent, %d are published now",
                len(found), len(rows), len(todo),
            )  # fmt: skip
        last = rows[-1].seq
        if todo:
            self.store.begin_relay(last, self._relay_owner)
            try:
                with transport.transaction(tid) as tx:
                    for row in todo:
                        self._publish_row(row)
                    self.publisher.checkpoint()
            except BaseException:
                self.publisher.new_epoch()  # what was stamped may be aborted: no hole in the chain readers see
                raise
            for tp, offset in tx.written.items():
                positions[tp] = max(positions.get(tp, 0), offset)
        self.store.mark_sent(last, positions)
        self.published += len(todo)
        return len(todo)

    def _publish_row(self, row: OutboxRow) -> None:
        assert self.publisher is not None
        body = row.body.encode()
        cls = _KINDS.get(row.type)
        if cls is not None:
            self.publisher.publish(cls.model_validate_json(body), id=row.event_id, time=row.time, body=body)
        else:
            current, data = upcast(row.type, json.loads(body))
            self.publisher.publish(current.model_validate(data), id=row.event_id, time=row.time)

    def _committed(
        self, rows: Sequence[OutboxRow], since: Mapping[TopicPartition, int]
    ) -> tuple[set[str], dict[TopicPartition, int]]:
        """The ids of ``rows`` this bureau's identity committed on their topics after ``since``, and where the
        reading ended. Caught up means: each partition's reported end reached, and a poll past it returned nothing
        (some brokers under-report the end)."""
        assert self.publisher is not None
        topics = sorted({self.publisher.topics.name(_topic_of(r.type)) for r in rows})
        wanted = {r.event_id for r in rows}
        identity = self.publisher.identity.encode()
        reader = self.publisher.transport.reader(topics)
        found: set[str] = set()
        try:
            tps = sorted(reader.assignment())
            starts = reader.beginning_offsets(tps)
            for tp in tps:
                reader.seek(tp, max(since.get(tp, 0), starts.get(tp, 0)))
            deadline = time.monotonic() + RECOVERY_TIMEOUT_S
            ends = reader.end_offsets(tps)
            while True:
                got = reader.poll(500, 5000)
                for r in got:
                    headers = dict(r.headers)
                    ident = headers.get("ce_id", b"").decode()
                    if ident in wanted and headers.get("ce_mrapublisher") == identity:
                        found.add(ident)
                if not got and all(reader.position(tp) >= ends[tp] for tp in tps):
                    break
                if time.monotonic() > deadline:
                    raise PublishError(
                        f"relay: could not read {', '.join(topics)} to the end within {RECOVERY_TIMEOUT_S:g}s to find "
                        "what a previous relay committed; nothing was published"
                    )
                if not got:
                    ends = reader.end_offsets(tps)
            reached = {tp: reader.position(tp) for tp in tps}
        finally:
            reader.close()
        return found, {tp: max(since.get(tp, 0), at) for tp, at in reached.items()}

    # queries -----------------------------------------------------------------------------------------------------
    def active_decisions(self, holder_id: str | None = None) -> list[BenefitDecision]:
        return [s.decision for s in self.store.decisions(holder_id)]

    def applied_count(self) -> int:
        return self.store.counts().events_applied

    def holder(self, holder_id: str) -> dict[str, Any] | None:
        facts = self.store.holder_file(holder_id)
        if facts is None:
            return None
        row = facts.holder
        reviews = self.under_review(holder_id)
        return {
            "holder_id": holder_id,
            "category": row.category if row else None,
            "erased": row.erased if row else False,
            "birth_date": _personal_state(row),
            "certificates": [
                {
                    "certificate_key": c.certificate_key,
                    "entry_id": c.entry_id,
                    "issuer": c.issuer,
                    "verification_code": c.verification_code,
                    "verified_at": c.verified_at.isoformat(),
                    "verified_by": c.verified_by,
                    "revoked": c.revoked_at is not None,
                    "revoke_reason": c.revoke_reason,
                }
                for c in facts.certificates
            ],
            "employments": [
                {
                    "jurisdiction": e.employment.jurisdiction,
                    "employer": e.employment.employer,
                    "region": e.employment.employer_region,
                    "started": e.employment.started.isoformat(),
                    "ended": e.employment.ended and e.employment.ended.isoformat(),
                }
                for e in sorted(facts.employments, key=lambda e: e.employment.started)
            ],
            "decisions": [_with_review(d, reviews.get(d.decision_id)) for d in self.active_decisions(holder_id)],
        }

    def counts(self) -> dict[str, int]:
        c = dataclasses.asdict(self.store.counts())
        c["decisions_under_review"] = len(self.under_review())
        order = (
            "events_applied", "holders", "certificates", "decisions_active", "decisions_eligible",
            "decisions_withdrawn", "decisions_under_review", "outbox_unsent", "dead_letters",
        )  # fmt: skip
        return {k: int(c[k]) for k in order}
