"""Transactions on Apache Kafka (the ``apache_kafka`` fixture): the shared transport cases, with aborted and
fenced transactions invisible to read_committed readers, on kafka-python and confluent-kafka; and the bureau relay
cases (a relay killed between its commit and marking its rows, a zombie relay, relays taking turns) on both."""

from __future__ import annotations

import pytest
from support.facts import read_back
from support.relay_cases import RelayCases
from support.transport_cases import FencingCases

from mra.events.bus import Transport
from mra.events.confluent import ConfluentTransport
from mra.events.envelope import Envelope
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics

pytestmark = pytest.mark.broker


class TestKafkaPythonOnKafka(FencingCases):
    hides_aborted = True

    @pytest.fixture(autouse=True)
    def _bootstrap(self, apache_kafka: str) -> None:
        self.bootstrap = apache_kafka

    def create_transport(self) -> Transport:
        return KafkaTransport(self.bootstrap, client_id="mra-test")


class TestConfluentOnKafka(FencingCases):
    hides_aborted = True

    @pytest.fixture(autouse=True)
    def _bootstrap(self, apache_kafka: str) -> None:
        self.bootstrap = apache_kafka

    def create_transport(self) -> Transport:
        return ConfluentTransport(self.bootstrap, client_id="mra-test")


class TestRelayOnKafka(RelayCases):
    @pytest.fixture(autouse=True)
    def _bootstrap(self, apache_kafka: str) -> None:
        self.bootstrap = apache_kafka

    def create_transport(self) -> Transport:
        return KafkaTransport(self.bootstrap, client_id="mra-test")

    def read(self, transport: Transport, topics: Topics) -> list[Envelope]:
        return read_back(transport, topics, "holders")  # read_committed


class TestRelayOnKafkaWithConfluent(TestRelayOnKafka):
    def create_transport(self) -> Transport:
        return ConfluentTransport(self.bootstrap, client_id="mra-test")
