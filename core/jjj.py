"""Moving within 京津冀: clause 四.3 of 京人社事业发〔2025〕11号, for a destination jurisdiction.

"《目录》内职业资格人员在京津冀区域内流动就业时,无需对所持职业资格重新进行确认,可直接依照相关规定享受对应的
人才政策待遇": a holder of a Beijing-catalogue qualification who takes up employment elsewhere in the region
needs no re-confirmation of it, and enjoys the talent policies there "according to the relevant rules" —
the destination's. Each destination (Tianjin, Hebei) decides this itself, under its own code; this module
is the one place that logic lives, so the destinations share it instead of copying it.

:class:`JjjDestination` is a whole plugin for such a destination: it publishes no catalogue of its own
(rows come from the bureau, by import, not invention), honours Beijing's, and decides
``<prefix>.jjj_recognition``. Further treatments are what the source does not give for Beijing-catalogue
holders: the bureau names them in the ``<prefix>.jjj.treatments`` setting, empty by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mra.core.hookspecs import hookimpl
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    DecisionContext,
    Honour,
    Jurisdiction,
)
from mra.core.rules import Check, decision_from, employed_in, local_date
from mra.core.settings import PolicySetting

__all__ = [
    "CLAUSE",
    "CLAUSE_WORDS",
    "HONOURED_CATALOGUE",
    "HONOURED_JURISDICTION",
    "NOTICE",
    "JjjDestination",
    "beijing_honour",
    "decide_recognition",
    "recognition_rule",
    "treatments_setting",
]

NOTICE = "京人社事业发〔2025〕11号"
CLAUSE = f"{NOTICE} 四.3"
CLAUSE_WORDS = (
    "《目录》内职业资格人员在京津冀区域内流动就业时,无需对所持职业资格重新进行确认,"
    "可直接依照相关规定享受对应的人才政策待遇"
)
HONOURED_CATALOGUE = "beijing-international"
HONOURED_JURISDICTION = "beijing"
UTC_OFFSET_HOURS = 8.0
"""China Standard Time: the calendar day of an event, for "employed on that day"."""

READING_VERIFIED = (
    "四.3 reading: what travels within 京津冀 is the platform's verification result, so the certificate "
    "must have been verified by the Beijing platform"
)
READING_DESTINATION = (
    "四.3 reading: the destination decides the recognition itself; further treatments follow its own rules "
    "(\"可直接依照相关规定享受对应的人才政策待遇\"), which its bureau names in a setting"
)


def beijing_honour() -> Honour:
    """The Beijing catalogue, honoured under 四.3."""
    return Honour(catalogue=HONOURED_CATALOGUE, jurisdiction=HONOURED_JURISDICTION, basis=CLAUSE)


def recognition_rule(prefix: str) -> BenefitRule:
    """``<prefix>.jjj_recognition``: the qualification counts here without re-confirmation."""
    return BenefitRule(
        code=f"{prefix}.jjj_recognition",
        clause=CLAUSE,
        title_zh="京津冀流动就业:所持《目录》职业资格无需重新确认",
        title_en="Moving within 京津冀: the Beijing-catalogue qualification is recognised without re-confirmation",
        conditions=(
            "a personnel/labour relationship with an employer in the jurisdiction's regions, active on the day",
            "a certificate of a Beijing-catalogue qualification verified by the Beijing platform, not revoked",
        ),
        readings=(READING_VERIFIED, READING_DESTINATION),
    )


def treatments_setting(prefix: str, why: str) -> PolicySetting:
    """The treatments a bureau grants on top of the recognition; the source names none, so empty."""
    return PolicySetting(
        key=f"{prefix}.jjj.treatments",
        default="",
        description=(
            "talent-policy treatments (人才政策待遇) this jurisdiction grants a holder recognised under 四.3, "
            "as its bureau names them, separated by ';' (empty: none named, the recognition alone is decided)"
        ),
        why=why,
    )


def _treatments(value: object) -> tuple[str, ...]:
    return tuple(t.strip() for t in str(value or "").split(";") if t.strip())


def _certificate_checks(context: DecisionContext) -> list[Check]:
    cert = context.certificate
    name = "verified_certificate"
    if cert is None:
        return [Check.failed(name, "no certificate verified by the Beijing platform")]
    checks: list[Check] = []
    if cert.verified_by != HONOURED_JURISDICTION:
        checks.append(
            Check.failed(name, f"the certificate was verified by {cert.verified_by!r}, not by the Beijing platform")
        )
    if cert.revoked or not context.platform_verified:
        checks.append(Check.failed(name, "the certificate's verification was revoked or is not in force"))
    if cert.holder_id != context.holder.holder_id:
        checks.append(Check.failed(name, "the certificate belongs to another holder"))
    if cert.entry_id != context.entry.id:
        checks.append(Check.failed(name, f"the certificate is for {cert.entry_id}, not {context.entry.id}"))
    if context.entry.designates is not None:
        checks.append(
            Check.failed(name, f"{context.entry.id} designates {context.entry.designates}; it is not a qualification")
        )
    if not checks:
        checks.append(
            Check.met(
                name,
                f"{context.entry.id} verified by the Beijing platform, verification code {cert.verification_code}",
                (READING_VERIFIED,),
            )
        )
    return checks


def decide_recognition(
    jurisdiction: Jurisdiction,
    rule: BenefitRule,
    context: DecisionContext,
    settings: Mapping[str, object],
    plugin: str,
) -> BenefitDecision:
    """Decide 四.3 for one holder's certificate in ``jurisdiction`` at ``context.at``: a pure function."""
    day = local_date(context.at, UTC_OFFSET_HOURS)
    employment = employed_in("employed_here", context.employment, day, jurisdiction.regions)
    checks = [*_certificate_checks(context), employment]
    treatments = _treatments(settings.get(f"{jurisdiction.prefix}.jjj.treatments"))
    if treatments:
        checks.append(
            Check.met("treatments", f"treatments named by the bureau ({jurisdiction.prefix}.jjj.treatments): "
                      + "; ".join(treatments))
        )
    checks.insert(0, Check.met("clause", f"{CLAUSE}: {CLAUSE_WORDS}"))
    cert = context.certificate
    return decision_from(
        rule,
        checks,
        context=context,
        jurisdiction=jurisdiction.code,
        plugin=plugin,
        inputs={
            "day": day.isoformat(),
            "employer_region": context.employment.employer_region if context.employment else None,
            "verified_by": cert.verified_by if cert else None,
            "certificate_revoked": cert.revoked if cert else None,
            "platform_verified": context.platform_verified,
            "treatments": "; ".join(treatments),
        },
        readings=rule.readings,
    )


