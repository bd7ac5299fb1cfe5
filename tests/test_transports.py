"""Every transport passes the same cases: in memory, kafka-python (the default) and confluent-kafka, the last two
on the test broker over TCP."""

from __future__ import annotations

import pytest
from support.transport_cases import TransportCases

from mra.events.bus import InMemoryTransport, Transport
from mra.events.confluent import ConfluentTransport
from mra.events.kafka import KafkaTransport


class TestInMemoryTransport(TransportCases):
    def create_transport(self) -> Transport:
        return InMemoryTransport()


@pytest.mark.broker
class TestKafkaPythonTransport(TransportCases):
    @pytest.fixture(autouse=True)
    def _bootstrap(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_transport(self) -> Transport:
        return KafkaTransport(self.bootstrap, client_id="mra-test")


@pytest.mark.broker
class TestConfluentTransport(TransportCases):
    @pytest.fixture(autouse=True)
    def _bootstrap(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_transport(self) -> Transport:
        return ConfluentTransport(self.bootstrap, client_id="mra-test")


def test_the_transport_is_chosen_by_configuration(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from mra.core.errors import MraError
    from mra.services.runtime import Runtime

    runtime = Runtime(tmp_path, bootstrap="127.0.0.1:1")
    monkeypatch.delenv("MRA_TRANSPORT", raising=False)
    assert isinstance(runtime.transport(), KafkaTransport)  # the default
    monkeypatch.setenv("MRA_TRANSPORT", "confluent")
    assert isinstance(runtime.transport(), ConfluentTransport)
    monkeypatch.setenv("MRA_TRANSPORT", "rdkafka")
    with pytest.raises(MraError, match="kafka-python or confluent"):
        runtime.transport()
