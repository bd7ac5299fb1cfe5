"""Taking a verification request in (附件2 一, 二): decide it, keep its personal fields locally, publish it.

Only a pseudonym travels: the holder id is a keyed hash (HMAC-SHA256 under a secret in the state dir) of the
identity document, and no event carries a name, document number or birth date in plain text: the birth date
travels sealed under the holder's data key (:mod:`mra.services.privacy`). The intake store
(``platform/intake.db``) holds what the topic must not: the holder's name, sealed under the same key, so that
erasing the holder (``mra holder erase``) erases it here too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mra.core.catalogue import normalise
from mra.core.errors import MraError
from mra.core.ids import stable_id
from mra.core.models import CatalogueEntry, standing
from mra.core.plugins import Registry
from mra.events.publisher import Publisher
from mra.events.schemas import (
    EmployerRef,
    Event,
    HolderRegistered,
    VerificationAccepted,
    VerificationRefused,
    VerificationRequested,
)
from mra.services.files import private_sqlite
from mra.services.platform.request import (
    HolderIn,
    RequestIn,
    Review,
    add_working_days,
    review,
    validation_reasons,
)
from mra.services.platform.settings import CST, PlatformPaths, PlatformSettings, turnaround
from mra.services.privacy import PersonalData, holder_pseudonym, pseudonym_key
from mra.services.privacy import fold as _fold
from mra.services.privacy import keyed as _keyed

__all__ = [
    "Intake",
    "Submission",
    "holder_key",
    "mask_name",
    "prepare",
    "publish_submission",
]


# --- pseudonyms and masking -----------------------------------------------------------------------------------


def holder_key(paths: PlatformPaths) -> bytes:
    """The platform's secret for pseudonyms, created on first use (see :func:`mra.services.privacy.pseudonym_key`)."""
    return pseudonym_key(paths.key)


def _is_cjk(c: str) -> bool:
    return "\u3400" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff" or "\U00020000" <= c <= "\U0002fa1f"


def mask_name(name: str) -> str:
    """What a public check shows of a name: 张*明, 张*, J*** S****."""
    text = " ".join(name.split())
    if not text:
        return ""
    if any(_is_cjk(c) for c in text):
        chars = [c for c in text if not c.isspace()]
        if len(chars) == 1:
            return "*"
        if len(chars) == 2:
            return chars[0] + "*"
        return chars[0] + "*" * (len(chars) - 2) + chars[-1]
    return " ".join(w[0] + "*" * (len(w) - 1) for w in text.split())


# --- the intake store (personal data, local only) -------------------------------------------------------------


class Intake:
    """What the platform keeps of a request that must not travel: the holder's name, and its masked form.

    The name is what the issuer is asked about and the masked name what a public check shows; the document and
    birth date are not kept (the holder id already derives from the document). Not a cache of the topic (the
    topic has no names), so it is not rebuilt by replay; the file is readable by its owner only. A refused
    request keeps its outcome but no personal field. Given the key store (``personal``), the name and the masked
    name are kept sealed under the holder's data key, and read as erased once the holder is.
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS intake (
        request_id TEXT PRIMARY KEY, submitted_at TEXT NOT NULL, status TEXT NOT NULL, holder_id TEXT NOT NULL,
        reasons TEXT NOT NULL, expected_by TEXT, turnaround_source TEXT, name TEXT, masked_name TEXT
    );
    """

    def __init__(self, path: Path) -> None:
        # created owner-only before SQLite opens it: SQLite gives its -wal and -shm files the same mode
        private_sqlite(path)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(self.SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, request_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute("SELECT * FROM intake WHERE request_id = ?", (request_id,)).fetchone()
        return row

    def knows_holder(self, holder_id: str) -> bool:
        """Whether a request of the holder was taken in here."""
        return self.db.execute("SELECT 1 FROM intake WHERE holder_id = ? LIMIT 1", (holder_id,)).fetchone() is not None

    def record(self, s: Submission, holder: HolderIn | None, personal: PersonalData | None = None) -> None:
        accepted = holder is not None and s.status == "accepted"
        name = holder.name if holder is not None and accepted else None
        masked = mask_name(name) if name else None
        if personal is not None and name and masked:
            name, masked = personal.seal(s.holder_id, "name", name), personal.seal(s.holder_id, "masked_name", masked)
        self.db.execute(
            "INSERT OR IGNORE INTO intake VALUES (?,?,?,?,?,?,?,?,?)",
            (
                s.request_id,
                s.submitted_at.isoformat(),
                s.status,
                s.holder_id,
                json.dumps(s.reasons, ensure_ascii=False),
                s.expected_by.isoformat() if s.expected_by else None,
                s.turnaround_source or None,
                name,
                masked,
            ),
        )


# --- submitting -----------------------------------------------------------------------------------------------


@dataclass
class Submission:
    """A request as the intake decided it, and the events that record it."""

    request_id: str
    holder_id: str
    status: str
    submitted_at: datetime
    reasons: list[str] = field(default_factory=list)
    expected_by: datetime | None = None
    turnaround_source: str = ""
    entry_id: str = ""
    events: list[tuple[str, Event]] = field(default_factory=list)
    again: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "submitted_at": self.submitted_at.isoformat(),
            "entry_id": self.entry_id or None,
            "expected_by": self.expected_by.isoformat() if self.expected_by else None,
            "expected_by_local": self.expected_by.astimezone(CST).strftime("%Y-%m-%d %H:%M CST")
            if self.expected_by
            else None,
            "turnaround_source": self.turnaround_source or None,
            "reasons": self.reasons,
            "resubmitted": self.again,
        }


