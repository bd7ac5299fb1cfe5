"""The test cases every bureau store passes (mra.services.bureau_store.BureauStore).

Subclass :class:`BureauStoreCases` in a test module, define ``create_store()`` (a new, empty store) and the
cases run against that implementation: a store is correct for a bureau when they pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from mra.core.facts import CertificateFact, EmploymentFact, ErasureFact, HolderFact, WithdrawnEntry
from mra.core.models import BenefitDecision, Employment, Outcome
from mra.events.consumer import EventRefused
from mra.services.bureau_store import BureauStore

__all__ = ["BureauStoreCases"]

T = datetime(2025, 10, 1, 9, tzinfo=UTC)


def holder(holder_id: str = "h1", category: str = "foreign") -> HolderFact:
    return HolderFact(holder_id, category, None, False, T, f"reg-{holder_id}")


def employment(holder_id: str = "h1", started: date = date(2025, 9, 1)) -> EmploymentFact:
    e = Employment(
        holder_id=holder_id, jurisdiction="beijing", employer="E", employer_region="beijing", started=started
    )
    return EmploymentFact(e, T, f"emp-{holder_id}-{started}")


def certificate(holder_id: str = "h1", key: str = "k1", entry_id: str = "BJ2025-I-139") -> CertificateFact:
    return CertificateFact(key, holder_id, entry_id, "I", "CODE", T, "beijing", None, f"ver-{key}")


def decision(ident: str, holder_id: str = "h1", code: str = "bj.work_permit") -> BenefitDecision:
    return BenefitDecision(
        decision_id=ident,
        holder_id=holder_id,
        jurisdiction="beijing",
        code=code,
        outcome=Outcome.ELIGIBLE,
        clause="二.1",
        reasons=("r",),
        entry_id="BJ2025-I-139",
        certificate_key="k1",
        edition="2025",
        rule_version="1",
        plugin="beijing",
        inputs={"age": 45},
        caused_by="ver-k1",
        decided_at=T,
    )


class BureauStoreCases:
    """Abstract cases: ``create_store()`` returns a new, empty store of the implementation under test."""

    def create_store(self) -> BureauStore:
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> Iterator[BureauStore]:
        s = self.create_store()
        yield s
        s.close()

    def test_positions_commit_with_the_batch_and_never_go_back(self, store: BureauStore) -> None:
        with store.batch() as b:
            b.track("t", 0, 4)
            b.track("t", 1, 0)
        with store.batch() as b:
            b.track("t", 0, 2)
        assert dict(store.positions()) == {("t", 0): 5, ("t", 1): 1}

    def test_an_event_is_claimed_once_per_publisher_identity(self, store: BureauStore) -> None:
        with store.batch() as b:
            assert b.claim("platform", "e1", "t", 0, 0)
            assert not b.claim("platform", "e1", "t", 0, 0)
            assert b.claim("bureau-tianjin", "e1", "t", 0, 1)
        with store.batch() as b:
            assert not b.claim("platform", "e1", "t", 0, 0)
        assert store.counts().events_applied == 2

    def test_an_id_claimed_again_with_other_content_is_refused(self, store: BureauStore) -> None:
        with store.batch() as b:
            assert b.claim("platform", "e1", "t", 0, 0, content_hash="a" * 64, ce_type="x.v1")
        with store.batch() as b:
            assert not b.claim("platform", "e1", "t", 0, 1, content_hash="a" * 64, ce_type="x.v1")
        with pytest.raises(EventRefused, match="id reused"), store.batch() as b:
            b.claim("platform", "e1", "t", 0, 2, content_hash="b" * 64, ce_type="y.v1")
        with store.batch() as b:  # another identity's event under the same id is its own
            assert b.claim("bureau-tianjin", "e1", "t", 0, 3, content_hash="b" * 64, ce_type="y.v1")
        assert store.counts().events_applied == 2

    def test_a_failed_batch_leaves_nothing_behind(self, store: BureauStore) -> None:
        with pytest.raises(RuntimeError), store.batch() as b:
            b.claim("platform", "e1", "t", 0, 0)
            b.track("t", 0, 0)
            b.put_holder(holder())
            b.queue("o1", "T", "{}", T)
            raise RuntimeError("crash")
        assert dict(store.positions()) == {}
        assert store.holder_file("h1") is None
        assert store.unsent() == []
        with store.batch() as b:
            assert b.claim("platform", "e1", "t", 0, 0)

    def test_facts_come_back_as_the_holder_file(self, store: BureauStore) -> None:
        with store.batch() as b:
            b.put_holder(holder())
            b.start_employment(employment())
            b.put_certificate(certificate())
            b.put_certificate(certificate("h2", "k2", "BJ2025-I-1"))
            b.withdraw_entry(WithdrawnEntry("BJ2025-I-139", date(2026, 1, 1), "repealed", T, "w1"))
            inside = b.holder_file("h1")
        assert inside.holder == holder()
        f = store.holder_file("h1")
        assert f is not None and f == inside
        assert f.employments == (employment(),)
        assert f.certificates == (certificate(),)
        assert set(f.withdrawn) == {"BJ2025-I-139"}
        assert store.holder_file("nobody") is None
        with store.batch() as b:
            assert b.holders_with_entries(["BJ2025-I-139", "BJ2025-I-1", "X"]) == {"h1", "h2"}

    def test_an_ended_employment_and_a_revoked_certificate_are_kept_with_their_times(self, store: BureauStore) -> None:
        later = datetime(2025, 12, 1, tzinfo=UTC)
        with store.batch() as b:
            b.start_employment(employment())
            b.put_certificate(certificate())
            b.end_employment("h1", "beijing", date(2025, 11, 30), later)
            b.end_employment("h1", "tianjin", date(2025, 11, 30), later)
            b.revoke_certificate("k1", later, "forged")
        with store.batch() as b:
            b.revoke_certificate("k1", later + timedelta(days=1), "revoked again")  # the first revocation stands
        f = store.holder_file("h1")
        assert f is not None
        assert f.employments[0].employment.ended == date(2025, 11, 30) and f.employments[0].ended_time == later
        assert f.certificates[0].revoked_at == later and f.certificates[0].revoke_reason == "forged"

    def test_an_erasure_drops_the_birth_date_and_keeps_what_a_replay_needs(self, store: BureauStore) -> None:
        with store.batch() as b:
            b.put_holder(HolderFact("h1", "foreign", "sealed:xyz", False, T, "reg"))
            b.erase_holder(ErasureFact("h1", T, frozenset({"d1"}), {"2025-10-01": 45}, "erase"))
        f = store.holder_file("h1")
        assert f is not None and f.holder is not None
        assert f.holder.erased and f.holder.birth_date is None
        assert f.erasure == ErasureFact("h1", T, frozenset({"d1"}), {"2025-10-01": 45}, "erase")

    def test_decisions_are_saved_withdrawn_and_restored(self, store: BureauStore) -> None:
        with store.batch() as b:
            b.put_holder(holder())
            b.save_decisions("h1", [decision("d1"), decision("d2", code="bj.other")], {})
        assert [d.decision_id for d in store.decisions("h1")] == ["d1", "d2"]
        assert store.decisions("h1")[0].decision == decision("d1")
        with store.batch() as b:
            b.save_decisions("h1", [], {"d1": "superseded"})
            assert set(b.active_decisions("h1")) == {"d2"}
        gone = store.decisions("h1", active=False)
        assert [(d.decision_id, d.active, d.withdrawn_reason) for d in gone] == [("d1", False, "superseded")]
        assert store.counts().decisions_withdrawn == 1
        with store.batch() as b:
            b.save_decisions("h1", [decision("d1")], {})
        assert {d.decision_id for d in store.decisions(None)} == {"d1", "d2"}
        assert store.counts().decisions_active == 2 and store.counts().decisions_eligible == 2

    def test_the_outbox_relays_in_order_once(self, store: BureauStore) -> None:
        with store.batch() as b:
            assert b.queue("o1", "A", '{"a":1}', T)
            assert b.queue("o2", "B", '{"b":2}', T)
            assert not b.queue("o1", "A", '{"a":3}', T)
        rows = store.unsent()
        assert [(r.event_id, r.type, r.body, r.time) for r in rows] == [
            ("o1", "A", '{"a":1}', T),
            ("o2", "B", '{"b":2}', T),
        ]
        store.mark_sent(rows[0].seq)
        assert [r.event_id for r in store.unsent()] == ["o2"]
        assert store.counts().outbox_unsent == 1

    def test_holders_are_found_by_part_of_their_employer_s_name_or_credit_code(self, store: BureauStore) -> None:
        e = employment()
        other = dataclasses.replace(e, employment=e.employment.model_copy(update={"employer": "北京 50%_x 公司"}))
        with store.batch() as b:
            b.start_employment(dataclasses.replace(other, employer_code="91110000X"))
            b.start_employment(employment("h2", date(2025, 10, 1)))
        assert store.holders_by_employer("beijing", "50%_", 10) == [("h1", "北京 50%_x 公司")]
        assert store.holders_by_employer("beijing", "1110000", 10) == [("h1", "北京 50%_x 公司")]
        assert store.holders_by_employer("beijing", "", 10) == [("h2", "E"), ("h1", "北京 50%_x 公司")]
        assert store.holders_by_employer("beijing", "", 1) == [("h2", "E")]
        assert store.holders_by_employer("tianjin", "", 10) == []

    def test_dead_letters_are_counted(self, store: BureauStore) -> None:
        with store.batch() as b:
            b.dead_letter("t", 0, 3, "unreadable")
            b.dead_letter("t", 0, 3, "unreadable")
        assert store.counts().dead_letters == 1

    def test_the_relay_state_keeps_positions_and_the_in_flight_mark(self, store: BureauStore) -> None:
        empty = store.relay_state()
        assert dict(empty.positions) == {} and empty.in_flight is None and empty.owner is None
        with store.batch() as b:
            b.queue("o1", "A", "{}", T)
            b.queue("o2", "B", "{}", T)
        rows = store.unsent()
        store.begin_relay(rows[-1].seq, "relay-a")
        begun = store.relay_state()
        assert begun.in_flight == rows[-1].seq and begun.owner == "relay-a"
        store.mark_sent(rows[-1].seq, {("b", 0): 5, ("b", 1): 2})
        done = store.relay_state()
        assert done.in_flight is None and done.owner == "relay-a"
        assert dict(done.positions) == {("b", 0): 5, ("b", 1): 2}
        assert store.unsent() == []
        store.mark_sent(rows[-1].seq, {("b", 0): 3, ("b", 2): 1})  # positions never go back
        assert dict(store.relay_state().positions) == {("b", 0): 5, ("b", 1): 2, ("b", 2): 1}

    def test_a_relay_that_never_marked_leaves_its_mark_for_the_next(self, store: BureauStore) -> None:
        with store.batch() as b:
            b.queue("o1", "A", "{}", T)
        (row,) = store.unsent()
        store.begin_relay(row.seq, "relay-a")  # and dies here
        assert store.relay_state().in_flight == row.seq
        assert [r.event_id for r in store.unsent()] == ["o1"]
        assert store.relay_key() == store.relay_key() and store.relay_key()
