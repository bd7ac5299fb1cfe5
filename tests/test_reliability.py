"""Faults at the consumer, on the in-memory transport: a cluster that does not answer, poison events, plugins that
fail or hang in one jurisdiction, hostile records, duplicate ids, out-of-order facts, and a log that got shorter."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import facts
from support.facts import T, decision_ids, ended, holder_facts, read_back
from support.signed import provisioned, signed

from mra.core.hookspecs import hookimpl
from mra.core.jjj import JjjDestination, treatments_setting
from mra.core.models import BenefitDecision, DecisionContext, Jurisdiction
from mra.core.plugins import load_registry
from mra.events.bus import InMemoryReader, InMemoryTransport, PublishError, TopicPartition
from mra.events.consumer import DeadLetter, Delivery, LogTruncated, Processor
from mra.events.envelope import MAX_MESSAGE_BYTES, Record, encode
from mra.events.kafka import KafkaPublishError
from mra.events.publisher import Publisher
from mra.events.schemas import CertificateRevoked, CertificateVerified, Event
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.journal import Journal
from mra.services.replay import compare, replay
from mra.services.runtime import Runtime

TOPICS = Topics("r.", 2)
REGISTRY = load_registry()
FAST = {"backoff_s": 0.02, "max_backoff_s": 0.1}


# --- transports with faults -----------------------------------------------------------------------------------


class FaultyReader:
    """An in-memory reader whose calls fail like a cluster that does not answer, while ``bus.reads_down``."""

    def __init__(self, bus: FaultyBus, inner: InMemoryReader) -> None:
        self.bus, self.inner = bus, inner

    def _gate(self, what: str, error: type[Exception] = ConnectionError) -> None:
        if what in self.bus.down:
            self.bus.failures[what] += 1
            raise error(f"{what}: no answer from the cluster")

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        self._gate("poll")
        return self.inner.poll(timeout_ms, max_records)

    def assignment(self) -> set[TopicPartition]:
        return self.inner.assignment()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.inner.seek(tp, offset)

    def seek_to_beginning(self, tps: Iterable[TopicPartition]) -> None:
        self.inner.seek_to_beginning(tps)

    def position(self, tp: TopicPartition) -> int:
        return self.inner.position(tp)

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        self._gate("end_offsets", TimeoutError)
        return self.inner.end_offsets(tps)

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return self.inner.beginning_offsets(tps)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self._gate("commit")
        self.inner.commit(offsets)

    def close(self) -> None:
        self.inner.close()


class FaultyBus(InMemoryTransport):
    """The calls named in ``down`` fail as they do when the cluster does not answer (``send`` with a
    :class:`PublishError`, ``end_offsets`` with a :class:`TimeoutError`, the others with a :class:`ConnectionError`)."""

    READS = frozenset({"poll", "end_offsets", "commit"})

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()
        self.failures: dict[str, int] = {"poll": 0, "end_offsets": 0, "commit": 0, "send": 0}

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        if "send" in self.down:
            self.failures["send"] += 1
            raise PublishError(f"cannot reach the cluster to write to {topic}")
        super().send(topic, key, value, headers)

    def reader(self, topics: Sequence[str], group: str | None = None, on_assign: Any = None) -> FaultyReader:  # type: ignore[override]
        return FaultyReader(self, super().reader(topics, group, on_assign))


def holder_events(i: int, j: str = "beijing") -> list[Event]:
    """Holder ``h{i:03d}``'s facts, its request, key and code numbered ``r{i}``, ``k{i}``, ``C{i}``."""
    return holder_facts(f"h{i:03d}", j=j, born=date(1980, 1, 1), request=f"r{i}", key=f"k{i}", code=f"C{i}")


def publish(bus: InMemoryTransport, events: Sequence[Event], ids: Sequence[str] | None = None) -> list[str]:
    """``events`` under fresh random ids (or ``ids``), by a new publisher: a new epoch each call."""
    bus.ensure_topics(TOPICS.all())
    return facts.publish(signed(bus, TOPICS), events, ids=ids)


