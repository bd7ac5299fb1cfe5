"""On the real broker: an employer's HR system outside mra (examples/outside_producer, no mra imports) publishes signed
employment events under the identity it was granted, and a bureau accepts them and decides; what it was not granted
is dead-lettered."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import facts

from mra.cli import cli
from mra.core.plugins import load_registry
from mra.events.kafka import KafkaTransport
from mra.events.schemas import EmploymentStarted
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.keys import init_keys, open_publisher, standard_identities
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "outside_producer" / "hr_employment.py"
REGISTRY = load_registry()
T = datetime(2025, 10, 9, 2, tzinfo=UTC)


def run_example(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The example in its own process, where ``import mra`` fails: it must work without mra."""
    shadow = tmp / "no-mra" / "mra"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text('raise ImportError("the outside producer must not import mra")\n')
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp
    )


def test_the_example_imports_only_confluent_kafka_cloudevents_cryptography_and_the_standard_library() -> None:
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    outside = {m.split(".")[0] for m in names} - set(sys.stdlib_module_names) - {"__future__"}
    assert outside == {"confluent_kafka", "cloudevents", "cryptography"}


def test_bad_input_gets_a_message_and_exit_2(tmp_path: Path) -> None:
    out = run_example(tmp_path, "keygen", "--identity", "hr-acme", "--key", "k.pem")
    assert out.returncode == 0, out.stderr
    again = run_example(tmp_path, "keygen", "--identity", "hr-acme", "--key", "k.pem")
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    (tmp_path / "bad.jsonl").write_text('{"type": "cn.jjj.holders.employment_started.v2", "data": {}}\n')
    for args, says in (
        (["--key", "k.pem", "--file", "bad.jsonl"], "bad.jsonl:1: data.holder_id is missing"),
        (["--key", "k.pem", "--file", "none.jsonl"], "cannot read none.jsonl"),
        (["--key", "bad.jsonl", "--file", "bad.jsonl"], "is not an unencrypted PEM private key"),
    ):
        out = run_example(tmp_path, "publish", "--bootstrap", "127.0.0.1:1", "--identity", "hr-acme", *args)
        assert out.returncode == 2 and says in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_an_hr_systems_signed_employment_events_are_accepted_and_decide(
    tmp_path: Path, bootstrap: str, kafka: KafkaTransport, topics: Topics
) -> None:
    state = tmp_path / "state"
    init_keys(state, standard_identities(REGISTRY.jurisdictions), Mode.PER_EVENT)

    # the HR system makes its key; mra's operator trusts its public key with the grant asked for
    out = run_example(tmp_path, "keygen", "--identity", "hr-acme", "--key", "hr-acme.pem", "--jurisdiction", "beijing")
    assert out.returncode == 0, out.stderr
    entry = json.loads(out.stdout)["identities"]["hr-acme"]
    assert "mra keys trust hr-acme " + entry["keys"][0]["public_key"] in out.stderr
    trusted = CliRunner().invoke(
        cli,
        ["--state-dir", str(state), "keys", "trust", "hr-acme", entry["keys"][0]["public_key"]]
        + [f"--may-publish={g}" for g in entry["may_publish"]]
        + [f"--jurisdiction={j}" for j in entry["jurisdictions"]],
    )
    assert trusted.exit_code == 0, trusted.output
    assert entry["keys"][0]["key_id"] in trusted.output
    assert (tmp_path / "hr-acme.pem").stat().st_mode & 0o077 == 0

    platform = open_publisher(state, kafka, topics, "verification-platform")
    for holder in ("h-hired", "h-forged", "h-idle"):
        platform.publish(facts.registered(holder), time=T)
    platform.publish(facts.verified("h-hired"), time=T)
    platform.publish(facts.verified("h-idle"), time=T)  # verified, but no employer says it employs them
    platform.flush()

    employer = {"name": "北京示例科技有限公司", "credit_code": "91110108MA01ABCD2X", "region": "beijing"}
    lines = [
        {
            "type": EmploymentStarted.ce_type(),  # the current version
            "data": {
                "holder_id": "h-hired",
                "jurisdiction": "beijing",
                "employer": employer,
                "started": "2025-09-01",
                "years_in_scope": 3,
            },
        },
        {  # not granted to an HR system: dead-lettered, grants nothing
            "type": "cn.jjj.verification.certificate_verified.v1",
            "data": json.loads(facts.verified("h-forged").model_dump_json()),
        },
        {
            "type": "cn.jjj.holders.employment_started.v2",  # an older version: read by upcasting
            "data": {
                "holder_id": "h-forged",
                "jurisdiction": "beijing",
                "employer": employer,
                "started": "2025-09-01",
                "years_in_scope": 3,
            },
        },
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    sent = run_example(
        tmp_path,
        "publish",
        "--bootstrap",
        bootstrap,
        "--topic-prefix",
        topics.prefix,
        "--identity",
        "hr-acme",
        "--key",
        "hr-acme.pem",
        "--file",
        "events.jsonl",
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.count("delivered ") == 3

    bureau = open_bureau(Runtime(state, bootstrap, topics), "beijing", registry=REGISTRY, transport=kafka, group=False)
    try:
        stats = bureau.run(until_idle=True, timeout=60)
        assert stats.idle
        hired = bureau.store.holder("h-hired")
        assert hired is not None
        assert [e["employer"] for e in hired["employments"]] == ["北京示例科技有限公司"]
        decisions = bureau.store.active_decisions("h-hired")
        assert decisions, "the HR system's employment event decided nothing"
        assert {d.verification_code for d in decisions} == {"CODE-h-hired"}
        assert any(d.outcome == "eligible" for d in decisions)
        assert bureau.store.active_decisions("h-idle") == []  # the employment is what decided
        forged = bureau.store.holder("h-forged")
        assert forged is not None and forged["certificates"] == [] and len(forged["employments"]) == 1
        assert bureau.store.active_decisions("h-forged") == []
        reasons = [r[0] for r in bureau.store.db.execute("SELECT reason FROM dead_letters")]
    finally:
        bureau.close()
    assert reasons == [
        "unauthorised: hr-acme may not publish cn.jjj.verification.certificate_verified.v1 "
        "(the trust store lets it publish cn.jjj.holders.employment_*)"
    ]
