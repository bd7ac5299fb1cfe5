"""Soak with faults: a population of holders through the real broker while bureaus and the platform are killed.

``python -m benchmarks.soak [--holders N] [--seed S]`` from the repository root (or ``python benchmarks/soak.py``).

N holders (default 10,000) are verified, employed and relocated across Beijing, Tianjin and Hebei. Most facts
are published directly as events; a fraction of the holders go through the verification platform (a request
prepared and published as ``mra verify submit`` does, checked by ``mra platform run`` against an issuer register
the harness writes). Meanwhile the harness SIGKILLs and restarts the three ``mra bureau run -j J`` processes and
``mra platform run`` on a schedule drawn from ``--seed`` (the same seed, the same schedule and population), and
re-publishes a fraction of the facts under their original ids, as a publisher retrying after a lost ack would.

At the end every process is stopped, the platform and the bureaus are run until idle, and the harness checks:

- every bureau's read model equals a clean replay of the log (``services.replay.replay`` + ``compare``);
- no decision is lost or duplicated: the decisions on the benefits topic (read through its one view) are exactly the
  decision ids of the read models (active and withdrawn), and a decision published twice was published under
  the same event id with the same content (an identical re-publication after a kill);
- every withdrawn decision was published as withdrawn;
- the active decisions per jurisdiction are what the rules predict for the population, computed here from the
  population alone: for each holder, its final jurisdiction and whether its certificate stands, times the
  number of rules of that jurisdiction (``Registry.rules``).

The broker is the one named by ``--bootstrap`` / ``MRA_BOOTSTRAP_SERVERS``, else a Tansu started into the work
directory. The exit status is 0 only if every check passes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from mra.core.errors import MraError
from mra.core.ids import stable_id
from mra.core.models import CatalogueEntry
from mra.core.plugins import Registry, load_registry
from mra.events.benefits import decided_in, withdrawn_in
from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CertificateRevoked,
    CertificateVerified,
    EmployerRef,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderRegistered,
)
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.bureau_sqlite import SqliteBureauStore
from mra.services.keys import generate_key, init_keys, signer_for, standard_identities
from mra.services.platform import (
    PUBLISHER,
    PlatformPaths,
    PlatformStore,
    load_settings,
    prepare,
    publish_submission,
)
from mra.services.replay import behind, compare, replay
from mra.services.runtime import Runtime

__all__ = [
    "JURISDICTIONS",
    "Population",
    "SoakConfig",
    "SoakReport",
    "fault_schedule",
    "generate",
    "main",
    "predict",
    "run_soak",
]

JURISDICTIONS = ("beijing", "tianjin", "hebei")
CREDIT_CODE = "91110108MA01K7QH2J"  # a well-formed 统一社会信用代码 (examples/request.json)
T0 = datetime(2025, 9, 1, 9, tzinfo=UTC)


# --- the population -------------------------------------------------------------------------------------------


@dataclass
class Holder:
    """One generated holder and everything the harness will publish about them."""

    index: int
    id: str
    category: str
    born: date
    entry: str
    via_platform: bool
    moves: list[tuple[str, date]]
    """Employments in order: (jurisdiction, start date); each ends on the next one's start."""
    leaves: date | None = None
    """The last employment ends on this day and none follows (the holder leaves the region)."""
    revoked: bool = False
    void: bool = False
    """Platform holders only: the issuer's register marks the certificate as not issued."""
    request: dict[str, Any] | None = None

    @property
    def certificate_stands(self) -> bool:
        return not self.revoked and not self.void

    @property
    def final_jurisdiction(self) -> str | None:
        return None if self.leaves is not None else self.moves[-1][0]


@dataclass
class Population:
    holders: list[Holder]

    def counts(self) -> dict[str, int]:
        return {
            "holders": len(self.holders),
            "via_platform": sum(h.via_platform for h in self.holders),
            "relocated": sum(len(h.moves) > 1 for h in self.holders),
            "left_the_region": sum(h.leaves is not None for h in self.holders),
            "revoked": sum(h.revoked for h in self.holders),
            "void_certificates": sum(h.void for h in self.holders),
        }


def _entries(registry: Registry) -> list[CatalogueEntry]:
    """Beijing catalogue rows that are qualifications (not designations) and name an issuer."""
    return [e for ed in registry.catalogues("beijing") for e in ed.entries if e.designates is None and e.issuer_names()]