def dead_letters(bus: InMemoryTransport) -> list[Record]:
    return bus.records(TOPICS.name("deadletter"))


def header(r: Record, name: str) -> str:
    return dict(r.headers)[name].decode()


# --- the cluster does not answer ------------------------------------------------------------------------------


def test_a_consumer_waits_out_a_cluster_that_does_not_answer_and_then_applies_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bus = FaultyBus()
    publish(bus, [e for i in range(10) for e in holder_events(i)])
    journal = Journal(tmp_path / "j.db")
    processor = Processor(bus, TOPICS, ["holders", "verification"], journal, "g", **FAST)
    bus.down |= FaultyBus.READS
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(stats=processor.run(until_idle=True, timeout=30)))
    with caplog.at_level(logging.WARNING, logger="mra.events.consumer"):
        worker.start()
        waited = 0.0
        while bus.failures["poll"] < 5 and waited < 20:
            time.sleep(0.01)
            waited += 0.01
        assert worker.is_alive(), "the consumer gave up while the cluster was down"
        bus.down.clear()
        worker.join(30)
    stats = result["stats"]
    assert stats.idle and stats.applied == 30 and stats.dead_lettered == 0
    assert stats.transient >= 5  # every failure was waited out, none was the events' fault
    assert journal.applied_count() == 30
    assert any("the cluster did not answer" in r.message and "trying again" in r.message for r in caplog.records)


@pytest.mark.parametrize("call", ["end_offsets", "commit"])
def test_a_failing_end_offset_query_or_commit_is_survived(tmp_path: Path, call: str) -> None:
    bus = FaultyBus()
    publish(bus, holder_events(1))
    journal = Journal(tmp_path / "j.db")
    processor = Processor(bus, TOPICS, ["holders", "verification"], journal, "g", **FAST)
    bus.down.add(call)
    timer = threading.Timer(0.5, bus.down.clear)
    timer.start()
    stats = processor.run(until_idle=True, timeout=20)
    timer.join()
    assert stats.idle and stats.applied == 3 and bus.failures[call] > 0
    # a failed commit costs nothing (the local store holds the positions); a failed end-offset query is waited out
    assert (stats.transient > 0) == (call == "end_offsets")


def test_decisions_that_cannot_be_published_are_retried_never_dead_lettered(tmp_path: Path) -> None:
    bus = FaultyBus()
    publish(bus, [e for i in range(5) for e in holder_events(i, "tianjin")])
    runtime = Runtime(provisioned(tmp_path), topics=TOPICS)
    bureau = open_bureau(runtime, "tianjin", registry=REGISTRY, transport=bus, group=False, db=tmp_path / "tj.db")
    bureau.processor.backoff_s, bureau.processor.max_backoff_s = 0.02, 0.1
    bus.down.add("send")  # the benefits topic cannot be written: the relay after each commit fails
    timer = threading.Timer(0.5, bus.down.clear)
    timer.start()
    stats = bureau.run(until_idle=True, timeout=30)
    timer.join()
    assert stats.idle and stats.dead_lettered == 0 and bus.failures["send"] > 0
    assert stats.transient > 0
    ids = decision_ids(e.data for e in read_back(bus, TOPICS))
    active = {d.decision_id for d in bureau.store.active_decisions()}
    assert len(active) == 5 and set(ids) == active and len(ids) == len(set(ids))
    assert dead_letters(bus) == [] and bureau.store.counts()["outbox_unsent"] == 0
    bureau.close()


# --- poison events and failing plugins ------------------------------------------------------------------------


class Picky(Journal):
    """A handler that fails on one event id, every time."""

    poison = ""
    attempts = 0

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        if any(d.envelope.id == self.poison for d in deliveries):
            self.attempts += 1
            raise ValueError("cannot apply this one")
        super().apply(deliveries, dead)


