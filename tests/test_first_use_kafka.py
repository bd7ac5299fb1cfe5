"""Secure on first use, on the real broker: a fresh install verifies, a command with no keys refuses and says how
to provision, verification off is loud, and a bureau on another machine runs on the trust store and its own key."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.deployment import Deployment
from support.facts import employer, registered, verified

from mra.core.plugins import load_registry
from mra.events.envelope import decode, encode
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.schemas import EmploymentStarted, Event
from mra.events.signing import Verifier
from mra.events.topics import Topics
from mra.services.audit import read_log
from mra.services.keys import KeyPaths, load_trust

pytestmark = pytest.mark.broker

T = datetime(2025, 10, 1, 9, tzinfo=UTC)


def mra(
    state: Path, *args: str, bootstrap: str | None = None, prefix: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    if prefix:
        env |= {"MRA_TOPIC_PREFIX": prefix, "MRA_PARTITIONS": "3"}
    base = [sys.executable, "-m", "mra.cli", "--state-dir", str(state)]
    if bootstrap:
        base += ["--bootstrap", bootstrap]
    return subprocess.run([*base, *args], capture_output=True, text=True, timeout=180, env=env)


def unstamped(transport: KafkaTransport, topics: Topics, events: list[Event]) -> None:
    """Events as a raw producer writes them: valid CloudEvents, no publisher stamp, no signature."""
    pub = Publisher(transport, topics, "nobody")
    for e in events:
        env = pub.envelope(e, time=T)
        key, value, headers = encode(env.__class__(**{**env.__dict__, "stamp": None}))
        transport.send(topics.name(e.TOPIC), key, value, headers)
    transport.flush(30)


def invented_holder() -> list[Event]:
    return [
        registered("h-invented"),
        verified("h-invented", code="FAKE-0001"),
        EmploymentStarted(
            holder_id="h-invented",
            jurisdiction="beijing",
            employer=employer(),
            started=date(2025, 9, 1),
            years_in_scope=3,
        ),
    ]


def test_unsigned_events_on_a_fresh_install_are_dead_lettered_and_decide_nothing(tmp_path: Path) -> None:
    state = tmp_path / "fresh"
    prefix = f"f{uuid.uuid4().hex[:8]}."
    started = mra(state, "broker", "start", "--json", prefix=prefix)
    assert started.returncode == 0, started.stderr
    try:
        bootstrap = json.loads(started.stdout)["bootstrap"]
        assert "generated signing keys" in started.stderr and KeyPaths(state).trust.exists()
        topics = Topics(prefix, 3)
        transport = KafkaTransport(bootstrap)
        try:
            unstamped(transport, topics, invented_holder())
            run = mra(state, "bureau", "run", "-j", "beijing", "--until-idle", "--json", prefix=prefix)
            assert run.returncode == 0, run.stderr
            stats = json.loads(run.stdout)
            assert (stats["applied"], stats["dead_lettered"]) == (0, 3)
            letters = [dict(r.headers) for r in read_log(transport, [topics.name("deadletter")], timeout=30)]
            assert len(letters) == 3 and all(h["mra_dlq_reason"].startswith(b"unsigned") for h in letters)
        finally:
            transport.close()
        db = next((state / "bureaus").rglob("beijing.db"))
        with sqlite3.connect(db) as c:  # nothing of the invented holder was taken in, so nothing was decided
            assert c.execute("SELECT count(*) FROM holders").fetchone()[0] == 0
            assert c.execute("SELECT count(*) FROM decision_sets").fetchone()[0] == 0
    finally:
        mra(state, "broker", "stop")


@pytest.mark.parametrize(
    "args",
    [
        ("bureau", "run", "-j", "beijing", "--until-idle"),
        ("platform", "run", "--until-idle"),
        ("catalogue", "publish", "-j", "beijing"),
        ("employment", "start", "--holder", "h1", "-j", "beijing", "--employer", "ACME", "--on", "2025-10-01"),
        ("employment", "end", "--holder", "h1", "-j", "beijing", "--on", "2025-10-01"),
        ("verify", "submit", "--file", str(Path(__file__).resolve().parents[1] / "examples" / "request.json")),
        ("serve", "--port", "0"),
    ],
)
def test_a_command_that_publishes_or_runs_a_service_refuses_without_keys_and_says_how_to_provision(
    tmp_path: Path, bootstrap: str, topics: Topics, kafka: KafkaTransport, args: tuple[str, ...]
) -> None:
    done = mra(tmp_path / "unprovisioned", *args, bootstrap=bootstrap, prefix=topics.prefix)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "has no trust store" in done.stderr and "mra keys import FILE" in done.stderr, done.stderr
    for logical in ("holders", "verification", "catalogue", "benefits"):
        assert list(read_log(kafka, [topics.name(logical)], timeout=30)) == [], f"something was published on {logical}"


def test_verification_off_is_loud_and_services_say_they_run_unverified(
    tmp_path: Path, bootstrap: str, topics: Topics, kafka: KafkaTransport
) -> None:
    state = tmp_path / "state"
    assert mra(state, "keys", "init").returncode == 0
    off = mra(state, "keys", "mode", "off")
    assert off.returncode == 0 and "WARNING: verification is OFF" in off.stderr
    run = mra(state, "bureau", "run", "-j", "beijing", "--until-idle", bootstrap=bootstrap, prefix=topics.prefix)
    assert run.returncode == 0, run.stderr
    assert "verification is OFF" in run.stderr and "unverified" in run.stderr
    on = mra(state, "keys", "mode", "per-event")
    assert on.returncode == 0 and "WARNING" not in on.stderr
    quiet = mra(state, "bureau", "run", "-j", "beijing", "--until-idle", bootstrap=bootstrap, prefix=topics.prefix)
    assert quiet.returncode == 0 and "OFF" not in quiet.stderr


def test_a_bureau_on_another_machine_runs_on_the_trust_store_and_its_own_key(
    tmp_path: Path, bootstrap: str, topics: Topics, kafka: KafkaTransport
) -> None:
    a = Deployment(tmp_path / "a", bootstrap, topics)  # the provisioning machine: platform and intakes
    try:
        bundle = tmp_path / "bureau-beijing-2.json"
        made = mra(a.home, "keys", "provision", "bureau-beijing", "--to", str(bundle), "--json")
        assert made.returncode == 0, made.stderr
        (new_key,) = json.loads(made.stdout)["keys"]
        b = tmp_path / "b"
        imported = mra(b, "keys", "import", str(bundle), "--json")
        assert imported.returncode == 0, imported.stderr
        held = sorted(str(p.relative_to(b)) for p in (b / "keys").rglob("*") if p.is_file() and p.name != ".lock")
        assert held == ["keys/signing/bureau-beijing.json", "keys/trust.json"]
        trust_a = load_trust(a.home)
        assert trust_a is not None
        active = [k.key_id for k in trust_a.identities["bureau-beijing"].keys if k.retired is None]
        assert len(active) == 2 and new_key["key_id"] in active, "a new instance's key leaves the others active"

        holder, _ = a.verified_and_employed(j="beijing")  # signed by A's identities, decided by A's own bureau
        run = mra(
            b, "bureau", "run", "-j", "beijing", "--until-idle", "--json", bootstrap=bootstrap, prefix=topics.prefix
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["dead_lettered"] == 0
        verifier = Verifier(trust_a)
        from_b = [
            decode(r)
            for r in read_log(kafka, [topics.name("benefits")], timeout=30)
            if dict(r.headers).get("ce_mrakey") == new_key["key_id"].encode()
        ]
        assert from_b, "the bureau on B published its decisions signed with its own key"
        assert all(verifier.per_event(e) is None for e in from_b)
        assert {e.stamp.publisher for e in from_b if e.stamp} == {"bureau-beijing"}

        refused = mra(b, "employment", "start", "--holder", holder, "-j", "beijing", "--employer", "X",
                      bootstrap=bootstrap, prefix=topics.prefix)
        assert refused.returncode != 0 and "beijing-intake has no signing key" in refused.stderr
        assert "mra keys provision beijing-intake" in refused.stderr
        assert load_registry().jurisdiction("beijing")
    finally:
        a.close()
