"""Signed events and signed checkpoints on the in-memory transport: what is accepted, what is refused and why."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from support import facts

from mra.events.bus import InMemoryTransport, TopicPartition
from mra.events.consumer import DeadLetter, Delivery, Processor
from mra.events.envelope import Envelope, Record, decode, encode
from mra.events.publisher import Publisher
from mra.events.schemas import CertificateVerified, EmploymentEnded, HoldersCheckpoint, VerificationCheckpoint
from mra.events.signing import (
    CheckpointGate,
    CheckpointPolicy,
    Guard,
    MemoryBook,
    Mode,
    Signer,
    TrustedKey,
    TrustStore,
    Verifier,
    dead_letter_sender,
    default_grants,
    measure_signing,
    public_key_text,
    verify_chain,
)
from mra.events.topics import Topics
from mra.services.keys import SqliteBook

T = datetime(2025, 10, 9, 2, tzinfo=UTC)


def trusted(*signers: Signer, grants: Mapping[str, tuple[str, ...]] | None = None) -> TrustStore:
    trust = TrustStore()
    for s in signers:
        key = TrustedKey(key_id=s.key_id, public_key=public_key_text(s.private_key.public_key()), created=T)
        wanted = (grants or {}).get(s.identity) or default_grants(s.identity) or ("cn.jjj.*",)
        trust = trust.with_key(s.identity, key, wanted)
    return trust


def verified(holder: str = "h1") -> CertificateVerified:
    return facts.verified(holder, issuer="ACCA", code="CODE-1", at=T)


def ended(holder: str) -> EmploymentEnded:
    return facts.ended(holder, on=date(2025, 11, 3))


PLATFORM = Signer.generate("verification-platform")
BUREAU = Signer.generate("bureau-beijing")
INTAKE = Signer.generate("beijing-intake")
TRUST = trusted(PLATFORM, BUREAU, INTAKE)


def world() -> tuple[InMemoryTransport, Topics]:
    bus = InMemoryTransport(default_partitions=3)
    topics = Topics("s.", 3)
    bus.ensure_topics(topics.all())
    return bus, topics


def roundtrip(env: Envelope, topic: str = "s.verification") -> Envelope:
    key, value, headers = encode(env)
    return decode(Record(topic, 0, 0, key, value, tuple(headers)))


# --- per-event signatures ---------------------------------------------------------------------------------------


def test_a_signed_event_carries_its_signature_as_cloudevents_extensions_and_verifies() -> None:
    bus, topics = world()
    pub = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM)
    env = pub.publish(verified(), time=T)
    (record,) = [r for r in bus.records("s.verification")]
    headers = dict(record.headers)
    assert headers["ce_mrakey"] == PLATFORM.key_id.encode()
    assert len(base64.b64decode(headers["ce_mrasig"])) == 64  # an Ed25519 signature
    message = KafkaMessage(headers=headers, key=record.key, value=record.value)
    attrs = from_binary(message, JSONFormat()).get_attributes()  # any CloudEvents reader still reads it
    assert attrs["type"] == env.type and attrs["mrasig"] == headers["ce_mrasig"].decode()
    assert attrs["mrakey"] == PLATFORM.key_id
    assert Verifier(TRUST).per_event(decode(record)) is None


def test_unsigned_tampered_misattributed_and_unauthorised_events_are_refused_with_the_reason() -> None:
    bus, topics = world()
    good = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM).envelope(verified(), time=T)
    v = Verifier(TRUST)
    assert v.per_event(roundtrip(good)) is None

    unsigned = Publisher(bus, topics, PLATFORM.identity).envelope(verified(), time=T)
    assert (v.per_event(roundtrip(unsigned)) or "").startswith("unsigned:")

    forged_body = dataclasses.replace(good, data=verified("h-someone-else"), hash="")
    assert "does not verify" in (v.per_event(roundtrip(forged_body)) or "")

    # signed with the bureau's key but stamped as the platform's
    claimed = Publisher(bus, topics, PLATFORM.identity).envelope(verified(), time=T)
    reason = v.per_event(roundtrip(BUREAU.sign_event(claimed))) or ""
    assert reason.startswith("bad signature:") and "belongs to bureau-beijing" in reason

    # the bureau signing as itself: a good signature, but the bureau may not publish verification results
    as_bureau = Publisher(bus, topics, BUREAU.identity, signer=BUREAU).envelope(verified(), time=T)
    reason = v.per_event(roundtrip(as_bureau)) or ""
    assert reason.startswith("unauthorised:") and "bureau-beijing may not publish" in reason

    stranger = Signer.generate("stranger")
    reason = v.per_event(roundtrip(Publisher(bus, topics, "stranger", signer=stranger).envelope(verified(), time=T)))
    assert reason == "unauthorised: publisher 'stranger' is not in the trust store"

    no_stamp = dataclasses.replace(good, stamp=None)
    assert "no publisher stamp" in (v.per_event(roundtrip(no_stamp)) or "")


def test_trust_store_patterns_match_the_type_with_or_without_its_version() -> None:
    trust = trusted(PLATFORM, INTAKE)
    assert trust.may_publish("verification-platform", "cn.jjj.verification.certificate_verified.v1")
    assert trust.may_publish("verification-platform", "cn.jjj.holders.holder_registered.v1")
    assert not trust.may_publish("verification-platform", "cn.jjj.holders.employment_started.v2")
    assert trust.may_publish("beijing-intake", "cn.jjj.holders.employment_started.v2")
    assert not trust.may_publish("beijing-intake", "cn.jjj.verification.certificate_verified.v1")
    assert not trust.may_publish("nobody", "cn.jjj.catalogue.edition_published.v1")
    assert default_grants("some-new-service") is None


def test_a_rotated_key_still_verifies_what_it_signed_and_readers_pick_up_new_keys() -> None:
    bus, topics = world()
    old_env = roundtrip(Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM).envelope(verified(), time=T))
    newer = Signer.generate(PLATFORM.identity)
    rotated = TRUST.with_key(
        PLATFORM.identity,
        TrustedKey(key_id=newer.key_id, public_key=public_key_text(newer.private_key.public_key()), created=T),
        retire=[PLATFORM.key_id],
    )
    keys = rotated.identities[PLATFORM.identity].keys
    assert [k.retired is not None for k in keys] == [True, False]
    assert rotated.identities[PLATFORM.identity].may_publish == TRUST.identities[PLATFORM.identity].may_publish
    # retired at offset 5 of s.verification[0]: it vouches for what was written below that, and nothing after
    (old_key, new_key) = keys
    rotated = rotated.model_copy(
        update={
            "identities": {
                **rotated.identities,
                PLATFORM.identity: rotated.identities[PLATFORM.identity].model_copy(
                    update={"keys": (old_key.model_copy(update={"until": {"s.verification:0": 5}}), new_key)}
                ),
            }
        }
    )
    new_env = roundtrip(Publisher(bus, topics, PLATFORM.identity, signer=newer).envelope(verified(), time=T))
    before, after = Record("s.verification", 0, 4, None, None), Record("s.verification", 0, 5, None, None)

    stale = Verifier(TRUST)  # started before the rotation, and with nothing to reload from
    assert stale.per_event(old_env, after) is None
    assert (stale.per_event(new_env) or "").startswith("unknown key:")
    reloading = Verifier(TRUST, reload=lambda: rotated)
    assert reloading.per_event(new_env, after) is None and reloading.per_event(old_env, before) is None
    assert (reloading.per_event(old_env, after) or "").startswith("retired key:")
    assert (reloading.per_event(old_env, Record("s.verification", 1, 0, None, None)) or "").startswith("retired")


def test_a_publisher_refuses_a_key_of_another_identity() -> None:
    bus, topics = world()
    with pytest.raises(ValueError, match="belongs to bureau-beijing"):
        Publisher(bus, topics, "verification-platform", signer=BUREAU)
    with pytest.raises(ValueError, match="need a signer"):
        Publisher(bus, topics, "verification-platform", checkpoints=CheckpointPolicy())


# --- checkpoints ------------------------------------------------------------------------------------------------


def test_checkpoints_are_signed_every_n_events_and_on_flush_one_copy_per_topic_touched() -> None:
    bus, topics = world()
    pub = Publisher(bus, topics, INTAKE.identity, signer=INTAKE, checkpoints=CheckpointPolicy(every=3, ms=60_000))
    for i in range(4):
        pub.publish(ended(f"h{i}"), time=T)
    cps = [decode(r) for r in bus.records("s.holders") if decode(r).type.startswith("cn.jjj.holders.checkpoint")]
    assert len(cps) == 1 and isinstance(cps[0].data, HoldersCheckpoint)
    assert (cps[0].data.first_seq, cps[0].data.last_seq) == (0, 2)
    assert all("mrasig" not in decode(r).extensions for r in bus.records("s.holders"))  # no per-event signatures
    pub.publish(verified("h9"), time=T)
    pub.flush()
    holders_cps = [decode(r).data for r in bus.records("s.holders") if isinstance(decode(r).data, HoldersCheckpoint)]
    verification_cps = [decode(r).data for r in bus.records("s.verification")]
    verification_cps = [c for c in verification_cps if isinstance(c, VerificationCheckpoint)]
    assert len(holders_cps) == 2 and len(verification_cps) == 1  # the flush covered both topics it touched
    second = holders_cps[1]
    assert isinstance(second, HoldersCheckpoint) and second.model_dump() == verification_cps[0].model_dump()
    assert second.first_seq == 3 and second.prev == cps[0].data.last_hash  # type: ignore[attr-defined]
    pub.flush()  # nothing new to cover: no checkpoint about checkpoints
    assert len([r for r in bus.records("s.holders") if isinstance(decode(r).data, HoldersCheckpoint)]) == 2


class Recorder:
    """A read model that records what it was given, and where it got to."""

    def __init__(self) -> None:
        self.applied: list[Envelope] = []
        self.dead: list[DeadLetter] = []
        self.pos: dict[TopicPartition, int] = {}

    def positions(self) -> Mapping[TopicPartition, int]:
        return dict(self.pos)

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        for d in deliveries:
            self.applied.append(d.envelope)
        self.dead.extend(dead)
        for r in [d.record for d in deliveries] + [x.record for x in dead]:
            tp = (r.topic, r.partition)
            self.pos[tp] = max(self.pos.get(tp, 0), r.offset + 1)


def consume(bus: InMemoryTransport, topics: Topics, logical: list[str], guard: Guard, store: Recorder) -> Processor:
    processor = Processor(bus, topics, logical, guard.wrap(store), None, poll_ms=10, validate=guard.validate)
    processor.run(until_idle=True, timeout=10)
    return processor


def checkpoint_guard(bus: InMemoryTransport, topics: Topics, book: object | None = None, wait: float = 60) -> Guard:
    store = book if book is not None else MemoryBook()
    return Guard(
        Mode.CHECKPOINTS,
        Verifier(TRUST, store),  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        dead_letter_sender(bus, topics),
        max_wait_s=wait,
    )


def test_a_checkpoint_reader_applies_events_only_once_a_signed_checkpoint_covers_them() -> None:
    bus, topics = world()
    pub = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM, checkpoints=CheckpointPolicy(every=100))
    for i in range(5):  # the chain runs through two topics; this reader reads only one of them
        pub.publish(verified(f"h{i}"), time=T)
        pub.publish(facts.registered(f"h{i}", born=None), time=T)
    store = Recorder()
    guard = checkpoint_guard(bus, topics)
    consume(bus, topics, ["verification"], guard, store)
    assert store.applied == [] and guard.gates[0].held == 5  # nothing proven yet, nothing recorded

    pub.flush()  # the checkpoint
    consume(bus, topics, ["verification"], guard, store)
    kinds = [type(e.data).__name__ for e in store.applied]
    assert kinds.count("CertificateVerified") == 5 and kinds.count("VerificationCheckpoint") == 1
    assert guard.gates[-1].held == 0 and store.dead == []


def test_an_event_that_is_not_what_its_checkpoint_signed_or_never_covered_is_dead_lettered() -> None:
    bus, topics = world()
    pub = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM, checkpoints=CheckpointPolicy(every=100))
    genuine = pub.envelope(verified("h1"), time=T)
    pub.send(genuine)
    # someone writes another body under the same stamp, and an event of a chain that is never checkpointed
    pub.send(dataclasses.replace(genuine, id="forged", data=verified("h-attacker"), hash=""))
    Publisher(bus, topics, PLATFORM.identity).publish(verified("h-unproven"), time=T)
    pub.flush()
    store = Recorder()
    clock = [0.0]
    guard = checkpoint_guard(bus, topics)
    guard.max_wait_s = 5
    processor = Processor(bus, topics, ["verification"], guard.wrap(store), None, poll_ms=10, validate=guard.validate)
    guard.gates[0].clock = lambda: clock[0]
    processor.run(until_idle=True, timeout=10)
    applied = {e.id for e in store.applied if isinstance(e.data, CertificateVerified)}
    assert applied == {genuine.id}
    reasons = {d.reason.split(":")[0] for d in store.dead}
    assert "bad checkpoint match" in reasons
    assert guard.gates[0].held >= 1  # the unproven one waits (with whatever is behind it), bounded in time
    clock[0] = 10.0
    pub2 = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM, checkpoints=CheckpointPolicy(every=1))
    pub2.publish(verified("h-later"), time=T)
    processor.run(until_idle=True, timeout=10)
    unverified = [d for d in store.dead if d.reason.startswith("unverified:")]
    assert len(unverified) == 1 and "within 5s" in unverified[0].reason
    dlq = [dict(r.headers) for r in bus.records("s.deadletter")]
    assert {h["mra_dlq_reason"].decode().split(":")[0] for h in dlq} >= {
        "bad checkpoint match",
        "unverified",
    }
    assert guard.gates[0].held == 0


def at(env: Envelope, partition: int, offset: int) -> Delivery:
    key, value, headers = encode(env)
    record = Record("s.verification", partition, offset, key, value, tuple(headers))
    return Delivery(record, decode(record))


@pytest.mark.parametrize("durable", [True, False])
def test_verified_checkpoints_outlive_the_reader_so_held_events_are_recognised_when_read_again(
    tmp_path: Path, durable: bool
) -> None:
    bus, topics = world()
    unproven = at(Publisher(bus, topics, PLATFORM.identity).envelope(verified("x"), time=T), 0, 0)
    pub = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM, checkpoints=CheckpointPolicy(every=100))
    covered = at(pub.envelope(verified("h"), time=T), 0, 1)  # behind the unproven one in its partition
    pub.checkpoint()
    (cp_record,) = [r for r in bus.records("s.verification")]
    checkpoint = at(decode(cp_record), 1, 0)

    def book() -> SqliteBook | MemoryBook:
        return SqliteBook(tmp_path / "book.db") if durable else MemoryBook()

    store = Recorder()
    first = book()
    assert Verifier(TRUST, first).screen(checkpoint.envelope) is None
    CheckpointGate(store, first, lambda _: None).apply([unproven, covered, checkpoint], [])
    assert [type(e.data) for e in store.applied] == [VerificationCheckpoint]  # its position is now recorded
    assert store.positions() == {("s.verification", 1): 1}

    # the reader stops and starts again: partition 0 is read again, the checkpoint is not
    again = CheckpointGate(store, book(), lambda _: None, max_held=0)  # gives up on anything it cannot prove
    again.apply([unproven, covered], [])
    proven = [e.data.holder_id for e in store.applied if isinstance(e.data, CertificateVerified)]
    unverified = {d.record.offset for d in store.dead if d.reason.startswith("unverified:")}
    if durable:
        assert proven == ["h"] and unverified == {0}
    else:  # what a book that dies with the reader would do: lose a genuine event
        assert proven == [] and unverified == {0, 1}


def test_a_checkpoint_gate_keeps_partition_order_and_passes_failures_back() -> None:
    bus, topics = world()
    pub = Publisher(bus, topics, PLATFORM.identity, signer=PLATFORM, checkpoints=CheckpointPolicy(every=100))
    for i in range(6):
        pub.publish(verified("same-holder"), time=T, id=f"e{i}")
    pub.flush()
    records = bus.records("s.verification")
    deliveries = [Delivery(r, decode(r)) for r in records]
    verifier = Verifier(TRUST, MemoryBook())

    class Failing(Recorder):
        fail = True

        def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
            if self.fail:
                raise RuntimeError("disk full")
            super().apply(deliveries, dead)

    inner = Failing()
    gate = CheckpointGate(inner, verifier.book, lambda letters: None)  # type: ignore[arg-type]
    cps = [d for d in deliveries if isinstance(d.envelope.data, VerificationCheckpoint)]
    assert cps and all(verifier.screen(d.envelope) is None for d in cps)
    with pytest.raises(RuntimeError):
        gate.apply(deliveries, [])
    assert gate.held == 0 and inner.applied == []  # the batch is handed back whole, for the consumer to retry
    inner.fail = False
    gate.apply(deliveries, [])
    ids = [e.id for e in inner.applied if isinstance(e.data, CertificateVerified)]
    assert ids == [f"e{i}" for i in range(6)] and gate.held == 0


# --- chains and costs -------------------------------------------------------------------------------------------


def test_verify_chain_finds_a_changed_or_missing_event() -> None:
    bus, topics = world()
    pub = Publisher(bus, topics, INTAKE.identity)
    envs = [
        roundtrip(
            pub.envelope(facts.started(f"h{i}", years=None), time=T)
        )
        for i in range(4)
    ]
    assert verify_chain(envs) == []
    other = envs[0].data.model_copy(update={"holder_id": "h-other"})
    changed = roundtrip(dataclasses.replace(envs[1], data=other, hash=""))
    assert any("seq 2" in p for p in verify_chain([envs[0], changed, envs[2], envs[3]]))
    assert any("no event at seq 1" in p for p in verify_chain([envs[0], envs[2], envs[3]]))


def test_signing_costs_are_measured_and_checkpoints_are_cheaper_per_event() -> None:
    costs = measure_signing(events=300, every=100)
    figures = costs.as_dict()
    assert figures["events"] == 300 and all(v > 0 for v in figures.values())
    assert costs.checkpoint_verify_per_event_us < costs.verify_per_event_us / 5
    assert costs.checkpoint_sign_per_event_us < costs.sign_per_event_us / 5
