"""The outbox the bureau and the platform share: queued with the change, published after commit, then marked.

A relay that fails part-way marks nothing: the next relay publishes every row again under the same ids and the
same bytes, and readers dedupe by id. Each store keeps the outbox table layout its state directories already have.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from mra.core.ids import stable_id
from mra.core.models import HolderCategory
from mra.core.plugins import load_registry
from mra.events.bus import InMemoryTransport, PublishError
from mra.events.envelope import decode
from mra.events.publisher import Publisher
from mra.events.schemas import EmploymentStarted, Event, HolderRegistered, VerificationRejected
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.platform import PlatformStore
from mra.services.store import Outbox, SqliteStore

TOPICS = Topics("t.", 2)
T = datetime(2025, 10, 10, 2, 0, tzinfo=UTC)
KINDS: dict[str, type[Event]] = {HolderRegistered.__name__: HolderRegistered}

OLD_BUREAU_OUTBOX = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    body TEXT NOT NULL, time TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0
);
"""
OLD_PLATFORM_OUTBOX = """
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, request_id TEXT NOT NULL,
    type TEXT NOT NULL, time TEXT NOT NULL, body TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0
);
"""


class Store(SqliteStore):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self.outbox = Outbox(self)


class Flaky(InMemoryTransport):
    """Fails the ``fail_at``-th send (1-based), or every flush with ``fail_flush``."""

    def __init__(self) -> None:
        super().__init__(2)
        self.fail_at: int | None = None
        self.fail_flush = False
        self.sends = 0

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        self.sends += 1
        if self.sends == self.fail_at:
            raise PublishError("broker gone")
        super().send(topic, key, value, headers)

    def flush(self, timeout: float | None = None) -> None:
        if self.fail_flush:
            raise PublishError("flush timed out")


def holder(i: int) -> HolderRegistered:
    return HolderRegistered(holder_id=f"h{i}", category=HolderCategory.FOREIGN, birth_date=date(1990, 1, i + 1))


def queued(store: Store, n: int = 3) -> list[tuple[str, bytes]]:
    """Queue ``n`` events in one transaction; their ids and stored bodies."""
    out = []
    with store.transaction() as db:
        for i in range(n):
            event_id, body = stable_id("test", str(i)), holder(i).model_dump_json()
            assert store.outbox.queue(db, event_id, HolderRegistered.__name__, body, T + timedelta(seconds=i))
            out.append((event_id, body.encode()))
    return out


def sent(bus: InMemoryTransport) -> list[tuple[str, bytes]]:
    return [(decode(r).id, r.value) for r in bus.records(TOPICS.name("holders"))]


def test_a_relay_that_fails_part_way_publishes_every_row_again_under_the_same_ids(tmp_path: Path) -> None:
    bus = Flaky()
    bus.ensure_topics(TOPICS.all())
    store = Store(tmp_path / "s.db")
    rows = queued(store)
    bus.fail_at = 2
    with pytest.raises(PublishError):
        store.outbox.relay(Publisher(bus, TOPICS, "x"), KINDS)
    assert len(store.outbox.unsent()) == 3 and sent(bus) == rows[:1]
    bus.fail_at = None
    assert store.outbox.relay(Publisher(bus, TOPICS, "x"), KINDS) == 3
    assert sorted(sent(bus)) == sorted(rows[:1] + rows)  # the first row again, same id, same bytes
    assert store.outbox.unsent() == [] and store.outbox.relay(Publisher(bus, TOPICS, "x"), KINDS) == 0


def test_a_relay_killed_after_publishing_and_before_marking_re_sends_the_same_events(tmp_path: Path) -> None:
    bus = Flaky()
    bus.ensure_topics(TOPICS.all())
    store = Store(tmp_path / "s.db")
    rows = queued(store, 2)
    bus.fail_flush = True
    with pytest.raises(PublishError):
        store.outbox.relay(Publisher(bus, TOPICS, "x"), KINDS)
    assert sorted(sent(bus)) == sorted(rows) and len(store.outbox.unsent()) == 2
    bus.fail_flush = False
    store.close()
    again = Store(tmp_path / "s.db")  # a new process, on the same file
    assert again.outbox.relay(Publisher(bus, TOPICS, "x"), KINDS) == 2
    assert sorted(sent(bus)) == sorted(rows + rows)
    times = [decode(r).time for r in bus.records(TOPICS.name("holders"))]
    assert sorted(set(times)) == [T, T + timedelta(seconds=1)]  # the times they were queued with


