"""The test cases every transport passes (mra.events.bus.Transport): in memory, kafka-python, confluent-kafka.

Subclass :class:`TransportCases` and define ``create_transport()``: a transport is fit for mra's publishers and
consumer loop when these pass.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from mra.events.bus import Reader, Transport
from mra.events.envelope import Record

__all__ = ["TransportCases"]


def _drain(reader: Reader, want: int, seconds: float = 30.0) -> list[Record]:
    """Poll until ``want`` records came (or the time is up)."""
    out: list[Record] = []
    deadline = time.monotonic() + seconds
    while len(out) < want and time.monotonic() < deadline:
        out += reader.poll(200, 1000)
    return out


class TransportCases:
    """Abstract cases: ``create_transport()`` returns a transport of the implementation under test."""

    def create_transport(self) -> Transport:
        raise NotImplementedError

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
