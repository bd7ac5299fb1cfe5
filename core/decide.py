"""A bureau's decision policy as a pure function of one holder's facts.

:func:`decide_holder` takes what a bureau knows of a holder (:class:`~mra.core.facts.HolderFile`), the loaded
plugins and the jurisdiction's settings, and returns the decisions those facts call for, by deterministic id. It
reads no database, no clock and no file: the decision time is the latest event time among the facts it rests on,
so the same facts give the same decisions in a live bureau, a replay and a test, in whatever order they were read.
The jurisdiction's own plugin decides each certificate through the registry.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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
    Outcome,
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


_RULE_PART: set[str] = {"jurisdiction", "code", "outcome", "clause", "reasons", "conditions", "readings"}
_VERSION_PART: set[str] = {"rule_version"}
_HOLDER_PART: set[str] = {"holder_id"}
_CERTIFICATE_PART: set[str] = {"entry_id", "certificate_key", "verification_code", "edition"}
_CONTEXT_PART: set[str] = {"plugin", "inputs", "caused_by", "decided_at"}
_ORDER = (_HOLDER_PART, _RULE_PART, _CERTIFICATE_PART, _VERSION_PART, _CONTEXT_PART)
_FIELDS_IN_ORDER = [f for part in _ORDER for f in sorted(part, key=list(BenefitDecision.model_fields).index)]
if [f for f in BenefitDecision.model_fields if f != "decision_id"] != _FIELDS_IN_ORDER:  # pragma: no cover
    raise RuntimeError("the parts of a decision's content no longer follow BenefitDecision's fields")
_RULE_PARTS_KEPT = 4096


def _part(d: BenefitDecision, fields: set[str]) -> str:
    return d.model_dump_json(include=fields)[1:-1]  # pydantic's own text of those fields, without the braces


def _immutable(value: object) -> bool:
    return type(value) is str or isinstance(value, Outcome) or (
        type(value) is tuple and all(type(x) is str for x in value)
    )


class _RuleParts:
    """The text of rule-level parts of decisions, by the identity of the values in them, kept for every holder: a
    plugin that keeps its rules' outcomes hands the same objects to every holder they apply to. Each entry holds
    the values it is keyed by, so their ids stay theirs while it is kept; only immutable values are kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[int, ...], tuple[tuple[object, ...], str, str]] = OrderedDict()

    def of(self, d: BenefitDecision) -> tuple[str, str]:
        values = (d.jurisdiction, d.code, d.outcome, d.clause, d.reasons, d.conditions, d.readings, d.rule_version)
        key = tuple(map(id, values))
        found = self._kept.get(key)
        if found is not None:
            return found[1], found[2]
        rule, version = _part(d, _RULE_PART), _part(d, _VERSION_PART)
        if all(map(_immutable, values)):
            with self._lock:
                if len(self._kept) >= _RULE_PARTS_KEPT:
                    self._kept.popitem(last=False)  # the oldest
                self._kept[key] = (values, rule, version)
        return rule, version


_RULE_PARTS = _RuleParts()


class _Contents:
    """Decisions' JSON without the id, exactly as ``model_dump_json(exclude={"decision_id"})`` writes it, put
    together from parts pydantic serialised once: the rule-level part per rule outcome (:class:`_RuleParts`), the
    holder's, certificate's and context's per context of this call (every decision of one context shares those
    objects, kept here with their text so that their ids stay theirs; nothing changes them during the call)."""

    def __init__(self) -> None:
        self._context: dict[tuple[int, ...], tuple[tuple[object, ...], str, str, str]] = {}

    def of(self, d: BenefitDecision) -> str:
        values = (d.holder_id, d.entry_id, d.certificate_key, d.verification_code, d.edition, d.plugin, d.inputs,
                  d.caused_by, d.decided_at)  # fmt: skip
        key = tuple(map(id, values))
        found = self._context.get(key)
        if found is None:
            found = self._context[key] = (
                values, _part(d, _HOLDER_PART), _part(d, _CERTIFICATE_PART), _part(d, _CONTEXT_PART)
            )
        _, holder, certificate, context = found
        rule, version = _RULE_PARTS.of(d)
        return f"{{{holder},{rule},{certificate},{version},{context}}}"


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
    contents = _Contents()
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
            content = contents.of(d)
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
