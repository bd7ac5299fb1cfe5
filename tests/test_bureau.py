"""The bureau read model on the in-memory transport: decisions from facts, order-independence, withdrawals."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from support.facts import ENTRY, World, decision_ids, ended, entry_withdrawn, holder_facts, started, verified

from mra.core.decide import decision_id
from mra.core.plugins import load_registry
from mra.events.benefits import withdrawn_in
from mra.events.envelope import decode
from mra.events.schemas import CertificateRevoked, DecisionSetChanged, Event
from mra.events.topics import Topics

REGISTRY = load_registry()
ISSUER = "特许公认会计师公会"
JOINED = date(2025, 9, 20)


def facts(holder: str = "h1", code: str = "CODE-1") -> list[Event]:
    """A holder's facts as this module has them: the certificate keyed by holder and row, work from 20 September."""
    return holder_facts(holder, key=f"k-{holder}-{ENTRY}", code=code, issuer=ISSUER, on=JOINED)


def world(tmp: Path) -> World:
    return World(tmp, Topics("w.", 2), REGISTRY)


def test_a_verified_certificate_of_a_holder_employed_in_beijing_is_decided(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.publish(*facts())
    b = w.bureau("beijing")
    stats = b.run(until_idle=True, timeout=10)
    assert stats.idle and stats.applied == 3
    decisions = {d.code: d for d in b.store.active_decisions("h1")}
    assert decisions["bj.work_permit"].outcome == "eligible"
    assert decisions["bj.work_permit"].inputs["age"] == 45
    assert decisions["bj.notarization_waiver"].verification_code == "CODE-1"
    assert all(d.decision_id and d.clause and d.edition == "2025" for d in decisions.values())
    published = w.benefits()
    assert len(published) == 1  # one decision set for the holder's certificate, every outcome in it
    (changed,) = published
    assert isinstance(changed, DecisionSetChanged) and changed.withdrawn == ()
    assert changed.holder_id == "h1" and changed.certificate_key == f"k-h1-{ENTRY}" and changed.caused_by
    assert sorted(decision_ids(published)) == sorted(d.decision_id for d in decisions.values())
    assert sorted(changed.benefit_decisions(), key=lambda d: d.decision_id) == b.store.active_decisions("h1")


def test_redelivery_changes_nothing_and_publishes_nothing_new(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.publish(*facts())
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    before = (b.store.counts(), len(w.benefits()))
    # forget the positions but keep the read model: every event is delivered again
    b.store.db.execute("DELETE FROM tracking")
    b.close()
    again = w.bureau("beijing")
    stats = again.run(until_idle=True, timeout=10)
    assert stats.polled == 3
    assert (again.store.counts(), len(w.benefits())) == before


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_decisions_do_not_depend_on_the_order_facts_arrive_in(tmp_path: Path, order: tuple[int, ...]) -> None:
    events = facts()
    reference = world(tmp_path / "ref")
    reference.publish(*events)
    ref = reference.bureau("beijing")
    ref.run(until_idle=True, timeout=10)
    w = world(tmp_path / "perm")
    w.publish(*[events[i] for i in order])
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    assert [d.decision_id for d in b.store.active_decisions()] == [d.decision_id for d in ref.store.active_decisions()]


def test_moving_to_tianjin_is_honoured_there_and_withdrawn_in_beijing(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.publish(*facts(code="K7QH-2M9X"))
    bj, tj = w.bureau("beijing"), w.bureau("tianjin")
    bj.run(until_idle=True, timeout=10)
    assert {d.code for d in bj.store.active_decisions("h1")} >= {"bj.work_permit", "bj.notarization_waiver"}
    w.publish(
        ended("h1", on=date(2025, 11, 1)),
        started("h1", "tianjin", on=date(2025, 11, 1)),
        at=datetime(2025, 11, 1, 12, tzinfo=UTC),
    )
    bj.run(until_idle=True, timeout=10)
    tj.run(until_idle=True, timeout=10)
    assert bj.store.active_decisions("h1") == []
    assert bj.store.counts()["decisions_withdrawn"] > 0
    honoured = tj.store.active_decisions("h1")
    assert [(d.code, d.outcome) for d in honoured] == [("tj.jjj_recognition", "eligible")]
    assert "四.3" in honoured[0].clause and honoured[0].verification_code == "K7QH-2M9X"
    withdrawn = [x for e in w.benefits() for x in withdrawn_in(e)]
    assert len(withdrawn) == bj.store.counts()["decisions_withdrawn"]
    assert all(e.jurisdiction == "beijing" and "no current employment" in e.reason for e in withdrawn)
    assert all(e.withdrawn_at == datetime(2025, 11, 1, 12, tzinfo=UTC) for e in withdrawn)  # when the job ended
    # one event in each jurisdiction for the move: Beijing's withdrawals, Tianjin's decision
    assert len(w.benefits()) == 3


def test_a_revoked_certificate_withdraws_its_decisions(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.publish(*facts())
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    assert b.store.active_decisions("h1")
    w.publish(
        CertificateRevoked(
            holder_id="h1",
            certificate_key="k-h1-BJ2025-I-139",
            verification_code="CODE-1",
            revoked_at=datetime(2025, 12, 1, tzinfo=UTC),
            reason="issuer withdrew it",
        )
    )
    b.run(until_idle=True, timeout=10)
    assert b.store.active_decisions("h1") == []
    withdrawn = [x for e in w.benefits() for x in withdrawn_in(e)]
    assert withdrawn and all(e.reason == "certificate revoked: issuer withdrew it" for e in withdrawn)
    *_, last = w.benefits()
    assert isinstance(last, DecisionSetChanged) and last.decisions == () and len(last.withdrawn) == len(withdrawn)
    assert {o.outcome for o in last.withdrawn} >= {"eligible", "ineligible"}  # what each had


def test_no_decision_for_a_holder_who_never_worked_in_the_jurisdiction(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.publish(*facts()[:2])
    b = w.bureau("hebei")
    b.run(until_idle=True, timeout=10)
    assert b.store.active_decisions() == [] and w.benefits() == []


def test_a_replay_matches_the_live_model_and_says_when_the_live_one_lags(tmp_path: Path) -> None:
    from mra.services.replay import behind, compare, replay

    w = world(tmp_path)
    w.publish(*facts())
    live = w.bureau("beijing")
    live.run(until_idle=True, timeout=10)
    same = replay(w.runtime, "beijing", registry=REGISTRY, transport=w.bus, into=tmp_path / "r1")
    assert compare(live.store, same.store) == [] and behind(live.store, same.store) == []
    assert same.store.counts()["outbox_unsent"] == 0  # a replay publishes nothing
    w.publish(ended("h1", on=date(2025, 11, 1)))
    later = replay(w.runtime, "beijing", registry=REGISTRY, transport=w.bus, into=tmp_path / "r2")
    diffs = compare(live.store, later.store)
    decided = [d for d in diffs if d.field == "decision"]
    assert decided and all(d.live == "active" and d.replayed is None for d in decided)
    assert {d.field for d in diffs} == {"decision", "facts.employments"}  # the employment the live one has not read
    lag = behind(live.store, later.store)
    assert len(lag) == 1 and lag[0].startswith("w.holders[")
    live.run(until_idle=True, timeout=10)
    assert compare(live.store, later.store) == [] and behind(live.store, later.store) == []


def test_an_expired_certificate_decides_nothing_after_its_expiry(tmp_path: Path) -> None:
    w = world(tmp_path)
    registration, certificate, job = facts()
    expired = certificate.model_copy(update={"expires": date(2025, 9, 30)})
    w.publish(registration, expired, job)
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    assert b.store.active_decisions("h1") == []


@pytest.mark.parametrize(("setting", "kept"), [("keep", True), ("review", True), ("revoke", False)])
def test_an_entry_withdrawal_follows_the_policy_setting(tmp_path: Path, setting: str, kept: bool) -> None:
    w = world(tmp_path)
    w.publish(*facts())
    w.publish(entry_withdrawn("BJ2025-I-139", effective=date(2026, 1, 1), reason="monitoring"))
    w.publish(*facts("h2"), at=datetime(2026, 2, 1, tzinfo=UTC))
    b = w.bureau("beijing", "b")
    b.store.settings["bj.withdrawal.decided_benefits"] = setting
    b.run(until_idle=True, timeout=10)
    kept_decisions = b.store.active_decisions("h1")
    assert bool(kept_decisions) is kept  # decided before the withdrawal
    assert b.store.active_decisions("h2") == []  # nothing new on a withdrawn entry
    shown = b.store.holder("h1")
    assert shown is not None
    reviews = [d.get("review") for d in shown["decisions"]]
    if setting == "review":  # every kept decision is listed for review, with the withdrawal's words
        assert len(b.store.under_review()) == len(kept_decisions) == b.store.counts()["decisions_under_review"]
        assert all(r and "BJ2025-I-139 withdrawn from 2026-01-01 (monitoring)" in r for r in reviews)
    else:
        assert b.store.under_review() == {} and b.store.counts()["decisions_under_review"] == 0
        assert reviews == [None] * len(kept_decisions)


def test_published_decisions_are_exactly_what_their_models_serialise(tmp_path: Path) -> None:
    """The bureau serialises each decision once and splices in its id; the bytes must be the model's own."""
    w = world(tmp_path)
    w.publish(*facts())
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    records = w.bus.records(w.runtime.topics.name("benefits"))
    assert records
    for r in records:
        event = decode(r).data
        assert isinstance(event, DecisionSetChanged)
        assert r.value == event.model_dump_json(by_alias=True).encode()
    stored = b.store.active_decisions()
    # the compact record gives each decision back exactly: its id is the hash of what it decided
    assert stored and all(
        d.decision_id
        == decision_id("beijing", d, d.certificate_key, JOINED, d.model_dump_json(exclude={"decision_id"}))
        for d in stored
    )


def test_a_holder_is_decided_once_per_batch_with_the_same_result_as_event_by_event(tmp_path: Path) -> None:
    events = [*facts(), verified("h1", "BJ2025-U-09", key="k-h1-BJ2025-U-09", code="CODE-2", issuer=ISSUER)]
    worlds = []
    for name, max_records in (("batch", 1000), ("single", 1)):
        w = world(tmp_path / name)
        w.publish(*events)
        b = w.bureau("beijing")
        b.processor.max_records = max_records
        stats = b.run(until_idle=True, timeout=10)
        assert stats.applied == 4
        worlds.append((b.store.active_decisions(), w.benefits(), stats.batches))
    (batch, batch_out, batches), (single, single_out, singles) = worlds
    assert (batches, singles) == (1, 4)
    assert [d.decision_id for d in batch] == [d.decision_id for d in single]
    for out in (batch_out, single_out):
        assert sorted(decision_ids(out)) == [d.decision_id for d in batch]


def test_a_bureau_names_itself_on_what_it_dead_letters(tmp_path: Path) -> None:
    w = world(tmp_path)
    w.bus.send(w.runtime.topics.name("holders"), b"h1", b"not an event", [])
    b = w.bureau("beijing")
    stats = b.run(until_idle=True, timeout=10)
    assert stats.dead_lettered == 1
    [letter] = w.bus.records(w.runtime.topics.name("deadletter"))
    assert dict(letter.headers)["mra_dlq_consumer"] == b"bureau-beijing"
