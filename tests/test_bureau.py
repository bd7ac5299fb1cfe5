"""The bureau read model on the in-memory transport: decisions from facts, order-independence, withdrawals."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mra.core.models import BenefitDecision
from mra.core.plugins import load_registry
from mra.events.bus import InMemoryTransport
from mra.events.envelope import decode
from mra.events.publisher import Publisher
from mra.events.schemas import (
    BenefitDecided,
    BenefitWithdrawn,
    CertificateRevoked,
    CertificateVerified,
    EmployerRef,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderRegistered,
)
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.runtime import Runtime

T = datetime(2025, 10, 1, 9, tzinfo=UTC)
REGISTRY = load_registry()


def verified(holder: str = "h1", entry: str = "BJ2025-I-139", code: str = "CODE-1") -> CertificateVerified:
    return CertificateVerified(
        request_id=f"r-{holder}",
        holder_id=holder,
        certificate_key=f"k-{holder}-{entry}",
        entry_id=entry,
        issuer="特许公认会计师公会",
        verification_code=code,
        verified_at=T,
        verified_by="beijing",
        disclaimer="authenticity only",
    )


def started(holder: str = "h1", j: str = "beijing", on: date = date(2025, 9, 20), **kw: object) -> EmploymentStarted:
    return EmploymentStarted(
        holder_id=holder,
        jurisdiction=j,
        employer=EmployerRef(name="E", credit_code="C", region=j),
        started=on,
        years_in_scope=3,
        **kw,  # type: ignore[arg-type]
    )


def registered(holder: str = "h1", born: date = date(1980, 5, 1)) -> HolderRegistered:
    return HolderRegistered(holder_id=holder, category="foreign", birth_date=born)  # type: ignore[arg-type]


class World:
    def __init__(self, tmp: Path) -> None:
        self.bus = InMemoryTransport()
        self.runtime = Runtime(tmp, topics=Topics("w.", 2))
        self.bus.ensure_topics(self.runtime.topics.all())
        self.pub = Publisher(self.bus, self.runtime.topics, "test")
        self.tmp = tmp

    def publish(self, *events: Event, at: datetime = T) -> None:
        for e in events:  # ids from content, as in one shared log
            self.pub.publish(e, time=at, id=f"{type(e).__name__}-{e.partition_key()}-{hash(e.model_dump_json())}")

    def bureau(self, j: str, name: str | None = None, publish: bool = True):  # type: ignore[no-untyped-def]
        return open_bureau(
            self.runtime,
            j,
            registry=REGISTRY,
            transport=self.bus,
            group=False,
            db=self.tmp / f"{name or j}.db",
            publish=publish,
        )

    def benefits(self) -> list[Event]:
        return [decode(r).data for r in self.bus.records(self.runtime.topics.name("benefits"))]


def test_a_verified_certificate_of_a_holder_employed_in_beijing_is_decided(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.publish(registered(), verified(), started())
    b = w.bureau("beijing")
    stats = b.run(until_idle=True, timeout=10)
    assert stats.idle and stats.applied == 3
    decisions = {d.code: d for d in b.store.active_decisions("h1")}
    assert decisions["bj.work_permit"].outcome == "eligible"
    assert decisions["bj.work_permit"].inputs["age"] == 45
    assert decisions["bj.notarization_waiver"].verification_code == "CODE-1"
    assert all(d.decision_id and d.clause and d.edition == "2025" for d in decisions.values())
    published = w.benefits()
    assert len(published) == len(decisions)
    assert {e.decision.decision_id for e in published if isinstance(e, BenefitDecided)} == {
        d.decision_id for d in decisions.values()
    }


def test_redelivery_changes_nothing_and_publishes_nothing_new(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.publish(registered(), verified(), started())
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
    facts: list[Event] = [registered(), verified(), started()]
    reference = World(tmp_path / "ref")
    reference.publish(*facts)
    ref = reference.bureau("beijing")
    ref.run(until_idle=True, timeout=10)
    w = World(tmp_path / "perm")
    w.publish(*[facts[i] for i in order])
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    assert [d.decision_id for d in b.store.active_decisions()] == [d.decision_id for d in ref.store.active_decisions()]


def test_moving_to_tianjin_is_honoured_there_and_withdrawn_in_beijing(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.publish(registered(), verified(code="K7QH-2M9X"), started())
    bj, tj = w.bureau("beijing"), w.bureau("tianjin")
    bj.run(until_idle=True, timeout=10)
    assert {d.code for d in bj.store.active_decisions("h1")} >= {"bj.work_permit", "bj.notarization_waiver"}
    w.publish(
        EmploymentEnded(holder_id="h1", jurisdiction="beijing", ended=date(2025, 11, 1)),
        started(j="tianjin", on=date(2025, 11, 1)),
        at=datetime(2025, 11, 1, 12, tzinfo=UTC),
    )
    bj.run(until_idle=True, timeout=10)
    tj.run(until_idle=True, timeout=10)
    assert bj.store.active_decisions("h1") == []
    assert bj.store.counts()["decisions_withdrawn"] > 0
    honoured = tj.store.active_decisions("h1")
    assert [(d.code, d.outcome) for d in honoured] == [("tj.jjj_recognition", "eligible")]
    assert "四.3" in honoured[0].clause and honoured[0].verification_code == "K7QH-2M9X"
    withdrawn = [e for e in w.benefits() if isinstance(e, BenefitWithdrawn)]
    assert withdrawn and all(e.jurisdiction == "beijing" and "no current employment" in e.reason for e in withdrawn)
    assert all(e.withdrawn_at == datetime(2025, 11, 1, 12, tzinfo=UTC) for e in withdrawn)  # when the job ended


def test_a_revoked_certificate_withdraws_its_decisions(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.publish(registered(), verified(), started())
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
    withdrawn = [e for e in w.benefits() if isinstance(e, BenefitWithdrawn)]
    assert withdrawn and all(e.reason == "certificate revoked: issuer withdrew it" for e in withdrawn)


def test_no_decision_for_a_holder_who_never_worked_in_the_jurisdiction(tmp_path: Path) -> None:
    w = World(tmp_path)
    w.publish(registered(), verified())
    b = w.bureau("hebei")
    b.run(until_idle=True, timeout=10)
    assert b.store.active_decisions() == [] and w.benefits() == []


def test_a_replay_matches_the_live_model_and_says_when_the_live_one_lags(tmp_path: Path) -> None:
    from mra.services.replay import behind, compare, replay

    w = World(tmp_path)
    w.publish(registered(), verified(), started())
    live = w.bureau("beijing")
    live.run(until_idle=True, timeout=10)
    same = replay(w.runtime, "beijing", registry=REGISTRY, transport=w.bus, into=tmp_path / "r1")
    assert compare(live.store, same.store) == [] and behind(live.store, same.store) == []
    assert same.store.counts()["outbox_unsent"] == 0  # a replay publishes nothing
    w.publish(EmploymentEnded(holder_id="h1", jurisdiction="beijing", ended=date(2025, 11, 1)))
    later = replay(w.runtime, "beijing", registry=REGISTRY, transport=w.bus, into=tmp_path / "r2")
    diffs = compare(live.store, later.store)
    assert diffs and {d.field for d in diffs} == {"decision"} and all(d.replayed is None for d in diffs)
    lag = behind(live.store, later.store)
    assert len(lag) == 1 and lag[0].startswith("w.holders[")
    live.run(until_idle=True, timeout=10)
    assert compare(live.store, later.store) == [] and behind(live.store, later.store) == []


def test_an_expired_certificate_decides_nothing_after_its_expiry(tmp_path: Path) -> None:
    w = World(tmp_path)
    expired = verified().model_copy(update={"expires": date(2025, 9, 30)})
    w.publish(registered(), expired, started())
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    assert b.store.active_decisions("h1") == []


@pytest.mark.parametrize(("setting", "kept"), [("keep", True), ("revoke", False)])
def test_an_entry_withdrawal_follows_the_policy_setting(tmp_path: Path, setting: str, kept: bool) -> None:
    from mra.events.schemas import CatalogueEntryWithdrawn

    w = World(tmp_path)
    w.publish(registered(), verified(), started())
    w.publish(CatalogueEntryWithdrawn(jurisdiction="beijing", catalogue="beijing-international", edition="2025",
                                      entry_id="BJ2025-I-139", effective=date(2026, 1, 1), reason="monitoring"))
    w.publish(registered("h2"), verified("h2"), started("h2"), at=datetime(2026, 2, 1, tzinfo=UTC))
    b = open_bureau(w.runtime, "beijing", registry=REGISTRY, transport=w.bus, group=False, db=tmp_path / "b.db")
    b.store.settings["bj.withdrawal.decided_benefits"] = setting
    b.run(until_idle=True, timeout=10)
    assert bool(b.store.active_decisions("h1")) is kept  # decided before the withdrawal
    assert b.store.active_decisions("h2") == []  # nothing new on a withdrawn entry


def test_published_decisions_are_exactly_what_their_models_serialise(tmp_path: Path) -> None:
    """The bureau serialises each decision once and splices in its id; the bytes must be the model's own."""
    w = World(tmp_path)
    w.publish(registered(), verified(), started())
    b = w.bureau("beijing")
    b.run(until_idle=True, timeout=10)
    records = w.bus.records(w.runtime.topics.name("benefits"))
    assert records
    for r in records:
        event = decode(r).data
        assert isinstance(event, BenefitDecided)
        assert r.value == event.model_dump_json(by_alias=True).encode()
    stored = b.store.db.execute("SELECT decision_id, body FROM decisions").fetchall()
    assert stored and all(
        BenefitDecision.model_validate_json(body).model_dump_json() == body
        and BenefitDecision.model_validate_json(body).decision_id == ident
        for ident, body in stored
    )


def test_a_holder_is_decided_once_per_batch_with_the_same_result_as_event_by_event(tmp_path: Path) -> None:
    facts: list[Event] = [registered(), verified(), started(), verified("h1", "BJ2025-U-09", "CODE-2")]
    worlds = []
    for name, max_records in (("batch", 1000), ("single", 1)):
        w = World(tmp_path / name)
        w.publish(*facts)
        b = w.bureau("beijing")
        b.processor.max_records = max_records
        stats = b.run(until_idle=True, timeout=10)
        assert stats.applied == 4
        worlds.append((b.store.active_decisions(), w.benefits(), stats.batches))
    (batch, batch_out, batches), (single, single_out, singles) = worlds
    assert (batches, singles) == (1, 4)
    assert [d.decision_id for d in batch] == [d.decision_id for d in single]
    for out in (batch_out, single_out):
        assert sorted(e.decision.decision_id for e in out if isinstance(e, BenefitDecided)) == [
            d.decision_id for d in batch
        ]