class JjjDestination:
    """A 京津冀 destination jurisdiction as a plugin object: identity, the 四.3 rule, and its settings.

    ``settings`` are the destination's own policy settings (the treatments setting first); each cites
    why it is a setting.
    """

    def __init__(self, jurisdiction: Jurisdiction, settings: Sequence[PolicySetting]) -> None:
        self.jurisdiction = jurisdiction
        self.rule = recognition_rule(jurisdiction.prefix)
        self.settings = tuple(settings)

    @hookimpl
    def mra_jurisdiction(self) -> Jurisdiction:
        return self.jurisdiction

    @hookimpl
    def mra_catalogues(self) -> Sequence[CatalogueEdition]:
        """None of its own yet: its rows come from the bureau by import, never made up."""
        return ()

    @hookimpl
    def mra_honours(self) -> Sequence[Honour]:
        return (beijing_honour(),)

    @hookimpl
    def mra_benefit_rules(self) -> Sequence[BenefitRule]:
        return (self.rule,)

    @hookimpl
    def mra_policy_settings(self) -> Sequence[PolicySetting]:
        return self.settings

    @hookimpl
    def mra_decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object]
    ) -> Sequence[BenefitDecision] | None:
        if jurisdiction != self.jurisdiction.code:
            return None
        return (decide_recognition(self.jurisdiction, self.rule, context, settings, self.jurisdiction.code),)
