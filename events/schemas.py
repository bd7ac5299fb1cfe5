"""Event types: one versioned pydantic model per CloudEvents ``type``, and the upcasters between versions.

An event type's name is ``cn.jjj.<topic>.<name>`` and its CloudEvents ``type`` adds ``.v<N>``. Old
versions are never rewritten in the log; they are upcast on read, one version step at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mra.core.models import (
    BenefitDecision,
    CatalogueEdition,
    EmployerType,
    Employment,
    HolderCategory,
    Outcome,
    Residence,
    holder_category,
)

__all__ = [
    "BenefitDecided",
    "BenefitWithdrawn",
    "CatalogueEditionPublished",
    "CatalogueEntryWithdrawn",
    "CertificateRevoked",
    "CertificateVerified",
    "Checkpoint",
    "DecisionSetChanged",
    "EmployerRef",
    "EmploymentEnded",
    "EmploymentStarted",
    "EmploymentStartedV1",
    "Event",
    "HolderErased",
    "HolderRegistered",
    "OutcomeDecided",
    "OutcomeWithdrawn",
    "UnknownEventType",
    "VerificationAccepted",
    "VerificationDeferred",
    "VerificationRefused",
    "VerificationRejected",
    "VerificationRequested",
    "checkpoint_class",
    "event_class",
    "parse_type",
    "registered_types",
    "registered_versions",
    "superseded",
    "upcast",
    "upcaster",
]


class UnknownEventType(ValueError):
    """A CloudEvents ``type`` no registered model (or upcaster chain) can read."""


class Event(BaseModel):
    """Base of every event body. Subclasses set the class variables and are registered with :func:`event`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    NAME: ClassVar[str]
    VERSION: ClassVar[int] = 1
    TOPIC: ClassVar[str]

    @classmethod
    def ce_type(cls) -> str:
        return f"{cls.NAME}.v{cls.VERSION}"

    def partition_key(self) -> str:
        """Holder-related events are keyed by holder id so one holder's events stay in order."""
        return str(getattr(self, "holder_id", "") or "")

    def subject(self) -> str:
        return self.partition_key()


_TYPES: dict[str, type[Event]] = {}
_SUPERSEDED: dict[tuple[str, int], type[BaseModel]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}
_TYPE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_.]*)\.v(?P<version>[0-9]+)$")

E = TypeVar("E", bound=type[Event])


def event(cls: E) -> E:
    """Register an event model under its name (the current version)."""
    if cls.NAME in _TYPES:
        raise ValueError(f"event type {cls.NAME} registered twice")
    _TYPES[cls.NAME] = cls
    return cls


