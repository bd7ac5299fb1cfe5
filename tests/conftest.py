"""Test fixtures: one real Kafka-protocol broker for the session, fresh topics per test.

The broker is, in order: the cluster named by ``MRA_BOOTSTRAP_SERVERS``; a testcontainers Kafka container where a
Docker engine answers within two seconds; an Apache Kafka cluster mra starts itself (``MRA_TEST_KAFKA_BROKERS``
brokers, default 3) where Java and Kafka's jars (or Maven to fetch them) are at hand; else the local Tansu broker.
``MRA_TEST_BROKER=tansu`` takes Tansu and ``MRA_TEST_BROKER=kafka`` Kafka whatever is at hand (the default,
``auto``, is the order above). The session starts its broker only when a test asks for one (``bootstrap``), and
every such test is marked ``broker``: ``-m broker`` selects the tests on the broker, ``-m "not broker"`` the rest.
docs/brokers.md lists what differs between the two brokers and which tests start clusters of their own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.postgres import postgres_url  # noqa: F401  (a fixture: a real PostgreSQL server for the session)

from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics


@functools.cache
def _docker_answers() -> bool:
    if not shutil.which("docker") and not os.environ.get("DOCKER_HOST"):
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


def _use_kafka() -> bool:
    """``MRA_TEST_BROKER``: ``tansu``, ``kafka``, or ``auto`` (the default): Kafka where Java and Kafka's jars (or
    Maven to fetch them) are at hand."""
    choice = os.environ.get("MRA_TEST_BROKER", "auto").strip().lower()
    if choice in ("tansu", "kafka"):
        return choice == "kafka"
    from mra.events.kafka_cluster import KafkaClusterError, jars_dir

    if not shutil.which("java"):
        return False
    try:
        jars_dir(fetch=False)
        return True
    except KafkaClusterError:
        return shutil.which("mvn") is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the session's broker or ``apache_kafka`` is a ``broker`` test (beside those marked so
    by hand: the ones that start brokers of their own)."""
    for item in items:
        uses = getattr(item, "fixturenames", ())
        if ("bootstrap" in uses or "apache_kafka" in uses) and item.get_closest_marker("broker") is None:
            item.add_marker(pytest.mark.broker)


@contextlib.contextmanager
def _started(engine: str, brokers: int = 1) -> Iterator[str]:
    """A broker mra starts in a scratch state directory, stopped and removed afterwards."""
    from mra.events.broker import start_broker, stop_broker

    state = Path(tempfile.mkdtemp(prefix=f"mra-test-{engine}-"))
    info = start_broker(state, engine=engine, brokers=brokers)
    assert info.bootstrap
    try:
        yield info.bootstrap
    finally:
        stop_broker(state)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    env = os.environ.get("MRA_BOOTSTRAP_SERVERS")
    if env:
        yield env
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    if _use_kafka():
        with _started("kafka", int(os.environ.get("MRA_TEST_KAFKA_BROKERS", "3"))) as bootstrap:
            yield bootstrap
    else:
        with _started("tansu") as bootstrap:
            yield bootstrap


@pytest.fixture(scope="session")
def apache_kafka(request: pytest.FixtureRequest) -> Iterator[str]:
    """Apache Kafka for the tests that need Kafka's own behaviour (fencing, aborted transactions hidden from
    read_committed readers, group descriptions): the session's broker where that is Kafka (testcontainers, or the
    cluster mra starts), else one broker of its own, started once for the session."""
    if not os.environ.get("MRA_BOOTSTRAP_SERVERS") and (_docker_answers() or _use_kafka()):
        yield request.getfixturevalue("bootstrap")
        return
    with _started("kafka", 1) as bootstrap:
        yield bootstrap


@pytest.fixture
def topics() -> Topics:
    """A fresh topic prefix per test, so tests never see each other's events."""
    return Topics(prefix=f"t{uuid.uuid4().hex[:10]}.", partitions=3)


@pytest.fixture
def kafka(bootstrap: str, topics: Topics) -> Iterator[KafkaTransport]:
    transport = KafkaTransport(bootstrap, client_id="mra-test")
    transport.ensure_topics(topics.all())
    try:
        yield transport
    finally:
        transport.close()


@pytest.fixture
def group() -> str:
    """A fresh consumer group id per test."""
    return f"g-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state directory provisioned as ``mra keys import`` leaves one: every standard identity's key and a
    verifying trust store (mra verifies by default; see tests/support/signed.py)."""
    from support.signed import provisioned

    d = tmp_path / "state"
    d.mkdir()
    monkeypatch.setenv("MRA_STATE_DIR", str(d))
    return provisioned(d)