def test_a_poison_event_is_dead_lettered_after_bounded_retries_and_the_rest_applied(tmp_path: Path) -> None:
    bus = InMemoryTransport()
    ids = publish(bus, [e for i in range(4) for e in holder_events(i)])
    store = Picky(tmp_path / "j.db")
    store.poison = ids[5]
    processor = Processor(bus, TOPICS, ["holders", "verification"], store, "bureau-x", retries=2)
    stats = processor.run(until_idle=True, timeout=10)
    assert stats.idle and stats.applied == 11 and stats.dead_lettered == 1
    assert store.attempts == 1 + 3  # the batch, then the event alone: once and two retries
    [letter] = dead_letters(bus)
    assert header(letter, "ce_id") == ids[5]
    assert header(letter, "mra_dlq_reason") == "handler failed: ValueError: cannot apply this one"
    assert header(letter, "mra_dlq_consumer") == "bureau-x"
    original = next(
        r
        for t in ("holders", "verification")
        for r in bus.records(TOPICS.name(t))
        if r.headers == tuple(h for h in letter.headers if not h[0].startswith("mra_dlq_"))
    )
    assert (
        header(letter, "mra_dlq_topic"),
        int(header(letter, "mra_dlq_partition")),
        int(header(letter, "mra_dlq_offset")),
    ) == (original.topic, original.partition, original.offset)
    again = Processor(bus, TOPICS, ["holders", "verification"], store, "bureau-x").run(until_idle=True, timeout=10)
    assert again.polled == 0  # its position was recorded with the rest: it is not read again


class BrokenDestination(JjjDestination):
    """A destination whose rules raise, or wait on ``gate`` before deciding."""

    gate: threading.Event | None = None

    @hookimpl
    def mra_decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object]
    ) -> Sequence[BenefitDecision] | None:
        if jurisdiction != self.jurisdiction.code:
            return None
        if self.gate is None:
            raise RuntimeError("rule table missing")
        self.gate.wait(30)
        return super().mra_decide(jurisdiction, context, settings)


def _xiongan(gate: threading.Event | None = None) -> BrokenDestination:
    plugin = BrokenDestination(
        Jurisdiction(code="xiongan", prefix="xa", name_zh="雄安新区", name_en="Xiong'an", regions=("xiongan",)),
        (treatments_setting("xa", why="a test jurisdiction"),),
    )
    plugin.gate = gate
    return plugin


def _population(bus: InMemoryTransport) -> None:
    places = ["beijing", "tianjin", "hebei", "xiongan"]
    publish(bus, [e for i in range(12) for e in holder_events(i, places[i % 4])])


def test_a_plugin_that_raises_in_one_jurisdiction_stops_no_other(tmp_path: Path) -> None:
    registry = load_registry(extra={"xiongan": _xiongan()})
    assert "xiongan" in registry.jurisdictions, registry.failures
    bus = InMemoryTransport()
    _population(bus)
    runtime = Runtime(provisioned(tmp_path, "bureau-xiongan"), topics=TOPICS)
    bureaus = {
        j: open_bureau(runtime, j, registry=registry, transport=bus, group=False, db=tmp_path / f"{j}.db")
        for j in ("beijing", "tianjin", "hebei", "xiongan")
    }
    stats = {j: b.run(until_idle=True, timeout=30) for j, b in bureaus.items()}
    assert all(s.idle for s in stats.values())
    rules = {j: len(registry.rules(j)) for j in bureaus}
    for j in ("beijing", "tianjin", "hebei"):
        assert stats[j].dead_lettered == 0
        assert len(bureaus[j].store.active_decisions()) == 3 * rules[j]  # three holders each
    # in xiongan, each fact that makes the bureau decide fails; everything else is applied
    assert stats["xiongan"].dead_lettered > 0 and bureaus["xiongan"].store.active_decisions() == []
    letters = dead_letters(bus)
    assert len(letters) == stats["xiongan"].dead_lettered
    assert all(
        "xiongan" in header(r, "mra_dlq_reason") and "rule table missing" in header(r, "mra_dlq_reason")
        for r in letters
    )
    for b in bureaus.values():
        b.close()