def generate(n: int, seed: int, registry: Registry, platform_fraction: float = 0.05) -> Population:
    """The same ``(n, seed)`` always gives the same population."""
    rng = random.Random(seed)
    entries = _entries(registry)
    holders: list[Holder] = []
    for i in range(n):
        first = rng.choice(JURISDICTIONS)
        start = date(2025, 9, 1) + timedelta(days=rng.randrange(0, 30))
        moves = [(first, start)]
        if rng.random() < 0.3:
            for _ in range(1 if rng.random() < 0.8 else 2):
                here = moves[-1][0]
                moves.append((rng.choice([j for j in JURISDICTIONS if j != here]), moves[-1][1] + timedelta(days=30)))
        leaves = moves[-1][1] + timedelta(days=20) if rng.random() < 0.05 else None
        via_platform = rng.random() < platform_fraction
        entry = rng.choice(entries)
        holder = Holder(
            index=i,
            id=f"soak-{seed}-{i:06d}",
            category=rng.choice(["foreign", "mainland", "hkmotw"]),
            born=date(1955 + rng.randrange(0, 45), 1 + rng.randrange(12), 1 + rng.randrange(28)),
            entry=entry.id,
            via_platform=via_platform,
            moves=moves,
            leaves=leaves,
            revoked=not via_platform and rng.random() < 0.1,
            void=via_platform and rng.random() < 0.2,
        )
        if via_platform:
            holder.request = {
                "reference": f"SOAK-{seed}-{i}",
                "employer": {"name": "北京示例科技有限公司", "credit_code": CREDIT_CODE, "region": first},
                "holder": {
                    "name": f"Holder {seed} {i}",
                    "nationality": {"foreign": "GB", "mainland": "CN", "hkmotw": "HK"}[holder.category],
                    "birth_date": holder.born.isoformat(),
                    "document_type": "passport",
                    "document_number": f"P{seed}X{i:07d}",
                },
                "certificate": {
                    "entry": entry.id,
                    "issuer": entry.issuer_names()[0],
                    "number": f"CERT-{seed}-{i:07d}",
                    "issued": "2020-01-15",
                    "expires": None,
                },
            }
        holders.append(holder)
    return Population(holders)


def predict(population: Population, registry: Registry) -> dict[str, int]:
    """Active decisions per jurisdiction, from the population alone: one per rule of the holder's final
    jurisdiction, for every holder whose certificate stands (Beijing decides each of its rules; Tianjin and Hebei
    decide 四.3 recognition once)."""
    rules = {j: len(registry.rules(j)) for j in JURISDICTIONS}
    out = dict.fromkeys(JURISDICTIONS, 0)
    for h in population.holders:
        final = h.final_jurisdiction
        if final is not None and h.certificate_stands:
            out[final] += rules[final]
    return out


def register_json(population: Population, registry: Registry) -> dict[str, Any]:
    """The issuer register the platform checks platform holders against: void ones marked so."""
    sections: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for h in population.holders:
        if h.request is None:
            continue
        _, entry = registry.find_entry(h.entry)
        cert = h.request["certificate"]
        sections[entry.issuer_names()].append(
            {
                "number": cert["number"],
                "holder": h.request["holder"]["name"],
                "entry": entry.id,
                "issued": cert["issued"],
                "expires": None,
                "status": "void" if h.void else "valid",
            }
        )
    return {
        "source": "generated by benchmarks/soak.py: fictional certificates",
        "issuers": [{"names": list(names), "certificates": certs} for names, certs in sections.items()],
    }


# --- the processes --------------------------------------------------------------------------------------------


