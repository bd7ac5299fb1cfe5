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
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mra.core.ids import stable_id
from mra.core.plugins import load_registry
from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.schemas import BenefitDecided, CertificateVerified, EmployerRef, EmploymentStarted, HolderRegistered
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.replay import compare, replay
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker
T = datetime(2025, 10, 1, 9, tzinfo=UTC)


def _facts(kafka: KafkaTransport, topics: Topics, holders: int) -> None:
    pub = Publisher(kafka, topics, "test-intake")
    for i in range(holders):
        h = f"holder-{i:04d}"
        region = ("beijing", "tianjin", "hebei")[i % 3]
        events = [
            HolderRegistered(
                holder_id=h,
                category=("foreign", "mainland", "hkmotw")[i % 3],  # type: ignore[arg-type]
                birth_date=date(1960 + i % 30, 1 + i % 12, 1),
            ),
            CertificateVerified(
                request_id=f"r{i}",
                holder_id=h,
                certificate_key=f"k{i}",
                entry_id=("BJ2025-I-139", "BJ2025-U-09", "BJ2025-O-05", "BJ2025-I-047")[i % 4],
                issuer="x",
                verification_code=f"CODE-{i}",
                verified_at=T,
                verified_by="beijing",
                disclaimer="authenticity only",
            ),
            EmploymentStarted(
                holder_id=h,
                jurisdiction=region,
                employer=EmployerRef(name="E", credit_code="C", region=region),
                started=date(2025, 9, 1),
                years_in_scope=i % 5,
            ),
        ]
        for e in events:
            pub.publish(e, id=stable_id("fact", h, type(e).__name__), time=T)
    pub.flush()


def _mra(state: Path, bootstrap: str, topics: Topics, *args: str) -> list[str]:
    return [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, *args]


def _env(topics: Topics) -> dict[str, str]:
    return dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))


def test_three_bureaus_in_their_own_processes_one_killed_and_restarted(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    _facts(kafka, topics, 300)
    state = tmp_path / "state"
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
    reader = kafka.reader([topics.name("benefits")])
    published: list[BenefitDecided] = []
    ids: list[str] = []
    empty = 0
    while empty < 3:
        batch = reader.poll(300, 5000)
        empty = 0 if batch else empty + 1
        for r in batch:
            env_ = decode(r)
            if isinstance(env_.data, BenefitDecided):
                published.append(env_.data)
                ids.append(env_.id)
    reader.close()
    for j in ("beijing", "tianjin", "hebei"):
        live = BureauStore(state / "bureaus" / topics.prefix.rstrip(".") / f"{j}.db", j, registry)
        active = {d.decision_id for d in live.active_decisions()}
        assert active, f"{j} decided nothing"
        mine = {p.decision.decision_id for p in published if p.decision.jurisdiction == j}
        assert mine == active, f"{j}: published decisions differ from the read model"  # nothing lost
        fresh = replay(runtime, j, registry=registry, transport=kafka, into=tmp_path / f"replay-{j}")
        assert compare(live, fresh.store) == []  # nothing duplicated or skipped in the fold
    # a re-publication after the kill carries the same id: no decision appears under two ids
    assert len({(p.decision.decision_id, i) for p, i in zip(published, ids, strict=True)}) == len(set(ids))
