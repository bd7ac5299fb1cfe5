"""Dead letters on the in-memory transport: what they say, and re-driving them once, to where they came from."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.facts import T, ended
from support.picky import Picky

from mra.core.errors import NotFound, ValidationFailed
from mra.events.bus import InMemoryTransport
from mra.events.consumer import Processor
from mra.events.envelope import Record
from mra.events.publisher import Publisher
from mra.events.topics import Topics
from mra.services.dlq import RedriveLog, find, parse_ref, read_dead_letters, redrive

TOPICS = Topics("d.", 2)
NOW = datetime(2025, 10, 2, 8, tzinfo=UTC)


class World:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bus = InMemoryTransport()
        self.bus.ensure_topics(TOPICS.all())
        pub = Publisher(self.bus, TOPICS, "test")
        self.ids = [pub.publish(ended(f"h{i}", on=date(2025, 10, 1)), time=T).id for i in range(6)]
        self.bus.send(TOPICS.name("holders"), b"junk", b"\x00not an event", [("x-origin", b"a test")])

    def consume(self, name: str, poison: set[str]) -> Picky:
        store = Picky(self.tmp / f"{name}.db", poison)
        Processor(self.bus, TOPICS, ["holders"], store, name).run(until_idle=True, timeout=10)
        return store

    def records(self) -> list[Record]:
        return self.bus.records(TOPICS.name("holders"))


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_dead_letter_says_why_from_where_by_whom_and_what_it_holds(world: World) -> None:
    world.consume("bureau-a", {world.ids[2]})
    letters = read_dead_letters(world.bus, TOPICS)
    assert len(letters) == 2
    by_id = {e.id: e for e in letters}
    poison, junk = by_id[world.ids[2]], by_id[None]
    s = poison.summary()
    assert s["reason"] == "handler failed: LookupError: no such employment"
    assert s["consumer"] == "bureau-a" and s["type"] == "cn.jjj.holders.employment_ended.v1"
    assert s["original_topic"] == TOPICS.name("holders") and s["event_time"] == "2025-10-01T09:00:00Z"
    original = next(
        r for r in world.bus.records(TOPICS.name("holders")) if dict(r.headers).get("ce_id") == world.ids[2].encode()
    )
    assert (s["original_partition"], s["original_offset"]) == (original.partition, original.offset)
    assert s["ref"] == f"{poison.record.partition}:{poison.record.offset}"
    assert datetime.fromisoformat(s["dead_lettered_at"].replace("Z", "+00:00")).year >= 2025
    details = poison.details()
    assert json.loads(details["body"])["holder_id"] == "h2" and details["body"].startswith("{\n  ")
    assert ["mra_dlq_consumer", "bureau-a"] in details["headers"]
    assert junk.reason.startswith("not a CloudEvent") and junk.type is None
    assert junk.details()["body"].startswith("\x00not an event") and junk.details()["key"] == "junk"


def test_replay_republishes_the_original_record_once_and_the_fixed_consumer_applies_it(world: World) -> None:
    poison = world.ids[3]
    broken = world.consume("bureau-a", {poison})
    healthy = world.consume("bureau-b", set())
    assert poison not in broken.event_ids() and poison in healthy.event_ids()
    letters = read_dead_letters(world.bus, TOPICS)
    letter = next(e for e in letters if e.id == poison)
    before = world.records()
    log = RedriveLog.at(world.tmp, TOPICS)

    dry = redrive(world.bus, TOPICS, [letter], log, dry_run=True, now=NOW)
    assert [(r.status, r.entry.id) for r in dry] == [("would-redrive", poison)]
    assert world.records() == before and log.when(letter) is None

    done = redrive(world.bus, TOPICS, [letter], log, now=NOW)
    assert [r.status for r in done] == ["redriven"]
    after = world.records()
    [new] = [r for r in after if (r.partition, r.offset) not in {(b.partition, b.offset) for b in before}]
    assert (new.key, new.value) == (letter.record.key, letter.record.value)
    assert new.headers == tuple(h for h in letter.record.headers if not h[0].startswith("mra_dlq_"))
    assert (new.partition, dict(new.headers)["ce_id"]) == (letter.original_partition, poison.encode())
    assert log.when(letter) == NOW.isoformat()

    again = redrive(world.bus, TOPICS, [letter], log, now=NOW)
    assert [(r.status, r.detail) for r in again] == [("skipped", f"already re-driven at {NOW.isoformat()}")]
    assert world.records() == after

    broken.poison = set()  # the fix
    Processor(world.bus, TOPICS, ["holders"], broken, "bureau-a").run(until_idle=True, timeout=10)
    assert broken.event_ids().count(poison) == 1
    applied = healthy.applied_count()
    Processor(world.bus, TOPICS, ["holders"], healthy, "bureau-b").run(until_idle=True, timeout=10)
    assert healthy.applied_count() == applied  # it had the event: the re-published copy is skipped by its id
    log.close()


def test_the_same_record_set_aside_by_two_consumers_is_redriven_once(world: World) -> None:
    poison = world.ids[1]
    world.consume("bureau-a", {poison})
    world.consume("bureau-b", {poison})
    letters = [e for e in read_dead_letters(world.bus, TOPICS) if e.id == poison]
    assert len(letters) == 2 and {e.consumer for e in letters} == {"bureau-a", "bureau-b"}
    log = RedriveLog.at(world.tmp, TOPICS)
    results = redrive(world.bus, TOPICS, letters, log, now=NOW)
    assert sorted(r.status for r in results) == ["redriven", "skipped"]
    assert all(log.when(e) is not None for e in letters)  # the other one counts as re-driven too
    later = redrive(world.bus, TOPICS, letters, log, now=NOW)
    assert [r.status for r in later] == ["skipped", "skipped"]
    log.close()


def test_what_was_not_set_aside_by_mra_is_refused(world: World) -> None:
    world.bus.send(TOPICS.name("deadletter"), b"k", b"{}", [("ce_id", b"x")])
    world.bus.send(
        TOPICS.name("deadletter"), b"k", b"{}", [("mra_dlq_topic", b"elsewhere.holders"), ("mra_dlq_reason", b"?")]
    )
    world.bus.send(TOPICS.name("deadletter"), b"k", b"{}", [("mra_dlq_topic", TOPICS.name("deadletter").encode())])
    letters = read_dead_letters(world.bus, TOPICS)
    log = RedriveLog.at(world.tmp, TOPICS)
    results = redrive(world.bus, TOPICS, letters, log, now=NOW)
    assert [r.status for r in results] == ["refused"] * 3
    details = {r.detail for r in results}
    assert details == {
        "no mra_dlq_topic header: not a dead letter mra wrote",
        "its original topic 'elsewhere.holders' is not one of this deployment's topics (prefix 'd.')",
        "its original topic is the dead-letter topic itself",
    }
    log.close()


@pytest.mark.parametrize("ref", ["", "1", "a:b", "1:", ":2", "-1:2", "1:2:3"])
def test_a_malformed_ref_is_refused(ref: str) -> None:
    with pytest.raises(ValidationFailed, match="PARTITION:OFFSET"):
        parse_ref(ref)


def test_an_unknown_ref_is_not_found(world: World) -> None:
    world.consume("bureau-a", set())
    letters = read_dead_letters(world.bus, TOPICS)
    assert find(letters, letters[0].ref) is letters[0]
    with pytest.raises(NotFound, match="no dead letter 7:99"):
        find(letters, "7:99")