class Child:
    """One ``mra`` process the harness starts, kills and restarts; its stderr goes to a log file per start."""

    def __init__(self, name: str, args: Sequence[str], base: Sequence[str], env: dict[str, str], logs: Path) -> None:
        self.name, self.args, self.base, self.env, self.logs = name, list(args), list(base), env, logs
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.crashes: list[str] = []

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"{self.name}-{self.starts}.log", "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [*self.base, *self.args], env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """A process that exited by itself crashed: record why and start it again."""
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.logs / f"{self.name}-{self.starts}.log").read_text(errors="replace")[-600:]
            self.crashes.append(f"{self.name} exited with {self.proc.returncode}: {tail.strip()}")
            self.proc = None
            self.start()

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
            self.proc = None

    def stop(self, sig: int, grace: float = 30.0) -> int | None:
        """Stop politely; SIGKILL after ``grace`` seconds. The exit status, or None if it had to be killed."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            return None


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class SoakConfig:
    holders: int = 10_000
    seed: int = 1
    platform_fraction: float = 0.05
    duplicate_fraction: float = 0.01
    kill_every: tuple[float, float] = (4.0, 12.0)
    """Seconds between two kills, drawn uniformly."""
    down_for: tuple[float, float] = (0.0, 2.0)
    """Seconds a killed process stays down before it is restarted."""
    chaos_min_s: float = 0.0
    """Keep killing at least this long, even when everything has caught up."""
    chaos_max_s: float = 1800.0
    partitions: int = 4
    bootstrap: str | None = None
    workdir: Path | None = None
    keep: bool = False
    final_timeout_s: float = 1800.0


@dataclass
class SoakReport:
    command: str
    holders: int
    seed: int
    broker: str
    population: dict[str, int]
    events_published: int
    identical_republications_injected: int
    platform_requests: int
    kills: dict[str, int]
    restarts: int
    crashes: list[str]
    chaos_seconds: float
    seconds: float
    events_applied: dict[str, int]
    platform: dict[str, Any]
    predicted_active: dict[str, int]
    live_active: dict[str, int]
    replay_active: dict[str, int]
    differences: dict[str, int]
    behind: dict[str, list[str]]
    decided_published: int
    decided_distinct: int
    decisions_in_read_models: int
    decisions_lost: int
    decisions_unknown: int
    decisions_duplicated: int
    decisions_republished_identically: int
    withdrawals_lost: int
    dead_letters: int
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.crashes
            and self.decisions_lost == 0
            and self.decisions_unknown == 0
            and self.decisions_duplicated == 0
            and self.withdrawals_lost == 0
            and self.dead_letters == 0
            and not any(self.differences.values())
            and not any(self.behind.values())
            and self.predicted_active == self.live_active == self.replay_active
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def text(self) -> str:
        kills = ", ".join(f"{k} {v}" for k, v in sorted(self.kills.items())) or "none"
        lines = [
            f"soak: {self.holders} holders, seed {self.seed}, broker {self.broker}",
            f"  population          {self.population}",
            f"  events published    {self.events_published} by the harness (+{self.identical_republications_injected}"
            f" re-published under their ids), {self.platform_requests} platform requests",
            f"  events applied      {self.events_applied}",
            f"  platform            {self.platform}",
            f"  faults              {sum(self.kills.values())} SIGKILLs ({kills}), {self.restarts} restarts, "
            f"{len(self.crashes)} crashes",
            f"  seconds             {self.seconds:.0f} in all, {self.chaos_seconds:.0f} under faults; stages "
            + ", ".join(f"{k} {v:.0f}s" for k, v in self.stages.items()),
            f"  active decisions    predicted {self.predicted_active}",
            f"                      live      {self.live_active}",
            f"                      replayed  {self.replay_active}",
            f"  live vs replay      differences {self.differences}; behind {self.behind}",
            f"  benefits topic      {self.decided_published} published decisions of {self.decided_distinct} "
            f"decisions; the read models hold {self.decisions_in_read_models}",
            f"  decisions lost      {self.decisions_lost} (and {self.decisions_unknown} published but unknown)",
            f"  decisions duplicated {self.decisions_duplicated} ({self.decisions_republished_identically} identical "
            "re-publications)",
            f"  withdrawals lost    {self.withdrawals_lost}",
            f"  dead letters        {self.dead_letters}",
            f"  result              {'PASS' if self.ok else 'FAIL'}",
        ]
        lines += [f"  crash: {c}" for c in self.crashes]
        return "\n".join(lines)


VICTIMS = (*JURISDICTIONS, "platform")


