"""The conformance kit fails plugins that break the contract, and passes one that keeps it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import pytest

from mra.core.hookspecs import hookimpl
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    CatalogueEntry,
    CatalogueList,
    DecisionContext,
    Jurisdiction,
    Outcome,
)
from mra.core.plugins import PLUGINS_ENV, Registry, load_registry
from mra.core.testing import JurisdictionConformance, SyntheticCase, sample_entries, synthetic_cases

Failed = pytest.fail.Exception


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)


RULES = (
    BenefitRule(code="rg.a", clause="rogue 1", title_zh="甲", title_en="A"),
    BenefitRule(code="rg.b", clause="rogue 2", title_zh="乙", title_en="B"),
)


def rogue_edition() -> CatalogueEdition:
    rows = tuple(
        CatalogueEntry(id=f"RG-I-{i:02d}", list="I", seq=i, name=f"r{i}", issuer_text="x", source=f"I 序号 {i}")
        for i in range(1, 4)
    )
    designation = CatalogueEntry(id="RG-M-01", list="M", seq=1, name="m", issuer_text="x", designates="RG-I-01",
                                 source="M 序号 1")
    return CatalogueEdition(
        jurisdiction="rogue", catalogue="rogue-cat", edition="1", title="t", document="d", effective=date(2025, 1, 1),
        lists=(CatalogueList(code="I", name_zh="l", name_en="l", count=3, source="I"),
               CatalogueList(code="M", name_zh="m", name_en="m", count=1, designates=True, source="M")),
        entries=(*rows, designation),
    )


class Rogue:
    """Decides both rules correctly unless told to break one thing."""

    def __init__(self, fault: str = "") -> None:
        self.fault = fault
        self.calls = itertools.count()
        self.rules: tuple[BenefitRule, ...] = RULES

    @hookimpl
    def mra_jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(code="rogue", prefix="rg", name_zh="流氓", name_en="Rogue", regions=("rogue",))

    @hookimpl
    def mra_catalogues(self) -> Sequence[CatalogueEdition]:
        return (rogue_edition(),)

    @hookimpl
    def mra_benefit_rules(self) -> Sequence[BenefitRule]:
        return self.rules

    @hookimpl
    def mra_decide(self, jurisdiction: str, context: DecisionContext,
                   settings: Mapping[str, object]) -> Sequence[BenefitDecision] | None:
        if jurisdiction != "rogue":
            return None
        out = []
        for rule in RULES:
            fields: dict[str, Any] = dict(
                holder_id=context.holder.holder_id, jurisdiction="rogue", code=rule.code,
                outcome=Outcome.INELIGIBLE, clause=rule.clause, reasons=("not employed",), entry_id=context.entry.id,
                edition=context.edition, rule_version=rule.version, plugin="rogue", caused_by=context.caused_by,
                decided_at=context.at,
            )
            if self.fault == "clock":
                fields["decided_at"] = datetime.now()
            if self.fault == "clause":
                fields["clause"] = "somewhere else"
            if self.fault == "personal":
                fields["inputs"] = {"holder_name": "Zhang San"}
            if self.fault == "no_reason":
                fields["reasons"] = ()
            if self.fault == "conditional":
                fields["outcome"] = Outcome.CONDITIONAL
            if self.fault == "state":
                fields["reasons"] = (f"call {next(self.calls)}",)
            if self.fault == "unknown" and rule.code == "rg.b":
                fields["code"] = "rg.zzz"
            if self.fault == "missing" and rule.code == "rg.b":
                continue
            if self.fault == "declares":
                self.rules = (*RULES, BenefitRule(code="rg.new", clause="c", title_zh="t", title_en="t"))
            out.append(BenefitDecision(**fields))
        return out


def kit_for(plugin: object) -> JurisdictionConformance:
    kit_type = type("Kit", (JurisdictionConformance,), {"jurisdiction": "rogue", "extra_plugins": {"rogue": plugin}})
    kit = kit_type()
    assert isinstance(kit, JurisdictionConformance)
    return kit


def run_kit(plugin: object) -> dict[str, str]:
    """Every check of the kit, as pytest would run it; the failures' messages by test name."""
    kit = kit_for(plugin)
    registry = kit.loaded()
    cases = synthetic_cases(registry, "rogue", kit.max_entries)
    decided = kit.decide_all(registry, cases)
    failures: dict[str, str] = {}
    checks = {
        "identity": lambda: kit.test_identity(registry),
        "catalogue": lambda: kit.test_catalogue_schema(registry),
        "honours": lambda: kit.test_honours_well_formed(registry),
        "rules": lambda: kit.test_rules_cite_clauses(registry),
        "settings": lambda: kit.test_settings_namespaced(registry),
        "shape": lambda: kit.test_decision_shape(registry, decided),
        "determinism": lambda: kit.test_determinism(cases, decided),
        "idempotency": lambda: kit.test_idempotency(registry, decided),
    }
    for name, check in checks.items():
        try:
            check()
        except Failed as e:
            failures[name] = str(e)
    return failures