def test_an_id_is_queued_once_and_keeps_its_first_body(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with store.transaction() as db:
        assert store.outbox.queue(db, "e1", "HolderRegistered", holder(1).model_dump_json(), T)
        assert not store.outbox.queue(db, "e1", "HolderRegistered", holder(2).model_dump_json(), T)
    (row,) = store.outbox.unsent()
    assert HolderRegistered.model_validate_json(row["body"]) == holder(1)


def test_a_row_of_an_older_event_version_is_upcast_when_relayed(tmp_path: Path) -> None:
    bus = InMemoryTransport(2)
    bus.ensure_topics(TOPICS.all())
    store = Store(tmp_path / "s.db")
    v1 = '{"holder_id":"h1","jurisdiction":"beijing","employer":{"name":"E","credit_code":"C","region":"朝阳区"},'
    v1 += '"started":"2025-01-01","years":3}'
    with store.transaction() as db:
        store.outbox.queue(db, "e1", "cn.jjj.holders.employment_started.v1", v1, T)
    assert store.outbox.relay(Publisher(bus, TOPICS, "x"), {}) == 1
    (env,) = [decode(r) for r in bus.records(TOPICS.name("holders"))]
    assert env.id == "e1" and env.type == EmploymentStarted.ce_type()
    assert isinstance(env.data, EmploymentStarted) and env.data.years_in_scope == 3.0


def test_queue_refuses_to_leave_a_store_column_empty(tmp_path: Path) -> None:
    store = PlatformStore(tmp_path / "platform.db")
    with store.transaction() as db, pytest.raises(ValueError, match="request_id"):
        store.outbox.queue(db, "e1", "x", "{}", T)


def columns(db: sqlite3.Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in db.execute("PRAGMA table_info(outbox)")]


@pytest.mark.parametrize("which", ["bureau", "platform"])
def test_each_store_keeps_its_outbox_layout_and_reads_an_existing_table(tmp_path: Path, which: str) -> None:
    old = sqlite3.connect(":memory:")
    old.executescript(OLD_BUREAU_OUTBOX if which == "bureau" else OLD_PLATFORM_OUTBOX)
    fresh: SqliteStore | BureauStore
    if which == "bureau":
        fresh = BureauStore(tmp_path / "fresh.db", "beijing", load_registry())
    else:
        fresh = PlatformStore(tmp_path / "fresh.db")
    assert columns(fresh.db) == columns(old)

    # a state dir written before: the table as the old DDL made it, with a row not yet sent
    path = tmp_path / "existing.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_BUREAU_OUTBOX if which == "bureau" else OLD_PLATFORM_OUTBOX)
        cst = timezone(timedelta(hours=8))
        if which == "bureau":
            db.execute(
                "INSERT INTO outbox (event_id, type, body, time) VALUES (?, ?, ?, ?)",
                ("e1", holder(1).ce_type(), holder(1).model_dump_json(), T.isoformat()),
            )
        else:
            data = VerificationRejected(request_id="r1", holder_id="h1", reason="not_found", detail="")
            db.execute(
                "INSERT INTO outbox (event_id, request_id, type, time, body) VALUES (?, ?, ?, ?, ?)",
                ("e1", "r1", data.ce_type(), T.astimezone(cst).isoformat(), data.model_dump_json()),
            )
    bus = InMemoryTransport(2)
    bus.ensure_topics(TOPICS.all())
    pub = Publisher(bus, TOPICS, "x")
    store: BureauStore | PlatformStore
    if which == "bureau":
        store = BureauStore(path, "beijing", load_registry(), publisher=pub)
        assert store.relay() == 1  # a type the bureau does not decide: read by its CloudEvents type
        assert store.store.unsent() == []
    else:
        store = PlatformStore(path)
        assert store.relay(pub) == 1
        assert store.outbox.unsent() == []
    assert columns(store.db) == columns(old)
    records = [r for t in ("holders", "verification") for r in bus.records(TOPICS.name(t))]
    (env,) = [decode(r) for r in records]
    assert env.id == "e1" and env.time == T
