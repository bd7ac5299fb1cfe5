"""Audit on the in-memory transport: hash chains and what breaks them, a holder's trail, the decisions export."""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from support.facts import (
    ENTRY,
    T,
    World,
    employer,
    ended,
    entry_withdrawn,
    fact_id,
    registered,
    started,
    verified,
)

from mra.core.errors import NotFound, ValidationFailed
from mra.core.plugins import load_registry
from mra.events.envelope import Record, content_hash
from mra.events.publisher import Publisher
from mra.events.schemas import Event, VerificationRequested
from mra.events.topics import Topics
from mra.services.audit import (
    AUDITED_TOPICS,
    complete_view,
    export_decisions,
    resolve_topics,
    trail,
    verify,
    write_export,
)

TOPICS = Topics("a.", 2)
COPY = Topics("b.", 2)
REGISTRY = load_registry()


def facts(holder: str, entry: str = ENTRY) -> list[Event]:
    """A holder's facts, the request among them, carrying personal data that no trail may show."""
    return [
        registered(holder, personal={"name": "Jane Smith"}),
        VerificationRequested(
            request_id=f"r-{holder}",
            holder_id=holder,
            employer=employer(),
            entry_id=entry,
            issuer="x",
            certificate_number="SECRET-NUMBER-1",
            personal={"name": "Jane Smith"},
        ),
        verified(holder, entry),
        started(holder),
    ]