def test_a_conforming_plugin_passes_every_check() -> None:
    assert run_kit(Rogue()) == {}


@pytest.mark.parametrize(
    ("fault", "check", "expected"),
    [
        ("clock", "shape", "decided_at="),
        ("clock", "determinism", "decided differently on a fresh load"),
        ("clause", "shape", "not its rule's clause 'rogue 1'"),
        ("personal", "shape", "personal inputs ['holder_name']"),
        ("no_reason", "shape", "ineligible without a reason"),
        ("conditional", "shape", "conditional without naming a condition"),
        ("unknown", "shape", "'rg.zzz' is not one of the plugin's rules"),
        ("missing", "shape", "['rg.b'] are not decided"),
        ("state", "idempotency", "a second decision differs from the first"),
        ("state", "determinism", "decided differently"),
    ],
)
def test_a_broken_contract_fails_the_kit_with_the_reason(fault: str, check: str, expected: str) -> None:
    failures = run_kit(Rogue(fault))
    assert check in failures, f"{check} passed despite fault {fault!r}: {failures}"
    assert expected in failures[check]


def test_declarations_changing_after_deciding_fail_idempotency() -> None:
    plugin = Rogue("declares")
    kit = kit_for(plugin)
    registry = kit.loaded()
    decided = kit.decide_all(registry, synthetic_cases(registry, "rogue", 2))
    with pytest.raises(Failed, match="what the plugin declares changed"):
        kit.test_idempotency(registry, decided)


def test_a_refused_plugin_fails_the_kit_with_its_reasons() -> None:
    class NoRules(Rogue):
        @hookimpl
        def mra_catalogues(self) -> Sequence[CatalogueEdition]:
            return (rogue_edition().model_copy(update={"jurisdiction": "elsewhere"}),)

    with pytest.raises(Failed, match=r"jurisdiction 'rogue' did not load: plugin 'rogue' refused: .*belongs to"):
        kit_for(NoRules()).loaded()
    with pytest.raises(Failed, match="does not name its jurisdiction"):
        JurisdictionConformance().loaded()


def test_cases_come_from_the_plugins_rows_without_designations() -> None:
    registry = load_registry(extra={"rogue": Rogue()})
    cases = synthetic_cases(registry, "rogue")
    used = {c.context.entry.id for c in cases}
    assert used == {"RG-I-01", "RG-I-02", "RG-I-03"}
    assert cases == synthetic_cases(registry, "rogue")
    labels = {c.label.split(" ", 1)[1] for c in cases}
    assert {"not employed", "no certificate", "verification revoked", "employed elsewhere"} <= labels
    assert len({c.context.caused_by for c in cases}) == len(cases)


def test_destinations_are_driven_with_the_honoured_catalogues_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = load_registry()
    beijing = {e.id for e in registry.catalogues("beijing")[0].entries}
    cases = synthetic_cases(registry, "tianjin", 8)
    assert {c.context.entry.id for c in cases} <= beijing
    assert {c.context.certificate.verified_by for c in cases if c.context.certificate} == {"beijing", "tianjin"}
    monkeypatch.setenv(PLUGINS_ENV, "tianjin")
    alone = load_registry()
    assert {c.context.entry.id for c in synthetic_cases(alone, "tianjin")} == {"TJSYN-X-001"}


def test_sample_spreads_over_every_list() -> None:
    edition = load_registry().catalogues("beijing")[0]
    sample = sample_entries([edition], 12)
    assert len(sample) == 12
    certificate_lists = {lst.code for lst in edition.lists if not lst.designates}
    assert {e.list for _, e in sample} == certificate_lists


CaseFactory = Callable[[str], list[SyntheticCase]]


def test_the_pytest_plugin_fixtures(mra_registry: Registry, mra_synthetic_cases: CaseFactory) -> None:
    assert mra_registry.jurisdictions, mra_registry.failures
    code = sorted(mra_registry.jurisdictions)[0]
    assert mra_synthetic_cases(code) == synthetic_cases(mra_registry, code)
