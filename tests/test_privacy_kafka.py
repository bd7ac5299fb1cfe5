"""On the real broker, after ``mra demo``: no personal field in plain text on any topic; erasing a holder leaves
replay, audit and the public check working, with the holder's personal fields read as erased."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import Consumer, TopicPartition

from mra.events.envelope import Envelope, Record, decode
from mra.events.signing import verify_chain
from mra.services.demo import REQUESTS
from mra.services.privacy import PersonalData

pytestmark = pytest.mark.broker

PERSONAL = [
    value
    for raw in REQUESTS.values()
    for value in (
        raw["holder"]["name"],
        raw["holder"]["document_number"],
        raw["holder"]["birth_date"],
        raw["certificate"]["number"],  # it maps to a person through the issuer's public register
    )
]
PERSONAL += [p.replace("-", "") for p in PERSONAL if p[:2] in ("19", "20")]  # 19880412, …


def run(state: Path, bootstrap: str, *args: str, prefix: str | None = None, mode: str | None = None) -> Any:
    env = dict(os.environ)
    if prefix:
        env |= {"MRA_TOPIC_PREFIX": prefix, "MRA_PARTITIONS": "3"}
    if mode:
        env["MRA_VERIFICATION"] = mode
    return subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def dump(bootstrap: str, prefix: str) -> dict[str, list[Any]]:
    """Every message of every topic under ``prefix``, read with confluent-kafka (read committed) from the start to the
    end: the reported ends reached, then polled until nothing more comes (the broker may report the last batch's first
    offset as the end)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"dump-{prefix}", "enable.auto.commit": False})
    out: dict[str, list[Any]] = {}
    try:
        names = [t for t in consumer.list_topics(timeout=10).topics if t.startswith(prefix)]
        todo: dict[tuple[str, int], int] = {}
        start: list[TopicPartition] = []
        for name in names:
            for p in consumer.list_topics(name, timeout=10).topics[name].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if high > low:
                    todo[(name, p)] = high
                    start.append(TopicPartition(name, p, low))
        consumer.assign(start)
        seen: set[tuple[str, int, int]] = set()
        while True:
            msg = consumer.poll(5.0 if todo else 1.0)
            if msg is None:
                # a transaction's commit marker is the last offset of a partition and is never delivered: the
                # position passes it
                for tp in consumer.position([TopicPartition(t, p) for t, p in todo]):
                    if tp.offset >= todo[(tp.topic, tp.partition)]:
                        todo.pop((tp.topic, tp.partition))
                assert not todo, f"stopped short of the end of {sorted(todo)}"
                break
            if msg.error() is not None:
                continue
            where = (msg.topic(), msg.partition(), msg.offset())
            if where not in seen:
                seen.add(where)
                out.setdefault(msg.topic().removeprefix(prefix), []).append(msg)
            if msg.offset() + 1 >= todo.get((msg.topic(), msg.partition()), 0):
                todo.pop((msg.topic(), msg.partition()), None)
    finally:
        consumer.close()
    return out


def envelopes(messages: dict[str, list[Any]]) -> list[Envelope]:
    return [
        decode(Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), tuple(m.headers() or ())))
        for topic, msgs in messages.items()
        if topic != "deadletter"
        for m in msgs
    ]


@pytest.mark.parametrize("mode", ["per-event", "checkpoints"])
def test_no_personal_field_travels_in_plain_text_and_every_message_is_a_signed_cloudevent(
    tmp_path: Path, bootstrap: str, mode: str
) -> None:
    done = run(tmp_path, bootstrap, "demo", "--json", mode=mode)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["verification"] == {"mode": mode, "identities": 8, "dead_lettered": 0}
    messages = dump(bootstrap, report["topic_prefix"])
    assert set(messages) >= {"catalogue", "verification", "holders", "benefits"}
    for topic, msgs in messages.items():
        for m in msgs:
            raw = (m.value() or b"") + b"".join(k.encode() + v for k, v in m.headers() or ())
            text = raw.decode("utf-8", errors="replace")
            for personal in PERSONAL:
                assert personal not in text, f"{personal!r} in plain text on {topic}"
            headers = dict(m.headers())
            event = from_binary(KafkaMessage(headers=headers, key=m.key(), value=m.value()), JSONFormat())
            assert event.get_attributes()["mrapublisher"]
            signed = "ce_mrasig" in headers or ".checkpoint." in headers["ce_type"].decode()
            assert signed or mode == "checkpoints"
    assert verify_chain(envelopes(messages)) == []


def test_after_erasure_replay_audit_and_checks_pass_and_the_fields_read_as_erased(
    tmp_path: Path, bootstrap: str
) -> None:
    done = run(tmp_path, bootstrap, "demo", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    home, prefix = Path(report["state_dir"]), report["topic_prefix"]
    jane = next(h for h in report["holders"] if h["who"] == "Jane Smith")

    erased = run(home, bootstrap, "holder", "erase", jane["holder_id"], "--yes", "--json", prefix=prefix)
    assert erased.returncode == 0, erased.stderr
    result = json.loads(erased.stdout)
    assert result["decisions_kept"] > 0 and not result["already_erased"]

    live = run(home, bootstrap, "bureau", "run", "-j", "tianjin", "--until-idle", "--json", prefix=prefix)
    assert live.returncode == 0, live.stderr
    shown = run(home, bootstrap, "holder", "show", jane["holder_id"], "-j", "tianjin", "--json", prefix=prefix)
    holder = json.loads(shown.stdout)
    assert holder["erased"] is True and holder["birth_date"] == "erased"
    assert [d["code"] for d in holder["decisions"]] == ["tj.jjj_recognition"]  # the recorded decision stands

    for j in ("beijing", "tianjin", "hebei"):
        # every bureau reads the erasure first: the comparison covers the facts, and a lagging one differs in them
        caught_up = run(home, bootstrap, "bureau", "run", "-j", j, "--until-idle", "--json", prefix=prefix)
        assert caught_up.returncode == 0, caught_up.stderr
        replayed = run(home, bootstrap, "replay", "-j", j, "--compare", "--json", prefix=prefix)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert json.loads(replayed.stdout)["differences"] == []
    audit = run(home, bootstrap, "audit", "verify", "--json", prefix=prefix)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert json.loads(audit.stdout)["tampering"] == 0
    messages = dump(bootstrap, prefix)
    assert verify_chain(envelopes(messages)) == []

    check = run(home, bootstrap, "verify", "check", jane["verification_code"], "--json", prefix=prefix)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["holder"] == "(erased)" and json.loads(check.stdout)["status"] == "valid"
    intake = sqlite3.connect(home / "platform" / "intake.db")
    (request_id,) = intake.execute("SELECT request_id FROM intake WHERE holder_id = ?", (jane["holder_id"],)).fetchone()
    intake.close()
    status = run(home, bootstrap, "verify", "status", request_id, "--json", prefix=prefix)
    assert json.loads(status.stdout)["holder"] == "(erased)"
    registered = next(
        e.data
        for e in envelopes(messages)
        if e.type.startswith("cn.jjj.holders.holder_registered") and e.subject == jane["holder_id"]
    )
    personal = PersonalData.at(home)
    try:
        assert personal.shown(jane["holder_id"], "birth_date", registered.personal["birth_date"]) == "(erased)"  # type: ignore[attr-defined]
    finally:
        personal.close()
    other = next(h for h in report["holders"] if h["who"] == "王立新")
    assert json.loads(run(home, bootstrap, "verify", "check", other["verification_code"], "--json").stdout)[
        "holder"
    ] == "王*新"