def fault_schedule(config: SoakConfig) -> Iterator[tuple[float, str, float]]:
    """The seeded faults, endlessly: (seconds until the next SIGKILL, which process, seconds it stays down)."""
    rng = random.Random(config.seed * 7919 + 1)
    while True:
        yield rng.uniform(*config.kill_every), rng.choice(VICTIMS), rng.uniform(*config.down_for)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def _facts(h: Holder, seed: int) -> tuple[list[tuple[str, Event, datetime]], list[tuple[str, Event, datetime]]]:
    """The holder's first facts (registration, verification, first employment) and the later ones (moves,
    leaving, revocation), each with a stable id and its event time."""

    def ident(kind: str, n: int = 0) -> str:
        return stable_id("soak", str(seed), h.id, kind, str(n))

    first: list[tuple[str, Event, datetime]] = []
    later: list[tuple[str, Event, datetime]] = []
    key = f"soak-cert-{seed}-{h.index}"
    if not h.via_platform:
        first.append(
            (
                ident("registered"),
                HolderRegistered(holder_id=h.id, category=h.category, birth_date=h.born),
                T0,
            )
        )
        first.append(
            (
                ident("verified"),
                CertificateVerified(
                    request_id=f"soak-request-{seed}-{h.index}",
                    holder_id=h.id,
                    certificate_key=key,
                    entry_id=h.entry,
                    issuer="soak issuer",
                    verification_code=f"SOAK-{seed}-{h.index}",
                    verified_at=T0,
                    verified_by="beijing",
                    disclaimer="authenticity only",
                ),
                T0,
            )
        )
    for n, (j, start) in enumerate(h.moves):
        started = EmploymentStarted(
            holder_id=h.id,
            jurisdiction=j,
            employer=EmployerRef(name=f"Employer {h.index % 97}", credit_code=CREDIT_CODE, region=j),
            started=start,
            years_in_scope=float(h.index % 7),
        )
        if n == 0:
            first.append((ident("started", n), started, _at(start)))
        else:
            previous = h.moves[n - 1][0]
            ended = EmploymentEnded(holder_id=h.id, jurisdiction=previous, ended=start)
            later.append((ident("ended", n), ended, _at(start)))
            later.append((ident("started", n), started, _at(start)))
    if h.leaves is not None:
        ended = EmploymentEnded(holder_id=h.id, jurisdiction=h.moves[-1][0], ended=h.leaves)
        later.append((ident("left"), ended, _at(h.leaves)))
    if h.revoked:
        revoked = CertificateRevoked(
            holder_id=h.id,
            certificate_key=key,
            verification_code=f"SOAK-{seed}-{h.index}",
            revoked_at=T0 + timedelta(days=60),
            reason="withdrawn by the issuer",
        )
        later.append((ident("revoked"), revoked, T0 + timedelta(days=60)))
    return first, later


