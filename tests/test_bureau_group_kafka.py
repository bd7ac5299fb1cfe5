"""A bureau group on a three-broker Apache Kafka cluster sharing one PostgreSQL read model, under fire.

Three ``mra bureau run -j beijing --store postgresql://…`` processes (three state directories: three machines) share
6 partitions. Members are SIGKILLed at seeded times and started again; one broker is SIGKILLed and started again
mid-run; a catalogue entry is withdrawn while the group runs. Afterwards: no decision lost, no event id published
twice (read committed), the shared read model equal to a clean replay, the withdrawal applied to every affected
holder whichever member owned them, and every instance answers ``holder show`` for any holder.

Sized for CI by ``MRA_GROUP_HOLDERS`` (default 1000; 2000 is the size docs/reliability.md reports) and
``MRA_GROUP_KILLS`` (default 20).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from support.facts import entry_withdrawn, holder_facts, publish, read_back
from support.signed import provisioned, signed

from mra.core.ids import stable_id
from mra.core.plugins import load_registry
from mra.events.broker import start_broker, stop_broker
from mra.events.kafka import KafkaTransport
from mra.events.kafka_cluster import cluster_layout, kill_node, start_node, wait_ready
from mra.events.schemas import Event
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.bureau_postgres import PostgresBureauStore, schema_for
from mra.services.replay import compare, replay
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker
HOLDERS = int(os.environ.get("MRA_GROUP_HOLDERS", "1000"))
KILLS = int(os.environ.get("MRA_GROUP_KILLS", "20"))
SEED = 16
ENTRIES = ("BJ2025-I-139", "BJ2025-U-09", "BJ2025-O-05", "BJ2025-I-047")
WITHDRAWN = "BJ2025-I-139"


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Path, str]]:
    state = Path(tempfile.mkdtemp(prefix="mra-group-cluster-"))
    info = start_broker(state, engine="kafka", brokers=3)
    assert info.bootstrap
    try:
        yield state, info.bootstrap
    finally:
        stop_broker(state)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def work() -> Iterator[Path]:
    """The members' state directories, outside pytest's numbered temporary directories (which another pytest
    session of the same user may prune while the members run)."""
    path = Path(tempfile.mkdtemp(prefix="mra-group-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _by_holder_and_type(e: Event) -> str:
    return stable_id("fact", e.partition_key(), type(e).__name__)


def _member(state: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 - the process keeps it
    return subprocess.Popen(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "bureau", "run", "-j", "beijing"],
        env=env,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def _wait_for_a_decision_on(url: str, schema: str, entry: str) -> None:
    store = PostgresBureauStore(url, schema)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if any(s.decision.entry_id == entry for s in store.decisions()):
                return
            time.sleep(1)
        pytest.fail(f"the group decided nothing on {entry} within 180 s")
    finally:
        store.close()


def _status_names_every_member(state: Path, env: dict[str, str], topics: Topics) -> None:
    """``bureau status`` shows the group's members, the partitions each owns, and lag per owned partition."""
    every = {f"{topics.name(t)}:{p}" for t in ("catalogue", "verification", "holders") for p in range(6)}
    deadline = time.monotonic() + 90
    group: dict[str, object] | None = None
    while time.monotonic() < deadline:
        ran = subprocess.run(
            [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "bureau", "status", "-j", "beijing", "--json"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        group = json.loads(ran.stdout)["group"]
        members = group["members"] if group else []
        owned = [tp for m in members for tp in m["partitions"]]
        if group and group["state"] == "Stable" and len(members) >= 2 and set(owned) == every:
            assert len(owned) == len(every)  # each partition owned once
            assert all(set(m["lag"]) == set(m["partitions"]) for m in members)
            assert len({m["client_id"] for m in members}) == len(members)  # instances tell apart
            return
        time.sleep(2)
    pytest.fail(f"bureau status never showed a stable group owning every partition: {group}")


@pytest.mark.timeout(900)
def test_a_bureau_group_survives_member_kills_and_a_broker_kill(
    cluster: tuple[Path, str], postgres_url: str, work: Path
) -> None:
    cluster_state, bootstrap = cluster
    tmp_path = work
    topics = Topics(f"g{uuid.uuid4().hex[:8]}.", 6)
    transport = KafkaTransport(bootstrap)
    transport.ensure_topics(topics.all())
    events = [
        e
        for i in range(HOLDERS)
        for e in holder_facts(
            f"holder-{i:05d}",
            ENTRIES[i % 4],
            "beijing",
            category=("foreign", "mainland", "hkmotw")[i % 3],
            born=date(1960 + i % 30, 1 + i % 12, 1),
            request=f"r{i}",
            key=f"k{i}",
            code=f"CODE-{i}",
            years=1 + i % 5,
        )
    ]
    half = len(events) // 2
    publisher = signed(transport, topics, "test-intake")
    publish(publisher, events[:half], ids=_by_holder_and_type)

    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS="6", MRA_BOOTSTRAP_SERVERS=bootstrap)
    env.update(MRA_STORE=postgres_url, MRA_KAFKA_TIMEOUT_S="20", MRA_GROUP_STALL_S="300")
    states = [provisioned(tmp_path / f"machine-{n}") for n in range(3)]
    logs = [tmp_path / f"member-{n}.log" for n in range(3)]
    members = [_member(states[n], env, logs[n]) for n in range(3)]
    rng = random.Random(SEED)
    layout = cluster_layout(cluster_state)
    assert layout is not None and len(layout.nodes) == 3
    victim_broker = layout.nodes[rng.randrange(3)].node_id
    kills: list[int] = []
    try:
        for k in range(KILLS):
            time.sleep(rng.uniform(1.0, 4.0))
            n = rng.randrange(3)
            os.killpg(members[n].pid, signal.SIGKILL)
            members[n].wait(10)
            kills.append(n)
            members[n] = _member(states[n], env, logs[n])
            if k == KILLS // 4:
                publish(publisher, events[half:], ids=_by_holder_and_type)
            if k == KILLS // 3:
                assert kill_node(cluster_state, victim_broker)  # a broker dies mid-run: replicas take over
            if k == KILLS // 2:  # once the group has decided on the entry, so there is something to withdraw
                _wait_for_a_decision_on(postgres_url, schema_for("beijing", topics.prefix), WITHDRAWN)
                publish(publisher, [entry_withdrawn(WITHDRAWN, effective=date(2025, 1, 1), reason="row retired")])
            if k == (2 * KILLS) // 3:
                start_node(cluster_state, victim_broker)
        wait_ready(cluster_state, layout, 120)
        _status_names_every_member(states[0], env, topics)
        # let the group finish: the shared positions reach the end of every partition
        names = [topics.name(t) for t in ("catalogue", "verification", "holders")]
        deadline = time.monotonic() + 300
        shared = PostgresBureauStore(postgres_url, schema_for("beijing", topics.prefix))
        try:
            while time.monotonic() < deadline:
                reader = transport.reader(names)
                try:
                    ends = reader.end_offsets(reader.assignment())
                finally:
                    reader.close()
                positions = shared.positions()
                if all(positions.get(tp, 0) >= end for tp, end in ends.items()) and not shared.counts().outbox_unsent:
                    break
                time.sleep(1)
            else:
                pytest.fail(f"the group did not reach the end of the log: {dict(positions)} vs {ends}")
        finally:
            shared.close()
    finally:
        for m in members:
            if m.poll() is None:
                os.killpg(m.pid, signal.SIGTERM)
        for m in members:
            try:
                m.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(m.pid, signal.SIGKILL)
        start_node(cluster_state, victim_broker)
    assert len(kills) == KILLS

    registry = load_registry()
    runtime = Runtime(provisioned(tmp_path / "audit"), bootstrap, topics)
    shared_store = PostgresBureauStore(postgres_url, schema_for("beijing", topics.prefix))
    live = BureauStore(shared_store, "beijing", registry)
    fresh = replay(runtime, "beijing", registry=registry, transport=transport, into=tmp_path / "replay")
    try:
        assert fresh.counts.read == len(events) + 1
        assert compare(live, fresh.store) == []  # the shared read model equals a clean replay: nothing lost
        counts = live.counts()
        assert counts["holders"] == HOLDERS and counts["decisions_active"] > HOLDERS
        on_withdrawn = [d for d in live.active_decisions() if d.entry_id == WITHDRAWN]
        assert not on_withdrawn, f"{len(on_withdrawn)} decisions stand on the withdrawn entry"

        published = read_back(transport, topics)
        # read committed: the relay publishes in Kafka transactions, and a killed relay's successor publishes only
        # what was not committed, so no event id is on the topic twice
        twice = {i: n for i, n in Counter(e.id for e in published).items() if n > 1}
        print(f"group run: {len(published)} event(s) on the benefits topic, {len(twice)} id(s) published twice")
        recovered = [
            line for n in range(3) for line in logs[n].read_text(errors="replace").splitlines()
            if "the previous relay did not finish" in line
        ]  # fmt: skip
        found = sum(int(line.split("; ")[1].split(" of ")[0]) for line in recovered)
        print(f"group run: {len(recovered)} relay(s) took over from one that did not finish; {found} event(s) found")
        assert not twice, f"{len(twice)} event id(s) published twice: {sorted(twice)[:5]}"
        on_entry = [d for d in shared_store.decisions(active=None) if d.decision.entry_id == WITHDRAWN]
        assert on_entry, "no decision on the entry before its withdrawal"
        assert all(not d.active and WITHDRAWN in (d.withdrawn_reason or "") for d in on_entry)
        # the withdrawal reached every affected holder, whoever owned them
        print(f"group run: {len({d.decision.holder_id for d in on_entry})} holder(s) had decisions on {WITHDRAWN}")
    finally:
        fresh.close()
        live.close()
        transport.close()

    for n in range(3):  # every instance answers for any holder
        for holder in ("holder-00000", f"holder-{HOLDERS - 1:05d}", f"holder-{HOLDERS // 2:05d}"):
            shown = subprocess.run(
                [sys.executable, "-m", "mra.cli", "--state-dir", str(states[n]), "holder", "show", holder,
                 "-j", "beijing", "--json"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert shown.returncode == 0, shown.stderr
            assert json.loads(shown.stdout)["holder_id"] == holder