def test_a_plugin_that_hangs_in_one_jurisdiction_stops_no_other(tmp_path: Path) -> None:
    gate = threading.Event()
    registry = load_registry(extra={"xiongan": _xiongan(gate)})
    bus = InMemoryTransport()
    _population(bus)
    runtime = Runtime(provisioned(tmp_path, "bureau-xiongan"), topics=TOPICS)
    slow = open_bureau(runtime, "xiongan", registry=registry, transport=bus, group=False, db=tmp_path / "xa.db")
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(stats=slow.run(until_idle=True, timeout=60)))
    worker.start()
    try:
        others = {
            j: open_bureau(runtime, j, registry=registry, transport=bus, group=False, db=tmp_path / f"{j}.db")
            for j in ("beijing", "tianjin", "hebei")
        }
        for j, b in others.items():
            assert b.run(until_idle=True, timeout=30).idle, j
            assert len(b.store.active_decisions()) == 3 * len(registry.rules(j))
            b.close()
        assert worker.is_alive(), "the hung plugin's bureau should still be waiting"
    finally:
        gate.set()
        worker.join(60)
    assert result["stats"].idle and len(slow.store.active_decisions()) == 3
    slow.close()


# --- hostile records ------------------------------------------------------------------------------------------


def _good() -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    pub = Publisher(InMemoryTransport(), TOPICS, "test")
    return encode(pub.envelope(ended("h1", on=date(2025, 10, 1))))


def _with(headers: list[tuple[str, bytes]], **changes: bytes) -> list[tuple[str, bytes]]:
    return [(k, changes.get(k.replace("-", "_"), v)) for k, v in headers]


