"""``mra replay --compare`` as an audit: it never says "no differences" about a log it could not read whole.

On the session's broker: an empty log, a log reset (topics deleted and written again, shorter than what the live
read model read), a withdrawn decision the replay does not have. On a single Apache Kafka broker of its own: the
log survives ``broker stop`` / ``broker start`` and a replay afterwards equals the live read model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.facts import World, holder_facts, publish
from support.signed import provisioned, signed

from mra.core.plugins import load_registry
from mra.events.kafka import KafkaTransport
from mra.events.schemas import CertificateRevoked
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.replay import compare, replay
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker
REGISTRY = load_registry()
NOT_COMPARABLE = 5


def _mra(state: Path, topics: Topics, bootstrap: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MRA_STATE_DIR=str(state), MRA_TOPIC_PREFIX=topics.prefix)
    env["MRA_PARTITIONS"] = str(topics.partitions)
    env.pop("MRA_BOOTSTRAP_SERVERS", None)
    if bootstrap:
        env["MRA_BOOTSTRAP_SERVERS"] = bootstrap
    cmd = [sys.executable, "-m", "mra.cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _live(state: Path, bootstrap: str, topics: Topics, transport: KafkaTransport, holders: int) -> int:
    """Facts for ``holders`` holders, read by a live Beijing bureau; its active decisions."""
    publish(signed(transport, topics, "test-intake"), [e for i in range(holders) for e in holder_facts(f"h{i}")])
    runtime = Runtime(state, bootstrap, topics)
    live = open_bureau(runtime, "beijing", registry=REGISTRY, transport=transport, group=False)
    try:
        assert live.run(until_idle=True, timeout=120).idle
        return len(live.store.active_decisions())
    finally:
        live.close()


def test_an_empty_log_is_reported_not_compared(bootstrap: str, topics: Topics, tmp_path: Path) -> None:
    transport = KafkaTransport(bootstrap)
    transport.ensure_topics(topics.all())
    state = provisioned(tmp_path / "state")
    try:
        ran = _mra(state, topics, bootstrap, "bureau", "run", "-j", "beijing", "--until-idle")
        assert ran.returncode == 0, ran.stderr
        audit = _mra(state, topics, bootstrap, "replay", "-j", "beijing", "--compare", "--json")
        assert audit.returncode == NOT_COMPARABLE, audit.stdout + audit.stderr
        report = json.loads(audit.stdout)
        assert report["comparable"] is False and any("the log is empty" in p for p in report["problems"])
        text = _mra(state, topics, bootstrap, "replay", "-j", "beijing", "--compare")
        assert text.returncode == NOT_COMPARABLE and "no differences" not in text.stdout
        assert "the log is empty" in text.stdout and "Traceback" not in text.stderr
    finally:
        transport.close()


def test_a_log_reset_below_the_live_positions_is_reported(bootstrap: str, topics: Topics, tmp_path: Path) -> None:
    transport = KafkaTransport(bootstrap)
    transport.ensure_topics(topics.all())
    state = provisioned(tmp_path / "state")
    try:
        assert _live(state, bootstrap, topics, transport, holders=4) > 0
        whole = _mra(state, topics, bootstrap, "replay", "-j", "beijing", "--compare", "--json")
        assert whole.returncode == 0, whole.stdout + whole.stderr
        assert json.loads(whole.stdout)["comparable"] is True

        # the log is reset: every topic deleted and created again, then one holder's facts written anew
        # (deleting returns once no broker lists the topics; creating, once each partition has a leader everywhere)
        transport.delete_topics(list(topics.all()))
        recreated = KafkaTransport(bootstrap)
        try:
            recreated.ensure_topics(topics.all())
            publish(signed(recreated, topics, "test-intake"), holder_facts("h0"))
        finally:
            recreated.close()
        audit = _mra(state, topics, bootstrap, "replay", "-j", "beijing", "--compare", "--json")
        assert audit.returncode == NOT_COMPARABLE, audit.stdout + audit.stderr
        report = json.loads(audit.stdout)
        assert any(p.startswith("log reset:") for p in report["problems"]), report["problems"]
        # and the withdrawn-or-missing decisions of h1..h3 are listed, not hidden
        assert {d["holder_id"] for d in report["differences"]} >= {"h1", "h2", "h3"}
        window = _mra(
            state, topics, bootstrap, "replay", "-j", "beijing", "--compare", "--from-time", "2000-01-01T00:00:00Z"
        )
        assert window.returncode == NOT_COMPARABLE and "window" in window.stdout
    finally:
        transport.close()


def test_a_withdrawn_decision_missing_from_the_replay_is_a_difference(tmp_path: Path) -> None:
    """The live read model withdrew decisions on a certificate the log it is compared with never verified."""
    revoked_at = datetime(2025, 12, 1, tzinfo=UTC)
    events = holder_facts("h1", key="k-h1", code="CODE-1")
    revocation = CertificateRevoked(
        holder_id="h1", certificate_key="k-h1", verification_code="CODE-1", revoked_at=revoked_at, reason="forged"
    )
    seen = World(tmp_path / "seen", Topics("w.", 1), REGISTRY)
    seen.publish(*events)
    live = seen.bureau("beijing")
    live.run(until_idle=True, timeout=10)
    seen.publish(revocation)
    live.run(until_idle=True, timeout=10)
    withdrawn = live.store.store.decisions(active=False)
    assert withdrawn and not live.store.active_decisions()

    other = World(tmp_path / "other", Topics("w.", 1), REGISTRY)
    other.publish(*[e for e in events if type(e).__name__ != "CertificateVerified"], revocation)
    result = replay(other.runtime, "beijing", registry=REGISTRY, transport=other.bus, into=tmp_path / "r")
    try:
        transient: list[object] = []
        diffs = compare(live.store, result.store, transient)  # type: ignore[arg-type]
        missing = [d for d in diffs if d.field == "decision" and d.replayed is None]
        assert {d.live for d in missing} == {"withdrawn: certificate revoked: forged"}
        assert len(missing) == len(withdrawn) and not transient
        assert any(d.field == "facts.certificates" for d in diffs)
    finally:
        result.close()
        live.close()


def test_a_single_kafka_broker_keeps_the_log_and_a_replay_afterwards_equals_the_live_model(tmp_path: Path) -> None:
    topics = Topics("durable.", 3)
    state = provisioned(tmp_path / "state")
    started = _mra(state, topics, None, "broker", "start", "--engine", "kafka", "--json")
    assert started.returncode == 0, started.stderr
    bootstrap = json.loads(started.stdout)["bootstrap"]
    try:
        transport = KafkaTransport(bootstrap)
        try:
            active = _live(state, bootstrap, topics, transport, holders=5)
        finally:
            transport.close()
        assert active > 0
        assert _mra(state, topics, None, "broker", "stop").returncode == 0
        again = _mra(state, topics, None, "broker", "start", "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["kind"] == "kafka"
        audit = _mra(state, topics, None, "replay", "-j", "beijing", "--compare", "--json")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        report = json.loads(audit.stdout)
        assert report["comparable"] and report["differences"] == [] and report["live_behind"] == []
        assert report["counts"]["decisions_active"] == active and report["applied"] == 15
    finally:
        _mra(state, topics, None, "broker", "stop")
