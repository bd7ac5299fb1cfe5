"""``mra replay`` on the real broker: against a live bureau, from offsets and times, and what-if."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.facts import ended, entry_withdrawn, holder_facts, publish
from support.signed import provisioned, signed

from mra.cli import main
from mra.core.plugins import load_registry
from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics
from mra.services.audit import read_log
from mra.services.bureau_sqlite import SqliteBureauStore
from mra.services.bureaus import open_bureau
from mra.services.replay import Window, replay
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


def applied_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as c:
        return {r[0] for r in c.execute("SELECT event_id FROM applied")}


def test_replay_compare_against_a_live_bureau_finds_nothing_then_says_where_it_lags(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path, mra: Callable[..., Ran]
) -> None:
    state = provisioned(tmp_path / "state")
    runtime = Runtime(state, bootstrap, topics)
    pub = signed(kafka, topics, "test-intake")
    categories = ("foreign", "mainland", "hkmotw")
    publish(pub, [e for i in range(6) for e in holder_facts(f"h{i}", category=categories[i % 3])])
    live = open_bureau(runtime, "beijing", registry=REGISTRY, transport=kafka, group=False)
    assert live.run(until_idle=True, timeout=60).idle
    active = len(live.store.active_decisions())
    live.close()

    same = mra("replay", "-j", "beijing", "--compare", "--json", "--into", str(tmp_path / "r1"))
    assert same.exit_code == 0, same.output
    report = json.loads(same.output)
    assert report["differences"] == [] and report["live_behind"] == []
    assert report["counts"]["decisions_active"] == active > 0 and report["applied"] == 18 and report["caught_up"]
    assert report["counts"]["outbox_unsent"] == 0

    publish(pub, [ended("h1", on=date(2025, 11, 1))])
    later = mra("replay", "-j", "beijing", "--compare", "--into", str(tmp_path / "r2"))
    assert later.exit_code == 4, later.output
    assert "difference(s) from the live read model" in later.output and "h1 bj." in later.output
    assert "the live read model is behind the log" in later.output and f"{topics.prefix}holders[" in later.output
    assert all(f" h{i} " not in later.output for i in (0, 2, 3, 4, 5))  # only the holder whose facts changed

    refused = mra("replay", "-j", "beijing", "--into", str(tmp_path / "r2"))
    assert refused.exit_code == 1 and "fresh read model" in refused.err and "Traceback" not in refused.err


def test_from_time_to_time_and_from_offset_apply_exactly_their_records(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path, mra: Callable[..., Ran]
) -> None:
    runtime = Runtime(provisioned(tmp_path / "state"), bootstrap, topics)
    pub = signed(kafka, topics, "test-intake")
    early = set(publish(pub, [e for i in range(4) for e in holder_facts(f"h{i}")]))
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    late = set(
        publish(pub, [e for i in range(4, 7) for e in holder_facts(f"h{i}")] + [ended("h0", on=date(2025, 11, 1))])
    )

    def run(name: str, window: Window):  # type: ignore[no-untyped-def]
        return replay(runtime, "beijing", registry=REGISTRY, transport=kafka, into=tmp_path / name, window=window)

    since = run("since", Window(from_time=middle))
    assert applied_ids(since.path) == late
    assert (since.counts.applied, since.counts.before, since.counts.after) == (len(late), len(early), 0)
    until = run("until", Window(to_time=middle))
    assert applied_ids(until.path) == early
    assert (until.counts.applied, until.counts.before, until.counts.after) == (len(early), 0, len(late))
    assert until.store.active_decisions("h0") and not until.store.active_decisions("h4")  # the state as of then
    whole = run("whole", Window())
    assert applied_ids(whole.path) == early | late and not whole.store.active_decisions("h0")
    assert since.stats.idle and until.stats.idle and since.store.positions() == whole.store.positions()

    holders = topics.name("holders")
    records = [r for r in read_log(kafka, [holders]) if r.partition == 0]
    assert len(records) >= 2, "holders partition 0 should hold several records"
    cut = len(records) // 2
    skipped = {decode(r).id for r in records[:cut]}
    out = tmp_path / "offset"
    result = mra("replay", "-j", "beijing", "--from-offset", f"holders:0:{cut}", "--into", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert applied_ids(out / "beijing.db") == (early | late) - skipped
    assert report["window"]["from_offsets"] == {f"{holders}:0": cut}
    assert {(p["topic"], p["partition"]): p["start"] for p in report["partitions"]}[("holders", 0)] == cut

    both = mra("replay", "-j", "beijing", "--from-beginning", "--from-time", "2025-10-01T00:00:00Z")
    assert both.exit_code == 2 and "cannot be combined" in both.err
    naive = mra("replay", "-j", "beijing", "--from-time", "2025-10-01T00:00")
    assert naive.exit_code == 2 and "offset" in naive.err


def test_what_if_lists_exactly_the_decisions_a_rule_and_a_setting_change(
    kafka: KafkaTransport, topics: Topics, tmp_path: Path, mra: Callable[..., Ran]
) -> None:
    pub = signed(kafka, topics, "test-intake")
    publish(
        pub,
        [
            *holder_facts("hk-I", category="hkmotw"),  # covered by the work-residence permit until it is narrowed
            *holder_facts("cn-I", category="mainland"),
            *holder_facts("gb-I", category="foreign"),
            *holder_facts("hk-O", "BJ2025-O-05", category="hkmotw"),  # its row is withdrawn from December
            entry_withdrawn("BJ2025-O-05", effective=date(2025, 12, 1), reason="failed monitoring"),
        ],
    )
    rules = tmp_path / "what-if.toml"
    rules.write_text(
        'title = "HK/MO/TW residents outside the work-residence permit; withdrawals revoke"\n'
        '[settings]\n"bj.withdrawal.decided_benefits" = "revoke"\n'
        '[[rules]]\ncode = "bj.work_residence_permit"\nwho = ["mainland"]\n',
        encoding="utf-8",
    )
    result = mra("replay", "-j", "beijing", "--rules", str(rules), "--into", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    what_if = json.loads(result.output)["what_if"]
    baseline = SqliteBureauStore(tmp_path / "r" / "beijing.db")
    kept = {d.decision.code: str(d.decision.outcome) for d in baseline.decisions("hk-O", active=None)}
    assert len(kept) == len(REGISTRY.rules("beijing"))  # the baseline ("keep") keeps them all
    (permit,) = [
        str(d.decision.outcome)
        for d in baseline.decisions("hk-I", active=None)
        if d.decision.code == "bj.work_residence_permit"
    ]
    baseline.close()
    assert permit != "ineligible"
    expected = {("hk-I", "bj.work_residence_permit", permit, "ineligible")} | {
        ("hk-O", code, outcome, None) for code, outcome in kept.items()
    }
    got = {(c["holder_id"], c["code"], c["before"], c["after"]) for c in what_if["changes"]}
    assert got == expected and what_if["changed"] == len(expected)
    assert (tmp_path / "r" / "what-if" / "beijing.db").exists()

    text = mra("replay", "-j", "beijing", "--rules", str(rules), "--into", str(tmp_path / "r2"))
    assert text.exit_code == 0 and f"{len(expected)} decision(s) would change" in text.output
    assert f"hk-I bj.work_residence_permit (BJ2025-I-139): {permit} → ineligible" in text.output

    (tmp_path / "wide.toml").write_text('[[rules]]\ncode = "bj.work_permit"\nwho = ["mainland"]\n', encoding="utf-8")
    wide = mra("replay", "-j", "beijing", "--rules", str(tmp_path / "wide.toml"))
    assert wide.exit_code == 2 and "narrows a rule" in wide.err
