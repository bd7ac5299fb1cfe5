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

from mra.core.errors import ValidationFailed
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
    "proof_setting",
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
READING_ANY_PROOF = (
    "四.3 reading: the qualification needs no re-confirmation (\"无需对所持职业资格重新进行确认\"); any proof of the "
    "earlier recognition will do, not only the Beijing platform's result (四.2's evidence sentence is limited to "
    "\"在本市行政区域内\")"
)
PROOF_BEIJING = "beijing_platform"
PROOF_ANY = "any_proof"
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
            "a certificate of a Beijing-catalogue qualification verified by the Beijing platform, not revoked "
            "(or any proof of it, by the setting <prefix>.jjj.proof)",
        ),
        readings=(READING_VERIFIED, READING_ANY_PROOF, READING_DESTINATION),
    )


def proof_setting(prefix: str) -> PolicySetting:
    """What a holder shows a destination under 四.3: the Beijing platform's result, or any proof."""
    return PolicySetting(
        key=f"{prefix}.jjj.proof",
        default=PROOF_BEIJING,
        choices=(PROOF_BEIJING, PROOF_ANY),
        description=(
            "what a holder moving here under 四.3 shows of the Beijing-catalogue qualification: the Beijing "
            "platform's verification result (beijing_platform), or any proof of the earlier recognition (any_proof: "
            "without the platform's result the decision is conditional on that proof)"
        ),
        why=(
            "京人社事业发〔2025〕11号 四.3 says the qualification needs no re-confirmation (无需…重新进行确认) and "
            "does not say what the destination may ask to see; 四.2 makes the platform's result valid evidence only "
            "\"在本市行政区域内\" (within Beijing). The default asks for the Beijing platform's result, the one "
            "proof the notice names"
        ),
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


def _certificate_checks(context: DecisionContext, proof: object, key: str) -> list[Check]:
    cert = context.certificate
    name = "verified_certificate"
    used = f"setting {key} = {proof}"
    if cert is None:
        if proof == PROOF_ANY:
            return [Check.pending(name, f"proof of the earlier recognition of {context.entry.id} ({used})",
                                  (f"{READING_ANY_PROOF} ({used})",))]
        return [Check.failed(name, f"no certificate verified by the Beijing platform ({used})")]
    checks: list[Check] = []
    if cert.verified_by != HONOURED_JURISDICTION and proof != PROOF_ANY:
        checks.append(
            Check.failed(name, f"the certificate was verified by {cert.verified_by!r}, not by the Beijing platform "
                               f"({used})")
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
        code = f", verification code {cert.verification_code}" if cert.verification_code else ""
        reading = READING_ANY_PROOF if proof == PROOF_ANY else READING_VERIFIED
        checks.append(
            Check.met(
                name,
                f"{context.entry.id} verified by the {cert.verified_by} platform{code}",
                (f"{reading} ({used})",),
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
    proof_key = f"{jurisdiction.prefix}.jjj.proof"
    proof = settings.get(proof_key, PROOF_BEIJING)
    if proof not in (PROOF_BEIJING, PROOF_ANY):
        raise ValidationFailed(f"{proof_key}={proof!r}: expected {PROOF_BEIJING!r} or {PROOF_ANY!r}")
    checks = [*_certificate_checks(context, proof, proof_key), employment]
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
            "proof": str(proof),
        },
        readings=(READING_DESTINATION,),
    )


class JjjDestination:
    """A 京津冀 destination jurisdiction as a plugin object: identity, the 四.3 rule, and its settings.

    ``settings`` are the destination's own policy settings (the treatments setting first); each cites
    why it is a setting.
    """

    def __init__(self, jurisdiction: Jurisdiction, settings: Sequence[PolicySetting]) -> None:
        self.jurisdiction = jurisdiction
        self.rule = recognition_rule(jurisdiction.prefix)
        self.settings = (*settings, proof_setting(jurisdiction.prefix))

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