def upcaster(name: str, from_version: int) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], Any]:
    """Register a function that turns a body of ``name`` at ``from_version`` into ``from_version + 1``."""

    def register(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        _UPCASTERS[(name, from_version)] = fn
        return fn

    return register


M = TypeVar("M", bound=type[BaseModel])


def superseded(name: str, version: int) -> Callable[[M], M]:
    """Keep the model of an older version of ``name``: readers upcast such bodies, and outside producers may still
    send them, so their published schema is generated from this model. It is never used to decode."""

    def register(cls: M) -> M:
        if (name, version) in _SUPERSEDED:
            raise ValueError(f"{name}.v{version} kept twice")
        _SUPERSEDED[(name, version)] = cls
        return cls

    return register


def parse_type(ce_type: str) -> tuple[str, int]:
    m = _TYPE_RE.match(ce_type)
    if not m:
        raise UnknownEventType(f"malformed event type {ce_type!r} (expected name.vN)")
    return m["name"], int(m["version"])


def event_class(ce_type: str) -> type[Event]:
    name, version = parse_type(ce_type)
    cls = _TYPES.get(name)
    if cls is None:
        raise UnknownEventType(f"unknown event type {ce_type!r}")
    if version > cls.VERSION:
        raise UnknownEventType(f"event type {ce_type!r} is newer than this mra reads (v{cls.VERSION})")
    return cls


def upcast(ce_type: str, body: dict[str, Any]) -> tuple[type[Event], dict[str, Any]]:
    """Bring a body of any known version up to the current model's version."""
    cls = event_class(ce_type)
    name, version = parse_type(ce_type)
    while version < cls.VERSION:
        step = _UPCASTERS.get((name, version))
        if step is None:
            raise UnknownEventType(f"no upcaster from {name}.v{version} to v{version + 1}")
        body = step(dict(body))
        version += 1
    return cls, body


def registered_types() -> dict[str, type[Event]]:
    return dict(_TYPES)


def registered_versions() -> dict[str, type[BaseModel] | None]:
    """Every CloudEvents type mra reads, old versions included, with its model (None for an old version that has
    an upcaster but whose model was not kept with :func:`superseded`)."""
    out: dict[str, type[BaseModel] | None] = {}
    for name, cls in sorted(_TYPES.items()):
        for version in range(1, cls.VERSION):
            if (name, version) in _UPCASTERS or (name, version) in _SUPERSEDED:
                out[f"{name}.v{version}"] = _SUPERSEDED.get((name, version))
        out[cls.ce_type()] = cls
    return out


# --- catalogue ------------------------------------------------------------------------------------------------


@event
class CatalogueEditionPublished(Event):
    """A jurisdiction publishes a catalogue edition; every reader learns which edition is in force from when."""

    NAME = "cn.jjj.catalogue.edition_published"
    TOPIC = "catalogue"

    edition: CatalogueEdition

    def partition_key(self) -> str:
        """The catalogue's name: one catalogue's editions and withdrawals stay in order."""
        return self.edition.catalogue

    def subject(self) -> str:
        return f"{self.edition.catalogue}/{self.edition.edition}"


@event
class CatalogueEntryWithdrawn(Event):
    """An entry is removed from a catalogue (clause 五); what that does to decided benefits is a policy setting."""

    NAME = "cn.jjj.catalogue.entry_withdrawn"
    TOPIC = "catalogue"

    jurisdiction: str
    catalogue: str
    edition: str
    entry_id: str
    effective: date
    reason: str

    def partition_key(self) -> str:
        """The catalogue's name: one catalogue's editions and withdrawals stay in order."""
        return self.catalogue

    def subject(self) -> str:
        return self.entry_id


# --- verification ---------------------------------------------------------------------------------------------


class EmployerRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    credit_code: str = Field(min_length=1, description="unified social credit code (统一社会信用代码)")
    region: str = Field(min_length=1)


@event
class VerificationRequested(Event):
    """An employer asks the platform to check a certificate (attachment 2, step 1)."""

    NAME = "cn.jjj.verification.requested"
    TOPIC = "verification"

    request_id: str
    holder_id: str
    employer: EmployerRef
    entry_id: str
    issuer: str
    certificate_number: str
    issued: date | None = None
    expires: date | None = None
    personal: dict[str, str] = Field(
        default_factory=dict, description="the holder's personal fields, sealed for the platform"
    )


@event
class VerificationRefused(Event):
    """A request the platform would not accept, with every reason (recorded, never silently dropped)."""

    NAME = "cn.jjj.verification.refused"
    TOPIC = "verification"

    request_id: str
    holder_id: str
    reasons: tuple[str, ...]


@event
class VerificationAccepted(Event):
    """The platform accepted a request and says when the check should be done (attachment 2, step 2)."""

    NAME = "cn.jjj.verification.accepted"
    TOPIC = "verification"

    request_id: str
    holder_id: str
    expected_by: datetime
    turnaround_source: str


@event
class VerificationDeferred(Event):
    """The issuer could not be reached; the request stays open and is asked again later."""

    NAME = "cn.jjj.verification.deferred"
    TOPIC = "verification"

    request_id: str
    holder_id: str
    attempt: int
    retry_at: datetime
    detail: str


@event
class CertificateVerified(Event):
    """The platform found a certificate genuine and gives it a verification code (attachment 2, step 3)."""

    NAME = "cn.jjj.verification.certificate_verified"
    TOPIC = "verification"

    request_id: str
    holder_id: str
    certificate_key: str
    entry_id: str
    issuer: str
    verification_code: str
    verified_at: datetime
    verified_by: str
    expires: date | None = None
    disclaimer: str


@event
class VerificationRejected(Event):
    """The platform found a certificate not genuine: not found, mismatch or false material."""

    NAME = "cn.jjj.verification.rejected"
    TOPIC = "verification"

    request_id: str
    holder_id: str
    reason: str
    detail: str = ""


@event
class CertificateRevoked(Event):
    """An issuer withdrew a verified certificate; its code now checks as revoked."""

    NAME = "cn.jjj.verification.certificate_revoked"
    TOPIC = "verification"

    holder_id: str
    certificate_key: str
    verification_code: str
    revoked_at: datetime
    reason: str


# --- holders --------------------------------------------------------------------------------------------------


@event
class HolderRegistered(Event):
    """A holder becomes known: category and birth date, the facts decisions derive age and category from.

    v2 carries nationality and residence as two facts: ``chinese_national`` (中国籍 or not) and ``residence``
    (mainland, HK, MO, TW or abroad), plain because they are coarse; ``category`` is derived from them and must
    agree. The ISO nationality itself does not travel: no decision needs more than these two facts. A v1 body
    is upcast with what its category says: a mainland resident is a Chinese national resident in the mainland, a
    Hong Kong, Macao or Taiwan resident a Chinese national of one of those regions (which one v1 did not say), a
    foreign national not Chinese (residence not said).
    """

    NAME = "cn.jjj.holders.holder_registered"
    VERSION = 2
    TOPIC = "holders"

    holder_id: str
    category: HolderCategory
    chinese_national: bool | None = None
    residence: Residence | None = None
    birth_date: date | None = None
    personal: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _category_agrees(self) -> HolderRegistered:
        if self.chinese_national is None or self.residence is None:
            return self
        derived = holder_category("CN" if self.chinese_national else "ZZ", self.residence)
        if derived is not self.category:
            raise ValueError(f"category {self.category.value} does not agree with chinese_national="
                             f"{self.chinese_national} and residence={self.residence.value} ({derived.value})")
        return self


@upcaster(HolderRegistered.NAME, 1)
def _holder_registered_v1(body: dict[str, Any]) -> dict[str, Any]:
    category = body.get("category")
    body["chinese_national"] = category != HolderCategory.FOREIGN.value
    body["residence"] = Residence.MAINLAND.value if category == HolderCategory.MAINLAND.value else None
    return body


@event
class EmploymentStarted(Event):
    """A holder starts a personnel/labour relationship with an employer in a jurisdiction.

    v2 replaced v1's whole-year ``years`` with ``years_in_scope`` and ``in_scope``, and added the employer's
    高精尖 status and the Universal Studios project flag. v3 adds the employer's type (public institution, 事业单位,
    or other; None where not said, as in every earlier body).
    """

    NAME = "cn.jjj.holders.employment_started"
    VERSION = 3
    TOPIC = "holders"

    holder_id: str
    jurisdiction: str
    employer: EmployerRef
    started: date
    field: str | None = None
    years_in_scope: float | None = Field(None, ge=0)
    in_scope: bool = True
    high_tech: bool = False
    universal_studios: bool = False
    employer_type: EmployerType | None = None

    def employment(self) -> Employment:
        """The domain fact this event records."""
        return Employment(
            holder_id=self.holder_id,
            jurisdiction=self.jurisdiction,
            employer=self.employer.name,
            employer_region=self.employer.region,
            started=self.started,
            field=self.field,
            years_in_scope=self.years_in_scope,
            in_scope=self.in_scope,
            high_tech=self.high_tech,
            universal_studios=self.universal_studios,
            employer_type=self.employer_type,
        )


@superseded(EmploymentStarted.NAME, 1)
class EmploymentStartedV1(BaseModel):
    """Employment started, as first published: whole years of experience, no scope or employer flags."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    holder_id: str
    jurisdiction: str
    employer: EmployerRef
    started: date
    field: str | None = None
    years: int | None = Field(None, ge=0)


@upcaster(EmploymentStarted.NAME, 1)
def _employment_started_v1(body: dict[str, Any]) -> dict[str, Any]:
    years = body.pop("years", None)
    body["years_in_scope"] = None if years is None else float(years)
    body.setdefault("in_scope", True)
    return body


@upcaster(EmploymentStarted.NAME, 2)
def _employment_started_v2(body: dict[str, Any]) -> dict[str, Any]:
    body.setdefault("employer_type", None)
    return body


@event
class EmploymentEnded(Event):
    """A holder's employment in a jurisdiction ends; what depended on it is withdrawn."""

    NAME = "cn.jjj.holders.employment_ended"
    TOPIC = "holders"

    holder_id: str
    jurisdiction: str
    ended: date


# --- benefits -------------------------------------------------------------------------------------------------


@event
class BenefitDecided(Event):
    """A bureau decided a benefit; the decision says why."""

    NAME = "cn.jjj.benefits.benefit_decided"
    TOPIC = "benefits"

    decision: BenefitDecision

    def partition_key(self) -> str:
        """The holder id of the decision (pseudonymous): one holder's events stay in order."""
        return self.decision.holder_id


@event
class BenefitWithdrawn(Event):
    """A decided benefit no longer stands: certificate revoked or expired, employment ended, entry withdrawn."""

    NAME = "cn.jjj.benefits.benefit_withdrawn"
    TOPIC = "benefits"

    decision_id: str
    holder_id: str
    jurisdiction: str
    code: str
    reason: str
    withdrawn_at: datetime


class OutcomeDecided(BaseModel):
    """One rule's outcome in a decision set: what the rule decided and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str
    code: str
    outcome: Outcome
    clause: str
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    readings: tuple[str, ...] = ()
    rule_version: str
    inputs: dict[str, str | int | float | bool | None] | None = Field(
        None, description="this outcome's inputs where they differ from the event's"
    )


class OutcomeWithdrawn(BaseModel):
    """A decision that no longer stands, the outcome it had, and why it was withdrawn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str
    code: str
    outcome: Outcome
    reason: str


@event
class DecisionSetChanged(Event):
    """A bureau's decisions on one holder's certificate changed: the outcomes decided anew and the decisions
    withdrawn, in one event. Outcomes that did not change are not repeated.

    ``decisions`` lists every new outcome, whatever it is (eligible: granted; conditional; advisory; ineligible: not
    granted, with its reasons), so the log alone explains every decision. ``caused_by`` is the id of the event
    that caused the change: the fact the new decisions are timed by, or (for withdrawals alone) the last fact read
    about the holder.
    """

    NAME = "cn.jjj.benefits.decision_set_changed"
    TOPIC = "benefits"

    holder_id: str
    jurisdiction: str
    certificate_key: str
    entry_id: str = ""
    verification_code: str = ""
    edition: str = ""
    plugin: str = ""
    caused_by: str
    decided_at: datetime | None = None
    inputs: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="the inputs of every outcome that does not give its own"
    )
    decisions: tuple[OutcomeDecided, ...] = ()
    withdrawn_at: datetime | None = None
    withdrawn: tuple[OutcomeWithdrawn, ...] = ()

    def benefit_decisions(self) -> list[BenefitDecision]:
        """The decisions ``decisions`` stands for, each as the bureau recorded it."""
        if self.decided_at is None:
            return []
        shared = {
            "holder_id": self.holder_id,
            "jurisdiction": self.jurisdiction,
            "entry_id": self.entry_id,
            "certificate_key": self.certificate_key,
            "verification_code": self.verification_code,
            "edition": self.edition,
            "plugin": self.plugin,
            "caused_by": self.caused_by,
            "decided_at": self.decided_at,
        }
        return [
            BenefitDecision.model_validate(
                {**shared, **o.model_dump(), "inputs": self.inputs if o.inputs is None else o.inputs}
            )
            for o in self.decisions
        ]

    @classmethod
    def of(
        cls,
        decided: list[BenefitDecision],
        withdrawn: list[OutcomeWithdrawn],
        *,
        holder_id: str,
        jurisdiction: str,
        certificate_key: str,
        cause: str,
        withdrawn_at: datetime | None,
    ) -> DecisionSetChanged:
        """One event for decisions of one context (they share certificate, entry, edition, code, plugin, cause and
        time) and withdrawals on the same certificate."""
        first = decided[0] if decided else None
        texts: dict[int, str] = {}  # decisions of one context share one inputs dict: serialised once

        def text(inputs: dict[str, str | int | float | bool | None]) -> str:
            found = texts.get(id(inputs))  # every dict is alive (held by ``decided``) while its id is kept
            if found is None:
                found = texts[id(inputs)] = json.dumps(inputs)
            return found

        seen: dict[str, tuple[int, dict[str, str | int | float | bool | None]]] = {}
        for d in decided:  # the commonest inputs, in their own key order, are said once
            key = text(d.inputs)
            seen[key] = (seen.get(key, (0, d.inputs))[0] + 1, d.inputs)
        common = max(seen.values(), key=lambda x: x[0])[1] if seen else {}
        common_key = json.dumps(common)
        return cls.model_validate(  # one validation of the whole event, its outcomes included: not one per outcome
            {
                "holder_id": holder_id,
                "jurisdiction": jurisdiction,
                "certificate_key": certificate_key,
                "entry_id": first.entry_id if first else "",
                "verification_code": first.verification_code if first else "",
                "edition": first.edition if first else "",
                "plugin": first.plugin if first else "",
                "caused_by": first.caused_by if first else cause,
                "decided_at": first.decided_at if first else None,
                "inputs": common,
                "decisions": [
                    {
                        "decision_id": d.decision_id,
                        "code": d.code,
                        "outcome": d.outcome,
                        "clause": d.clause,
                        "reasons": d.reasons,
                        "conditions": d.conditions,
                        "readings": d.readings,
                        "rule_version": d.rule_version,
                        "inputs": None if text(d.inputs) == common_key else d.inputs,
                    }
                    for d in decided
                ],
                "withdrawn_at": withdrawn_at if withdrawn else None,
                "withdrawn": tuple(withdrawn),
            }
        )


