"""Every transport passes the same cases: in memory, kafka-python (the default) and confluent-kafka, the last two
on the test broker over TCP."""

from __future__ import annotations

import time
import uuid

import pytest
from support.transport_cases import FencingCases, TransportCases

from mra.events.bus import InMemoryTransport, Transport
from mra.events.confluent import ConfluentTransport
from mra.events.kafka import KafkaTransport


class TestInMemoryTransport(FencingCases):
    def create_transport(self) -> Transport:
        return InMemoryTransport()

    def second_client(self, first: Transport) -> Transport:
        assert isinstance(first, InMemoryTransport)
        return first.client()


@pytest.mark.broker
class TestKafkaPythonTransport(TransportCases):
    hides_aborted = None  # the session's broker may be Tansu; tests/test_transactions_kafka.py runs these on Kafka

    @pytest.fixture(autouse=True)
    def _bootstrap(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def create_transport(self) -> Transport:
        return KafkaTransport(self.bootstrap, client_id="mra-test")


@pytest.mark.broker
class TestConfluentTransport(TransportCases):
    hides_aborted = None

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



@pytest.mark.broker
@pytest.mark.parametrize("kind", [KafkaTransport, ConfluentTransport])
def test_a_group_is_described_with_the_partitions_each_member_owns(
    apache_kafka: str, kind: type[KafkaTransport] | type[ConfluentTransport]
) -> None:
    """``bureau status`` lists a group's members and what each owns, whichever Kafka client mra runs on."""
    transport = kind(apache_kafka, client_id="mra-test")
    topic, group = f"described-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    transport.ensure_topics({topic: 3})
    reader = transport.reader([topic], group=group)
    try:
        deadline = time.monotonic() + 60
        found = None
        while time.monotonic() < deadline:
            reader.poll(500, 10)
            found = transport.describe_group(group)
            if found and found["state"] == "Stable" and found["members"] and found["members"][0]["partitions"]:
                break
        assert found is not None, "the group was not described"
        assert found["group_id"] == group and found["state"] == "Stable"
        assert [m["partitions"] for m in found["members"]] == [[(topic, 0), (topic, 1), (topic, 2)]]
        assert found["members"][0]["client_id"] == "mra-test"
    finally:
        reader.close()
        transport.close()
