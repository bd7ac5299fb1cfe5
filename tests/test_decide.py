"""decide_holder, the bureau's pure decision core: facts in, decision set out. No broker, no database, no clock."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from mra.core.decide import decide_holder, decision_id, latest_fact_time, withdrawal_reason
from mra.core.facts import CertificateFact, EmploymentFact, ErasureFact, HolderFact, HolderFile, WithdrawnEntry
from mra.core.models import BenefitDecision, Employment, Outcome
from mra.core.plugins import load_registry

REGISTRY = load_registry()
SETTINGS = REGISTRY.settings("beijing")
BEIJING = REGISTRY.jurisdiction("beijing")
T = datetime(2025, 10, 1, 9, tzinfo=UTC)
ENTRY = "BJ2025-I-139"


def holder(category: str = "foreign") -> HolderFact:
    return HolderFact("h1", category, None, False, T - timedelta(days=1), "reg")


def job(
    j: str = "beijing", *, on: date = date(2025, 9, 1), region: str | None = None, at: datetime = T
) -> EmploymentFact:
    e = Employment(
        holder_id="h1", jurisdiction=j, employer="E", employer_region=region or j, started=on, years_in_scope=3
    )
    return EmploymentFact(e, at, f"emp-{j}-{on}")


def cert(key: str = "k1", entry: str = ENTRY, *, at: datetime = T, expires: date | None = None) -> CertificateFact:
    return CertificateFact(key, "h1", entry, "I", f"CODE-{key}", at, "beijing", expires, f"ver-{key}")


def file(**kw: object) -> HolderFile:
    base: dict[str, object] = {
        "holder_id": "h1",
        "holder": holder(),
        "employments": (job(),),
        "certificates": (cert(),),
        "born": date(1980, 5, 1),
    }
    base.update(kw)
    return HolderFile(**base)  # type: ignore[arg-type]


def decide(f: HolderFile, **overrides: object) -> dict[str, object]:
    return decide_holder(f, REGISTRY, {**SETTINGS, **overrides}, jurisdiction="beijing")  # type: ignore[return-value]


def test_a_certificate_of_a_holder_employed_here_is_decided_rule_by_rule_with_why() -> None:
    out = decide_holder(file(), REGISTRY, SETTINGS, jurisdiction="beijing")
    by_code = {d.code: d for d in out.values()}
    assert set(by_code) == {r.code for r in REGISTRY.rules("beijing")}
    permit = by_code["bj.work_permit"]
    assert permit.outcome is Outcome.ELIGIBLE and permit.inputs["age"] == 45
    assert permit.clause and permit.edition == "2025" and permit.certificate_key == "k1"
    assert permit.decided_at == T and permit.caused_by in {"ver-k1", "emp-beijing-2025-09-01"}
    for ident, d in out.items():
        content = d.model_dump_json(exclude={"decision_id"})
        assert ident == d.decision_id == decision_id("beijing", d, "k1", date(2025, 9, 1), content)


def test_the_decision_time_is_the_latest_fact_it_rests_on_never_the_clock() -> None:
    later = T + timedelta(days=30)
    out = decide_holder(file(employments=(job(at=later),)), REGISTRY, SETTINGS, jurisdiction="beijing")
    assert {d.decided_at for d in out.values()} == {later}
    assert {d.caused_by for d in out.values()} == {"emp-beijing-2025-09-01"}


def test_nothing_is_decided_without_a_current_employment_in_a_region_of_the_jurisdiction() -> None:
    assert decide(file(employments=())) == {}
    assert decide(file(employments=(job("tianjin"),))) == {}
    assert decide(file(employments=(job(region="hebei"),))) == {}
    closed = dataclasses.replace(job(), employment=job().employment.model_copy(update={"ended": date(2025, 9, 30)}))
    assert decide(file(employments=(closed,))) == {}
    assert decide(file(holder=None)) == {}


def test_a_revoked_an_expired_or_an_unknown_certificate_decides_nothing() -> None:
    revoked = dataclasses.replace(cert(), revoked_at=T, revoke_reason="forged")
    assert decide(file(certificates=(revoked,))) == {}
    assert decide(file(certificates=(cert(expires=date(2025, 9, 30)),))) == {}
    assert decide(file(certificates=(cert(entry="BJ2025-I-999"),))) == {}
    assert decide(file(certificates=(cert(expires=date(2025, 10, 1)),)))  # valid on its last day


def test_a_withdrawn_entry_follows_the_policy_setting() -> None:
    gone = {ENTRY: WithdrawnEntry(ENTRY, date(2026, 1, 1), "repealed", T, "w")}
    assert decide(file(withdrawn=gone), **{"bj.withdrawal.decided_benefits": "revoke"}) == {}
    kept = decide(file(withdrawn=gone), **{"bj.withdrawal.decided_benefits": "keep"})
    assert kept == decide(file())  # decided before the entry's effective date: it stands
    after = {ENTRY: WithdrawnEntry(ENTRY, date(2025, 10, 1), "repealed", T, "w")}
    assert decide(file(withdrawn=after), **{"bj.withdrawal.decided_benefits": "keep"}) == {}


def test_an_erased_holder_keeps_only_recorded_decisions_with_their_recorded_ages() -> None:
    before = decide_holder(file(), REGISTRY, SETTINGS, jurisdiction="beijing")
    permit = next(i for i, d in before.items() if d.code == "bj.work_permit")
    erasure = ErasureFact("h1", T, frozenset({permit}), {"2025-10-01": 45}, "erase")
    erased = dataclasses.replace(holder(), erased=True)
    after = decide_holder(file(holder=erased, born=None, erasure=erasure), REGISTRY, SETTINGS, jurisdiction="beijing")
    assert after == {permit: before[permit]}
    # a new certificate after the erasure decides nothing
    more = file(holder=erased, born=None, erasure=erasure, certificates=(cert(), cert("k2")))
    assert decide_holder(more, REGISTRY, SETTINGS, jurisdiction="beijing") == after


def test_an_unknown_age_is_decided_as_unknown() -> None:
    out = decide_holder(file(born=None), REGISTRY, SETTINGS, jurisdiction="beijing")
    assert out and all(d.inputs.get("age") is None for d in out.values())


def test_why_a_decision_no_longer_stands() -> None:
    latest = T + timedelta(days=400)
    revoked = dataclasses.replace(cert(), revoked_at=T, revoke_reason="forged")
    assert withdrawal_reason(file(certificates=(revoked,)), "k1", BEIJING, latest) == "certificate revoked: forged"
    expired = cert(expires=date(2026, 1, 1))
    assert (
        withdrawal_reason(file(certificates=(expired,)), "k1", BEIJING, latest) == "certificate expired on 2026-01-01"
    )
    gone = {ENTRY: WithdrawnEntry(ENTRY, date(2026, 1, 1), "repealed", T, "w")}
    assert withdrawal_reason(file(withdrawn=gone), "k1", BEIJING, T).startswith(f"catalogue entry {ENTRY} withdrawn")
    assert withdrawal_reason(file(employments=()), "k1", BEIJING, T) == "no current employment in beijing"
    assert withdrawal_reason(file(), "k1", BEIJING, T) == "superseded: the holder's facts changed"
    assert latest_fact_time(file(employments=(job(at=latest),))) == latest


# --- order does not matter ------------------------------------------------------------------------------------

CERTS = [
    cert("k1"),
    cert("k2", "BJ2025-U-09", at=T + timedelta(hours=1)),
    cert("k3", "BJ2025-I-1", expires=date(2025, 9, 1)),
    dataclasses.replace(cert("k4", "BJ2025-I-2"), revoked_at=T, revoke_reason="x"),
]
JOBS = [
    job(),
    job(on=date(2025, 3, 1), at=T - timedelta(days=200)),
    job("tianjin", on=date(2025, 9, 15)),
    dataclasses.replace(
        job(on=date(2024, 1, 1)),
        employment=job(on=date(2024, 1, 1)).employment.model_copy(update={"ended": date(2024, 12, 31)}),
    ),
]


@settings(max_examples=60, deadline=None)
@given(
    certs=st.permutations(CERTS),
    jobs=st.permutations(JOBS),
    category=st.sampled_from(["foreign", "hkmotw", "mainland"]),
)
def test_the_decision_set_does_not_depend_on_the_order_of_the_facts(
    certs: list[CertificateFact], jobs: list[EmploymentFact], category: str
) -> None:
    facts = file(holder=holder(category), certificates=tuple(certs), employments=tuple(jobs))
    reference = file(holder=holder(category), certificates=tuple(CERTS), employments=tuple(JOBS))
    got = decide_holder(facts, REGISTRY, SETTINGS, jurisdiction="beijing")
    want = decide_holder(reference, REGISTRY, SETTINGS, jurisdiction="beijing")
    assert got and [(i, d.model_dump_json()) for i, d in sorted(got.items())] == [
        (i, d.model_dump_json()) for i, d in sorted(want.items())
    ]
    assert latest_fact_time(facts) == latest_fact_time(reference)


# --- the Beijing plugin's memo of rule outcomes changes no decision -------------------------------------------

_ROWS = sorted(e.id for ed in REGISTRY.catalogues("beijing") for e in ed.entries if e.list != "M")
_CHOICES = {s.key: s.choices for s in REGISTRY.policy_settings("beijing") if s.choices}


@st.composite
def _holder_files(draw: st.DrawFn, day: date) -> HolderFile:
    """Holders drawn from few values on one day, so that many share a situation and differ in what the rules may
    or may not read (ids, codes, birthdays, ages, years)."""
    pick = draw
    at = datetime(day.year, day.month, day.day, pick(st.sampled_from([1, 20])), tzinfo=UTC)
    near = [date(day.year - y, day.month, min(day.day, 28)) + timedelta(days=d)
            for y in (65, 66, 70, 71) for d in (-1, 0)]  # fmt: skip
    e = Employment(
        holder_id="h1",
        jurisdiction="beijing",
        employer=pick(st.sampled_from(["E", "F"])),
        employer_region=pick(st.sampled_from(["beijing", "beijing", "tianjin"])),
        started=pick(st.sampled_from([date(2024, 1, 1), day, day + timedelta(days=1)])),
        years_in_scope=pick(st.sampled_from([None, 0, 1, 3, 3.0, 4.5, 5, 12])),
        in_scope=pick(st.booleans()),
        high_tech=pick(st.booleans()),
        universal_studios=pick(st.booleans()),
        employer_type=pick(st.sampled_from([None, "public-institution", "other"])),
    )
    rows = pick(st.lists(st.sampled_from(_ROWS), min_size=1, max_size=2, unique=True))
    certs = tuple(
        CertificateFact(f"k{n}", "h1", row, "I", pick(st.sampled_from(["", f"CODE-{n}", "C-Z"])), at, "beijing", None,
                        f"ver-{n}")
        for n, row in enumerate(rows)
    )  # fmt: skip
    category = pick(st.sampled_from(["foreign", "hkmotw", "mainland", "cn_abroad"]))
    return file(
        holder_id=pick(st.sampled_from(["h1", "h2"])),
        holder=holder(category),
        employments=(EmploymentFact(e, at, "emp"),),
        certificates=certs,
        born=pick(st.sampled_from([None, date(1990, 1, 2), *near])),
    )


@settings(max_examples=150, deadline=None)
@given(choice=st.data())
def test_the_rules_memo_gives_the_decisions_every_condition_run_gives(choice: st.DataObject) -> None:
    from mra.plugins.beijing.rules import clear_memo, memo_off

    chosen = {k: choice.draw(st.sampled_from(list(v))) for k, v in _CHOICES.items()}
    chosen["bj.skill_certificate.outbound_rows"] = choice.draw(st.sampled_from(["", "BJ2025-O-05", "BJ2025-O-01"]))
    merged = {**SETTINGS, **chosen}
    day = choice.draw(st.sampled_from([date(2025, 10, 9), date(2025, 11, 30), date(2026, 2, 28), date(2025, 7, 1)]))
    if choice.draw(st.booleans()):
        clear_memo()
    for f in choice.draw(st.lists(_holder_files(day), min_size=2, max_size=12)):  # one after another: the memo
        memo = decide_holder(f, REGISTRY, merged, jurisdiction="beijing")  # is kept across holders and examples
        with memo_off():
            every = decide_holder(f, REGISTRY, merged, jurisdiction="beijing")
        assert [(i, d.model_dump_json()) for i, d in sorted(memo.items())] == [
            (i, d.model_dump_json()) for i, d in sorted(every.items())
        ]


# --- a decision's content, put together from parts, is pydantic's own text of it ----------------------------

_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), _TEXT)


@st.composite
def _decisions(draw: st.DrawFn) -> list[BenefitDecision]:
    """Decisions of one context sharing its objects, as a plugin's Decider makes them, with arbitrary values."""
    zones = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
    at = draw(st.datetimes(timezones=st.sampled_from(zones)))
    shared = BenefitDecision(
        holder_id=draw(_TEXT), jurisdiction=draw(_TEXT), code="", outcome=Outcome.INELIGIBLE, clause="",
        entry_id=draw(_TEXT), certificate_key=draw(_TEXT), verification_code=draw(_TEXT), edition=draw(_TEXT),
        rule_version="", plugin=draw(_TEXT), inputs=draw(st.dictionaries(_TEXT, _VALUES, max_size=4)),
        caused_by=draw(_TEXT), decided_at=at,
    )  # fmt: skip
    rules = st.fixed_dictionaries({
        "code": _TEXT, "outcome": st.sampled_from(list(Outcome)), "clause": _TEXT,
        "reasons": st.lists(_TEXT, max_size=3).map(tuple), "conditions": st.lists(_TEXT, max_size=2).map(tuple),
        "readings": st.lists(_TEXT, max_size=2).map(tuple), "rule_version": _TEXT,
    })  # fmt: skip
    return [shared.model_copy(update=u) for u in draw(st.lists(rules, min_size=1, max_size=4))]


@settings(max_examples=300, deadline=None)
@given(contexts=st.lists(_decisions(), min_size=1, max_size=3))
def test_a_decisions_content_put_together_from_parts_is_pydantics_text_of_it(
    contexts: list[list[BenefitDecision]],
) -> None:
    from mra.core.decide import _Contents

    contents = _Contents()
    for ds in contexts:
        for d in [*ds, *ds]:  # each part kept, then reused
            assert contents.of(d) == d.model_dump_json(exclude={"decision_id"})
