"""The signed variants: per-event Ed25519 signatures (``mrasig``) and signed checkpoints, on both sides.

Publishing uses the Publisher's own ``signer`` / ``checkpoints`` options. Reading composes what a verifying
reader is made of in :mod:`mra.events.signing` — a :class:`Verifier` over a trust store naming the intake's
key, as the Processor's ``validate`` callback, and, for checkpoints, the :class:`CheckpointGate` around the
bureau's store — since ``open_bureau`` and ``replay`` take no verifier in this tree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench
from benchmarks.raw import confluent_produce
from benchmarks.workload import T0, Message, holder_facts, holder_id
from mra.core.ids import stable_id
from mra.events.consumer import Processor
from mra.events.publisher import Publisher
from mra.events.topics import Topics
from mra.services.bureau import BUREAU_TOPICS, BureauStore
from mra.services.runtime import Runtime

__all__ = ["MODES", "guarded_run", "publisher_makers", "signed_log"]

MODES = ("per-event", "checkpoints")
INTAKE = "bench-intake"


def _signing() -> Any:
    import mra.events.signing as signing

    return signing


def publisher_makers() -> dict[str, Callable[..., Publisher]]:
    """Publisher factories for the signed publish variants (a fresh key per publisher)."""
    s = _signing()

    def per_event(transport: Any, topics: Topics) -> Publisher:
        return Publisher(transport, topics, "bench-publisher", signer=s.Signer.generate("bench-publisher"))

    def checkpoints(transport: Any, topics: Topics) -> Publisher:
        return Publisher(
            transport,
            topics,
            "bench-publisher",
            signer=s.Signer.generate("bench-publisher"),
            checkpoints=s.CheckpointPolicy(),
        )

    return {"mra_signed": per_event, "mra_signed_checkpoints": checkpoints}


class _Collect:
    """A transport that only keeps what is sent, for encoding a signed log before it is written."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        self.sent.append((topic, key, value, list(headers)))

    def flush(self, timeout: float | None = None) -> None:
        return None


def _messages(seed: str, holders: int, mode: str, signer: Any) -> Iterator[Message]:
    s = _signing()
    sink = _Collect()
    policy = s.CheckpointPolicy() if mode == "checkpoints" else None
    pub = Publisher(sink, Topics(prefix=""), INTAKE, signer=signer, checkpoints=policy)  # type: ignore[arg-type]
    for i in range(holders):
        h = holder_id(seed, i)
        for k, event in enumerate(holder_facts(h, i)):
            pub.publish(event, id=stable_id("fact", seed, i, k), time=T0 + timedelta(seconds=i, milliseconds=k))
        if len(sink.sent) >= 3000:
            yield from ((t, k or b"", v, hd) for t, k, v, hd in sink.sent)
            sink.sent.clear()
    pub.flush()
    yield from ((t, k or b"", v, hd) for t, k, v, hd in sink.sent)


def signed_log(b: Bench, topics: Topics, holders: int, seed: str, mode: str) -> tuple[int, Any]:
    """Write ``holders`` holders' facts signed by the intake in ``mode``; return (messages, trust store)."""
    s = _signing()
    signer = s.Signer.generate(INTAKE)
    b.transport(topics).close()
    wire = ((topics.name(t), k, v, h) for t, k, v, h in _messages(seed, holders, mode, signer))
    sent, _ = confluent_produce(b.bootstrap, wire)
    key = s.TrustedKey(
        key_id=signer.key_id,
        public_key=s.public_key_text(signer.private_key.public_key()),
        created=datetime(2025, 1, 1, tzinfo=UTC),
    )
    trust = s.TrustStore(
        verification=s.VerificationSettings(mode=s.Mode(mode)),
        identities={
            INTAKE: s.TrustedIdentity(may_publish=("cn.jjj.*",), jurisdictions=("*",), issuers=("*",), keys=(key,))
        },
    )
    return sent, trust


def guarded_run(b: Bench, runtime: Runtime, trust: Any, mode: str, publish: bool, db: Path, expect: int) -> float:
    """Seconds for a fresh Beijing read model to apply all ``expect`` messages of the signed log, verifying each."""
    s = _signing()
    transport = runtime.connect(client_id="mra-bench-signed")
    book = s.MemoryBook()
    guard = s.Guard(
        s.Mode(mode),
        s.Verifier(trust, book),
        book,
        s.dead_letter_sender(transport, runtime.topics),
    )
    publisher = None
    if publish:
        identity = "bureau-beijing"
        signer = s.Signer.generate(identity)
        policy = s.CheckpointPolicy() if mode == "checkpoints" else None
        publisher = Publisher(transport, runtime.topics, identity, signer=signer, checkpoints=policy)
    store = BureauStore(db, "beijing", b.registry, publisher)
    processor = Processor(transport, runtime.topics, BUREAU_TOPICS, guard.wrap(store), None, validate=guard.validate)
    try:
        start = time.perf_counter()
        stats = processor.run(until_idle=True, timeout=3600)
        seconds = time.perf_counter() - start
        applied = store.applied_count()
        if stats.dead_lettered or applied != expect:
            raise RuntimeError(
                f"signed log: {applied} of {expect} applied, {stats.dead_lettered} dead-lettered: {stats.errors}"
            )
        return seconds
    finally:
        processor.close()
        store.close()
        transport.close()
