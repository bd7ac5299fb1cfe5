"""``mra audit`` on the real broker: a trail, an export, and tamper evidence on copied topics."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from support.facts import T, ended, entry_withdrawn, fact_id, holder_facts, publish
from support.signed import provisioned, signed

from mra.cli import main
from mra.core.plugins import load_registry
from mra.events.envelope import Record
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.topics import Topics
from mra.services.audit import AUDITED_TOPICS, read_log
from mra.services.bureaus import open_bureau
from mra.services.runtime import Runtime

pytestmark = pytest.mark.broker
REGISTRY = load_registry()


@dataclass
class Ran:
    exit_code: int
    output: str
    err: str


@pytest.fixture
def mra(
    bootstrap: str, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """``mra`` in this process, as ``main`` runs it: exit status, stdout, stderr."""
    monkeypatch.setenv("MRA_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("MRA_PARTITIONS", str(topics.partitions))

    def run(*args: str) -> Ran:
        capsys.readouterr()
        try:
            main(["--state-dir", str(provisioned(tmp_path / "state")), "--bootstrap", bootstrap, *args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def stamp(r: Record, name: str) -> str:
    return dict(r.headers)[name].decode()


def copy(kafka: KafkaTransport, source: Topics, target: Topics, edit: Callable[[Record], Record | None]) -> None:
    """Every event topic copied record by record, with its key and headers, through ``edit`` (None drops it)."""
    kafka.ensure_topics(target.all())
    for t in AUDITED_TOPICS:
        for r in read_log(kafka, [source.name(t)]):
            out = edit(r)
            if out is not None:
                kafka.send(target.name(t), out.key, out.value or b"", list(out.headers))
    kafka.flush(30)


def test_trail_export_and_verify_of_a_live_bureau(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path, mra: Callable[..., Ran]
) -> None:
    runtime = Runtime(provisioned(tmp_path / "state"), bootstrap, topics)
    pub = signed(kafka, topics, "test-intake")
    publish(pub, holder_facts("h1") + holder_facts("h2", "BJ2025-I-047"))
    withdrawal = entry_withdrawn("BJ2025-I-047", effective=date(2026, 1, 1), reason="monitoring")
    publish(pub, [withdrawal], at=T + timedelta(days=1))
    bureau = open_bureau(runtime, "beijing", registry=REGISTRY, transport=kafka, group=False)
    bureau.run(until_idle=True, timeout=60)
    publish(pub, [ended("h1", on=date(2025, 12, 1))], at=T + timedelta(days=2))
    bureau.run(until_idle=True, timeout=60)
    stored = {s.decision_id: s.active for s in bureau.store.store.decisions(active=None)}
    standing_h2 = {d.code for d in bureau.store.active_decisions("h2")}
    bureau.close()
    assert stored and not all(stored.values()) and any(stored.values())

    got = mra("audit", "trail", "h1", "--json")
    assert got.exit_code == 0, got.err
    events = json.loads(got.output)["events"]
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    assert {e["topic"] for e in events} == {"holders", "verification", "benefits"}  # I-047's withdrawal is not h1's
    assert sum(len(e["decisions"]) for e in events) == sum(1 for k in stored if not stored[k]) > 0
    (end,) = [i for i, e in enumerate(events) if e["summary"].startswith("employment in beijing ended")]
    after = events[end + 1 :]  # what the end of employment caused, dated when it happened
    assert after and all(e["topic"] == "benefits" and e["time"] == events[end]["time"] for e in after)
    assert json.loads(got.output)["standing"] == []
    h2 = json.loads(mra("audit", "trail", "h2", "--json").output)
    assert any(e["topic"] == "catalogue" and "BJ2025-I-047 withdrawn" in e["summary"] for e in h2["events"])
    assert {d["code"] for d in h2["standing"]} == standing_h2
    text = mra("audit", "trail", "h2")
    assert text.exit_code == 0 and "standing decisions" in text.output and "catalogue[" in text.output
    nobody = mra("audit", "trail", "nobody")
    assert nobody.exit_code == 3 and "no event about holder" in nobody.err

    out = mra("audit", "export", "-j", "beijing", "--to", str(tmp_path / "d.jsonl"), "--json")
    assert out.exit_code == 0, out.err
    rows = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["decision_id"]: r["status"] == "active" for r in rows} == stored
    assert json.loads(out.output)["withdrawn"] == sum(not v for v in stored.values())
    as_csv = mra("audit", "export", "-j", "beijing", "--to", str(tmp_path / "d.csv"), "--json")
    assert as_csv.exit_code == 0, as_csv.err
    columns = json.loads(as_csv.output)["columns"]
    assert {"code": "decision_id", "header": "决定编号"} in columns
    assert (tmp_path / "d.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    with (tmp_path / "d.csv").open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == [c["header"] for c in columns]
    assert {r["决定编号"]: r["状态"] for r in table} == {r["decision_id"]: r["status"] for r in rows}
    assert all(r["理由"] and r["依据条款"] and r["规则版本"] and r["目录版本"] for r in table)
    bad = mra("audit", "export", "-j", "beijing", "--to", str(tmp_path / "d.txt"))
    assert bad.exit_code == 2 and ".jsonl" in bad.err

    clean = mra("audit", "verify", "--json")
    assert clean.exit_code == 0, clean.output
    report = json.loads(clean.output)
    assert report["findings"] == [] and report["complete"] and report["stamped"] == report["records"] > 0
    assert set(report["publishers"]) == {"test-intake", "bureau-beijing"}


def test_an_altered_body_in_a_copied_topic_is_found_with_its_position(
    kafka: KafkaTransport, topics: Topics, mra: Callable[..., Ran]
) -> None:
    publish(Publisher(kafka, topics, "test-intake"), holder_facts("h1") + holder_facts("h2") + holder_facts("h3"))
    target = Topics("c" + topics.prefix, topics.partitions)
    victim = fact_id(holder_facts("h2")[2])

    def alter(r: Record) -> Record:
        if dict(r.headers)["ce_id"].decode() != victim:
            return r
        value = (r.value or b"").replace(b'"years_in_scope":3.0', b'"years_in_scope":9.0')
        return Record(r.topic, r.partition, r.offset, r.key, value, r.headers)

    copy(kafka, topics, target, alter)
    moved = next(r for r in read_log(kafka, [target.name("holders")]) if dict(r.headers)["ce_id"].decode() == victim)
    assert b"9.0" in (moved.value or b"")
    found = mra("audit", "verify", "--topic", target.name("holders"), "--json")
    assert found.exit_code == 4, found.output
    report = json.loads(found.output)
    assert not report["complete"]
    tampering = [f for f in report["findings"] if f["tampering"]]
    assert [(f["kind"], f["topic"], f["partition"], f["offset"]) for f in tampering] == [
        ("altered", moved.topic, moved.partition, moved.offset)
    ]
    text = mra("audit", "verify", "--topic", target.name("holders"))
    where = f"{target.name('holders')}[{moved.partition}]@{moved.offset}"
    assert text.exit_code == 4 and f"TAMPERING altered        {where}" in text.output


def test_a_record_dropped_from_a_copied_log_is_found_between_its_neighbours(
    kafka: KafkaTransport, topics: Topics, monkeypatch: pytest.MonkeyPatch, mra: Callable[..., Ran]
) -> None:
    publish(Publisher(kafka, topics, "test-intake"), holder_facts("h1") + holder_facts("h2") + holder_facts("h3"))
    records = [r for t in ("holders", "verification") for r in read_log(kafka, [topics.name(t)])]
    last = max(int(stamp(r, "ce_mraseq")) for r in records)
    victim = next(r for r in records if r.topic == topics.name("holders") and 0 < int(stamp(r, "ce_mraseq")) < last)
    seq = int(stamp(victim, "ce_mraseq"))
    target = Topics("d" + topics.prefix, topics.partitions)
    copy(kafka, topics, target, lambda r: None if (r.topic, r.partition, r.offset) == (
        victim.topic, victim.partition, victim.offset) else r)
    after = next(
        r
        for t in ("holders", "verification")
        for r in read_log(kafka, [target.name(t)])
        if int(stamp(r, "ce_mraseq")) == seq + 1
    )
    monkeypatch.setenv("MRA_TOPIC_PREFIX", target.prefix)
    found = mra("audit", "verify", "--json")
    assert found.exit_code == 4, found.output
    report = json.loads(found.output)
    assert report["complete"]
    assert [(f["kind"], f["topic"], f["partition"], f["offset"], f["seq"]) for f in report["findings"]] == [
        ("missing", after.topic, after.partition, after.offset, seq + 1)
    ]
    assert f"seq {seq} of test-intake" in report["findings"][0]["detail"]


def test_a_redelivery_is_reported_as_such_not_as_tampering(
    kafka: KafkaTransport, topics: Topics, mra: Callable[..., Ran]
) -> None:
    events = holder_facts("h1")
    publish(Publisher(kafka, topics, "test-intake"), events)
    publish(Publisher(kafka, topics, "test-intake"), events[1:])  # a restarted publisher sends two again
    found = mra("audit", "verify", "--json")
    assert found.exit_code == 0, found.output
    report = json.loads(found.output)
    assert [f["kind"] for f in report["findings"]] == ["redelivery", "redelivery"]
    assert report["epochs"] == 2 and all("another epoch" in f["detail"] for f in report["findings"])
    text = mra("audit", "verify")
    assert "no evidence of tampering" in text.output and "redelivery" in text.output
    refused = mra("audit", "verify", "--topic", "deadletter")
    assert refused.exit_code == 2 and "dead-letter" in refused.err
