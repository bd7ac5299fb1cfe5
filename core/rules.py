"""A small, pure toolkit for deciding benefit rules, shared by every jurisdiction.

A rule is data (:class:`~mra.core.models.BenefitRule`) plus named conditions. Each condition looks at the
facts and returns a :class:`Check` — met, pending (the holder still has to show something) or failed —
and :func:`decision_from` turns a rule and its checks into an explained
:class:`~mra.core.models.BenefitDecision`. Keeping the conditions small and named lets a decision say
exactly which condition it rests on, and lets a plugin keep its policy in a data file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import TypeVar

from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    DecisionContext,
    Employment,
    HolderCategory,
    Outcome,
)

__all__ = [
    "Check",
    "Condition",
    "Decider",
    "RuleOutcome",
    "Status",
    "UnknownCondition",
    "category_in",
    "decision_from",
    "employed_in",
    "evaluate",
    "local_date",
    "outcome_of",
    "rule_outcome",
    "within_age",
    "years_at_least",
]

Env = TypeVar("Env")


class Status(StrEnum):
    """How one condition stands: met, still to be shown, or failed."""

    MET = "met"
    PENDING = "pending"
    FAILED = "failed"


@dataclass(frozen=True)
class Check:
    """The result of one named condition, with the words a person reads and any readings it rests on."""

    condition: str
    status: Status
    detail: str
    readings: tuple[str, ...] = ()

    @classmethod
    def met(cls, condition: str, detail: str, readings: Iterable[str] = ()) -> Check:
        return cls(condition, Status.MET, detail, tuple(readings))

    @classmethod
    def pending(cls, condition: str, detail: str, readings: Iterable[str] = ()) -> Check:
        return cls(condition, Status.PENDING, detail, tuple(readings))

    @classmethod
    def failed(cls, condition: str, detail: str, readings: Iterable[str] = ()) -> Check:
        return cls(condition, Status.FAILED, detail, tuple(readings))


Condition = Callable[[Env], Check | Sequence[Check] | None]
"""A named condition: looks at a plugin's environment and returns checks (None where it does not apply)."""


class UnknownCondition(KeyError):
    """A rule names a condition that no function implements: a data error, found when rules load."""


def evaluate(names: Iterable[str], conditions: Mapping[str, Callable[[Env], object]], env: Env) -> list[Check]:
    """Run the named conditions in order and collect their checks."""
    out: list[Check] = []
    for name in names:
        try:
            fn = conditions[name]
        except KeyError:
            raise UnknownCondition(f"no condition named {name!r}") from None
        result = fn(env)
        if result is None:
            continue
        if isinstance(result, Check):
            out.append(result)
        elif isinstance(result, Sequence):
            out.extend(c for c in result if isinstance(c, Check))
        else:
            raise TypeError(f"condition {name!r} returned {type(result).__name__}, not Check")
    return out


def outcome_of(checks: Sequence[Check], base: Outcome = Outcome.ELIGIBLE) -> Outcome:
    """A failed check makes the decision ineligible; otherwise an advisory rule stays advisory, and a
    pending check makes an eligible rule conditional."""
    failed = any(c.status is Status.FAILED for c in checks)
    return _outcome(failed, any(c.status is Status.PENDING for c in checks), base)


def _outcome(failed: bool, pending: bool, base: Outcome) -> Outcome:
    if failed:
        return Outcome.INELIGIBLE
    if base is Outcome.ADVISORY:
        return Outcome.ADVISORY
    if pending or base is Outcome.CONDITIONAL:
        return Outcome.CONDITIONAL
    return base


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    """What one rule decided, without whose decision it is: the same for every holder whose rule reads the same
    facts, so a plugin may keep it and stamp it onto each such holder's context (:meth:`Decider.stamp`)."""

    code: str
    outcome: Outcome
    clause: str
    reasons: tuple[str, ...]
    conditions: tuple[str, ...]
    readings: tuple[str, ...]
    rule_version: str


def rule_outcome(
    rule: BenefitRule,
    checks: Sequence[Check],
    *,
    base: Outcome = Outcome.ELIGIBLE,
    clause: str | None = None,
    readings: Iterable[str] = (),
) -> RuleOutcome:
    """One rule's explained outcome: ineligible ones give the failed conditions as reasons, the others what was
    met; pending checks become the conditions still to show."""
    failed: list[str] = []
    met: list[str] = []
    pending: list[str] = []
    by_status = {Status.FAILED: failed, Status.MET: met, Status.PENDING: pending}
    for c in checks:  # one pass: a bureau decides every rule for every holder
        by_status[c.status].append(c.detail)
    outcome = _outcome(bool(failed), bool(pending), base)
    return RuleOutcome(
        code=rule.code,
        outcome=outcome,
        clause=clause or rule.clause,
        reasons=_unique(failed if outcome is Outcome.INELIGIBLE else met),
        conditions=() if outcome is Outcome.INELIGIBLE else _unique(pending),
        readings=_unique([*readings, *(r for c in checks for r in c.readings)]),
        rule_version=rule.version,
    )


