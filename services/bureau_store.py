"""The bureau store interface: what a bureau keeps, and what one batch commits in one transaction.

A bureau reads facts (holders, employments, certificates, catalogue editions and withdrawals), decides each holder
whose facts changed with :func:`mra.core.decide.decide_holder`, and publishes what changed through an outbox. For a
killed bureau to resume exactly where it stopped, everything one batch of records causes is committed together:

- the tracking positions (topic, partition, next offset) of every record read, dead letters included;
- the ids of the events applied, keyed by (publisher identity, event id), with each event's content hash, so an
  event applied once is never applied again, two publishers cannot shadow each other's ids, and an id reused for
  other content is refused (dead-lettered), never skipped;
- the facts the events carry;
- the decisions that follow from them;
- the outbox rows of the events those decisions owe.

Implementations: :class:`mra.services.bureau_sqlite.SqliteBureauStore` (one file per bureau); a shared PostgreSQL
store for a group of bureau instances implements the same protocol. Every implementation passes the shared test cases in
``tests/support/bureau_store_cases.py`` (subclass ``BureauStoreCases`` and define ``create_store()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from mra.core.facts import (
    CertificateFact,
    EmploymentFact,
    ErasureFact,
    HolderFact,
    HolderFile,
    StoredDecision,
    WithdrawnEntry,
)
from mra.core.models import BenefitDecision
from mra.events.bus import TopicPartition

__all__ = ["BureauBatch", "BureauStore", "OutboxRow", "RelayState", "StoreCounts"]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An event owed to the topics: its deterministic id, CloudEvents type name, serialised body and event time."""

    seq: int
    event_id: str
    type: str
    body: str
    time: datetime


@dataclass(frozen=True, slots=True)
class RelayState:
    """What the next relay needs to publish exactly once.

    ``positions``: per partition of the topics the outbox is published to, the offset up to which everything the
    relay committed is accounted for (recorded when rows were last marked sent). ``in_flight``: the last outbox seq of
    a relay that began publishing and did not mark its rows sent (None when every relay ended): the next relay reads
    the topics from ``positions`` for what that one committed. ``owner``: who began the last relay.
    """

    positions: Mapping[TopicPartition, int]
    in_flight: int | None
    owner: str | None


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What ``bureau status`` reports of a store."""

    events_applied: int
    holders: int
    certificates: int
    decisions_active: int
    decisions_eligible: int
    decisions_withdrawn: int
    outbox_unsent: int
    dead_letters: int


class BureauBatch(Protocol):
    """The writes and reads of one batch, inside one transaction: all of them commit, or none does."""

    # tracking and idempotency ---------------------------------------------------------------------------------
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
        """Record (``identity``, ``event_id``) as applied, with the event's content hash and type; False when it was
        applied before with the same content hash (a redelivery: skip the event). Raise
        :class:`~mra.events.consumer.EventRefused` when it was applied before with another content hash: the id
        is reused, and the consumer dead-letters the event (see docs/interfaces.md, "Applied events")."""
        ...

    def track(self, topic: str, partition: int, offset: int) -> None:
        """Record that ``offset`` of the partition was read: its next offset is ``offset + 1`` (never lowered)."""
        ...

    def dead_letter(self, topic: str, partition: int, offset: int, reason: str) -> None:
        """Record a record set aside and why (the caller tracks its position too)."""
        ...

    # facts ----------------------------------------------------------------------------------------------------
    def put_holder(self, holder: HolderFact) -> None:
        """Register a holder, or update the category and birth date of one registered before."""
        ...

    def erase_holder(self, erasure: ErasureFact) -> None:
        """Keep the erasure (the first one read stands) and drop the holder's birth date."""
        ...

    def start_employment(self, employment: EmploymentFact) -> None:
        """Keep an employment, keyed by (holder, jurisdiction, start date); a later event for the key replaces it."""
        ...

    def end_employment(self, holder_id: str, jurisdiction: str, ended: date, event_time: datetime) -> None:
        """End the holder's open employments in ``jurisdiction`` that started on or before ``ended``."""
        ...

    def put_certificate(self, certificate: CertificateFact) -> None:
        """Keep a verified certificate (the first verification of a key stands)."""
        ...

    def revoke_certificate(self, certificate_key: str, revoked_at: datetime, reason: str) -> None:
        """Keep a certificate's revocation (the first one read stands)."""
        ...

    def put_edition(self, catalogue: str, edition: str, effective: date, event_id: str) -> None: ...

    def withdraw_entry(self, withdrawn: WithdrawnEntry) -> None:
        """Keep a catalogue entry's withdrawal (the first one read stands)."""
        ...

    def holders_with_entries(self, entry_ids: Iterable[str]) -> set[str]:
        """The holders with a certificate on one of the entries (a catalogue change affects them)."""
        ...

    def holder_file(self, holder_id: str) -> HolderFile:
        """The holder's facts as this transaction sees them, with the withdrawn entries their certificates name.
        ``born`` is left None: opening a sealed birth date is the bureau's job, not the store's."""
        ...

    # decisions and outbox -------------------------------------------------------------------------------------
    def active_decisions(self, holder_id: str) -> dict[str, BenefitDecision]:
        """The holder's active decisions by id."""
        ...

    def save_decisions(self, holder_id: str, decided: Sequence[BenefitDecision], withdrawn: Mapping[str, str]) -> None:
        """Make ``decided`` active (a decision withdrawn before becomes active again) and withdraw the decisions of
        ``withdrawn`` (decision id to reason)."""
        ...

    def queue(self, event_id: str, type_name: str, body: str, time: datetime) -> bool:
        """Queue an event for the relay; False when the id was queued before (it is kept as it was)."""
        ...


