"""A bureau's decision policy as a pure function of one holder's facts.

:func:`decide_holder` takes what a bureau knows of a holder (:class:`~mra.core.facts.HolderFile`), the loaded
plugins and the jurisdiction's settings, and returns the decisions those facts call for, by deterministic id. It
reads no database, no clock and no file: the decision time is the latest event time among the facts it rests on,
so the same facts give the same decisions in a live bureau, a replay and a test, in whatever order they were read.
The jurisdiction's own plugin decides each certificate through the registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime

from mra.core.errors import MraError
from mra.core.facts import CertificateFact, EmploymentFact, HolderFile
from mra.core.ids import stable_id
from mra.core.models import (
    BenefitDecision,
    DecisionContext,
    HolderCategory,
    HolderFacts,
    Jurisdiction,
    VerifiedCertificate,
    full_years,
    on_birthday,
)
from mra.core.plugins import Registry

__all__ = [
    "DecisionSet",
    "current_employment",
    "decide_holder",
    "decision_id",
    "latest_fact_time",
    "withdrawal_policy",
    "withdrawal_reason",
]

DecisionSet = dict[str, BenefitDecision]
"""The decisions a holder's facts call for, by decision id."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def withdrawal_policy(settings: Mapping[str, object], info: Jurisdiction) -> str:
    """What an entry's withdrawal does to benefits decided before it: the setting
    ``<prefix>.withdrawal.decided_benefits``. "revoke" withdraws them; "keep" lets them stand; "review" lets them
    stand and lists them for review. Whatever it says, nothing new is decided on a withdrawn entry from its
    effective date."""
    return str(settings.get(f"{info.prefix}.withdrawal.decided_benefits", "revoke"))


def current_employment(facts: HolderFile, info: Jurisdiction) -> EmploymentFact | None:
    """The holder's latest open employment in the jurisdiction, if its employer is in one of its regions."""
    open_here = [e for e in facts.employments if e.employment.jurisdiction == info.code and e.employment.ended is None]
    if not open_here:
        return None
    latest = max(open_here, key=lambda e: e.employment.started)
    return latest if latest.employment.employer_region in info.regions else None


def decision_id(jurisdiction: str, decision: BenefitDecision, certificate_key: str, started: date, content: str) -> str:
    """A decision's deterministic id, from what it decided (``content``: its JSON without the id)."""
    return stable_id(
        "decision",
        jurisdiction,
        decision.holder_id,
        decision.certificate_key or certificate_key,
        started,
        decision.code,
        decision.outcome.value,
        content,
    )


def _age(day: date, born: date | None, recorded_ages: Mapping[str, int] | None) -> int | None:
    if recorded_ages is not None:
        return recorded_ages.get(day.isoformat())
    return full_years(born, day) if born else None


def _certificate(c: CertificateFact) -> VerifiedCertificate:
    return VerifiedCertificate(
        certificate_key=c.certificate_key,
        holder_id=c.holder_id,
        entry_id=c.entry_id,
        issuer=c.issuer,
        verification_code=c.verification_code,
        verified_at=c.verified_at,
        verified_by=c.verified_by,
        expires=c.expires,
    )


def decide_holder(
    facts: HolderFile, registry: Registry, settings: Mapping[str, object], *, jurisdiction: str
) -> DecisionSet:
    """The decisions ``jurisdiction`` owes the holder on ``facts``, by id.

    Each unrevoked certificate is decided at the later of its verification and the current employment's start
    event, unless it expired before that day or its catalogue entry is withdrawn (from its effective date, or at
    once when the withdrawal policy is "revoke"). For an erased holder only decisions recorded before the erasure
    stand, each with the age its erasure kept for its date.
    """
    if facts.holder is None:
        return {}
    info = registry.jurisdiction(jurisdiction)
    found = current_employment(facts, info)
    if found is None:
        return {}
    erasure = facts.erasure
    recorded = erasure.decisions if erasure is not None else None
    ages = erasure.ages if erasure is not None else None
    employment = found.employment
    holder_category = HolderCategory(facts.holder.category)
    revokes = withdrawal_policy(settings, info) == "revoke"
    out: DecisionSet = {}
    for cert in sorted(facts.certificates, key=lambda c: c.certificate_key):
        if cert.revoked_at is not None:
            continue
        try:
            edition, entry = registry.find_entry(cert.entry_id)
        except MraError:
            continue  # an entry no loaded catalogue knows: nothing to decide on
        at, caused_by = max((cert.verified_at, cert.event_id), (found.event_time, found.event_id))
        if cert.expires is not None and cert.expires < at.date():
            continue
        gone = facts.withdrawn.get(cert.entry_id)
        if gone is not None and (revokes or at.date() >= gone.effective):
            continue
        context = DecisionContext(
            holder=HolderFacts(
                holder_id=facts.holder_id,
                category=holder_category,
                age=_age(at.date(), facts.born if erasure is None else None, ages),
                # an erased holder's ages are kept per date, their birthdays are not: unknown, so not a birthday
                birthday=erasure is None and facts.born is not None and on_birthday(facts.born, at.date()),
            ),
            employment=employment,
            certificate=_certificate(cert),
            entry=entry,
            edition=edition.edition,
            at=at,
            platform_verified=True,
            caused_by=caused_by,
        )
        for d in registry.decide(jurisdiction, context, settings):
            content = d.model_dump_json(exclude={"decision_id"})
            ident = decision_id(jurisdiction, d, cert.certificate_key, employment.started, content)
            if recorded is not None and ident not in recorded:
                continue  # no new decision for an erased holder
            out[ident] = d.model_copy(update={"decision_id": ident})
    return out


def latest_fact_time(facts: HolderFile) -> datetime:
    """The latest event time among the holder's facts: when a withdrawal they cause takes effect."""
    times = [e.event_time for e in facts.employments]
    times += [e.ended_time for e in facts.employments if e.ended_time is not None]
    times += [c.revoked_at or c.verified_at for c in facts.certificates]
    if facts.holder is not None:
        times.append(facts.holder.event_time)
    return max(times, default=_EPOCH)


def withdrawal_reason(facts: HolderFile, certificate_key: str, info: Jurisdiction, latest: datetime) -> str:
    """Why a decision on ``certificate_key`` no longer stands on ``facts``."""
    cert = next((c for c in facts.certificates if c.certificate_key == certificate_key), None)
    if cert is not None and cert.revoked_at is not None:
        return f"certificate revoked: {cert.revoke_reason}"
    if cert is not None and cert.expires is not None and cert.expires < latest.date():
        return f"certificate expired on {cert.expires.isoformat()}"
    if cert is not None:
        w = facts.withdrawn.get(cert.entry_id)
        if w is not None:
            return f"catalogue entry {cert.entry_id} withdrawn from {w.effective.isoformat()}: {w.reason}"
    if current_employment(facts, info) is None:
        return f"no current employment in {info.code}"
    if facts.erasure is not None:
        return "the holder's personal data was erased before this decision was recorded"
    return "superseded: the holder's facts changed"
