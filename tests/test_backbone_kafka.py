"""The event backbone on a real Kafka-protocol broker over TCP."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.signed import signed

from mra.events.consumer import Processor
from mra.events.kafka import KafkaTransport
from mra.events.schemas import EmployerRef, EmploymentEnded, EmploymentStarted
from mra.events.topics import Topics
from mra.services.journal import Journal

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]


def _publish_ended(kafka: KafkaTransport, topics: Topics, n: int) -> list[str]:
    pub = signed(kafka, topics, "test-intake")
    ids = [
        pub.publish(EmploymentEnded(holder_id=f"h{i % 17}", jurisdiction="beijing", ended=date(2025, 10, 1))).id
        for i in range(n)
    ]
    pub.flush()
    return ids


def test_confluent_kafka_and_the_cloudevents_sdk_read_an_mra_event(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, group: str
) -> None:
    from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
    from cloudevents.core.formats.json import JSONFormat
    from confluent_kafka import Consumer, TopicPartition

    pub = signed(kafka, topics, "beijing-intake")
    data = EmploymentStarted(
        holder_id="h-42",
        jurisdiction="beijing",
        employer=EmployerRef(name="北京某科技有限公司", credit_code="91110108MA00XXXX", region="beijing"),
        started=date(2025, 9, 10),
        years_in_scope=3,
    )
    sent = pub.publish(data, time=datetime(2025, 9, 10, 8, 0, tzinfo=UTC))
    pub.flush()

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topics.name("holders"), p, 0) for p in range(topics.partitions)])
    msg = None
    deadline = time.monotonic() + 30
    try:
        while msg is None and time.monotonic() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                msg = m
    finally:
        consumer.close()
    assert msg is not None, "confluent-kafka read nothing"
    assert msg.key() == b"h-42"
    headers = {k: v for k, v in msg.headers()}
    event = from_binary(KafkaMessage(headers=headers, key=msg.key(), value=msg.value()), JSONFormat())
    attrs = event.get_attributes()
    assert attrs["specversion"] == "1.0"
    assert attrs["id"] == sent.id
    assert attrs["source"] == "/mra/beijing-intake"
    assert attrs["type"] == "cn.jjj.holders.employment_started.v3"
    assert attrs["subject"] == "h-42"
    assert attrs["time"] == datetime(2025, 9, 10, 8, 0, tzinfo=UTC)
    assert attrs["mrapublisher"] == "beijing-intake" and attrs["mraseq"] == "0"
    body = event.get_data()
    assert body["employer"]["name"] == "北京某科技有限公司" and body["years_in_scope"] == 3.0


def test_garbage_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(kafka: KafkaTransport, topics: Topics) -> None:
    holders = topics.name("holders")
    kafka.send(holders, b"h1", b"\x00\x01 not an event", [])
    kafka.flush()
    ids = _publish_ended(kafka, topics, 20)
    kafka.send(
        holders,
        b"h2",
        b"{}",
        [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"x"),
            ("ce_source", b"/x"),
            ("ce_type", b"cn.jjj.holders.employment_ended.v1"),
        ],
    )
    kafka.flush()
    journal = Journal(":memory:")
    stats = Processor(kafka, topics, ["holders"], journal, None).run(until_idle=True, timeout=60)
    assert stats.idle and stats.applied == 20 and stats.dead_lettered == 2
    assert sorted(journal.event_ids()) == sorted(ids)

    dlq = Journal(":memory:")
    reader = kafka.reader([topics.name("deadletter")])
    reasons: list[str] = []
    deadline = time.monotonic() + 20
    while len(reasons) < 2 and time.monotonic() < deadline:
        for r in reader.poll(500, 100):
            reasons.append(dict(r.headers)["mra_dlq_reason"].decode())
            assert dict(r.headers)["mra_dlq_topic"].decode() == holders
    reader.close()
    dlq.close()
    assert any("missing header(s)" in r for r in reasons)
    assert any("invalid cn.jjj.holders.employment_ended.v1 body" in r for r in reasons)


def test_a_consumer_killed_mid_stream_applies_each_event_exactly_once(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, group: str, tmp_path: Path
) -> None:
    n = 300
    ids = _publish_ended(kafka, topics, n)
    db = tmp_path / "journal.db"
    args = [sys.executable, "-m", "tests.support.journal_worker", bootstrap, topics.prefix, str(db), group]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    worker = subprocess.Popen([*args, "0.05"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        applied = 0
        while time.monotonic() < deadline:
            if db.exists():
                try:
                    applied = sqlite3.connect(db).execute("SELECT count(*) FROM applied").fetchone()[0]
                except sqlite3.OperationalError:
                    applied = 0
            if applied >= 60:
                break
            time.sleep(0.05)
        assert 0 < applied < n, f"worker applied {applied} before the kill"
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(10)
    assert worker.returncode == -signal.SIGKILL

    # restart without delay: it must resume after the last applied event
    done = subprocess.run([*args, "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    journal = Journal(db)
    assert journal.applied_count() == n
    assert sorted(journal.event_ids()) == sorted(ids)  # each once: no loss, no duplicate
    assert journal.counts() == {"cn.jjj.holders.employment_ended.v1": n}
