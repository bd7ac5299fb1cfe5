"""What a bureau knows of one holder: the facts read from the topics, as plain immutable records.

A bureau's store keeps these and hands them to :func:`mra.core.decide.decide_holder`; they carry no SQL row, no
connection and no clock, so the same facts give the same decisions wherever they are stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from mra.core.models import BenefitDecision, Employment

__all__ = [
    "CertificateFact",
    "EmploymentFact",
    "ErasureFact",
    "HolderFact",
    "HolderFile",
    "StoredDecision",
    "WithdrawnEntry",
]


@dataclass(frozen=True, slots=True)
class HolderFact:
    """A holder's registration. ``birth_date`` is kept as it arrived: sealed under the holder's data key, or None."""

    holder_id: str
    category: str
    birth_date: str | None
    erased: bool
    event_time: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class EmploymentFact:
    """An employment as started (and perhaps ended), with the times of the events that said so."""

    employment: Employment
    event_time: datetime
    event_id: str
    ended_time: datetime | None = None
    employer_code: str = ""

    @property
    def holder_id(self) -> str:
        return self.employment.holder_id


@dataclass(frozen=True, slots=True)
class CertificateFact:
    """A verified certificate, and its revocation if one was read."""

    certificate_key: str
    holder_id: str
    entry_id: str
    issuer: str
    verification_code: str
    verified_at: datetime
    verified_by: str
    expires: date | None
    event_id: str
    revoked_at: datetime | None = None
    revoke_reason: str | None = None


@dataclass(frozen=True, slots=True)
class WithdrawnEntry:
    """A catalogue entry withdrawn from a date."""

    entry_id: str
    effective: date
    reason: str
    event_time: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class ErasureFact:
    """A holder's erasure: the decisions recorded before it and the ages on their dates, so a replay after the
    erasure reproduces those decisions without the birth date."""

    holder_id: str
    erased_at: datetime
    decisions: frozenset[str]
    ages: Mapping[str, int]
    event_id: str


@dataclass(frozen=True, slots=True)
class HolderFile:
    """Everything a bureau decides one holder on.

    ``born`` is the birth date opened for this decision (None where unknown or unreadable here); ``withdrawn``
    holds the withdrawn catalogue entries, by id, that the holder's certificates name (any others may be left out).
    """

    holder_id: str
    holder: HolderFact | None = None
    employments: tuple[EmploymentFact, ...] = ()
    certificates: tuple[CertificateFact, ...] = ()
    erasure: ErasureFact | None = None
    withdrawn: Mapping[str, WithdrawnEntry] = field(default_factory=dict)
    born: date | None = None


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision as the read model keeps it: active, or withdrawn with the reason."""

    decision: BenefitDecision
    active: bool = True
    withdrawn_reason: str | None = None

    @property
    def decision_id(self) -> str:
        return self.decision.decision_id
