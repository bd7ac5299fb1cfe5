"""The bureau relay publishes each outbox row once, in memory (the same cases run on Apache Kafka in
tests/test_transactions_kafka.py)."""

from __future__ import annotations

from support.relay_cases import RelayCases

from mra.events.bus import InMemoryTransport, Transport
from mra.events.envelope import Envelope, decode
from mra.events.topics import Topics


class TestRelayInMemory(RelayCases):
    def create_transport(self) -> Transport:
        return InMemoryTransport()

    def second_client(self, first: Transport) -> Transport:
        assert isinstance(first, InMemoryTransport)
        return first.client()

    def read(self, transport: Transport, topics: Topics) -> list[Envelope]:
        assert isinstance(transport, InMemoryTransport)
        return [decode(r) for r in transport.records(topics.name("holders"))]
