"""The bureau relay publishes each outbox row once, whatever kills or pauses it: cases for any transport that
fences transactional ids (in memory, Apache Kafka).

Subclass :class:`RelayCases` and define ``create_transport()`` and ``second_client(first)`` (another client of the
same cluster: a second process). Each case opens the bureau's SQLite read model twice, as two processes would on
one machine (same read model: same transactional id).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mra.core.ids import stable_id
from mra.core.models import HolderCategory
from mra.core.plugins import load_registry
from mra.events.bus import Fenced, Transport
from mra.events.envelope import Envelope
from mra.events.publisher import Publisher
from mra.events.schemas import HolderRegistered
from mra.events.signing import verify_chain
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.bureau_sqlite import SqliteBureauStore

__all__ = ["RelayCases"]

T = datetime(2025, 10, 10, 2, 0, tzinfo=UTC)
REGISTRY = load_registry()


class Killed(Exception):
    """The process dies here."""


class DiesBeforeMarking(SqliteBureauStore):
    """A store whose relay is killed after its transaction committed and before its rows are marked sent."""

    def mark_sent(self, upto_seq: int, positions: object = None) -> None:
        raise Killed("killed between the commit and marking the rows sent")


def _queue(store: BureauStore, first: int, n: int) -> list[str]:
    ids = []
    with store.store.batch() as b:
        for i in range(first, first + n):
            event = HolderRegistered(
                holder_id=f"h{i}", category=HolderCategory.FOREIGN, birth_date=date(1990, 1, 1 + i % 28)
            )
            ident = stable_id("relay-test", str(i))
            assert b.queue(ident, event.ce_type(), event.model_dump_json(), T + timedelta(seconds=i))
            ids.append(ident)
    return ids


class RelayCases:
    """Abstract cases: ``create_transport()`` and ``second_client(first)``; ``read(transport, topics)`` reads a
    topic read_committed from its start to its end."""

    def create_transport(self) -> Transport:
        raise NotImplementedError

    def second_client(self, first: Transport) -> Transport:
        return self.create_transport()

    def read(self, transport: Transport, topics: Topics) -> list[Envelope]:
        raise NotImplementedError

    @pytest.fixture
    def topics(self) -> Topics:
        return Topics(f"r{uuid.uuid4().hex[:8]}.", 3)

    @pytest.fixture
    def transport(self, topics: Topics) -> Iterator[Transport]:
        t = self.create_transport()
        t.ensure_topics(topics.all())
        yield t
        t.close()

    def bureau(self, transport: Transport, topics: Topics, path: Path, cls: type[SqliteBureauStore]) -> BureauStore:
        return BureauStore(cls(path), "beijing", REGISTRY, Publisher(transport, topics, "bureau-beijing"))

    def test_a_relay_killed_between_its_commit_and_marking_publishes_nothing_twice(
        self, transport: Transport, topics: Topics, tmp_path: Path
    ) -> None:
        path = tmp_path / "bureau.db"
        first = self.bureau(transport, topics, path, DiesBeforeMarking)
        ids = _queue(first, 0, 40)
        with pytest.raises(Killed):
            first.relay()  # committed on the topic, not marked sent
        assert len(first.store.unsent()) == 40 and first.store.relay_state().in_flight is not None
        first.close()
        other = self.second_client(transport)
        try:
            successor = self.bureau(other, topics, path, SqliteBureauStore)  # the next process on the read model
            more = _queue(successor, 40, 5)  # decided meanwhile: these were never published
            assert successor.relay() == 5  # only the rest is published
            assert successor.store.unsent() == [] and successor.store.relay_state().in_flight is None
            assert successor.relay() == 0
            successor.close()
        finally:
            other.close()
        published = Counter(e.id for e in self.read(transport, topics))
        assert set(published) == set(ids + more)
        assert [i for i, n in published.items() if n > 1] == []

    def test_a_zombie_relay_s_open_transaction_is_aborted_when_a_successor_takes_over(
        self, transport: Transport, topics: Topics, tmp_path: Path
    ) -> None:
        path = tmp_path / "bureau.db"
        zombie = self.bureau(transport, topics, path, SqliteBureauStore)
        ids = _queue(zombie, 0, 20)
        other = self.second_client(transport)
        successor = self.bureau(other, topics, path, SqliteBureauStore)
        took_over: list[int] = []
        assert zombie.publisher is not None and successor.publisher is not None

        def paused(timeout: float | None = None) -> int:  # the zombie has written its rows and stalls before commit
            transport.flush()
            took_over.append(successor.relay())
            return 0

        zombie.publisher.checkpoint = paused  # type: ignore[method-assign,assignment]
        try:
            with pytest.raises(Fenced):
                zombie.relay()
            assert took_over == [20]  # the successor found nothing committed and published every row
            assert successor.store.unsent() == [] and successor.store.relay_state().in_flight is None
        finally:
            zombie.close()
            successor.close()
            other.close()
        read = self.read(transport, topics)
        assert sorted(e.id for e in read) == sorted(ids)  # each once: the zombie's records are not visible
        assert {e.stamp.epoch for e in read if e.stamp} == {successor.publisher.epoch}
        assert verify_chain(read) == []

    def test_after_an_aborted_relay_the_chain_read_back_has_no_hole(
        self, transport: Transport, topics: Topics, tmp_path: Path
    ) -> None:
        bureau = self.bureau(transport, topics, tmp_path / "bureau.db", SqliteBureauStore)
        ids = _queue(bureau, 0, 5)
        assert bureau.relay() == 5
        ids += _queue(bureau, 5, 5)
        assert bureau.publisher is not None
        publish = bureau.publisher.publish

        def fails_on_the_third(*args: object, **kwargs: object) -> Envelope:
            if len(calls) == 2:
                raise Killed("the relay fails part-way through its transaction")
            calls.append(1)
            return publish(*args, **kwargs)  # type: ignore[arg-type]

        calls: list[int] = []
        bureau.publisher.publish = fails_on_the_third  # type: ignore[method-assign]
        with pytest.raises(Killed):
            bureau.relay()  # two rows stamped and sent inside the transaction, which is aborted
        bureau.publisher.publish = publish  # type: ignore[method-assign]
        assert bureau.relay() == 5
        bureau.close()
        read = self.read(transport, topics)
        assert sorted(e.id for e in read) == sorted(ids)
        assert verify_chain(read) == []  # the aborted events' positions are not a hole: a new epoch follows them

    def test_instances_that_take_turns_relaying_each_take_the_id_over(
        self, transport: Transport, topics: Topics, tmp_path: Path
    ) -> None:
        path = tmp_path / "bureau.db"
        other = self.second_client(transport)
        a = self.bureau(transport, topics, path, SqliteBureauStore)
        b = self.bureau(other, topics, path, SqliteBureauStore)
        ids: list[str] = []
        try:
            for turn in range(4):
                relay = (a, b)[turn % 2]
                ids += _queue(relay, 10 * turn, 10)
                assert relay.relay() == 10  # never refused as fenced: it takes the id back first
        finally:
            a.close()
            b.close()
            other.close()
        published = Counter(e.id for e in self.read(transport, topics))
        assert set(published) == set(ids) and max(published.values()) == 1
