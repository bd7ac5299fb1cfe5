"""The test cases every transport passes (mra.events.bus.Transport): in memory, kafka-python, confluent-kafka.

Subclass :class:`TransportCases` and define ``create_transport()``: a transport is fit for mra's publishers and
consumer loop when these pass; subclass :class:`FencingCases` instead where the cluster fences transactional ids.
``second_client(first)`` is another client of the same cluster (a second process);
``hides_aborted`` says whether read_committed readers of the cluster under test skip aborted transactions (True:
Apache Kafka and the in-memory transport; None where the session's broker may be Tansu, which shows them).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from mra.events.bus import Fenced, Reader, Transport
from mra.events.envelope import Record

__all__ = ["FencingCases", "TransportCases"]


def _drain(reader: Reader, want: int, seconds: float = 30.0) -> list[Record]:
    """Poll until ``want`` records came (or the time is up)."""
    out: list[Record] = []
    deadline = time.monotonic() + seconds
    while len(out) < want and time.monotonic() < deadline:
        out += reader.poll(200, 1000)
    return out


class TransportCases:
    """Abstract cases: ``create_transport()`` returns a transport of the implementation under test."""

    hides_aborted: bool | None = True

    def create_transport(self) -> Transport:
        raise NotImplementedError

    def second_client(self, first: Transport) -> Transport:
        return self.create_transport()

    @pytest.fixture
    def transport(self) -> Iterator[Transport]:
        t = self.create_transport()
        yield t
        t.close()

    @pytest.fixture
    def name(self) -> str:
        return f"tc-{uuid.uuid4().hex[:10]}"

    def test_topics_are_created_with_their_partitions_and_creating_again_changes_nothing(
        self, transport: Transport, name: str
    ) -> None:
        transport.ensure_topics({name: 3})
        transport.ensure_topics({name: 3})
        assert transport.partitions(name) == [0, 1, 2]

    def test_what_is_flushed_reads_back_in_order_per_key_with_its_headers(
        self, transport: Transport, name: str
    ) -> None:
        transport.ensure_topics({name: 2})
        for i in range(20):
            transport.send(name, f"k{i % 3}".encode(), f"v{i}".encode(), [("h", str(i).encode()), ("x", b"")])
        transport.flush()
        reader = transport.reader([name])
        try:
            got = _drain(reader, 20)
        finally:
            reader.close()
        assert len(got) == 20
        for k in ("k0", "k1", "k2"):
            mine = [r for r in got if r.key == k.encode()]
            assert len({r.partition for r in mine}) == 1  # one key, one partition
            assert [r.value for r in mine] == [f"v{i}".encode() for i in range(20) if f"k{i % 3}" == k]
        assert all(dict(r.headers)["h"] == r.value[1:] and dict(r.headers)["x"] == b"" for r in got if r.value)

    def test_a_direct_reader_seeks_and_knows_its_positions_and_the_ends(self, transport: Transport, name: str) -> None:
        transport.ensure_topics({name: 1})
        for i in range(5):
            transport.send(name, b"k", str(i).encode(), [])
        transport.flush()
        reader = transport.reader([name])
        tp = (name, 0)
        try:
            assert reader.assignment() == {tp}
            assert reader.beginning_offsets([tp]) == {tp: 0}
            assert 0 < reader.end_offsets([tp])[tp] <= 5  # the development broker under-reports the end
            reader.seek(tp, 3)
            assert reader.position(tp) == 3
            assert [r.value for r in _drain(reader, 2)] == [b"3", b"4"]
            assert reader.position(tp) == 5
            reader.seek_to_beginning([tp])
            assert [r.offset for r in _drain(reader, 5)] == [0, 1, 2, 3, 4]
        finally:
            reader.close()

    def test_a_group_reader_resumes_after_what_it_committed(self, transport: Transport, name: str) -> None:
        transport.ensure_topics({name: 1})
        for i in range(6):
            transport.send(name, b"k", str(i).encode(), [])
        transport.flush()
        group = f"g-{name}"
        first = transport.reader([name], group)
        try:
            got = _drain(first, 6, 60)
            assert [r.value for r in got] == [str(i).encode() for i in range(6)]
            first.commit({(name, 0): 4})
        finally:
            first.close()
        again = transport.reader([name], group)
        try:
            assert [r.value for r in _drain(again, 2, 60)] == [b"4", b"5"]
        finally:
            again.close()

    def test_a_committed_transaction_is_read_and_says_where_it_wrote(self, transport: Transport, name: str) -> None:
        transport.ensure_topics({name: 2})
        tid = f"tx-{name}"
        with transport.transaction(tid) as tx:
            for i in range(6):
                transport.send(name, f"k{i % 2}".encode(), f"a{i}".encode(), [("h", b"1")])
        with transport.transaction(tid) as again:
            transport.send(name, b"k0", b"b0", [])
        reader = transport.reader([name])
        try:
            got = _drain(reader, 7)
        finally:
            reader.close()
        assert sorted(r.value for r in got) == sorted([f"a{i}".encode() for i in range(6)] + [b"b0"])
        last = {(r.topic, r.partition): r.offset + 1 for r in got if r.value.startswith(b"a")}
        assert tx.written == last  # the next offset after the last record written, per partition
        b0 = next(r for r in got if r.value == b"b0")
        assert again.written == {(name, b0.partition): b0.offset + 1}

    def test_an_aborted_transaction_is_not_read_committed(self, transport: Transport, name: str) -> None:
        transport.ensure_topics({name: 1})
        tid = f"tx-{name}"
        with pytest.raises(RuntimeError, match="changed my mind"), transport.transaction(tid):
            for i in range(3):
                transport.send(name, b"k", f"aborted{i}".encode(), [])
            transport.flush()  # on the broker's log already: the abort must hide them
            raise RuntimeError("changed my mind")
        with transport.transaction(tid):
            transport.send(name, b"k", b"committed", [])
        transport.send(name, b"k", b"plain", [])  # outside any transaction: written at once
        transport.flush()
        reader = transport.reader([name])
        try:
            got = [r.value for r in _drain(reader, 5, 10)]
        finally:
            reader.close()
        if self.hides_aborted is None and b"aborted0" in got:  # Tansu: aborted records are visible
            assert got == [b"aborted0", b"aborted1", b"aborted2", b"committed", b"plain"]
        else:
            assert got == [b"committed", b"plain"]


class FencingCases(TransportCases):
    """The transport cases, and fencing: for clusters that fence a transactional id's previous holder (Apache Kafka,
    the in-memory transport). Tansu does not: a fenced producer's commit is neither refused nor completed there."""

    def test_a_second_producer_with_the_same_transactional_id_fences_the_first(
        self, transport: Transport, name: str
    ) -> None:
        transport.ensure_topics({name: 1})
        tid = f"tx-{name}"
        other = self.second_client(transport)
        try:
            with pytest.raises(Fenced), transport.transaction(tid):
                transport.send(name, b"k", b"zombie", [])
                transport.flush()
                other.fence(tid)  # a successor takes the id over while this transaction is open
            with other.transaction(tid):
                other.send(name, b"k", b"successor", [])
            with pytest.raises(Fenced), transport.transaction(tid):  # the first stays fenced
                transport.send(name, b"k", b"zombie again", [])
            transport.fence(tid)  # until it takes the id back
            with transport.transaction(tid):
                transport.send(name, b"k", b"back", [])
        finally:
            other.close()
        reader = transport.reader([name])
        try:
            got = [r.value for r in _drain(reader, 3, 10)]
        finally:
            reader.close()
        assert got == [b"successor", b"back"]
