"""The events the benchmarks move: the shapes and sizes mra really publishes, built with its own models.

A holder's facts are what the verification platform and the employer intake publish: ``HolderRegistered``
and ``EmploymentStarted`` on the holders topic, ``CertificateVerified`` on the verification topic, with
pseudonymous holder ids, content-addressed certificate keys and printed verification codes. The
``DecisionSetChanged`` bodies come from the Beijing plugin deciding real contexts, so their size is the real one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mra.core.ids import stable_id
from mra.core.plugins import Registry
from mra.events.bus import InMemoryTransport
from mra.events.consumer import Processor
from mra.events.envelope import decode, encode
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CertificateVerified,
    DecisionSetChanged,
    EmployerRef,
    EmploymentStarted,
    Event,
    HolderRegistered,
)
from mra.events.topics import Topics
from mra.services.bureau import BUREAU_TOPICS, BureauStore
from mra.services.codes import new_code
from mra.services.platform import DISCLAIMER

__all__ = [
    "ENTRIES",
    "T0",
    "Message",
    "benefit_decided",
    "certificate_verified",
    "employment_started",
    "fact_messages",
    "holder_facts",
    "holder_id",
    "message_sizes",
    "publish_mix",
]

T0 = datetime(2025, 10, 9, 2, 0, tzinfo=UTC)
ENTRIES = ("BJ2025-I-139", "BJ2025-U-09", "BJ2025-O-05", "BJ2025-I-047")
"""Catalogue rows the Beijing rules decide on (an ACCA, a CFA, an O-list row, a PMP)."""
EMPLOYERS = (
    ("北京示例科技有限公司", "91110108MA01K7QH2J"),
    ("北京示例投资管理有限公司", "91110105MA0089X1XD"),
    ("北京示例工程咨询有限公司", "91110106MA00AB1C2J"),
)
CATEGORIES = ("foreign", "mainland", "hkmotw")

Message = tuple[str, bytes, bytes, list[tuple[str, bytes]]]
"""A Kafka message as mra writes it: logical topic, key, value, headers."""


def holder_id(seed: str, i: int) -> str:
    """A pseudonym shaped like the platform's (``h-`` and 32 hex digits)."""
    return "h-" + hashlib.sha256(f"{seed}:{i}".encode()).hexdigest()[:32]


def certificate_verified(h: str, i: int) -> CertificateVerified:
    entry = ENTRIES[i % len(ENTRIES)]
    return CertificateVerified(
        request_id=stable_id("request", h, i),
        holder_id=h,
        certificate_key=stable_id("certificate", entry, h, f"N{i:09d}"),
        entry_id=entry,
        issuer=("ACCA", "CFA Institute", "PMI", "Project Management Institute")[i % 4],
        verification_code=new_code(),
        verified_at=T0 + timedelta(seconds=i % 86400),
        verified_by="beijing",
        disclaimer=DISCLAIMER,
    )


def employment_started(h: str, i: int, jurisdiction: str = "beijing") -> EmploymentStarted:
    name, code = EMPLOYERS[i % len(EMPLOYERS)]
    return EmploymentStarted(
        holder_id=h,
        jurisdiction=jurisdiction,
        employer=EmployerRef(name=name, credit_code=code, region=jurisdiction),
        started=date(2025, 9, 1) + timedelta(days=i % 30),
        years_in_scope=float(3 + i % 5),
        in_scope=True,
    )


def holder_facts(h: str, i: int) -> list[Event]:
    """One holder's three facts, in the order the intake publishes them."""
    return [
        HolderRegistered(
            holder_id=h,
            category=CATEGORIES[i % 3],  # type: ignore[arg-type]
            birth_date=date(1960 + i % 30, 1 + i % 12, 1 + i % 28),
        ),
        certificate_verified(h, i),
        employment_started(h, i),
    ]


def fact_messages(seed: str, holders: int, start: int = 0) -> Iterator[Message]:
    """Encoded fact messages for ``holders`` holders (three each), stamped by one intake publisher.

    Encoding goes through mra's own Publisher and envelope, so every message decodes exactly as a live one.
    """
    topics = Topics()
    pub = Publisher(InMemoryTransport(), topics, "bench-intake")
    for i in range(start, start + holders):
        h = holder_id(seed, i)
        for k, event in enumerate(holder_facts(h, i)):
            env = pub.envelope(event, id=stable_id("fact", seed, i, k), time=T0 + timedelta(seconds=i, milliseconds=k))
            key, value, headers = encode(env)
            yield event.TOPIC, key, value, headers


def benefit_decided(registry: Registry, holders: int = 12) -> list[DecisionSetChanged]:
    """Real ``DecisionSetChanged`` bodies: a Beijing bureau in memory deciding a few holders' facts."""
    transport = InMemoryTransport()
    topics = Topics("w.", 2)
    transport.ensure_topics(topics.all())
    intake = Publisher(transport, topics, "bench-intake")
    for i in range(holders):
        h = holder_id("decided", i)
        for event in holder_facts(h, i):
            intake.publish(event, time=T0 + timedelta(seconds=i))
    store = BureauStore(":memory:", "beijing", registry, Publisher(transport, topics, "bureau-beijing"))
    try:
        Processor(transport, topics, BUREAU_TOPICS, store, None).run(until_idle=True, timeout=30)
    finally:
        store.close()
    out = [decode(r).data for r in transport.records(topics.name("benefits"))]
    decided = [e for e in out if isinstance(e, DecisionSetChanged)]
    if not decided:
        raise RuntimeError("the Beijing rules decided nothing for the benchmark's holders")
    return decided


def publish_mix(registry: Registry, n: int, seed: str) -> list[Event]:
    """``n`` events cycling through what mra publishes: CertificateVerified, EmploymentStarted, DecisionSetChanged."""
    decided = benefit_decided(registry)
    out: list[Event] = []
    for i in range(n):
        h = holder_id(seed, i // 3)
        kind = i % 3
        if kind == 0:
            out.append(certificate_verified(h, i // 3))
        elif kind == 1:
            out.append(employment_started(h, i // 3))
        else:
            d = decided[(i // 3) % len(decided)]
            out.append(d.model_copy(update={"holder_id": h}))
    return out


@dataclass(frozen=True)
class Size:
    type: str
    key: int
    value: int
    headers: int

    @property
    def total(self) -> int:
        return self.key + self.value + self.headers


def message_sizes(registry: Registry) -> dict[str, dict[str, int]]:
    """Encoded size of each event type mra publishes here: key, value (JSON body), headers (names + values)."""
    pub = Publisher(InMemoryTransport(), Topics(), "bench-intake")
    h = holder_id("sizes", 0)
    samples: list[Event] = [*holder_facts(h, 0), benefit_decided(registry, 4)[0]]
    out: dict[str, dict[str, int]] = {}
    for event in samples:
        key, value, headers = encode(pub.envelope(event))
        s = Size(type(event).__name__, len(key), len(value), sum(len(k) + len(v) for k, v in headers))
        out[s.type] = {"key": s.key, "value": s.value, "headers": s.headers, "total": s.total}
    return out