class Audited(World):
    """One publisher ``intake`` (one epoch) over the holders and verification topics, and copies of the log."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, TOPICS, REGISTRY, identity="intake")

    def names(self, topics: Topics = TOPICS) -> list[str]:
        return [topics.name(t) for t in AUDITED_TOPICS]

    def copy(self, edit: Callable[[list[Record]], list[Record]] = lambda rs: rs) -> list[str]:
        """Every event topic copied record by record (same key and headers) under the prefix ``b.``."""
        self.bus.ensure_topics(COPY.all())
        for t in AUDITED_TOPICS:
            for r in edit(self.bus.records(TOPICS.name(t))):
                self.bus.send(COPY.name(t), r.key, r.value or b"", r.headers)
        return self.names(COPY)

    def find(self, topic: str, pred: Callable[[Record], bool]) -> Record:
        return next(r for r in self.bus.records(topic) if pred(r))


def stamp(r: Record, name: str) -> str:
    return dict(r.headers)[name].decode()


def kinds(result) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(f.kind, f.where) for f in result.findings]


# --- tamper evidence ------------------------------------------------------------------------------------------


def test_an_untouched_log_verifies_clean(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"), *facts("h2"))
    b = w.bureau("beijing", "b")
    b.run(until_idle=True, timeout=10)
    result = verify(w.bus, w.names(), complete=True)
    assert result.findings == [] and result.records == result.stamped > 8 and result.epochs == 2
    assert result.publishers == ["bureau-beijing", "intake"]


def test_an_altered_body_is_found_at_its_position(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"), *facts("h2"))
    target = w.find(TOPICS.name("holders"), lambda r: b'"years_in_scope":3.0' in (r.value or b""))

    def alter(rs: list[Record]) -> list[Record]:
        return [
            Record(r.topic, r.partition, r.offset, r.key, (r.value or b"").replace(b"3.0", b"13.0"), r.headers)
            if r == target
            else r
            for r in rs
        ]

    copied = w.copy(alter)
    where = w.find(COPY.name("holders"), lambda r: b"13.0" in (r.value or b""))
    result = verify(w.bus, copied, complete=True)
    assert kinds(result) == [("altered", f"b.holders[{where.partition}]@{where.offset}")]
    assert result.findings[0].tampering and result.findings[0].seq == int(stamp(target, "ce_mraseq"))


def test_a_dropped_event_is_missing_in_a_complete_view_and_unverified_in_a_partial_one(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"), *facts("h2"), *facts("h3"))
    holders = w.bus.records(TOPICS.name("holders"))
    seqs = sorted(int(stamp(r, "ce_mraseq")) for r in w.bus.records(TOPICS.name("holders")) + w.bus.records(
        TOPICS.name("verification")))
    victim = next(r for r in holders if 0 < int(stamp(r, "ce_mraseq")) < seqs[-1])
    seq = int(stamp(victim, "ce_mraseq"))
    copied = w.copy(lambda rs: [r for r in rs if r is not victim])
    nxt = next(
        r
        for t in ("holders", "verification")
        for r in w.bus.records(COPY.name(t))
        if int(stamp(r, "ce_mraseq")) == seq + 1
    )
    result = verify(w.bus, copied, complete=True)
    assert kinds(result) == [("missing", f"{nxt.topic}[{nxt.partition}]@{nxt.offset}")]
    assert f"seq {seq} of intake" in result.findings[0].detail and result.findings[0].tampering
    partial = verify(w.bus, [COPY.name("holders")], complete=False)
    assert partial.findings and {f.kind for f in partial.findings} == {"gap_unverified"}
    assert not partial.tampering
    assert complete_view(copied) and not complete_view(copied[:-1]) and not complete_view([*w.names()[:2], *copied[2:]])


def test_reordered_events_in_a_partition_are_found(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"), *facts("h2"))
    part = [r for r in w.bus.records(TOPICS.name("holders")) if r.key == b"h1"]
    a, b = part[0], part[1]

    def swap(rs: list[Record]) -> list[Record]:
        out = list(rs)
        if a in out:
            i, j = out.index(a), out.index(b)
            out[i], out[j] = b, a
        return out

    copied = w.copy(swap)
    moved = w.find(COPY.name("holders"), lambda r: r.value == b.value)
    result = verify(w.bus, copied, complete=True)
    assert kinds(result) == [("reordered", f"b.holders[{moved.partition}]@{moved.offset}")]


def test_a_redelivery_in_a_new_epoch_is_not_tampering(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    events = facts("h1")
    w.publish(*events)
    again = Publisher(w.bus, TOPICS, "intake")  # a restarted publisher re-sends what it had sent
    w.publish(*events[:2], pub=again)
    result = verify(w.bus, w.names(), complete=True)
    assert {f.kind for f in result.findings} == {"redelivery"} and len(result.findings) == 2
    assert not result.tampering and all("another epoch" in f.detail for f in result.findings)


def test_a_send_lost_and_published_again_later_is_a_resend_not_a_loss(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    first, lost, last = facts("h1")[:3]
    w.publish(first)
    w.pub.envelope(lost, time=T, id=fact_id(lost))  # stamped, never written
    w.publish(last)
    outbox = Publisher(w.bus, TOPICS, "intake")
    w.publish(lost, pub=outbox)
    result = verify(w.bus, w.names(), complete=True)
    assert [f.kind for f in result.findings] == ["resent"] and not result.tampering
    w2 = Audited(tmp_path / "2")  # the same gap with nothing published again is a loss
    w2.publish(first)
    w2.pub.envelope(lost, time=T)
    w2.publish(last)
    assert [f.kind for f in verify(w2.bus, w2.names(), complete=True).findings] == ["missing"]


def test_a_replaced_event_with_a_recomputed_hash_breaks_the_chain_and_a_forged_place_conflicts(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"))
    records = sorted(
        (r for t in ("holders", "verification") for r in w.bus.records(TOPICS.name(t))),
        key=lambda r: int(stamp(r, "ce_mraseq")),
    )
    victim = records[1]
    h = dict(victim.headers)
    value = (victim.value or b"").replace(b'"issuer":"x"', b'"issuer":"y"')
    assert value != victim.value
    rehashed = content_hash(
        h["ce_id"].decode(), h["ce_source"].decode(), h["ce_type"].decode(), h["ce_time"].decode(),
        h.get("ce_subject", b"").decode(), value,
    )
    headers = tuple((k, rehashed.encode() if k == "ce_mrahash" else v) for k, v in victim.headers)
    copied = w.copy(lambda rs: [Record(r.topic, r.partition, r.offset, r.key, value, headers) if r is victim else r
                                for r in rs])
    result = verify(w.bus, copied, complete=True)
    assert [(f.kind, f.seq) for f in result.findings] == [("broken_chain", 2)]
    # an extra event claiming an existing place in the chain
    w.bus.send(TOPICS.name("holders"), victim.key, value, headers)
    forged = verify(w.bus, w.names(), complete=True)
    assert {(f.kind, f.seq) for f in forged.tampering} == {("conflict", 1), ("id_reused", 1)}


def test_unstamped_and_malformed_records_are_tampering(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1")[:1])
    good = w.bus.records(TOPICS.name("holders"))[0]
    w.bus.send(TOPICS.name("holders"), b"h1", good.value or b"",
               [(k, v) for k, v in good.headers if not k.startswith("ce_mra")])
    w.bus.send(TOPICS.name("holders"), b"h1", b"{}", [])
    result = verify(w.bus, w.names(), complete=True)
    assert sorted(f.kind for f in result.findings) == ["malformed", "unstamped"] and len(result.tampering) == 2


def test_topics_resolve_by_logical_or_physical_name_and_the_dead_letter_topic_is_refused(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    assert resolve_topics(w.bus, TOPICS, ["holders", "a.holders", "benefits"]) == ["a.holders", "a.benefits"]
    assert resolve_topics(w.bus, TOPICS, []) == w.names()
    with pytest.raises(ValidationFailed, match="dead-letter"):
        resolve_topics(w.bus, TOPICS, ["deadletter"])
    with pytest.raises(NotFound, match="no topic"):
        resolve_topics(w.bus, TOPICS, ["z.holders"])


# --- trail and export -----------------------------------------------------------------------------------------


def test_a_trail_is_every_event_about_the_holder_in_time_order_with_no_personal_data(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"), *facts("h2", "BJ2025-I-047"))
    mine = entry_withdrawn("BJ2025-I-139", effective=date(2026, 1, 1), reason="monitoring")
    other = mine.model_copy(update={"entry_id": "BJ2025-I-047"})
    w.publish(mine, other, at=T + timedelta(days=1))
    b = w.bureau("beijing", "b")
    b.run(until_idle=True, timeout=10)
    w.publish(ended("h1", on=date(2025, 12, 1)), at=T + timedelta(days=2))
    b.run(until_idle=True, timeout=10)
    withdrawn = len(b.store.store.decisions("h1", active=False))
    got = trail(w.bus, TOPICS, "h1")
    events = got["events"]
    times = [e["time"] for e in events]
    assert times == sorted(times)
    assert {e["type"].split(".")[-2] for e in events[:4]} == {  # at one time, the facts before the decisions
        "holder_registered", "requested", "certificate_verified", "employment_started"}
    summaries = [e["summary"] for e in events]
    assert any("BJ2025-I-139 withdrawn" in s for s in summaries)
    assert not any("BJ2025-I-047" in s for s in summaries)  # another holder's row
    assert sum(len(e["decisions"]) for e in events) == withdrawn > 0
    assert sum(s.count("withdrew ") for s in summaries) == withdrawn
    assert all(e["topic"] in AUDITED_TOPICS and e["offset"] >= 0 for e in events)
    assert got["standing"] == []  # the employment ended: nothing stands
    text = json.dumps(got, ensure_ascii=False)
    assert "Jane Smith" not in text and "1980-05-01" not in text and "SECRET-NUMBER" not in text
    assert trail(w.bus, TOPICS, "h2")["standing"] and {d["code"] for d in trail(w.bus, TOPICS, "h2")["standing"]} == {
        d.code for d in b.store.active_decisions("h2")}
    with pytest.raises(NotFound):
        trail(w.bus, TOPICS, "nobody")


def test_export_holds_every_decision_active_and_withdrawn_as_jsonl_and_csv(tmp_path: Path) -> None:
    w = Audited(tmp_path)
    w.publish(*facts("h1"), *facts("h2"))
    b = w.bureau("beijing", "b")
    b.run(until_idle=True, timeout=10)
    w.publish(ended("h1", on=date(2025, 12, 1)), at=T + timedelta(days=2))
    b.run(until_idle=True, timeout=10)
    stored = {s.decision_id: s.active for s in b.store.store.decisions(active=None)}
    rows = export_decisions(w.bus, TOPICS, "beijing")
    assert {r["decision_id"]: r["status"] == "active" for r in rows} == {k: bool(v) for k, v in stored.items()}
    withdrawn = [r for r in rows if r["status"] == "withdrawn"]
    assert withdrawn and all(r["holder_id"] == "h1" and "employment" in r["withdrawn_reason"] for r in withdrawn)
    assert all(r["clause"] and r["edition"] == "2025" and r["rule_version"] and r["inputs"] for r in rows)
    assert export_decisions(w.bus, TOPICS, "tianjin") == []

    assert write_export(rows, tmp_path / "out.jsonl") == "jsonl"
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == rows
    assert write_export(rows, tmp_path / "out.csv") == "csv"
    raw = (tmp_path / "out.csv").read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)  # Excel reads the file as UTF-8 only with it
    with (tmp_path / "out.csv").open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    header = list(table[0])
    assert header[:4] == ["决定编号", "状态", "辖区", "持证人编号"] and "依据条款" in header
    assert "inputs" not in header and "输入:holder_category" in header and "输入:list" in header
    by_id = {r["decision_id"]: r for r in rows}
    for line in table:
        row = by_id[line["决定编号"]]
        assert line["理由"] == "；".join(row["reasons"])
        assert line["输入:holder_category"] == row["inputs"]["holder_category"]
        assert line["依据条款"] == row["clause"]
        assert not any(cell.lstrip().startswith(("[", "{")) for cell in line.values())  # no JSON text in a cell
    assert any(line["理由"] for line in table) and {line["输入:employed"] for line in table} <= {"true", "false"}
    with pytest.raises(ValidationFailed, match=r"\.jsonl"):
        write_export(rows, tmp_path / "out.xlsx")
