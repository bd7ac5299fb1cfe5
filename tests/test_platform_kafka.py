"""The verification platform on a real Kafka-protocol broker: the CLI flow, deferral, and a SIGKILL mid-request.

Run as a module, this file is also the platform worker the SIGKILL test starts and kills:
``python -m tests.test_platform_kafka BOOTSTRAP PREFIX STATE_DIR DELAY_S``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.signed import signed

from mra.cli import cli
from mra.core.connectors import CertificateClaim, IssuerAnswer, IssuerStatus
from mra.core.hookspecs import hookimpl
from mra.core.ids import stable_id
from mra.core.models import CatalogueEntry, Jurisdiction
from mra.core.plugins import load_registry
from mra.events.bus import Transport
from mra.events.envelope import Envelope, decode
from mra.events.kafka import KafkaTransport
from mra.events.schemas import (
    CertificateRevoked,
    CertificateVerified,
    VerificationAccepted,
    VerificationDeferred,
    VerificationRefused,
    VerificationRejected,
    VerificationRequested,
)
from mra.events.topics import Topics
from mra.services.codes import ALPHABET, new_code, read_code
from mra.services.platform import (
    PUBLISHER,
    Platform,
    PlatformPaths,
    PlatformSettings,
    PlatformStore,
    check_code,
    prepare,
    publish_submission,
    request_status,
)
from mra.services.register import RegisterConnector

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]
REGISTER = ROOT / "examples" / "issuer-register.json"
REQUEST: dict[str, Any] = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))
MRA = str(Path(sys.executable).with_name("mra"))


def events(kafka: Transport, topics: Topics, logical: str = "verification") -> list[Envelope]:
    """Every event of a topic, duplicates included, read until a poll past the reported end returns nothing."""
    reader = kafka.reader([topics.name(logical)])
    out: list[Envelope] = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            records = reader.poll(300, 1000)
            out += [decode(r) for r in records]
            if not records:
                assigned = reader.assignment()
                ends = reader.end_offsets(assigned)
                if all(reader.position(tp) >= ends.get(tp, 0) for tp in assigned):
                    return out
    finally:
        reader.close()
    raise AssertionError("the topic was not read to its end within 30 s")


# --- through the command line ---------------------------------------------------------------------------------


class Mra:
    """``mra`` as a user runs it, against the test's broker, topics and state dir."""

    def __init__(self, bootstrap: str, state: Path) -> None:
        self.base = ["--state-dir", str(state), "--bootstrap", bootstrap]

    def __call__(self, *args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(cli, [*self.base, *args])
        assert result.exit_code == code, (args, result.output, result.exception)
        return json.loads(result.output) if "--json" in args else result.output


@pytest.fixture
def mra(bootstrap: str, kafka: KafkaTransport, topics: Topics, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Mra:
    monkeypatch.setenv("MRA_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("MRA_PARTITIONS", str(topics.partitions))
    return Mra(bootstrap, state_dir)


def write(tmp: Path, name: str, raw: dict[str, Any]) -> str:
    path = tmp / name
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_requested_accepted_verified_checked_and_revoked_through_the_cli(
    mra: Mra, kafka: KafkaTransport, topics: Topics, tmp_path: Path
) -> None:
    genuine = mra("verify", "submit", "--file", str(ROOT / "examples" / "request.json"), "--json")
    assert genuine["status"] == "accepted" and genuine["published"] is True
    assert genuine["expected_by"] and "not published by the notice" in genuine["turnaround_source"]
    missing_raw = json.loads(json.dumps(REQUEST))
    missing_raw["certificate"]["number"] = "ACCA-2019-404404"
    missing = mra("verify", "submit", "--file", write(tmp_path, "missing.json", missing_raw), "--json")
    assert missing["status"] == "accepted"
    assert mra("verify", "status", genuine["request_id"], "--json")["status"] == "submitted"

    run = mra("platform", "run", "--until-idle", "--register", str(REGISTER), "--json")
    assert (run["verified"], run["rejected"], run["deferred"], run["open"]) == (1, 1, 0, 0)

    status = mra("verify", "status", genuine["request_id"], "--json")
    assert status["status"] == "verified" and status["expected_by"] == genuine["expected_by"]
    code = status["verification_code"]
    check = mra("verify", "check", code, "--json")
    assert check["status"] == "valid" and check["entry_id"] == "BJ2025-I-139" and check["holder"] == "J*** S****"
    assert "真实性" in check["disclaimer"] and "Jane" not in json.dumps(check)
    assert "ACCA 会计师证书" in mra("verify", "check", code.lower().replace("-", ""))

    rejected = mra("verify", "status", missing["request_id"], "--json")
    assert rejected["status"] == "rejected" and rejected["reason"] == "not_found"

    on_topic = [e for e in events(kafka, topics) if getattr(e.data, "request_id", None) == genuine["request_id"]]
    assert [type(e.data) for e in on_topic] == [VerificationRequested, VerificationAccepted, CertificateVerified]
    assert on_topic[1].data.expected_by.isoformat() == genuine["expected_by"]  # type: ignore[attr-defined]
    assert on_topic[2].data.verification_code == code  # type: ignore[attr-defined]

    compact = read_code(code).compact
    i = 5
    typo = compact[:i] + next(c for c in ALPHABET if c != compact[i]) + compact[i + 1 :]
    assert mra("verify", "check", typo, "--json", code=1)["status"] == "mistyped"
    stranger = new_code()
    assert mra("verify", "check", stranger, "--json", code=1)["status"] == "unknown"

    revoked = mra("verify", "revoke", code, "--reason", "withdrawn by the issuer", "--json")
    assert revoked["published"] is True
    again = mra("verify", "revoke", code, "--reason", "withdrawn twice", "--json")  # before the platform read it
    assert again["published"] is True
    assert mra("platform", "run", "--until-idle", "--json")["errors"] == []
    check = mra("verify", "check", code, "--json", code=1)
    assert check["status"] == "revoked" and check["revoked_at"] == revoked["revoked_at"]  # the first one stands
    revocations = [e for e in events(kafka, topics) if isinstance(e.data, CertificateRevoked)]
    assert len({e.id for e in revocations}) == 2  # two revocations, never one id with two contents
    assert events(kafka, topics, "deadletter") == []
    assert mra("verify", "status", genuine["request_id"], "--json")["revoked"] is True

    rebuilt = mra("platform", "run", "--until-idle", "--rebuild", "--json")
    assert rebuilt["consumed"] == len(events(kafka, topics)) and rebuilt["asked"] == 0
    assert mra("verify", "check", code, "--json", code=1)["status"] == "revoked"


def test_cli_errors_are_one_clear_line_and_a_refusal_is_recorded(
    mra: Mra, bootstrap: str, kafka: KafkaTransport, topics: Topics, state_dir: Path, tmp_path: Path
) -> None:
    env = dict(os.environ, MRA_STATE_DIR=str(state_dir), MRA_BOOTSTRAP_SERVERS=bootstrap)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([MRA, *args], env=env, capture_output=True, text=True, timeout=60)

    bad = tmp_path / "bad.json"
    bad.write_text('{"employer": {"name": "x",', encoding="utf-8")
    result = run("verify", "submit", "--file", str(bad))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "is not valid JSON" in result.stderr and "line 1" in result.stderr

    incomplete = json.loads(json.dumps(REQUEST))
    del incomplete["holder"]["birth_date"]
    del incomplete["certificate"]["issuer"]
    result = run("verify", "submit", "--file", write(tmp_path, "incomplete.json", incomplete))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "missing field holder.birth_date" in result.stderr and "missing field certificate.issuer" in result.stderr
    refusals = [e for e in events(kafka, topics) if isinstance(e.data, VerificationRefused)]
    assert len(refusals) == 1 and "missing field holder.birth_date" in refusals[0].data.reasons

    for args in (
        ("verify", "submit"),
        ("verify", "check", "K7QH"),
        ("verify", "status", "no-such-request"),
        ("verify", "revoke", new_code(), "--reason", "x"),
        ("verify", "submit", "--file", str(tmp_path)),
    ):
        result = run(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr and result.stderr.strip(), args


# --- deferral and a kill mid-request --------------------------------------------------------------------------


class SlowIssuer:
    """Answers from the example register after ``delay`` seconds (or hangs until released)."""

    name = "slow-register"

    def __init__(self, entry: CatalogueEntry, delay: float, release: threading.Event | None = None) -> None:
        self.register = RegisterConnector(REGISTER, entry)
        self.delay = delay
        self.release = release

    def check(self, claim: CertificateClaim, timeout: float) -> IssuerAnswer:
        if self.release is not None and not self.release.wait(60):
            return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail="still hanging")
        time.sleep(self.delay)
        return self.register.check(claim, timeout)


class SlowIssuerPlugin:
    def __init__(self, delay: float, release: threading.Event | None = None) -> None:
        self.delay = delay
        self.release = release

    @hookimpl
    def mra_jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(code="slowissuer", prefix="slow", name_zh="测试", name_en="Test", regions=("slowissuer",))

    @hookimpl
    def mra_issuer_connector(self, entry: CatalogueEntry, settings: Any) -> SlowIssuer:
        return SlowIssuer(entry, self.delay, self.release)


def submit(kafka: Transport, topics: Topics, state: Path, raw: dict[str, Any]) -> Any:
    sub = prepare(raw, state_dir=state, registry=load_registry(), settings=PlatformSettings(), now=datetime.now(UTC))
    publish_submission(sub, signed(kafka, topics, PUBLISHER))
    return sub


def test_an_issuer_that_times_out_leaves_the_request_open_and_it_is_retried(
    kafka: KafkaTransport, topics: Topics, state_dir: Path
) -> None:
    release = threading.Event()
    registry = load_registry(extra={"slowissuer": SlowIssuerPlugin(0.0, release)})
    settings = PlatformSettings(issuer_register=REGISTER, issuer_timeout_s=0.3, issuer_attempts=2, issuer_backoff_s=0.1)
    sub = submit(kafka, topics, state_dir, REQUEST)
    try:
        platform = Platform(kafka, topics, state_dir, registry=registry, settings=settings)
        try:
            stats = platform.run(until_idle=True, timeout=60)
        finally:
            platform.close()
        assert stats.idle and (stats.deferred, stats.verified, stats.open) == (1, 0, 1)
        status = request_status(state_dir, sub.request_id)
        assert status["status"] == "deferred" and "no answer within 0.3s" in status["detail"] and status["retry_at"]
    finally:
        release.set()

    platform = Platform(kafka, topics, state_dir, registry=registry, settings=settings)
    try:
        stats = platform.run(until_idle=True, timeout=60)
    finally:
        platform.close()
    assert (stats.verified, stats.open) == (1, 0)
    status = request_status(state_dir, sub.request_id)
    assert status["status"] == "verified" and status["attempts"] == 1
    kinds = [type(e.data) for e in events(kafka, topics)]
    assert kinds == [VerificationRequested, VerificationAccepted, VerificationDeferred, CertificateVerified]


def _results_published(state: Path) -> int:
    try:
        with sqlite3.connect(PlatformPaths(state).read_model) as db:
            return int(db.execute("SELECT count(*) FROM outbox WHERE sent = 1").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_platform_killed_mid_request_loses_nothing_and_publishes_nothing_new(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, state_dir: Path
) -> None:
    raws = []
    for i in range(4):
        raw = json.loads(json.dumps(REQUEST))
        raw["reference"] = f"request {i}"
        if i == 3:
            raw["certificate"]["number"] = "ACCA-2019-404404"
        raws.append(raw)
    subs = [submit(kafka, topics, state_dir, raw) for raw in raws]
    args = [sys.executable, "-m", "tests.test_platform_kafka", bootstrap, topics.prefix, str(state_dir)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    worker = subprocess.Popen([*args, "1.5"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _results_published(state_dir) < 1 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        published = _results_published(state_dir)
        assert 1 <= published < 4, f"{published} result(s) published before the kill"
        worker.send_signal(signal.SIGKILL)  # it is now asking the slow issuer about the next request
    finally:
        worker.wait(10)
    assert worker.returncode == -signal.SIGKILL

    done = subprocess.run([*args, "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "idle=True" in done.stdout

    statuses = [request_status(state_dir, s.request_id) for s in subs]
    assert [s["status"] for s in statuses] == ["verified"] * 3 + ["rejected"]
    codes = [s["verification_code"] for s in statuses[:3]]
    assert len(set(codes)) == 3 and all(check_code(state_dir, c)["status"] == "valid" for c in codes)

    results: dict[str, set[str]] = defaultdict(set)
    for e in events(kafka, topics):
        if isinstance(e.data, CertificateVerified | VerificationRejected):
            results[e.id].add(e.hash)
    expected = {stable_id("verification.certificate_verified", s.request_id) for s in subs[:3]}
    expected.add(stable_id("verification.rejected", subs[3].request_id))
    assert set(results) == expected  # one result per request, under the id derived from it
    assert all(len(hashes) == 1 for hashes in results.values())  # a re-publication is the same event
    store = PlatformStore(PlatformPaths(state_dir).read_model)
    try:
        assert store.db.execute("SELECT count(*) FROM codes").fetchone()[0] == 3
    finally:
        store.close()


def _worker() -> None:
    bootstrap, prefix, state, delay = sys.argv[1:5]
    registry = load_registry(extra={"slowissuer": SlowIssuerPlugin(float(delay))})
    settings = PlatformSettings(issuer_register=REGISTER, issuer_timeout_s=30)
    transport = KafkaTransport(bootstrap)
    platform = Platform(transport, Topics(prefix, 3), Path(state), registry=registry, settings=settings)
    try:
        stats = platform.run(until_idle=True, timeout=120)
    finally:
        platform.close()
        transport.close()
    print(f"verified={stats.verified} rejected={stats.rejected} idle={stats.idle}", flush=True)


if __name__ == "__main__":
    _worker()
