"""The one read view of the benefits topic: decision sets and the per-rule events of older logs read alike."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from support.facts import ENTRY, T, World, ended, holder_facts, read_back, verified

from mra.core.decide import decide_holder, latest_fact_time, withdrawal_reason
from mra.core.facts import CertificateFact, EmploymentFact, HolderFact, HolderFile
from mra.core.ids import stable_id
from mra.core.plugins import load_registry
from mra.events.benefits import BenefitsView, decided_in, withdrawn_in
from mra.events.publisher import Publisher
from mra.events.schemas import (
    BenefitDecided,
    BenefitWithdrawn,
    DecisionSetChanged,
    EmploymentStarted,
    OutcomeWithdrawn,
)
from mra.events.topics import Topics
from mra.services.replay import compare, replay

REGISTRY = load_registry()
TOPICS = Topics("v.", 2)
ENDED_AT = T + timedelta(days=60)


class Logged(World):
    pub_ids: list[str]


def facts() -> list:  # type: ignore[type-arg]
    return [*holder_facts("h1", code="CODE-1"), verified("h1", "BJ2025-U-09", key="k2", code="CODE-2")]


def old_bureau_log(w: Logged, *, end: bool) -> None:
    """What a bureau published before decision sets, on the facts of :func:`facts` (``end``: and then on the end
    of the employment): a ``BenefitDecided`` per rule outcome under ``stable_id("decided", id)``, then a
    ``BenefitWithdrawn`` per decision under ``stable_id("withdrawn", id)``."""
    reg, cert, emp = facts()[0], facts()[1:2] + facts()[3:], facts()[2]
    assert isinstance(emp, EmploymentStarted)
    file = HolderFile(
        holder_id="h1",
        holder=HolderFact("h1", reg.category.value, None, False, T, "reg"),
        employments=(EmploymentFact(emp.employment(), T, w.pub_ids[2]),),
        certificates=tuple(
            CertificateFact(c.certificate_key, "h1", c.entry_id, c.issuer, c.verification_code, c.verified_at,
                            c.verified_by, c.expires, w.pub_ids[i])
            for i, c in ((1, cert[0]), (3, cert[1]))
        ),
        born=reg.birth_date,
    )
    decided = decide_holder(file, REGISTRY, REGISTRY.settings("beijing"), jurisdiction="beijing")
    bureau = Publisher(w.bus, TOPICS, "bureau-beijing")
    if not end:
        for ident, d in sorted(decided.items()):
            bureau.publish(BenefitDecided(decision=d), id=stable_id("decided", ident), time=d.decided_at)
        bureau.flush()
        return
    closed = dataclasses.replace(
        file.employments[0],
        employment=emp.employment().model_copy(update={"ended": ENDED_AT.date()}),
        ended_time=ENDED_AT,
    )
    after = dataclasses.replace(file, employments=(closed,))
    latest = latest_fact_time(after)
    for ident, d in sorted(decided.items()):
        reason = withdrawal_reason(after, d.certificate_key, REGISTRY.jurisdiction("beijing"), latest)
        gone = BenefitWithdrawn(
            decision_id=ident, holder_id="h1", jurisdiction="beijing", code=d.code, reason=reason, withdrawn_at=latest
        )
        bureau.publish(gone, id=stable_id("withdrawn", ident), time=latest)
    bureau.flush()


def test_an_old_log_of_per_rule_events_reads_and_replays_to_the_same_decisions(tmp_path: Path) -> None:
    # the live bureau of today, on the facts
    new = Logged(tmp_path / "new", TOPICS, REGISTRY)
    new.publish(*facts())
    live = new.bureau("beijing")
    live.run(until_idle=True, timeout=10)
    before_end = {d.decision_id: d for d in live.store.active_decisions("h1")}
    new.publish(ended("h1", on=ENDED_AT.date()), at=ENDED_AT)
    live.run(until_idle=True, timeout=10)
    assert live.store.active_decisions("h1") == [] and len(before_end) > 18

    # the same facts on a log an older bureau wrote its per-rule events to
    old = Logged(tmp_path / "old", TOPICS, REGISTRY)
    old.pub_ids = old.publish(*facts())
    old_bureau_log(old, end=False)

    # a replay of the old log decides exactly what its BenefitDecided events say
    old_replay = replay(old.runtime, "beijing", registry=REGISTRY, transport=old.bus, into=tmp_path / "r-old")
    assert old_replay.stats.idle
    replayed = {s.decision_id: s.decision.model_dump_json() for s in old_replay.store.store.decisions(active=None)}
    said = {d.decision_id: d.model_dump_json() for e in read_back(old.bus, TOPICS) for d in decided_in(e.data)}
    assert replayed == said == {i: d.model_dump_json() for i, d in before_end.items()}
    old_replay.store.close()

    old.publish(ended("h1", on=ENDED_AT.date()), at=ENDED_AT)
    old_bureau_log(old, end=True)
    old_events = [e.data for e in read_back(old.bus, TOPICS)]
    assert {type(e) for e in old_events} == {BenefitDecided, BenefitWithdrawn}

    # read through the one view, the old log and the new one say the same: every decision, and its withdrawal
    old_view = BenefitsView().extend(read_back(old.bus, TOPICS))
    new_view = BenefitsView().extend(read_back(new.bus, TOPICS))
    assert {type(e.data) for e in read_back(new.bus, TOPICS)} == {DecisionSetChanged}
    for view in (old_view, new_view):
        assert view.standing() == [] and view.orphans == []
        published = {p.decision.decision_id: p for p in view.select(active=None)}
        assert {i: p.decision.model_dump_json() for i, p in published.items()} == {
            i: d.model_dump_json() for i, d in before_end.items()
        }
        assert {p.withdrawn.reason for p in published.values() if p.withdrawn} == {"no current employment in beijing"}
        assert {p.withdrawn.withdrawn_at for p in published.values() if p.withdrawn} == {ENDED_AT}

    # and the whole old log replays to what the live bureau holds: nothing stands
    old_replay = replay(old.runtime, "beijing", registry=REGISTRY, transport=old.bus, into=tmp_path / "r-old-2")
    assert old_replay.stats.idle and compare(live.store, old_replay.store) == []


def test_decided_and_withdrawn_in_read_both_generations_of_event() -> None:
    started_job = holder_facts()[2]
    assert isinstance(started_job, EmploymentStarted)
    d = decide_holder(
        HolderFile(
            holder_id="h1",
            holder=HolderFact("h1", "foreign", None, False, T, "reg"),
            employments=(EmploymentFact(started_job.employment(), T, "emp"),),
            certificates=(CertificateFact("k1", "h1", ENTRY, "I", "C", T, "beijing", None, "ver"),),
            born=date(1980, 5, 1),
        ),
        REGISTRY,
        REGISTRY.settings("beijing"),
        jurisdiction="beijing",
    )
    decisions = sorted(d.values(), key=lambda x: x.decision_id)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    one = BenefitDecided(decision=decisions[0])
    assert decided_in(one) == [decisions[0]] and withdrawn_in(one) == []
    gone = [OutcomeWithdrawn(decision_id="x", code="bj.a", outcome="eligible", reason="r")]  # type: ignore[arg-type]
    s = DecisionSetChanged.of(
        decisions, gone, holder_id="h1", jurisdiction="beijing", certificate_key="k1", cause="c", withdrawn_at=at
    )
    assert decided_in(s) == decisions  # every field of every decision comes back
    assert [(w.decision_id, w.reason, w.withdrawn_at, w.holder_id) for w in withdrawn_in(s)] == [("x", "r", at, "h1")]
    # the set is far smaller than the per-rule events it replaces
    per_rule = sum(len(BenefitDecided(decision=x).model_dump_json()) for x in decisions)
    assert len(s.model_dump_json()) < per_rule / 2
