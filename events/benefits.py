"""The one read-side view of the benefits topic.

The topic holds two generations of events: one ``DecisionSetChanged`` per holder, certificate and change (what
bureaus publish), and the per-rule ``BenefitDecided`` / ``BenefitWithdrawn`` of older logs. Every reader (audit,
privacy, test drivers, benchmarks) sees both through this module, as decisions and withdrawals, so no reader keeps
its own isinstance chain over the topic and an old log reads the same as a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mra.core.models import BenefitDecision
from mra.events.envelope import Envelope
from mra.events.schemas import BenefitDecided, BenefitWithdrawn, DecisionSetChanged, Event

__all__ = [
    "BENEFIT_TYPES",
    "BenefitsView",
    "Published",
    "Withdrawal",
    "decided_in",
    "holder_of",
    "is_benefit_event",
    "jurisdiction_of",
    "withdrawn_in",
]

BENEFIT_TYPES: tuple[type[Event], ...] = (DecisionSetChanged, BenefitDecided, BenefitWithdrawn)


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A published decision withdrawn, and why."""

    decision_id: str
    holder_id: str
    jurisdiction: str
    code: str
    reason: str
    withdrawn_at: datetime


def is_benefit_event(data: Event) -> bool:
    return isinstance(data, BENEFIT_TYPES)


def decided_in(data: Event) -> list[BenefitDecision]:
    """The decisions an event of the benefits topic publishes (none for other events)."""
    if isinstance(data, DecisionSetChanged):
        return data.benefit_decisions()
    if isinstance(data, BenefitDecided):
        return [data.decision]
    return []


def withdrawn_in(data: Event) -> list[Withdrawal]:
    """The withdrawals an event of the benefits topic publishes (none for other events)."""
    if isinstance(data, DecisionSetChanged) and data.withdrawn_at is not None:
        at = data.withdrawn_at
        return [
            Withdrawal(w.decision_id, data.holder_id, data.jurisdiction, w.code, w.reason, at) for w in data.withdrawn
        ]
    if isinstance(data, BenefitWithdrawn):
        return [
            Withdrawal(data.decision_id, data.holder_id, data.jurisdiction, data.code, data.reason, data.withdrawn_at)
        ]
    return []


def holder_of(data: Event) -> str | None:
    """The holder a benefits event is about."""
    if isinstance(data, BenefitDecided):
        return data.decision.holder_id
    if isinstance(data, DecisionSetChanged | BenefitWithdrawn):
        return data.holder_id
    return None


def jurisdiction_of(data: Event) -> str | None:
    if isinstance(data, BenefitDecided):
        return data.decision.jurisdiction
    if isinstance(data, DecisionSetChanged | BenefitWithdrawn):
        return data.jurisdiction
    return None


@dataclass
class Published:
    """A decision as the topic has it: where it was first published, and its withdrawal if one followed."""

    decision: BenefitDecision
    event_id: str
    position: str = ""
    withdrawn: Withdrawal | None = None

    @property
    def active(self) -> bool:
        return self.withdrawn is None


@dataclass
class BenefitsView:
    """A fold of benefits events in log order: every decision published, whether it still stands, and the
    withdrawals of decisions it never saw published (an old decision read from the middle of a log)."""

    decisions: dict[str, Published] = field(default_factory=dict)
    orphans: list[Withdrawal] = field(default_factory=list)
    events: int = 0

    def apply(self, env: Envelope, position: str = "") -> None:
        """Fold one event (other events are ignored). A decision published again keeps its first place and
        stands again; a withdrawal ends it."""
        data = env.data
        if not is_benefit_event(data):
            return
        self.events += 1
        for d in decided_in(data):
            found = self.decisions.get(d.decision_id)
            if found is None:
                self.decisions[d.decision_id] = Published(d, env.id, position)
            else:
                found.withdrawn = None
        for w in withdrawn_in(data):
            found = self.decisions.get(w.decision_id)
            if found is None:
                self.orphans.append(w)
            else:
                found.withdrawn = w

    def extend(self, envelopes: Iterable[Envelope]) -> BenefitsView:
        for env in envelopes:
            self.apply(env)
        return self

    def select(
        self, *, holder_id: str | None = None, jurisdiction: str | None = None, active: bool | None = True
    ) -> list[Published]:
        """Published decisions in the order first published: of a holder, of a jurisdiction, standing or not."""
        return [
            p
            for p in self.decisions.values()
            if (holder_id is None or p.decision.holder_id == holder_id)
            and (jurisdiction is None or p.decision.jurisdiction == jurisdiction)
            and (active is None or p.active == active)
        ]

    def standing(self, holder_id: str | None = None, jurisdiction: str | None = None) -> list[BenefitDecision]:
        """The decisions that stand, in the order first published."""
        return [p.decision for p in self.select(holder_id=holder_id, jurisdiction=jurisdiction)]
