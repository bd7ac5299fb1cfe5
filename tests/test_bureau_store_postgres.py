"""The PostgreSQL bureau store passes the cases every bureau store passes, on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.bureau_store_cases import BureauStoreCases
from support.postgres import fresh_schema

from mra.core.errors import MraError
from mra.services.bureau_postgres import PostgresBureauStore
from mra.services.bureau_store import BureauStore


class TestPostgresBureauStore(BureauStoreCases):
    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def create_store(self) -> BureauStore:
        return PostgresBureauStore(self.url, fresh_schema())


@pytest.fixture
def two(postgres_url: str) -> Iterator[tuple[PostgresBureauStore, PostgresBureauStore]]:
    schema = fresh_schema()
    a, b = PostgresBureauStore(postgres_url, schema), PostgresBureauStore(postgres_url, schema)
    yield a, b
    a.close()
    b.close()


def test_two_instances_share_positions_claims_and_facts(two: tuple[PostgresBureauStore, PostgresBureauStore]) -> None:
    a, b = two
    with a.batch() as batch:
        assert batch.claim("platform", "e1", "t", 0, 7)
        batch.track("t", 0, 7)
    assert dict(b.positions()) == {("t", 0): 8}  # a takeover resumes where the last owner committed
    with b.batch() as batch:
        assert not batch.claim("platform", "e1", "t", 0, 7)  # and never applies an event twice


def test_one_instance_relays_the_outbox_at_a_time(two: tuple[PostgresBureauStore, PostgresBureauStore]) -> None:
    from datetime import UTC, datetime

    a, b = two
    with a.batch() as batch:
        assert batch.queue("d1", "BenefitDecided", "{}", datetime(2025, 1, 1, tzinfo=UTC))
    with b.batch() as batch:
        assert not batch.queue("d1", "BenefitDecided", "{}", datetime(2025, 1, 1, tzinfo=UTC))
    rows = a.unsent()
    assert [r.event_id for r in rows] == ["d1"]
    assert b.unsent() == []  # a relays: b publishes nothing of it
    a.mark_sent(rows[-1].seq)
    assert b.unsent() == [] and a.unsent() == []


def test_the_instances_of_a_group_share_the_relay_key_and_state(
    two: tuple[PostgresBureauStore, PostgresBureauStore], postgres_url: str
) -> None:
    a, b = two
    assert a.relay_key() == b.relay_key()  # one transactional id for the group
    other = PostgresBureauStore(postgres_url, fresh_schema())
    try:
        assert other.relay_key() != a.relay_key()
    finally:
        other.close()
    with a.batch() as batch:
        batch.queue("d1", "BenefitDecided", "{}", datetime(2025, 1, 1, tzinfo=UTC))
    rows = a.unsent()
    a.begin_relay(rows[-1].seq, "a")  # a dies here: its session ends and frees the relay
    a.db.close()
    assert b.relay_state().in_flight == rows[-1].seq
    assert [r.event_id for r in b.unsent()] == ["d1"]
    b.mark_sent(rows[-1].seq, {("benefits", 0): 3})
    assert b.relay_state().in_flight is None and dict(b.relay_state().positions) == {("benefits", 0): 3}


def test_a_bad_url_is_a_message_not_a_traceback() -> None:
    with pytest.raises(MraError, match="cannot open the PostgreSQL store"):
        PostgresBureauStore("postgresql://nobody@127.0.0.1:1/none")


@pytest.mark.broker
def test_store_url_on_bureau_run_holder_show_status_and_replay(
    bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    """Two state directories (two machines) share one read model through --store; replay compares with it."""
    import uuid

    from support.facts import holder_facts, publish
    from support.signed import provisioned, signed

    from mra.events.kafka import KafkaTransport
    from mra.events.topics import Topics

    topics = Topics(f"s{uuid.uuid4().hex[:8]}.", 3)
    transport = KafkaTransport(bootstrap)
    try:
        transport.ensure_topics(topics.all())
        publish(signed(transport, topics, "test-intake"), [e for i in range(3) for e in holder_facts(f"h{i}")])
    finally:
        transport.close()
    # the schema is named after the topic prefix and the jurisdiction: this test's own
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS="3", MRA_BOOTSTRAP_SERVERS=bootstrap)
    env["MRA_STORE"] = postgres_url

    def mra(state: str, *args: str) -> subprocess.CompletedProcess[str]:
        run_env = dict(env, MRA_STATE_DIR=str(provisioned(tmp_path / state)))  # each machine provisioned
        cmd = [sys.executable, "-m", "mra.cli", *args]
        return subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=300)

    jurisdiction = "beijing"
    ran = mra("one", "bureau", "run", "-j", jurisdiction, "--until-idle", "--json")
    assert ran.returncode == 0, ran.stderr
    shown = mra("two", "holder", "show", "h1", "-j", jurisdiction, "--json", "--store", postgres_url)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["decisions"], "the other machine sees the decisions"
    status = mra("two", "bureau", "status", "-j", jurisdiction, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["holders"] >= 3
    audit = mra("two", "replay", "-j", jurisdiction, "--compare", "--json")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["differences"] == []
    bad = mra("two", "holder", "show", "h1", "-j", jurisdiction, "--store", "mysql://x")
    assert bad.returncode != 0 and "--store must be" in bad.stderr and "Traceback" not in bad.stderr