def _holder_id(key: bytes, raw: Mapping[str, Any]) -> str:
    holder = raw.get("holder")
    if not isinstance(holder, dict):
        return ""
    parts = [holder.get(k) for k in ("document_type", "document_number", "nationality")]
    if not all(isinstance(p, str) and p.strip() for p in parts):
        return ""
    return holder_pseudonym(key, *(str(p) for p in parts))


def prepare(
    raw: object, *, state_dir: Path, registry: Registry, settings: PlatformSettings, now: datetime
) -> Submission:
    """Decide a request (附件2 一, 二) and record it in the intake store; nothing is published yet.

    The request id is a keyed hash of the request's content: the same request submitted again is the same
    request, keeps its first submission time and outcome, and re-publishes identical events (so a submission
    interrupted before it was published is completed by submitting again).
    """
    if not isinstance(raw, dict):
        raise MraError("a verification request is a JSON object with employer, holder and certificate")
    paths = PlatformPaths(state_dir)
    key = holder_key(paths)
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    request_id = stable_id("verification.request", _keyed(key, "request", canonical))
    holder_id = _holder_id(key, raw)
    with closing(Intake(paths.intake)) as intake, closing(PersonalData.at(state_dir)) as personal:
        known = intake.get(request_id)
        submitted_at = datetime.fromisoformat(known["submitted_at"]) if known else now.astimezone(UTC)
        on = submitted_at.astimezone(CST).date()
        reasons: list[str] = []
        request: RequestIn | None = None
        try:
            request = RequestIn.model_validate(raw)
        except ValidationError as e:
            reasons = validation_reasons(e)
        found = review(request, registry, on) if request is not None else Review()
        reasons += found.reasons
        if holder_id and known is None and personal.erased(holder_id):
            reasons.append("the holder's personal data was erased at their request: no new request is accepted")
        sub = Submission(request_id, holder_id, "refused" if reasons else "accepted", submitted_at, reasons)
        if found.entry is not None:
            sub.entry_id = found.entry.id
        if known is not None:
            sub.again = True
            sub.status, sub.reasons = known["status"], json.loads(known["reasons"])
            sub.expected_by = datetime.fromisoformat(known["expected_by"]) if known["expected_by"] else None
            sub.turnaround_source = known["turnaround_source"] or ""
        elif sub.status == "accepted" and request is not None and found.entry is not None:
            days, sub.turnaround_source = turnaround(found.entry, request.certificate.issuer, settings)
            sub.expected_by = add_working_days(submitted_at, days)
        if sub.status == "refused":
            sub.events.append(
                (
                    stable_id("verification.refused", request_id),
                    VerificationRefused(request_id=request_id, holder_id=holder_id, reasons=tuple(sub.reasons)),
                )
            )
        elif request is not None and found.entry is not None and sub.expected_by is not None:
            sub.events += _accepted_events(sub, request, found.entry, personal)
        else:  # accepted before, but the catalogue or the file changed since: the first outcome stands
            raise MraError(f"request {request_id} was accepted before but can no longer be read: {'; '.join(reasons)}")
        if known is None:
            intake.record(sub, request.holder if request is not None else None, personal)
    return sub


def _accepted_events(
    sub: Submission, request: RequestIn, entry: CatalogueEntry, personal: PersonalData
) -> list[tuple[str, Event]]:
    """The events of an accepted request. The name check value and the birth date are sealed under the holder's
    data key: nothing on the topic identifies the holder, and erasing them makes both meaningless."""
    rid, hid, cert, holder = sub.request_id, sub.holder_id, request.certificate, request.holder
    assert sub.expected_by is not None
    employer = EmployerRef(
        name=request.employer.name,
        credit_code=request.employer.credit_code.upper(),
        region=normalise(request.employer.region),
    )
    return [
        (
            stable_id("verification.requested", rid),
            VerificationRequested(
                request_id=rid,
                holder_id=hid,
                employer=employer,
                entry_id=entry.id,
                issuer=cert.issuer,
                # the number maps to a person through the issuer's register: sealed like the other personal
                # fields, readable by the platform (to ask the issuer) until the holder is erased
                certificate_number=personal.seal(hid, "certificate_number", cert.number),
                issued=cert.issued,
                expires=cert.expires,
                personal={"name_hmac": personal.keyed(hid, "name", _fold(holder.name))},
            ),
        ),
        (
            stable_id("holders.holder_registered", hid),
            _registered(hid, holder, personal.seal(hid, "birth_date", holder.birth_date.isoformat())),
        ),
        (
            stable_id("verification.accepted", rid),
            VerificationAccepted(
                request_id=rid, holder_id=hid, expected_by=sub.expected_by, turnaround_source=sub.turnaround_source
            ),
        ),
    ]


def _registered(holder_id: str, holder: HolderIn, sealed_birth_date: str) -> HolderRegistered:
    """The holder's registration: nationality and residence as two coarse facts (the ISO code does not travel),
    the category they give, and the birth date sealed."""
    category, chinese, residence = standing(holder.nationality, holder.residence)
    return HolderRegistered(
        holder_id=holder_id,
        category=category,
        chinese_national=chinese,
        residence=residence,
        personal={"birth_date": sealed_birth_date},
    )


def publish_submission(sub: Submission, publisher: Publisher) -> None:
    """Publish the submission's events, in order, at its submission time; flush before returning."""
    for event_id, data in sub.events:
        publisher.publish(data, id=event_id, time=sub.submitted_at)
    publisher.flush()