def _v1_started(years: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    _, _, headers = _good()
    body = (
        '{"holder_id": "h1", "jurisdiction": "beijing", "employer": {"name": "E", "credit_code": "C", '
        f'"region": "beijing"}}, "started": "2025-09-01", "years": {years}}}'
    )
    return body.encode(), _with(headers, ce_type=b"cn.jjj.holders.employment_started.v1")


HOSTILE: dict[str, tuple[Any, tuple[str, ...]]] = {
    "not a CloudEvent": (lambda k, v, h: (b"\x00\xff" * 40, []), ("missing header(s)",)),
    "oversized": (lambda k, v, h: (v[:-1] + b',"pad":"' + b"x" * MAX_MESSAGE_BYTES + b'"}', h), ("exceeds the",)),
    "wrong content type": (
        lambda k, v, h: (v, _with(h, content_type=b"application/xml")),
        ("unsupported content-type",),
    ),
    "unknown type": (lambda k, v, h: (v, _with(h, ce_type=b"cn.jjj.holders.promoted.v1")), ("unknown event type",)),
    "newer version": (
        lambda k, v, h: (v, _with(h, ce_type=b"cn.jjj.holders.employment_ended.v7")),
        ("newer than this mra reads",),
    ),
    "malformed type": (lambda k, v, h: (v, _with(h, ce_type=b"\xff\xfe")), ("not UTF-8",)),
    "body not JSON": (lambda k, v, h: (b"\x89PNG\r\n", h), ("body is not JSON",)),
    "deeply nested body": (lambda k, v, h: (b"[" * 100_000, h), ("cannot decode: RecursionError", "JSON")),
    "v1 body an upcaster cannot read": (lambda k, v, h: _v1_started('"three"'), ("cannot decode: ValueError", "years")),
    "v1 body of the wrong shape": (lambda k, v, h: _v1_started("[3]"), ("cannot decode: TypeError", "years")),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_record_is_dead_lettered_with_its_reason_and_the_consumer_goes_on(tmp_path: Path, case: str) -> None:
    bus = InMemoryTransport()
    bus.ensure_topics(TOPICS.all())
    mutate, reason = HOSTILE[case]
    key, value, headers = _good()
    bad_value, bad_headers = mutate(key, value, headers)
    before = publish(bus, [ended("h1", on=date(2025, 10, 1))])
    bus.send(TOPICS.name("holders"), key, bad_value, bad_headers)
    after = publish(bus, [ended("h1", on=date(2025, 10, 2))])
    journal = Journal(tmp_path / "j.db")
    stats = Processor(bus, TOPICS, ["holders"], journal, None).run(until_idle=True, timeout=10)
    assert stats.idle and stats.polled == 3 and stats.dead_lettered == 1
    assert journal.event_ids() == [*before, *after]
    [letter] = dead_letters(bus)
    assert any(r in header(letter, "mra_dlq_reason") for r in reason), header(letter, "mra_dlq_reason")


def test_a_duplicate_event_id_is_applied_once_and_other_content_under_it_is_dead_lettered(tmp_path: Path) -> None:
    bus = InMemoryTransport()
    first = ended("h1", on=date(2025, 10, 1))
    other = ended("h1", on=date(2026, 1, 1))
    publish(bus, [first, first, other], ids=["same", "same", "same"])
    journal = Journal(tmp_path / "j.db")
    stats = Processor(bus, TOPICS, ["holders"], journal, None).run(until_idle=True, timeout=10)
    assert stats.polled == 3 and stats.dead_lettered == 1
    rows = journal.db.execute("SELECT event_id, body FROM events").fetchall()
    assert [r[0] for r in rows] == ["same"] and json.loads(rows[0][1])["ended"] == "2025-10-01"
    (letter,) = bus.records(TOPICS.name("deadletter"))
    reason = dict(letter.headers)["mra_dlq_reason"].decode()
    assert reason.startswith("id reused:") and "not a redelivery" in reason


def test_a_fact_published_twice_decides_and_publishes_nothing_twice(tmp_path: Path) -> None:
    bus = InMemoryTransport()
    events = holder_events(1)
    publish(bus, [*events, *events], ids=["a", "b", "c", "a", "b", "c"])
    runtime = Runtime(provisioned(tmp_path), topics=TOPICS)
    bureau = open_bureau(runtime, "beijing", registry=REGISTRY, transport=bus, group=False, db=tmp_path / "bj.db")
    stats = bureau.run(until_idle=True, timeout=10)
    assert stats.polled == 6 and bureau.store.applied_count() == 3
    published = read_back(bus, TOPICS)
    assert len(published) == 1  # one decision set for the holder's certificate
    assert len(decision_ids(e.data for e in published)) == len(REGISTRY.rules("beijing"))
    bureau.close()


# --- out-of-order facts for one holder ------------------------------------------------------------------------


def _fold(tmp: Path, events: list[Event], j: str = "beijing") -> tuple[list[str], list[Any]]:
    """Decisions of a live bureau over ``events`` in this order, and the differences from a replay of the log."""
    bus = InMemoryTransport()
    publish(bus, events)
    runtime = Runtime(provisioned(tmp), topics=TOPICS)
    live = open_bureau(runtime, j, registry=REGISTRY, transport=bus, group=False, db=tmp / "live.db")
    live.run(until_idle=True, timeout=10)
    again = replay(runtime, j, registry=REGISTRY, transport=bus, into=tmp / "replay")
    codes = sorted(d.code for d in live.store.active_decisions())
    diff = compare(live.store, again.store)
    live.close()
    again.store.close()
    return codes, diff


def test_an_end_that_arrives_before_its_start_is_ignored_and_a_replay_agrees(tmp_path: Path) -> None:
    registered, verified, started = holder_events(1)
    end = ended("h001", on=date(2025, 10, 1))
    in_order, _ = _fold(tmp_path / "a", [registered, verified, started, end])
    reversed_, diff = _fold(tmp_path / "b", [registered, verified, end, started])
    assert in_order == []  # ended: nothing decided
    assert len(reversed_) == len(REGISTRY.rules("beijing")) and diff == []  # the end referred to nothing yet


def test_a_revocation_that_arrives_before_its_verification_is_ignored_and_a_replay_agrees(tmp_path: Path) -> None:
    registered, verified, started = holder_events(1)
    assert isinstance(verified, CertificateVerified)
    revoked = CertificateRevoked(
        holder_id="h001", certificate_key="k1", verification_code="C1", revoked_at=T, reason="withdrawn"
    )
    in_order, _ = _fold(tmp_path / "a", [registered, verified, revoked, started])
    early, diff = _fold(tmp_path / "b", [registered, revoked, verified, started])
    assert in_order == []
    assert len(early) == len(REGISTRY.rules("beijing")) and diff == []


def test_facts_of_one_holder_on_different_topics_decide_the_same_in_any_interleaving(tmp_path: Path) -> None:
    registered, verified, started = holder_events(1, "hebei")
    a, _ = _fold(tmp_path / "a", [registered, verified, started], "hebei")
    b, diff = _fold(tmp_path / "b", [started, verified, registered], "hebei")
    assert a == b == ["hb.jjj_recognition"] and diff == []


# --- a log shorter than what was read -------------------------------------------------------------------------


class ShrunkReader(FaultyReader):
    """What a client sees of a broker that came back with a shorter log: ``mode`` picks the broker's behaviour.

    ``reset``: a seek past the end is answered from the beginning (Kafka's OffsetOutOfRange with
    auto_offset_reset=earliest). ``highwater``: the fetch reports the true, shorter end (the development broker).
    ``stale``: the fetch reports a wrong, low end, but the log is as long as ever (no fault).
    """

    mode = "highwater"

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if self.mode == "reset" and offset > self.inner.end_offsets([tp])[tp]:
            offset = 0
        self.inner.seek(tp, offset)

    def highwater(self, tp: TopicPartition) -> int | None:
        return 0 if self.mode == "stale" else self.inner.end_offsets([tp])[tp]


class ShrunkBus(FaultyBus):
    mode = "highwater"

    def reader(self, topics: Sequence[str], group: str | None = None, on_assign: Any = None) -> ShrunkReader:  # type: ignore[override]
        r = ShrunkReader(self, InMemoryReader(self, list(topics), group, on_assign))
        r.mode = self.mode
        return r


def _read_then_shrink(tmp: Path, mode: str, keep: int) -> tuple[ShrunkBus, Journal]:
    """A journal reads 20 events; the log then comes back with only ``keep`` of them, plus nothing new."""
    bus = ShrunkBus()
    bus.mode = mode
    publish(
        bus, [ended("h1", on=date(2025, 10, d)) for d in range(1, 21)]
    )
    journal = Journal(tmp / "j.db")
    assert Processor(bus, Topics("r.", 2), ["holders"], journal, None).run(until_idle=True, timeout=10).applied == 20
    log = bus._logs[TOPICS.name("holders")]
    for part in log.parts:
        del part[keep:]
    return bus, journal


@pytest.mark.parametrize(
    ("mode", "keep", "sign"),
    [("reset", 2, "expected offset"), ("highwater", 2, "log ends at"), ("highwater", 0, "ends at offset 0")],
)
def test_a_log_shorter_than_what_was_read_stops_the_consumer_instead_of_skipping(
    tmp_path: Path, mode: str, keep: int, sign: str
) -> None:
    bus, journal = _read_then_shrink(tmp_path, mode, keep)
    if mode == "reset":  # new records are written where the old ones were
        publish(bus, [ended("h2", on=date(2025, 11, 1))])
    before = journal.applied_count()
    processor = Processor(bus, TOPICS, ["holders"], journal, None)
    with pytest.raises(LogTruncated, match=sign) as caught:
        processor.run(until_idle=True, timeout=10)
    assert "Not skipping ahead" in str(caught.value) or "Not re-reading" in str(caught.value)
    assert journal.applied_count() == before  # nothing read after the cut was applied


def test_a_low_end_reported_by_a_fetch_is_not_taken_for_a_shorter_log_when_end_offsets_disagree(
    tmp_path: Path,
) -> None:
    bus, journal = _read_then_shrink(tmp_path, "stale", 100)
    publish(bus, [ended("h3", on=date(2025, 12, 1))])
    stats = Processor(bus, TOPICS, ["holders"], journal, None).run(until_idle=True, timeout=10)
    assert stats.idle and stats.applied == 1


def test_the_dead_letter_table_and_positions_survive_a_consumer_restart(tmp_path: Path) -> None:
    bus = InMemoryTransport()
    bus.ensure_topics(TOPICS.all())
    bus.send(TOPICS.name("holders"), b"k", b"garbage", [])
    journal = Journal(tmp_path / "j.db")
    Processor(bus, TOPICS, ["holders"], journal, None).run(until_idle=True, timeout=10)
    journal.close()
    with sqlite3.connect(tmp_path / "j.db") as db:
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 1
    again = Processor(bus, TOPICS, ["holders"], Journal(tmp_path / "j.db"), None).run(until_idle=True, timeout=10)
    assert again.polled == 0 and len(dead_letters(bus)) == 1


def test_undecodable_records_in_a_batch_that_fails_are_dead_lettered_once_and_not_read_again(tmp_path: Path) -> None:
    bus = FaultyBus()
    ids = publish(
        bus, [ended("h1", on=date(2025, 10, d)) for d in (1, 2)]
    )
    bus.send(TOPICS.name("holders"), b"h1", b"junk", [])  # the last record of its partition
    store = Picky(tmp_path / "j.db")
    store.poison = ids[1]
    bus.down.add("send")  # the first tries cannot even reach the dead-letter topic
    timer = threading.Timer(0.3, bus.down.clear)
    timer.start()
    stats = Processor(bus, TOPICS, ["holders"], store, None, **FAST).run(until_idle=True, timeout=10)
    timer.join()
    assert stats.dead_lettered == 2 and stats.transient > 0
    assert len(dead_letters(bus)) == 2  # once each, however often the batch was tried
    again = Processor(bus, TOPICS, ["holders"], store, None).run(until_idle=True, timeout=10)
    assert again.polled == 0 and len(dead_letters(bus)) == 2


class PartialReader(FaultyReader):
    """A group member that was given only partition 0: the others are still held by a member that died."""

    def assignment(self) -> set[TopicPartition]:
        return {tp for tp in self.inner.assignment() if tp[1] == 0}


class PartialBus(FaultyBus):
    def reader(self, topics: Sequence[str], group: str | None = None, on_assign: Any = None) -> PartialReader:  # type: ignore[override]
        inner = InMemoryReader(self, list(topics), group, None)
        reader = PartialReader(self, inner)
        if on_assign is not None:
            on_assign(reader.assignment())
        return reader


@pytest.mark.parametrize("whole", [True, False])
def test_a_group_member_with_part_of_the_partitions_is_not_idle_until_its_share_has_stood(
    tmp_path: Path, whole: bool
) -> None:
    bus = InMemoryTransport() if whole else PartialBus()
    publish(bus, [])
    processor = Processor(bus, TOPICS, ["holders"], Journal(tmp_path / "j.db"), "g", group_settle_s=1.5)
    stats = processor.run(until_idle=True, timeout=10)
    assert stats.idle
    assert (stats.seconds >= 1.5) is (not whole)  # a dead member's partitions would have come back by then


def test_a_message_the_cluster_refuses_stops_the_consumer_and_dead_letters_nothing(tmp_path: Path) -> None:
    class Refusing(Journal):
        def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
            super().apply(deliveries, dead)
            raise KafkaPublishError("1 message(s) not written: MessageSizeTooLargeError", retriable=False)

    bus = InMemoryTransport()
    publish(bus, holder_events(1))
    processor = Processor(bus, TOPICS, ["holders", "verification"], Refusing(tmp_path / "j.db"), None, **FAST)
    with pytest.raises(KafkaPublishError, match="MessageSizeTooLargeError") as caught:
        processor.run(until_idle=True, timeout=10)
    assert caught.value.exit_code == 1 and "try again" not in str(caught.value)
    assert dead_letters(bus) == []