class Harness:
    """One soak run: broker, processes, population, faults, and the final checks."""

    def __init__(self, config: SoakConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.registry = load_registry()
        self.work = config.workdir or Path(tempfile.mkdtemp(prefix="mra-soak-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.state = self.work / "state"
        # provisioned as a deployment is (every identity's key, a verifying trust store), with one intake that
        # speaks for every jurisdiction so the population's facts come from one publisher
        init_keys(self.state, standard_identities(self.registry.jurisdictions), Mode.PER_EVENT)
        if signer_for(self.state, "soak-intake") is None:
            generate_key(self.state, "soak-intake", may_publish=["cn.jjj.*"], jurisdictions=["*"], issuers=["*"])
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)
        self.topics = Topics(prefix=f"soak{config.seed}x{uuid.uuid4().hex[:6]}.", partitions=config.partitions)
        self.population = generate(config.holders, config.seed, self.registry, config.platform_fraction)
        self.faults = fault_schedule(config)
        self.kills: Counter[str] = Counter()
        self.published = 0
        self.republished = 0
        self.requests = 0
        self.publish_error: BaseException | None = None
        self.stages: dict[str, float] = {}
        self._own_broker = False

    # setup -------------------------------------------------------------------------------------------------------
    def broker(self) -> str:
        found = self.config.bootstrap or os.environ.get("MRA_BOOTSTRAP_SERVERS")
        if found:
            return found
        from mra.events.broker import start_broker

        info = start_broker(self.work / "broker")
        assert info.bootstrap
        self._own_broker = True
        return info.bootstrap

    def children(self, bootstrap: str) -> dict[str, Child]:
        env = dict(
            os.environ,
            MRA_TOPIC_PREFIX=self.topics.prefix,
            MRA_PARTITIONS=str(self.topics.partitions),
            PYTHONUNBUFFERED="1",
        )
        base = [sys.executable, "-m", "mra.cli", "--state-dir", str(self.state), "--bootstrap", bootstrap]
        out = {j: Child(j, ["bureau", "run", "-j", j], base, env, self.logs) for j in JURISDICTIONS}
        out["platform"] = Child("platform", ["platform", "run"], base, env, self.logs)
        return out

    # publishing --------------------------------------------------------------------------------------------------
    def publish(self, transport: KafkaTransport) -> None:
        """Every holder's facts, in waves of first facts then later ones, with some identical re-publications."""
        try:
            self._publish(transport)
        except BaseException as e:  # reported by the main thread
            self.publish_error = e

    def _publish(self, transport: KafkaTransport) -> None:
        cfg = self.config
        pub = Publisher(transport, self.topics, "soak-intake", signer=signer_for(self.state, "soak-intake"))
        platform_pub = Publisher(transport, self.topics, PUBLISHER, signer=signer_for(self.state, PUBLISHER))
        settings = load_settings(self.state)
        dup_rng = random.Random(cfg.seed * 31 + 7)
        holders = self.population.holders
        wave = max(50, len(holders) // 20)
        for w in range(0, len(holders), wave):
            batch: list[tuple[str, Event, datetime]] = []
            later: list[tuple[str, Event, datetime]] = []
            for h in holders[w : w + wave]:
                if h.request is not None:
                    sub = prepare(h.request, state_dir=self.state, registry=self.registry, settings=settings, now=T0)
                    if sub.status != "accepted":
                        raise RuntimeError(f"the platform refused a generated request: {sub.reasons}")
                    h.id = sub.holder_id  # the platform's pseudonym: employment facts follow it
                    publish_submission(sub, platform_pub)
                    self.requests += 1
                    self.published += len(sub.events)
                first, rest = _facts(h, cfg.seed)
                batch += first
                later += rest
            batch += later  # a holder's later facts follow their first ones on the holder's partition
            for ident, event, at in batch:
                pub.publish(event, id=ident, time=at)
            pub.flush()
            self.published += len(batch)
            again = [b for b in batch if dup_rng.random() < cfg.duplicate_fraction]
            for ident, event, at in again:  # a retry after a lost ack: same id, same content
                pub.publish(event, id=ident, time=at)
            pub.flush()
            self.republished += len(again)
            time.sleep(0.05)

    # faults ------------------------------------------------------------------------------------------------------
    def applied(self, stores: dict[str, SqliteBureauStore]) -> dict[str, int]:
        """Events each bureau applied, read through its store while it writes (WAL: readers do not block); a
        store is opened once its file exists and kept open in ``stores``."""
        out: dict[str, int] = {}
        for j in JURISDICTIONS:
            db = self.state / "bureaus" / self.topics.prefix.rstrip(".") / f"{j}.db"
            n = 0
            with contextlib.suppress(sqlite3.Error, MraError):
                if j not in stores and db.exists():
                    stores[j] = SqliteBureauStore(db)
                if j in stores:
                    n = stores[j].counts().events_applied
            out[j] = n
        return out

    def chaos(self, children: dict[str, Child], publisher: threading.Thread) -> float:
        """Kill and restart processes on the seeded schedule until the bureaus have read the published facts."""
        cfg = self.config
        started = time.monotonic()
        wait, victim, down = next(self.faults)
        next_kill = started + wait
        last_report = started
        stores: dict[str, SqliteBureauStore] = {}
        try:
            while True:
                now = time.monotonic()
                for c in children.values():
                    c.check()
                if self.publish_error is not None:
                    raise RuntimeError(f"publishing failed: {self.publish_error}") from self.publish_error
                done_publishing = not publisher.is_alive()
                applied = self.applied(stores)
                direct = self.published
                caught_up = done_publishing and all(n >= direct for n in applied.values())
                elapsed = now - started
                if (caught_up and elapsed >= cfg.chaos_min_s) or elapsed > cfg.chaos_max_s:
                    return elapsed
                if now - last_report > 30:
                    kills = dict(self.kills)
                    self.say(f"  {elapsed:5.0f}s  published {self.published}  applied {applied}  kills {kills}")
                    last_report = now
                if now >= next_kill:
                    children[victim].kill()
                    self.kills[victim] += 1
                    time.sleep(down)
                    children[victim].start()
                    wait, victim, down = next(self.faults)
                    next_kill = time.monotonic() + wait
                time.sleep(0.2)
        finally:
            for store in stores.values():
                store.close()

    # the end -----------------------------------------------------------------------------------------------------
    def settle(self, children: dict[str, Child], base: list[str], env: dict[str, str]) -> dict[str, Any]:
        """Stop everything, then run the platform and the bureaus until idle."""
        children["platform"].stop(signal.SIGTERM)
        for j in JURISDICTIONS:
            # SIGKILL, not SIGINT: a member that leaves its group politely in the middle of a rebalance, while it
            # leads it, leaves the development broker's group without a leader for good (docs/reliability.md)
            children[j].kill()
        platform = subprocess.run(
            [*base, "platform", "run", "--until-idle", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=self.config.final_timeout_s,
        )
        if platform.returncode != 0:
            raise RuntimeError(f"platform run --until-idle failed: {platform.stderr[-2000:]}")
        procs = {
            j: subprocess.Popen(
                [*base, "bureau", "run", "-j", j, "--until-idle", "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for j in JURISDICTIONS
        }
        for j, p in procs.items():
            out, err = p.communicate(timeout=self.config.final_timeout_s)
            if p.returncode != 0 or not json.loads(out).get("idle"):
                raise RuntimeError(f"bureau {j} did not finish: {err[-2000:]}")
        store = PlatformStore(PlatformPaths(self.state).read_model)
        try:  # the requests submitted to it (the directly published verifications have no request event)
            return {"requests": store.counts(requested_only=True), "unpublished": len(store.unsent())}
        finally:
            store.close()

    def read_topic(self, transport: KafkaTransport, logical: str) -> list[Any]:
        reader = transport.reader([self.topics.name(logical)])
        out: list[Any] = []
        try:
            tps = sorted(reader.assignment())
            reader.seek_to_beginning(tps)
            while True:
                batch = reader.poll(500, 5000)
                if batch:
                    out.extend(batch)
                    continue
                ends = reader.end_offsets(tps)
                if all(reader.position(tp) >= ends.get(tp, 0) for tp in tps):
                    return out
        finally:
            reader.close()

    def verify(self, transport: KafkaTransport, bootstrap: str) -> dict[str, Any]:
        runtime = Runtime(self.state, bootstrap, self.topics)
        decided: dict[str, set[tuple[str, str]]] = defaultdict(set)
        decided_records = 0
        withdrawn: set[str] = set()
        for record in self.read_topic(transport, "benefits"):
            env = decode(record)
            for d in decided_in(env.data):
                decided_records += 1
                decided[d.decision_id].add((env.id, env.hash))
            withdrawn.update(w.decision_id for w in withdrawn_in(env.data))
        in_models: set[str] = set()
        inactive: set[str] = set()
        live_active, replay_active, differences, lagging, applied = {}, {}, {}, {}, {}
        for j in JURISDICTIONS:
            live = BureauStore(self.state / "bureaus" / self.topics.prefix.rstrip(".") / f"{j}.db", j, self.registry)
            try:
                for s in live.store.decisions(active=None):
                    in_models.add(s.decision_id)
                    if not s.active:
                        inactive.add(s.decision_id)
                counts = live.counts()
                live_active[j] = counts["decisions_active"]
                applied[j] = counts["events_applied"]
                result = replay(runtime, j, registry=self.registry, transport=transport, into=self.work / f"replay-{j}")
                try:
                    replay_active[j] = result.store.counts()["decisions_active"]
                    differences[j] = len(compare(live, result.store))
                    lagging[j] = behind(live, result.store)
                finally:
                    result.store.close()
            finally:
                live.close()
        published = set(decided)
        return {
            "decided_published": decided_records,
            "decided_distinct": len(published),
            "decisions_in_read_models": len(in_models),
            "decisions_lost": len(in_models - published),
            "decisions_unknown": len(published - in_models),
            "decisions_duplicated": sum(1 for pairs in decided.values() if len(pairs) > 1),
            "decisions_republished_identically": decided_records - len(published),
            "withdrawals_lost": len(inactive - withdrawn),
            "live_active": live_active,
            "replay_active": replay_active,
            "differences": differences,
            "behind": lagging,
            "events_applied": applied,
            "dead_letters": len(self.read_topic(transport, "deadletter")),
        }

    def run(self, command: str) -> SoakReport:
        cfg = self.config
        t_start = time.monotonic()
        bootstrap = self.broker()
        transport = KafkaTransport(bootstrap, client_id="mra-soak")
        children: dict[str, Child] = {}
        try:
            transport.ensure_topics(self.topics.all())
            paths = PlatformPaths(self.state)
            paths.root.mkdir(parents=True, exist_ok=True)
            paths.register.write_text(json.dumps(register_json(self.population, self.registry), ensure_ascii=False))
            children = self.children(bootstrap)
            for c in children.values():
                c.start()
            self.say(
                f"soak: {cfg.holders} holders, seed {cfg.seed}, topics {self.topics.prefix}*, broker {bootstrap}, "
                f"work dir {self.work}"
            )
            publisher = threading.Thread(target=self.publish, args=(transport,), name="soak-publisher", daemon=True)
            publisher.start()
            chaos_s = self.chaos(children, publisher)
            publisher.join()
            self.stages["under faults"] = chaos_s
            mark = time.monotonic()
            first = next(iter(children.values()))
            platform = self.settle(children, first.base, first.env)
            self.stages["settling"] = time.monotonic() - mark
            mark = time.monotonic()
            checks = self.verify(transport, bootstrap)
            self.stages["checking"] = time.monotonic() - mark
        finally:
            for c in children.values():
                c.stop(signal.SIGKILL, grace=10)
            transport.close()
            if self._own_broker:
                from mra.events.broker import stop_broker

                stop_broker(self.work / "broker")
        report = SoakReport(
            command=command,
            holders=cfg.holders,
            seed=cfg.seed,
            broker="tansu (started by the soak)" if self._own_broker else bootstrap,
            population=self.population.counts(),
            events_published=self.published,
            identical_republications_injected=self.republished,
            platform_requests=self.requests,
            kills=dict(self.kills),
            restarts=sum(self.kills.values()),
            crashes=[m for c in children.values() for m in c.crashes],
            chaos_seconds=round(chaos_s, 1),
            seconds=round(time.monotonic() - t_start, 1),
            platform=platform,
            predicted_active=predict(self.population, self.registry),
            stages={k: round(v, 1) for k, v in self.stages.items()},
            **checks,
        )
        if report.ok and not cfg.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        return report


def run_soak(config: SoakConfig, command: str = "", say: Callable[[str], None] = print) -> SoakReport:
    return Harness(config, say).run(command or "python -m benchmarks.soak")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--holders", type=int, default=10_000, help="holders in the population (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the population and the fault schedule")
    parser.add_argument("--platform-fraction", type=float, default=0.05, help="holders verified via the platform")
    parser.add_argument("--duplicates", type=float, default=0.01, help="fraction of facts re-published as is")
    parser.add_argument("--kill-every", type=float, nargs=2, default=(4.0, 12.0), metavar=("MIN", "MAX"))
    parser.add_argument("--down-for", type=float, nargs=2, default=(0.0, 2.0), metavar=("MIN", "MAX"))
    parser.add_argument("--chaos-min", type=float, default=0.0, help="keep injecting faults at least this long (s)")
    parser.add_argument("--chaos-max", type=float, default=1800.0, help="stop injecting faults after this long (s)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", help="a cluster to use (default: MRA_BOOTSTRAP_SERVERS, else own Tansu)")
    parser.add_argument("--workdir", type=Path, help="where state and logs go (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory even when the soak passes")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    config = SoakConfig(
        holders=args.holders,
        seed=args.seed,
        platform_fraction=args.platform_fraction,
        duplicate_fraction=args.duplicates,
        kill_every=tuple(args.kill_every),
        down_for=tuple(args.down_for),
        chaos_min_s=args.chaos_min,
        chaos_max_s=args.chaos_max,
        partitions=args.partitions,
        bootstrap=args.bootstrap,
        workdir=args.workdir,
        keep=args.keep,
    )
    command = "python -m benchmarks.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    report = run_soak(config, command.strip(), say=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if args.json else report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
