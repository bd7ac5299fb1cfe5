"""``mra broker start --engine kafka|tansu``: Apache Kafka's log survives a restart, Tansu's does not and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.broker


def _mra(state: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MRA_STATE_DIR=str(state), MRA_TOPIC_PREFIX="e.")
    for name in ("MRA_BOOTSTRAP_SERVERS", "MRA_REPLICATION_FACTOR", "MRA_MIN_INSYNC_REPLICAS"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "mra.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _gone(pids: list[int]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)
    return not any(Path(f"/proc/{p}").exists() for p in pids)


def _count(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        consumer.close()


def test_one_kafka_broker_keeps_its_log_across_stop_and_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = _mra(state, "broker", "start", "--engine", "kafka", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["kind"] == "kafka" and info["durable"] is True
    assert [b["node_id"] for b in info["brokers"]] == [1]
    bootstrap = info["bootstrap"]
    pids = [b["pid"] for b in info["brokers"]]
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        for i in range(25):
            producer.send("e.holders", key=str(i).encode(), value=b"fact")
        producer.flush()
        producer.close()
        assert _count(bootstrap, "e.holders") == 25
        status = json.loads(_mra(state, "broker", "status", "--json").stdout)
        assert status["running"] is True and status["kind"] == "kafka" and status["brokers"][0]["running"] is True
        assert Path(status["brokers"][0]["log"]).is_file() and str(state) in status["brokers"][0]["log"]
    finally:
        stopped = _mra(state, "broker", "stop", "--json")
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["stopped"] is True
    assert "lost" not in stopped.stderr
    assert _gone(pids), "a Kafka node is still running after broker stop"
    assert json.loads(_mra(state, "broker", "status", "--json").stdout)["running"] is False

    again = _mra(state, "broker", "start", "--json")  # no --engine: the state directory holds a Kafka log
    assert again.returncode == 0, again.stderr
    info = json.loads(again.stdout)
    try:
        assert info["kind"] == "kafka" and info["bootstrap"] == bootstrap
        assert _count(bootstrap, "e.holders") == 25
    finally:
        _mra(state, "broker", "stop")
    assert _gone([b["pid"] for b in info["brokers"]])


def test_three_kafka_brokers_replicate_every_topic(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = _mra(state, "broker", "start", "--engine", "kafka", "--brokers", "3", "--json")
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    pids = [b["pid"] for b in info["brokers"]]
    try:
        assert len(pids) == 3 and all(b["running"] for b in info["brokers"])
        text = _mra(state, "broker", "status").stdout
        assert text.count(": running (pid") == 3
        admin = KafkaAdminClient(bootstrap_servers=info["bootstrap"])
        try:
            described = admin.describe_topics(["e.benefits"])
            parts = described[0]["partitions"]
            assert {len(p["replica_nodes"]) for p in parts} == {3}
            configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "e.benefits")])
            (by_name,) = configs.values()
            entry = by_name["e.benefits"]["min.insync.replicas"]
            assert (entry["value"] if isinstance(entry, dict) else entry) == "2"
        finally:
            admin.close()
    finally:
        stopped = _mra(state, "broker", "stop", "--json")
    assert json.loads(stopped.stdout)["stopped"] is True
    assert _gone(pids), "a Kafka node is still running after broker stop"


def test_tansu_says_its_log_is_in_memory_and_warns_when_stopping_loses_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = _mra(state, "broker", "start")
    assert started.returncode == 0, started.stderr
    assert "in memory" in started.stdout
    bootstrap = json.loads(_mra(state, "broker", "status", "--json").stdout)["bootstrap"]
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for _ in range(3):
            producer.send("e.holders", value=b"fact")
        producer.flush()
        producer.close()
    finally:
        stopped = _mra(state, "broker", "stop", "--json")
    assert stopped.returncode == 0
    assert "lost" in stopped.stderr
    assert json.loads(stopped.stdout)["records_lost"] >= 1
    empty = tmp_path / "empty"
    _mra(empty, "broker", "start")
    quiet = _mra(empty, "broker", "stop")
    assert quiet.returncode == 0 and "lost" not in quiet.stderr