class BureauStore(Protocol):
    """A bureau's read model: facts, decisions, positions, applied ids and outbox, behind one transaction a batch."""

    def positions(self) -> Mapping[TopicPartition, int]:
        """The next offset to read per partition, as committed."""
        ...

    def batch(self) -> AbstractContextManager[BureauBatch]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        ...

    # queries: holder show, bureau status, replay -------------------------------------------------------------
    def holder_file(self, holder_id: str) -> HolderFile | None:
        """The holder's facts, or None when nothing is known of them."""
        ...

    def decisions(self, holder_id: str | None = None, *, active: bool | None = True) -> list[StoredDecision]:
        """Decisions by id order: of one holder or all; active ones (``True``), withdrawn ones (``False``), both
        (``None``)."""
        ...

    def withdrawn_entries(self) -> dict[str, WithdrawnEntry]: ...

    def holders_by_employer(self, jurisdiction: str, text: str, limit: int) -> list[tuple[str, str]]:
        """(holder id, employer name) of employments in ``jurisdiction`` whose employer's name or credit code
        contains ``text``, latest start first, at most ``limit``."""
        ...

    def counts(self) -> StoreCounts: ...

    # outbox relay ---------------------------------------------------------------------------------------------
    def unsent(self) -> list[OutboxRow]:
        """Outbox rows not yet marked sent, in the order they were queued."""
        ...

    def mark_sent(self, upto_seq: int, positions: Mapping[TopicPartition, int] | None = None) -> None:
        """Mark every row queued up to ``upto_seq`` sent (after the relay's transaction committed), record
        ``positions`` (each kept at the highest recorded) and clear the in-flight mark, in one transaction."""
        ...

    def relay_key(self) -> str:
        """Names this read model: every store object over the same read model (every instance of a group sharing
        one) gives the same key, so they publish under one transactional id and fence each other."""
        ...

    def relay_state(self) -> RelayState:
        """Where the relay stands (see :class:`RelayState`)."""
        ...

    def begin_relay(self, upto_seq: int, owner: str) -> None:
        """Record, before publishing, that ``owner`` is publishing the rows up to ``upto_seq``: until
        :meth:`mark_sent`, whoever relays next checks the topics for what was committed."""
        ...

    def close(self) -> None: ...
