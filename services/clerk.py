"""What a bureau clerk looks up: a holder found by request id, verification code or employer; the holder's decisions
with reasons and clauses, withdrawn decisions and their history; the review list of conditional decisions.

Read-only over the platform's and the bureau's read models; nothing here decides anything. Titles of benefits come
from the jurisdiction's rules, so a clerk sees what each code means and on which clause it rests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mra.core.errors import ValidationFailed
from mra.core.models import Outcome
from mra.core.plugins import Registry
from mra.services.bureau import BureauStore
from mra.services.codes import Reading, read_code
from mra.services.platform.settings import PlatformPaths, load_settings
from mra.services.platform.store import PlatformStore

__all__ = ["LIMIT", "ClerkView"]

LIMIT = 200
"""Most rows one search or list returns."""


class ClerkView:
    """One jurisdiction's clerk's view of the platform's and the bureau's read models."""

    def __init__(self, state_dir: Path, bureau_db: Path, jurisdiction: str, registry: Registry) -> None:
        self.state_dir = state_dir
        self.bureau_db = bureau_db
        self.jurisdiction = jurisdiction
        self.registry = registry
        registry.jurisdiction(jurisdiction)

    @contextmanager
    def _bureau(self) -> Iterator[BureauStore]:
        store = BureauStore(self.bureau_db, self.jurisdiction, self.registry)
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def _platform(self) -> Iterator[PlatformStore]:
        store = PlatformStore(PlatformPaths(self.state_dir).read_model)
        try:
            yield store
        finally:
            store.close()

    def titles(self) -> dict[str, dict[str, str]]:
        return {r.code: {"zh": r.title_zh, "en": r.title_en} for r in self.registry.rules(self.jurisdiction)}

    # finding a holder --------------------------------------------------------------------------------------------
    def find(self, *, request_id: str = "", code: str = "", employer: str = "") -> list[dict[str, Any]]:
        """Holders matching one search term: a request id, a verification code, or an employer's name or credit
        code (a part of the name matches)."""
        terms = [t for t in (request_id.strip(), code.strip(), employer.strip()) if t]
        if len(terms) != 1:
            raise ValidationFailed("give exactly one of: request id, verification code, employer")
        if request_id.strip():
            with self._platform() as platform:
                row = platform.request(request_id.strip())
            if row is None or not row["holder_id"]:
                return []
            return [{"holder_id": row["holder_id"], "request_id": row["request_id"], "status": row["status"]}]
        if code.strip():
            reading = read_code(code, load_settings(self.state_dir).code)
            if reading.reading is not Reading.OK:
                raise ValidationFailed(f"not a verification code: {reading.detail}")
            with self._platform() as platform:
                found = platform.code(reading.compact)
            if found is None:
                return []
            return [{"holder_id": found["holder_id"], "request_id": found["request_id"], "status": "verified"}]
        out: dict[str, dict[str, Any]] = {}
        with self._bureau() as store:
            for holder_id, name in store.store.holders_by_employer(self.jurisdiction, employer.strip(), LIMIT):
                out.setdefault(holder_id, {"holder_id": holder_id, "employer": name})
        with self._platform() as platform:
            for r in platform.requests_by_employer(employer.strip(), LIMIT):
                out.setdefault(
                    r["holder_id"],
                    {"holder_id": r["holder_id"], "employer": r["employer_name"], "request_id": r["request_id"]},
                )
        return list(out.values())[:LIMIT]

    # one holder --------------------------------------------------------------------------------------------------
    def holder(self, holder_id: str) -> dict[str, Any] | None:
        """The holder's record at this bureau: certificates, employments, current decisions (with review notes),
        withdrawn decisions with why, and the history of every decision in the order it was made."""
        with self._bureau() as store:
            data = store.holder(holder_id)
            if data is None:
                return None
            withdrawn = [
                json.loads(s.decision.model_dump_json()) | {"withdrawn_reason": s.withdrawn_reason}
                for s in store.store.decisions(holder_id, active=False)
            ]
        history = sorted(
            [{**d, "state": "current"} for d in data["decisions"]] + [{**d, "state": "withdrawn"} for d in withdrawn],
            key=lambda d: (d["decided_at"], d["code"]),
        )
        rank = {o.value: i for i, o in enumerate((Outcome.ELIGIBLE, Outcome.CONDITIONAL, Outcome.ADVISORY))}
        return data | {
            "decisions": sorted(data["decisions"], key=lambda d: (rank.get(d["outcome"], 9), d["code"])),
            "jurisdiction": self.jurisdiction,
            "jurisdiction_name": {"zh": self.registry.jurisdiction(self.jurisdiction).name_zh,
                                  "en": self.registry.jurisdiction(self.jurisdiction).name_en},
            "withdrawn": sorted(withdrawn, key=lambda d: (d["decided_at"], d["code"]), reverse=True),
            "history": history,
            "titles": self.titles(),
        }

    # the review list ---------------------------------------------------------------------------------------------
    def review(self) -> list[dict[str, Any]]:
        """Current conditional decisions (what the holder must still show) and decisions kept for review on a
        withdrawn catalogue entry, oldest first."""
        with self._bureau() as store:
            reviews = store.under_review()
            rows = []
            for d in store.active_decisions():
                if d.outcome is Outcome.CONDITIONAL or d.decision_id in reviews:
                    out: dict[str, Any] = json.loads(d.model_dump_json())
                    if d.decision_id in reviews:
                        out["review"] = reviews[d.decision_id]
                    rows.append(out)
        rows.sort(key=lambda d: (d["decided_at"], d["holder_id"], d["code"]))
        return rows[:LIMIT]