# --- privacy and signed checkpoints ---------------------------------------------------------------------------


@event
class HolderErased(Event):
    """A holder's data key was destroyed: their sealed personal fields can no longer be read anywhere.

    Decisions already recorded stand and replay from what this event keeps: the ids of the holder's recorded
    decisions and the holder's age in full years on each of their decision dates (derived, non-personal facts
    the decisions already carry). No new decision is made for an erased holder.
    """

    NAME = "cn.jjj.holders.holder_erased"
    TOPIC = "holders"

    holder_id: str
    erased_at: datetime
    reason: str
    decisions: tuple[str, ...] = ()
    ages: dict[str, int] = Field(default_factory=dict, description="ISO decision date (UTC) -> age in full years")


class Checkpoint(Event):
    """A publisher's signature over a stretch of its hash chain: ``hashes`` are the content hashes of its events
    ``first_seq``..``last_seq`` of one epoch, ``prev`` the hash before ``first_seq``.

    One copy goes to every topic the stretch touched, so a reader of any of those topics can check each event it
    reads against the list, whatever partition or topic the neighbouring events went to.
    """

    publisher: str
    epoch: str
    first_seq: int = Field(ge=0)
    last_seq: int = Field(ge=0)
    prev: str
    hashes: tuple[str, ...]
    key_id: str
    signature: str

    @property
    def last_hash(self) -> str:
        return self.hashes[-1] if self.hashes else self.prev

    def partition_key(self) -> str:
        """``publisher/epoch``: one publisher run's checkpoints stay in order."""
        return f"{self.publisher}/{self.epoch}"


@event
class CatalogueCheckpoint(Checkpoint):
    NAME = "cn.jjj.catalogue.checkpoint"
    TOPIC = "catalogue"


@event
class VerificationCheckpoint(Checkpoint):
    NAME = "cn.jjj.verification.checkpoint"
    TOPIC = "verification"


@event
class HoldersCheckpoint(Checkpoint):
    NAME = "cn.jjj.holders.checkpoint"
    TOPIC = "holders"


@event
class BenefitsCheckpoint(Checkpoint):
    NAME = "cn.jjj.benefits.checkpoint"
    TOPIC = "benefits"


_CHECKPOINTS: dict[str, type[Checkpoint]] = {
    c.TOPIC: c for c in (CatalogueCheckpoint, VerificationCheckpoint, HoldersCheckpoint, BenefitsCheckpoint)
}


def checkpoint_class(topic: str) -> type[Checkpoint] | None:
    """The checkpoint event type of a logical topic (None for a topic no publisher writes, such as deadletter)."""
    return _CHECKPOINTS.get(topic)
