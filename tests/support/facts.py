"""The facts tests publish, built one way, and the helpers that publish them and read the decisions back.

Every builder's defaults are one ordinary case: holder ``h1``, a foreign holder born 1 May 1980, a certificate of
row BJ2025-I-139 verified by the Beijing platform at ``T``, work in Beijing from 1 September 2025 with three years
in scope. A test that needs anything else passes it by keyword, where its reader sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from mra.core.ids import stable_id
from mra.core.models import HolderCategory
from mra.core.plugins import Registry
from mra.events.benefits import decided_in
from mra.events.bus import InMemoryTransport, Transport
from mra.events.envelope import Envelope, decode
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CatalogueEntryWithdrawn,
    CertificateVerified,
    EmployerRef,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderRegistered,
)
from mra.events.topics import Topics
from mra.services.audit import read_log
from mra.services.bureaus import Bureau, open_bureau
from mra.services.runtime import Runtime

from .signed import Genuine, provisioned, signed

__all__ = [
    "BORN",
    "ENTRY",
    "STARTED",
    "IdRule",
    "T",
    "World",
    "decision_ids",
    "employer",
    "ended",
    "entry_withdrawn",
    "fact_id",
    "holder_facts",
    "publish",
    "read_back",
    "registered",
    "started",
    "verified",
]

T = datetime(2025, 10, 1, 9, tzinfo=UTC)
BORN = date(1980, 5, 1)
ENTRY = "BJ2025-I-139"
STARTED = date(2025, 9, 1)

IdRule = Callable[[Event], str]


# --- builders -------------------------------------------------------------------------------------------------


def employer(region: str = "beijing") -> EmployerRef:
    return EmployerRef(name="E", credit_code="C", region=region)


def registered(
    holder: str = "h1",
    *,
    category: str = "foreign",
    born: date | None = BORN,
    personal: Mapping[str, str] | None = None,
) -> HolderRegistered:
    return HolderRegistered(
        holder_id=holder, category=HolderCategory(category), birth_date=born, personal=dict(personal or {})
    )


def verified(
    holder: str = "h1",
    entry: str = ENTRY,
    *,
    request: str | None = None,
    key: str | None = None,
    code: str | None = None,
    issuer: str = "x",
    at: datetime = T,
    expires: date | None = None,
) -> CertificateVerified:
    """A certificate the Beijing platform verified; request, key and code are named after the holder unless given."""
    return CertificateVerified(
        request_id=request or f"r-{holder}",
        holder_id=holder,
        certificate_key=key or f"k-{holder}",
        entry_id=entry,
        issuer=issuer,
        verification_code=code or f"CODE-{holder}",
        verified_at=at,
        verified_by="beijing",
        expires=expires,
        disclaimer="authenticity only",
    )


def started(
    holder: str = "h1", j: str = "beijing", *, on: date = STARTED, years: float | None = 3
) -> EmploymentStarted:
    """Work for an employer registered in the jurisdiction itself."""
    return EmploymentStarted(holder_id=holder, jurisdiction=j, employer=employer(j), started=on, years_in_scope=years)


def ended(holder: str = "h1", j: str = "beijing", *, on: date) -> EmploymentEnded:
    return EmploymentEnded(holder_id=holder, jurisdiction=j, ended=on)


def entry_withdrawn(entry: str, *, effective: date, reason: str, j: str = "beijing") -> CatalogueEntryWithdrawn:
    """A row of Beijing's 2025 catalogue withdrawn from ``effective``."""
    return CatalogueEntryWithdrawn(
        jurisdiction=j,
        catalogue="beijing-international",
        edition="2025",
        entry_id=entry,
        effective=effective,
        reason=reason,
    )


def holder_facts(
    holder: str = "h1",
    entry: str = ENTRY,
    j: str = "beijing",
    *,
    category: str = "foreign",
    born: date | None = BORN,
    request: str | None = None,
    key: str | None = None,
    code: str | None = None,
    issuer: str = "x",
    on: date = STARTED,
    years: float | None = 3,
) -> list[Event]:
    """What a bureau decides a holder on, in the order intake sends it: registration, certificate, employment."""
    return [
        registered(holder, category=category, born=born),
        verified(holder, entry, request=request, key=key, code=code, issuer=issuer),
        started(holder, j, on=on, years=years),
    ]


# --- publishing and reading back ------------------------------------------------------------------------------


def fact_id(event: Event) -> str:
    """An id derived from the content alone: a fact published twice is one event, in any log and on any run."""
    return stable_id("fact", event.model_dump_json())


def publish(
    pub: Publisher | Genuine, events: Iterable[Event], *, at: datetime = T, ids: IdRule | Sequence[str] | None = fact_id
) -> list[str]:
    """Publish ``events`` at ``at`` and flush; return their ids.

    ``ids`` is a rule (content-derived by default), the ids themselves in order, or None for fresh random ones.
    """
    out = []
    for n, e in enumerate(events):
        ident = None if ids is None else ids(e) if callable(ids) else ids[n]
        out.append(pub.publish(e, time=at, id=ident).id)
    pub.flush()
    return out


def read_back(transport: Transport, topics: Topics, topic: str = "benefits") -> list[Envelope]:
    """Every event on ``topic``, decoded: an in-memory log as it stands (partition by partition), a broker's log
    from its beginning to its end."""
    name = topics.name(topic)
    if isinstance(transport, InMemoryTransport):
        return [decode(r) for r in transport.records(name)]
    return [decode(r) for r in read_log(transport, [name])]


def decision_ids(events: Iterable[Event]) -> list[str]:
    """The ids of the decisions among ``events`` (withdrawals left out), in their order."""
    return [d.decision_id for e in events for d in decided_in(e)]


class World:
    """One in-memory log holding every topic, a runtime over it, one publisher, and bureaus opened on demand."""

    def __init__(self, tmp: Path, topics: Topics, registry: Registry, identity: str = "test") -> None:
        self.tmp = tmp
        self.topics = topics
        self.registry = registry
        self.bus = InMemoryTransport()
        self.bus.ensure_topics(topics.all())
        self.runtime = Runtime(provisioned(tmp), topics=topics)
        self.pub: Publisher | Genuine = signed(self.bus, topics, identity)

    def publish(self, *events: Event, at: datetime = T, pub: Publisher | Genuine | None = None) -> list[str]:
        """Publish under content-derived ids, as one shared log carries each fact once."""
        return publish(pub or self.pub, events, at=at)

    def bureau(self, j: str, name: str | None = None, *, publish: bool = True) -> Bureau:
        """A bureau reading every partition itself, its read model in ``<name or j>.db``."""
        return open_bureau(
            self.runtime,
            j,
            registry=self.registry,
            transport=self.bus,
            group=False,
            db=self.tmp / f"{name or j}.db",
            publish=publish,
        )

    def benefits(self) -> list[Event]:
        return [e.data for e in read_back(self.bus, self.topics)]
