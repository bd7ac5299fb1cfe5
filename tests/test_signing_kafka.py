"""On the real broker: a forged 'certificate verified' event written with kafka-python grants nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaProducer
from support import facts
from support.facts import registered, started

from mra.core.plugins import load_registry
from mra.events.envelope import Envelope, encode
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.schemas import CertificateVerified
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.keys import init_keys, open_publisher, signer_for, standard_identities
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker

T = datetime(2025, 10, 9, 2, tzinfo=UTC)
REGISTRY = load_registry()


def verified(holder: str, request: str) -> CertificateVerified:
    """A certificate named after its request, so a forgery and the genuine one never share a key or code."""
    return facts.verified(holder, request=request, key=f"k-{request}", code=f"CODE-{request}", issuer="ACCA", at=T)


def test_a_forged_certificate_verified_event_is_dead_lettered_with_the_reason_and_grants_nothing(
    tmp_path: Path, bootstrap: str, kafka: KafkaTransport, topics: Topics
) -> None:
    state = tmp_path / "state"
    init_keys(state, standard_identities(REGISTRY.jurisdictions), Mode.PER_EVENT)
    runtime = Runtime(state, bootstrap, topics)
    intake = open_publisher(state, kafka, topics, "beijing-intake")
    platform = open_publisher(state, kafka, topics, "verification-platform")
    for holder in ("h-forged", "h-genuine"):
        platform.publish(registered(holder), time=T)
        intake.publish(started(holder), time=T)
    genuine = platform.publish(verified("h-genuine", "r-genuine"), time=T)
    intake.flush()
    platform.flush()

    bureau_key = signer_for(state, "bureau-beijing")
    assert bureau_key is not None
    impostor = Publisher(kafka, topics, "verification-platform")  # no key: it can only claim the name
    forgeries: list[Envelope] = [
        impostor.envelope(verified("h-forged", "r-unsigned"), time=T),
        bureau_key.sign_event(impostor.envelope(verified("h-forged", "r-bureau-key"), time=T)),
        open_publisher(state, kafka, topics, "bureau-beijing").envelope(verified("h-forged", "r-bureau"), time=T),
    ]
    producer = KafkaProducer(bootstrap_servers=bootstrap)  # straight onto the topic, past every mra check
    for env in forgeries:
        key, value, headers = encode(env)
        producer.send(topics.name("verification"), key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    bureau = open_bureau(runtime, "beijing", registry=REGISTRY, transport=kafka, group=False)
    try:
        stats = bureau.run(until_idle=True, timeout=60)
        assert stats.idle and stats.dead_lettered == 3
        assert bureau.store.active_decisions("h-forged") == []  # granted nothing
        assert bureau.store.holder("h-forged")["certificates"] == []  # type: ignore[index]
        assert {d.verification_code for d in bureau.store.active_decisions("h-genuine")} == {
            genuine.data.verification_code  # type: ignore[attr-defined]
        }
        reasons = sorted(r[0] for r in bureau.store.db.execute("SELECT reason FROM dead_letters"))
    finally:
        bureau.close()
    assert any(r.startswith("unsigned:") and "carries no signature" in r for r in reasons)
    assert any(r.startswith("bad signature:") and "belongs to bureau-beijing" in r for r in reasons)
    assert any(r.startswith("unauthorised: bureau-beijing may not publish") for r in reasons)

    reader = kafka.reader([topics.name("deadletter")])
    letters = []
    for _ in range(20):
        letters += reader.poll(500, 100)
        if len(letters) >= 3:
            break
    reader.close()
    recorded = sorted(dict(r.headers)["mra_dlq_reason"].decode() for r in letters)
    assert recorded == reasons  # on the dead-letter topic, with the reason, and nothing else
