"""Replay on the in-memory transport: windows by offset, a read-only transport, and what-if scenarios."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.facts import World, entry_withdrawn, holder_facts

from mra.core.errors import ValidationFailed
from mra.core.models import Outcome
from mra.core.plugins import load_registry
from mra.events.topics import Topics
from mra.services.replay import ReadOnlyTransport, Window, parse_position, parse_time, replay
from mra.services.whatif import RuleChange, Scenario, changes, check_scenario, load_scenario

REGISTRY = load_registry()
TOPICS = Topics("w.", 2)


class Replayed(World):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, TOPICS, REGISTRY)

    def replay(self, name: str, **kw: object):  # type: ignore[no-untyped-def]
        return replay(self.runtime, "beijing", registry=REGISTRY, transport=self.bus, into=self.tmp / name, **kw)  # type: ignore[arg-type]


def applied_ids(store) -> set[str]:  # type: ignore[no-untyped-def]
    return {r[0] for r in store.db.execute("SELECT event_id FROM applied")}


# --- parsing --------------------------------------------------------------------------------------------------


def test_positions_take_logical_or_physical_topic_names() -> None:
    assert parse_position("verification:0:12", TOPICS) == (("w.verification", 0), 12)
    assert parse_position("w.holders:1:0", TOPICS) == (("w.holders", 1), 0)
    for bad, words in [
        ("verification:12", "TOPIC:PARTITION:OFFSET"),
        ("benefits:0:1", "not a topic a replay reads"),
        ("holders:x:1", "whole numbers"),
        ("holders:0:-1", "negative"),
    ]:
        with pytest.raises(ValidationFailed, match=words):
            parse_position(bad, TOPICS)


def test_times_need_their_offset() -> None:
    assert parse_time("2025-10-01T08:00:00+08:00") == datetime(2025, 10, 1, 0, tzinfo=UTC)
    assert parse_time("2025-10-01T00:00:00Z") == datetime(2025, 10, 1, 0, tzinfo=UTC)
    with pytest.raises(ValidationFailed, match="offset"):
        parse_time("2025-10-01T08:00:00")
    with pytest.raises(ValidationFailed, match="ISO 8601"):
        parse_time("yesterday")
    with pytest.raises(ValidationFailed, match="before --from-time"):
        Window(from_time=parse_time("2025-10-02T00:00:00Z"), to_time=parse_time("2025-10-01T00:00:00Z"))


# --- windows --------------------------------------------------------------------------------------------------


def test_a_replay_from_an_offset_applies_that_partition_from_there_and_the_others_whole(tmp_path: Path) -> None:
    w = Replayed(tmp_path)
    for i in range(8):
        w.publish(*holder_facts(f"h{i}"))
    holders = w.bus.records("w.holders")
    partition = max({r.partition for r in holders}, key=lambda p: sum(r.partition == p for r in holders))
    skipped = [r for r in holders if r.partition == partition and r.offset < 3]
    whole = w.replay("whole")
    part = w.replay("part", window=Window(start={("w.holders", partition): 3}))
    from mra.events.envelope import decode

    assert applied_ids(whole.store) - applied_ids(part.store) == {decode(r).id for r in skipped}
    assert part.counts.applied == whole.counts.applied - len(skipped)
    assert part.counts.read == whole.counts.read - len(skipped)  # those were never read
    assert part.stats.idle and part.store.positions()[("w.holders", partition)] == whole.store.positions()[
        ("w.holders", partition)
    ]
    with pytest.raises(ValidationFailed, match="no such partition"):
        w.replay("bad", window=Window(start={("w.holders", 9): 0}))
    with pytest.raises(ValidationFailed, match="beyond the end"):
        w.replay("far", window=Window(start={("w.holders", partition): 99}))


def test_a_replay_writes_nothing_to_the_cluster_not_even_dead_letters(tmp_path: Path) -> None:
    w = Replayed(tmp_path)
    w.publish(*holder_facts("h1"))
    w.bus.send("w.holders", b"h1", b"not json", [("ce_specversion", b"1.0")])
    result = w.replay("r")
    assert result.counts.dead_lettered == 1 and result.counts.withheld == 1
    assert w.bus.records("w.deadletter") == [] and w.bus.records("w.benefits") == []
    assert result.store.counts()["dead_letters"] == 1 and result.store.active_decisions("h1")
    with pytest.raises(FileExistsError):
        w.replay("r")
    ro = ReadOnlyTransport(w.bus)
    with pytest.raises(Exception, match="creates no topics"):
        ro.ensure_topics({"x": 1})


# --- what-if --------------------------------------------------------------------------------------------------


def test_narrowing_a_rule_changes_exactly_the_decisions_it_no_longer_covers(tmp_path: Path) -> None:
    w = Replayed(tmp_path)
    w.publish(
        *holder_facts("hk-I", category="hkmotw"),  # list I: covered by the work-residence permit
        *holder_facts("cn-I", category="mainland"),  # still covered
        *holder_facts("gb-I", category="foreign"),  # never covered
        *holder_facts("hk-O", "BJ2025-O-05", category="hkmotw"),  # list O: the rule is for lists I and U
    )
    scenario = Scenario(rules=(RuleChange(code="bj.work_residence_permit", who=("mainland",)),))
    result = w.replay("r", what_if=scenario)
    assert result.what_if is not None
    found, _ = changes(result.store, result.what_if)
    assert [(c.holder_id, c.code, c.after) for c in found] == [("hk-I", "bj.work_residence_permit", "ineligible")]
    assert found[0].before in {"eligible", "conditional"}
    assert any("what-if" in r for r in found[0].reasons_after)
    before = {d.code: d for d in result.store.active_decisions("cn-I")}
    after = {d.code: d for d in result.what_if.active_decisions("cn-I")}
    assert before == after  # a holder the change does not touch is decided identically


def test_a_disabled_rule_and_a_removed_row_are_no_longer_decided(tmp_path: Path) -> None:
    w = Replayed(tmp_path)
    w.publish(*holder_facts("a"), *holder_facts("b", "BJ2025-I-047"))
    scenario = Scenario.model_validate(
        {"rules": [{"code": "bj.work_permit", "disabled": True}], "entries": [{"id": "BJ2025-I-047", "removed": True}]}
    )
    result = w.replay("r", what_if=scenario)
    assert result.what_if is not None
    found, _ = changes(result.store, result.what_if)
    codes_b = {d.code for d in result.store.active_decisions("b")}
    assert {(c.holder_id, c.code) for c in found} == {("a", "bj.work_permit")} | {("b", code) for code in codes_b}
    assert all(c.after is None for c in found)


def test_a_setting_override_is_decided_by_the_plugin_itself(tmp_path: Path) -> None:
    w = Replayed(tmp_path)
    w.publish(*holder_facts("a"), *holder_facts("b", "BJ2025-I-047"))
    w.publish(entry_withdrawn("BJ2025-I-047", effective=date(2025, 12, 1), reason="failed monitoring"))
    assert REGISTRY.settings("beijing")["bj.withdrawal.decided_benefits"] == "keep"  # so the baseline keeps them
    result = w.replay("r", what_if=Scenario(settings={"bj.withdrawal.decided_benefits": "revoke"}))
    assert result.what_if is not None
    found, reworded = changes(result.store, result.what_if)
    kept = result.store.active_decisions("b")
    assert kept and {(c.holder_id, c.code, c.after) for c in found} == {("b", d.code, None) for d in kept}
    assert {(c.holder_id, c.code, c.before) for c in found} == {("b", d.code, d.outcome.value) for d in kept}
    assert reworded == 0


def test_a_scenario_that_does_not_fit_is_refused_with_every_reason(tmp_path: Path) -> None:
    bad = Scenario.model_validate(
        {
            "settings": {"bj.withdrawal.decided_benefits": "forget", "bj.nope": 1, "tj.jjj.treatments": "x"},
            "rules": [
                {"code": "bj.work_permit", "who": ["foreign", "mainland"]},
                {"code": "bj.visa_residence", "lists": ["I", "M"]},
                {"code": "bj.nothing", "disabled": True},
                {"code": "bj.practice"},
            ],
            "entries": [{"id": "BJ2025-I-999", "removed": True}, {"id": "BJ2025-I-139", "seq": 0}],
        }
    )
    problems = check_scenario(bad, REGISTRY, "beijing")
    joined = "\n".join(problems)
    for words in [
        "bj.withdrawal.decided_benefits = 'forget'",
        "'bj.nope' is not a setting of beijing",
        "'tj.jjj.treatments' is not a setting of beijing",
        "bj.work_permit who adds mainland",
        "bj.visa_residence lists adds M",
        "'bj.nothing' is not a rule of beijing",
        "bj.practice changes nothing",
        "'BJ2025-I-999' is not a row",
        "BJ2025-I-139: seq",
    ]:
        assert words in joined, words
    assert len(problems) == 9
    w = Replayed(tmp_path)
    with pytest.raises(ValidationFailed, match="does not fit"):
        w.replay("r", what_if=bad)
    assert not (tmp_path / "r" / "beijing.db").exists()  # refused before anything was read


def test_a_scenario_file_is_read_and_a_bad_one_refused(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        'title = "no permit for HK/MO/TW"\n[settings]\n"bj.withdrawal.decided_benefits" = "revoke"\n'
        '[[rules]]\ncode = "bj.work_residence_permit"\nwho = ["mainland"]\n',
        encoding="utf-8",
    )
    s = load_scenario(good)
    assert s.title and s.rules[0].who == ("mainland",) and s.settings == {"bj.withdrawal.decided_benefits": "revoke"}
    assert check_scenario(s, REGISTRY, "beijing") == []
    (tmp_path / "typo.toml").write_text('[[rules]]\ncode = "bj.work_permit"\nwhom = ["foreign"]\n', encoding="utf-8")
    with pytest.raises(ValidationFailed) as e:
        load_scenario(tmp_path / "typo.toml")
    assert "rules.0.whom" in str(e.value)
    (tmp_path / "broken.toml").write_text("[settings\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="cannot read"):
        load_scenario(tmp_path / "broken.toml")
    with pytest.raises(ValidationFailed, match="no what-if file"):
        load_scenario(tmp_path / "absent.toml")


def test_outcome_order_in_changes_is_by_holder_then_code(tmp_path: Path) -> None:
    w = Replayed(tmp_path)
    w.publish(*holder_facts("z", category="hkmotw"), *holder_facts("a", category="hkmotw"))
    result = w.replay("r", what_if=Scenario(rules=(RuleChange(code="bj.work_residence_permit", who=("mainland",)),)))
    assert result.what_if is not None
    found, _ = changes(result.store, result.what_if)
    assert [c.holder_id for c in found] == ["a", "z"]
    assert all(c.after == Outcome.INELIGIBLE.value for c in found)
