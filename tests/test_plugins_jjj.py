"""Tianjin and Hebei: 京津冀 destinations deciding 四.3 for holders of Beijing-verified certificates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from mra.core import jjj
from mra.core.models import (
    CatalogueEntry,
    DecisionContext,
    Employment,
    HolderCategory,
    HolderFacts,
    Outcome,
    VerifiedCertificate,
)
from mra.core.plugins import PLUGINS_ENV, Registry, load_registry
from mra.plugins import hebei, tianjin

CST = timezone(timedelta(hours=8))
AT = datetime(2025, 10, 1, 10, 0, tzinfo=CST)
DESTINATIONS = [("tianjin", "tj", "天津市", "Tianjin"), ("hebei", "hb", "河北省", "Hebei")]


@pytest.fixture(scope="module")
def registry() -> Registry:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(PLUGINS_ENV, raising=False)
        registry = load_registry()
    assert {"beijing", "tianjin", "hebei"} <= set(registry.jurisdictions), registry.failures
    return registry


@pytest.fixture(scope="module")
def entry(registry: Registry) -> CatalogueEntry:
    return registry.find_entry("I-1", "beijing")[1]


def ctx(entry: CatalogueEntry, region: str | None, *, verified_by: str | None = "beijing", revoked: bool = False,
        started: date = date(2025, 3, 1), ended: date | None = None, at: datetime = AT) -> DecisionContext:
    employment = None
    if region is not None:
        employment = Employment(holder_id="h-1", jurisdiction=region, employer="employer", employer_region=region,
                                started=started, ended=ended)
    certificate = None
    if verified_by is not None:
        certificate = VerifiedCertificate(certificate_key="ck-1", holder_id="h-1", entry_id=entry.id,
                                          issuer=entry.issuer_text, verification_code="BJV-2025-0042",
                                          verified_at=AT - timedelta(days=3), verified_by=verified_by,
                                          revoked=revoked)
    return DecisionContext(holder=HolderFacts(holder_id="h-1", category=HolderCategory.FOREIGN, age=40),
                           employment=employment, certificate=certificate, entry=entry, edition="2025", at=at,
                           platform_verified=not revoked, caused_by="evt-1")


@pytest.mark.parametrize(("code", "prefix", "name_zh", "name_en"), DESTINATIONS)
def test_identity_honours_and_declarations(registry: Registry, code: str, prefix: str, name_zh: str,
                                           name_en: str) -> None:
    j = registry.jurisdiction(code)
    assert (j.code, j.prefix, j.name_zh, j.name_en, j.regions) == (code, prefix, name_zh, name_en, (code,))
    (honour,) = registry.honours(code)
    assert (honour.catalogue, honour.jurisdiction) == ("beijing-international", "beijing")
    assert honour.basis == "京人社事业发〔2025〕11号 四.3"
    assert registry.catalogues(code) == []
    (rule,) = registry.rules(code)
    assert rule.code == f"{prefix}.jjj_recognition" and rule.clause == honour.basis
    assert registry.settings(code) == {f"{prefix}.jjj.treatments": "", f"{prefix}.jjj.proof": "beijing_platform"}
    for setting in registry.policy_settings(code):
        assert "四.3" in setting.why and setting.description


@pytest.mark.parametrize(("code", "prefix"), [(d[0], d[1]) for d in DESTINATIONS])
def test_employed_there_with_a_beijing_verified_certificate_is_eligible(
    registry: Registry, entry: CatalogueEntry, code: str, prefix: str
) -> None:
    (d,) = registry.decide(code, ctx(entry, code))
    assert d.outcome is Outcome.ELIGIBLE
    assert d.code == f"{prefix}.jjj_recognition" and d.clause.endswith("四.3")
    assert d.verification_code == "BJV-2025-0042" and d.certificate_key == "ck-1"
    assert any("四.3" in r for r in d.reasons)
    assert any("BJV-2025-0042" in r for r in d.reasons)
    assert (d.jurisdiction, d.plugin, d.entry_id, d.decided_at, d.caused_by) == (code, code, entry.id, AT, "evt-1")
    assert any(jjj.READING_VERIFIED in r and f"{prefix}.jjj.proof = beijing_platform" in r for r in d.readings)


@pytest.mark.parametrize(
    ("region", "case", "expected"),
    [
        (None, {}, "no employment"),
        ("beijing", {}, "not in"),
        ("tianjin", {"verified_by": None}, "no certificate verified by the Beijing platform"),
        ("tianjin", {"verified_by": "tianjin"}, "not by the Beijing platform"),
        ("tianjin", {"revoked": True}, "revoked"),
        ("tianjin", {"ended": date(2025, 9, 30)}, "not active on 2025-10-01"),
        ("tianjin", {"started": date(2025, 10, 2)}, "not active on 2025-10-01"),
    ],
)
def test_otherwise_ineligible_with_the_reason(registry: Registry, entry: CatalogueEntry, region: str | None,
                                              case: dict[str, Any], expected: str) -> None:
    (d,) = registry.decide("tianjin", ctx(entry, region, **case))
    assert d.outcome is Outcome.INELIGIBLE
    assert any(expected in r for r in d.reasons), d.reasons


def test_a_designation_is_not_a_certificate(registry: Registry) -> None:
    edition = registry.catalogues("beijing")[0]
    designation = next(e for e in edition.entries if e.designates)
    (d,) = registry.decide("hebei", ctx(designation, "hebei"))
    assert d.outcome is Outcome.INELIGIBLE
    assert any("designates" in r for r in d.reasons)


def test_the_day_is_the_local_day_of_the_event(registry: Registry, entry: CatalogueEntry) -> None:
    late_utc_evening = datetime(2025, 9, 30, 17, 30, tzinfo=UTC)  # 2025-10-01 01:30 in China
    (d,) = registry.decide("tianjin", ctx(entry, "tianjin", started=date(2025, 10, 1), at=late_utc_evening))
    assert d.outcome is Outcome.ELIGIBLE and d.inputs["day"] == "2025-10-01"


def test_treatments_are_only_what_the_bureau_names(registry: Registry, entry: CatalogueEntry) -> None:
    (plain,) = registry.decide("tianjin", ctx(entry, "tianjin"))
    assert plain.inputs["treatments"] == "" and not any("treatments" in r for r in plain.reasons)
    named = {"tj.jjj.treatments": "FTZ practice; overseas experience counted as domestic"}
    (d,) = registry.decide("tianjin", ctx(entry, "tianjin"), named)
    assert d.outcome is Outcome.ELIGIBLE
    assert any("FTZ practice; overseas experience counted as domestic" in r for r in d.reasons)
    (hb,) = registry.decide("hebei", ctx(entry, "hebei"), named)
    assert hb.inputs["treatments"] == ""


def test_tianjin_and_hebei_share_one_implementation() -> None:
    assert type(tianjin.PLUGIN) is type(hebei.PLUGIN) is jjj.JjjDestination
    for hook in ("mra_decide", "mra_honours", "mra_benefit_rules"):
        assert getattr(tianjin, hook).__func__ is getattr(hebei, hook).__func__
    assert tianjin.PLUGIN.jurisdiction != hebei.PLUGIN.jurisdiction


def test_a_destination_decides_only_for_itself(entry: CatalogueEntry) -> None:
    assert tianjin.mra_decide(jurisdiction="hebei", context=ctx(entry, "hebei"), settings={}) is None


@pytest.mark.parametrize(
    ("proof", "verified_by", "outcome", "words"),
    [
        ("beijing_platform", "beijing", Outcome.ELIGIBLE, "verified by the beijing platform"),
        ("beijing_platform", None, Outcome.INELIGIBLE, "no certificate verified by the Beijing platform"),
        ("beijing_platform", "tianjin", Outcome.INELIGIBLE, "not by the Beijing platform"),
        ("any_proof", None, Outcome.CONDITIONAL, "proof of the earlier recognition"),
        ("any_proof", "tianjin", Outcome.ELIGIBLE, "verified by the tianjin platform"),
    ],
)
def test_what_the_holder_shows_is_a_setting(
    registry: Registry, entry: CatalogueEntry, proof: str, verified_by: str | None, outcome: Outcome, words: str
) -> None:
    """四.3: "无需对所持职业资格重新进行确认" names no proof; 四.2's evidence sentence is limited to "在本市行政区域内".
    Whether the Beijing platform's result is required is the setting tj.jjj.proof, and the decision names it."""
    (d,) = registry.decide("tianjin", ctx(entry, "tianjin", verified_by=verified_by), {"tj.jjj.proof": proof})
    assert d.outcome is outcome
    assert any(words in t for t in (*d.reasons, *d.conditions)), (d.reasons, d.conditions)
    assert d.inputs["proof"] == proof
    assert any(f"tj.jjj.proof = {proof}" in t for t in (*d.readings, *d.reasons, *d.conditions))


def test_a_proof_setting_outside_its_choices_is_refused(registry: Registry, entry: CatalogueEntry) -> None:
    from mra.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match=r"hb\.jjj\.proof"):
        registry.decide("hebei", ctx(entry, "hebei"), {"hb.jjj.proof": "a letter"})
