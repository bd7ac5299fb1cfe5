"""Decisions stored compactly: what many decisions share is kept once and referred to by number.

A decision's rule-level fields (jurisdiction, code, outcome, clause, reasons, conditions, readings, entry, edition,
rule version, plugin) repeat for every holder the rule decides the same way, and its inputs repeat for every holder
of the same age and circumstances. Each distinct value of those two parts is stored once in ``decision_parts``; a
decision's row keeps the two part numbers and what is its own (verification code, cause, decision time).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from mra.core.models import BenefitDecision

__all__ = ["DecisionCodec"]

_SHARED = (
    "jurisdiction",
    "code",
    "outcome",
    "clause",
    "reasons",
    "conditions",
    "readings",
    "entry_id",
    "edition",
    "rule_version",
    "plugin",
)
_SHARED_SET = frozenset(_SHARED)


class DecisionCodec:
    """Encodes decisions into rows of the ``decisions`` table and back, interning their shared parts."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._texts: dict[int, dict[str, Any]] = {}

    def forget(self) -> None:
        """Drop the cache (after a rollback: part numbers handed out in it are gone)."""
        self._ids.clear()
        self._texts.clear()

    def _part(self, db: sqlite3.Connection, text: str) -> int:
        found = self._ids.get(text)
        if found is not None:
            return found
        row = db.execute("SELECT part_id FROM decision_parts WHERE body = ?", (text,)).fetchone()
        if row is None:
            cur = db.execute("INSERT INTO decision_parts (body) VALUES (?)", (text,))
            assert cur.lastrowid is not None
            part = int(cur.lastrowid)
        else:
            part = int(row[0])
        self._ids[text] = part
        return part

    def encode(self, db: sqlite3.Connection, d: BenefitDecision) -> str:
        data = d.model_dump(mode="json", exclude={"decision_id", "holder_id", "certificate_key"})
        shared = json.dumps({k: data[k] for k in _SHARED}, ensure_ascii=False, separators=(",", ":"))
        inputs = json.dumps(data["inputs"], ensure_ascii=False, separators=(",", ":"))
        own = [self._part(db, shared), self._part(db, inputs), data["verification_code"], data["caused_by"]]
        own.append(data["decided_at"])
        return json.dumps(own, ensure_ascii=False, separators=(",", ":"))

    def decoder(self, db: sqlite3.Connection) -> Callable[[str, str, str, str], BenefitDecision]:
        """A function of (decision id, holder id, certificate key, stored body) giving the decision back."""

        def part(n: int) -> dict[str, Any]:
            found = self._texts.get(n)
            if found is None:
                row = db.execute("SELECT body FROM decision_parts WHERE part_id = ?", (n,)).fetchone()
                found = json.loads(row[0])
                self._texts[n] = found
            return found

        def decode(decision_id: str, holder_id: str, certificate_key: str, body: str) -> BenefitDecision:
            shared, inputs, code, cause, at = json.loads(body)
            return BenefitDecision.model_validate(
                {
                    "decision_id": decision_id,
                    "holder_id": holder_id,
                    "certificate_key": certificate_key,
                    **part(shared),
                    "inputs": part(inputs),
                    "verification_code": code,
                    "caused_by": cause,
                    "decided_at": at,
                }
            )

        return decode