class Decider:
    """Makes the explained decisions of one context. The fields every rule's decision shares (holder, certificate,
    row, inputs, time) are validated once here; each rule adds only what is its own, already typed, so a plugin
    deciding many rules for one holder does not validate the shared part once per rule."""

    def __init__(
        self,
        context: DecisionContext,
        *,
        jurisdiction: str,
        plugin: str,
        inputs: Mapping[str, str | int | float | bool | None] | None = None,
    ) -> None:
        cert = context.certificate
        self._shared = BenefitDecision(
            holder_id=context.holder.holder_id,
            jurisdiction=jurisdiction,
            code="",
            outcome=Outcome.INELIGIBLE,
            clause="",
            entry_id=context.entry.id,
            certificate_key=cert.certificate_key if cert else "",
            verification_code=cert.verification_code if cert else "",
            edition=context.edition,
            rule_version="",
            plugin=plugin,
            inputs=dict(inputs or {}),
            caused_by=context.caused_by,
            decided_at=context.at,
        )

    def decide(
        self,
        rule: BenefitRule,
        checks: Sequence[Check],
        *,
        base: Outcome = Outcome.ELIGIBLE,
        clause: str | None = None,
        readings: Iterable[str] = (),
    ) -> BenefitDecision:
        """One explained decision (see :func:`rule_outcome`). No clock: the time is the context's."""
        return self.stamp(rule_outcome(rule, checks, base=base, clause=clause, readings=readings))

    def stamp(self, o: RuleOutcome) -> BenefitDecision:
        """The decision of this context that ``o`` stands for. Its fields are typed already (the shared ones
        validated once here, ``o``'s built by :func:`rule_outcome`), so the copy is not validated again."""
        return self._shared.model_copy(
            update={
                "code": o.code,
                "outcome": o.outcome,
                "clause": o.clause,
                "reasons": o.reasons,
                "conditions": o.conditions,
                "readings": o.readings,
                "rule_version": o.rule_version,
            }
        )


def decision_from(
    rule: BenefitRule,
    checks: Sequence[Check],
    *,
    context: DecisionContext,
    jurisdiction: str,
    plugin: str,
    base: Outcome = Outcome.ELIGIBLE,
    clause: str | None = None,
    inputs: Mapping[str, str | int | float | bool | None] | None = None,
    readings: Iterable[str] = (),
) -> BenefitDecision:
    """One rule's explained decision (see :meth:`Decider.decide`); for many rules of one context, use a
    :class:`Decider`."""
    return Decider(context, jurisdiction=jurisdiction, plugin=plugin, inputs=inputs).decide(
        rule, checks, base=base, clause=clause, readings=readings
    )


# --- generic predicates ---------------------------------------------------------------------------------------


def local_date(at: datetime, utc_offset_hours: float) -> date:
    """The calendar day of an event time in a jurisdiction's zone (a naive time is taken as local)."""
    if at.tzinfo is None:
        return at.date()
    return at.astimezone(timezone(timedelta(hours=utc_offset_hours))).date()


def employed_in(
    condition: str, employment: Employment | None, day: date, regions: Sequence[str]
) -> Check:
    """A personnel/labour relationship, active on ``day``, with an employer in one of ``regions``."""
    where = "/".join(regions)
    if employment is None:
        return Check.failed(condition, f"no employment with an employer in {where}")
    if employment.employer_region not in regions:
        return Check.failed(
            condition, f"the employer is in {employment.employer_region!r}, not in {where}"
        )
    if not employment.active_on(day):
        return Check.failed(condition, f"the employment with an employer in {where} is not active on {day}")
    return Check.met(condition, f"employed by an employer in {employment.employer_region} on {day}")


def within_age(condition: str, age: int | None, limit: int, why: str = "") -> Check:
    """Age in full years at most ``limit`` (so the day before the next birthday is still within)."""
    suffix = f" ({why})" if why else ""
    if age is None:
        return Check.pending(condition, f"age in full years on the decision date at most {limit}{suffix}")
    if age <= limit:
        return Check.met(condition, f"age {age} is within the limit of {limit}{suffix}")
    return Check.failed(condition, f"age {age} is over the limit of {limit}{suffix}")


def years_at_least(
    condition: str,
    years: float | None,
    required: int,
    scope: str,
    *,
    max_years: int | None = None,
    evidence: str = "",
) -> Check:
    """At least ``required`` years of work in ``scope``; at most ``max_years`` where an upper bound applies.

    Unknown years are pending: the holder still has to show them (``evidence`` says how)."""
    what = f"{scope} work" if scope else "work in scope"
    bound = f"{required}–{max_years}" if max_years is not None else f"at least {required}"
    if years is None:
        how = f" (evidence: {evidence})" if evidence else ""
        return Check.pending(condition, f"show {bound} years of {what}{how}")
    if years < required:
        return Check.failed(condition, f"{years:g} years of {what}, fewer than the {required} required")
    if max_years is not None and years > max_years:
        return Check.failed(condition, f"{years:g} years of {what}, more than the {max_years} the row allows")
    return Check.met(condition, f"{years:g} years of {what} meets {bound} years")


def category_in(
    condition: str, category: HolderCategory, allowed: Sequence[HolderCategory], labels: Mapping[str, str]
) -> Check:
    """The holder's category is among those a rule is for; ``labels`` names categories for people."""
    label = labels.get(category.value, category.value)
    if category in allowed:
        return Check.met(condition, f"holder is a {label}")
    names = " or a ".join(labels.get(c.value, c.value) for c in allowed)
    return Check.failed(condition, f"only for a {names}; the holder is a {label}")
