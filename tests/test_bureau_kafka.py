"""Bureaus as separate processes on the real broker: killed and restarted, they lose and duplicate nothing."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest
from support.facts import holder_facts, publish, read_back
from support.signed import provisioned, signed

from mra.core.ids import stable_id
from mra.core.models import BenefitDecision
from mra.core.plugins import load_registry
from mra.events.benefits import decided_in
from mra.events.kafka import KafkaTransport
from mra.events.schemas import Event
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.replay import compare, replay
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker


def _facts(kafka: KafkaTransport, topics: Topics, holders: int) -> None:
    """``holders`` holders spread over the categories, rows and jurisdictions, each fact's id from its holder and
    type."""
    events = [
        e
        for i in range(holders)
        for e in holder_facts(
            f"holder-{i:04d}",
            ("BJ2025-I-139", "BJ2025-U-09", "BJ2025-O-05", "BJ2025-I-047")[i % 4],
            ("beijing", "tianjin", "hebei")[i % 3],
            category=("foreign", "mainland", "hkmotw")[i % 3],
            born=date(1960 + i % 30, 1 + i % 12, 1),
            request=f"r{i}",
            key=f"k{i}",
            code=f"CODE-{i}",
            years=i % 5,
        )
    ]
    publish(signed(kafka, topics, "test-intake"), events, ids=_by_holder_and_type)


def _by_holder_and_type(e: Event) -> str:
    return stable_id("fact", e.partition_key(), type(e).__name__)


def _mra(state: Path, bootstrap: str, topics: Topics, *args: str) -> list[str]:
    return [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, *args]


def _env(topics: Topics) -> dict[str, str]:
    return dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))


def test_three_bureaus_in_their_own_processes_one_killed_and_restarted(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    _facts(kafka, topics, 300)
    state = provisioned(tmp_path / "state")
    env = _env(topics)
    procs = {
        j: subprocess.Popen(
            _mra(state, bootstrap, topics, "bureau", "run", "-j", j, "--until-idle", "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for j in ("tianjin", "hebei")
    }
    victim = subprocess.Popen(
        _mra(state, bootstrap, topics, "bureau", "run", "-j", "beijing"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = state / "bureaus" / topics.prefix.rstrip(".") / "beijing.db"
    deadline = time.monotonic() + 60
    applied = 0
    while time.monotonic() < deadline and applied < 50:
        if db.exists():
            with contextlib.suppress(sqlite3.OperationalError):
                applied = sqlite3.connect(db).execute("SELECT count(*) FROM applied").fetchone()[0]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert applied >= 50, "the beijing bureau applied nothing before the kill"

    again = subprocess.run(
        _mra(state, bootstrap, topics, "bureau", "run", "-j", "beijing", "--until-idle", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    for j, p in procs.items():
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, f"{j}: {err}"
        assert json.loads(out)["idle"] is True

    runtime = Runtime(state, bootstrap, topics)
    registry = load_registry()
    published: list[BenefitDecision] = []
    ids: list[str] = []
    for env_ in read_back(kafka, topics):
        for d in decided_in(env_.data):
            published.append(d)
            ids.append(env_.id)
    for j in ("beijing", "tianjin", "hebei"):
        live = BureauStore(state / "bureaus" / topics.prefix.rstrip(".") / f"{j}.db", j, registry)
        active = {d.decision_id for d in live.active_decisions()}
        assert active, f"{j} decided nothing"
        mine = {p.decision_id for p in published if p.jurisdiction == j}
        assert mine == active, f"{j}: published decisions differ from the read model"  # nothing lost
        fresh = replay(runtime, j, registry=registry, transport=kafka, into=tmp_path / f"replay-{j}")
        assert compare(live, fresh.store) == []  # nothing duplicated or skipped in the fold
    # a re-publication after the kill carries the same id: no decision appears under two ids
    under: dict[str, set[str]] = {}
    for p, i in zip(published, ids, strict=True):
        under.setdefault(p.decision_id, set()).add(i)
    assert under and all(len(events) == 1 for events in under.values())
