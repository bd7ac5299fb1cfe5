"""The verification platform's read model (``platform/platform.db``) and its outbox of results.

The read model is a cache of the verification topic, rebuilt by replay if deleted. Results are written to the
outbox (:class:`mra.services.store.Outbox`) in the same transaction that marks the request answered, then
published under ids derived from the request id: a platform killed at any point re-publishes the same events,
and every reader dedupes them by id.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime
from pathlib import Path

from mra.events.consumer import Delivery
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CertificateRevoked,
    CertificateVerified,
    Event,
    VerificationAccepted,
    VerificationDeferred,
    VerificationRefused,
    VerificationRejected,
    VerificationRequested,
)
from mra.services.codes import read_code
from mra.services.store import Outbox, SqliteStore

__all__ = ["PlatformStore"]

_FINAL = ("refused", "verified", "rejected")

_RESULTS: dict[str, type[Event]] = {
    cls.ce_type(): cls for cls in (CertificateVerified, VerificationRejected, VerificationDeferred)
}
"""What the platform's outbox holds, by CloudEvents type; a row of an older version is upcast when relayed."""


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class PlatformStore(SqliteStore):
    """The platform's read model of the verification topic, plus its outbox of results to publish.

    ``open`` marks a request the platform must still ask the issuer about; ``answered`` that a result for it is
    in the outbox (so it is not asked twice before the result comes back from the topic).
    """

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS requests (
        request_id TEXT PRIMARY KEY, holder_id TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT '',
        entry_id TEXT, issuer TEXT, certificate_number TEXT, issued TEXT, expires TEXT,
        employer_name TEXT, employer_credit_code TEXT, employer_region TEXT, name_hmac TEXT,
        requested_at TEXT, expected_by TEXT, turnaround_source TEXT, reasons TEXT, reason TEXT, detail TEXT,
        attempts INTEGER NOT NULL DEFAULT 0, retry_at TEXT,
        open INTEGER NOT NULL DEFAULT 0, answered INTEGER NOT NULL DEFAULT 0,
        certificate_key TEXT, verification_code TEXT, verified_at TEXT, verified_by TEXT, updated_at TEXT
    );
    CREATE TABLE IF NOT EXISTS codes (
        code TEXT PRIMARY KEY, printed TEXT NOT NULL, request_id TEXT NOT NULL, holder_id TEXT NOT NULL,
        certificate_key TEXT NOT NULL, entry_id TEXT NOT NULL, issuer TEXT NOT NULL, verified_at TEXT NOT NULL,
        verified_by TEXT NOT NULL, expires TEXT, disclaimer TEXT NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0, revoked_at TEXT, revoke_reason TEXT
    );
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.outbox = Outbox(self, ("request_id", "type", "time", "body"))  # ``type``: the CloudEvents type

    # folding the topic -------------------------------------------------------------------------------------------
    def apply_event(self, db: sqlite3.Connection, delivery: Delivery) -> None:
        data, at = delivery.envelope.data, delivery.envelope.time.isoformat()
        rid = getattr(data, "request_id", None)
        if rid is not None:
            db.execute(
                "INSERT INTO requests (request_id, holder_id) VALUES (?, ?) ON CONFLICT(request_id) DO NOTHING",
                (rid, getattr(data, "holder_id", "")),
            )
        not_final = f"status NOT IN {_FINAL}"
        if isinstance(data, VerificationRequested):
            db.execute(
                "UPDATE requests SET entry_id=?, issuer=?, certificate_number=?, issued=?, expires=?, employer_name=?, "
                "employer_credit_code=?, employer_region=?, name_hmac=?, requested_at=?, "
                "status = CASE WHEN status = '' THEN 'requested' ELSE status END WHERE request_id=?",
                (
                    data.entry_id,
                    data.issuer,
                    data.certificate_number,
                    _iso(data.issued),
                    _iso(data.expires),
                    data.employer.name,
                    data.employer.credit_code,
                    data.employer.region,
                    data.personal.get("name_hmac"),
                    at,
                    rid,
                ),
            )
        elif isinstance(data, VerificationRefused):
            db.execute(
                "UPDATE requests SET status='refused', reasons=?, open=0, updated_at=? "
                f"WHERE request_id=? AND {not_final}",
                (json.dumps(list(data.reasons), ensure_ascii=False), at, rid),
            )
        elif isinstance(data, VerificationAccepted):
            db.execute(
                "UPDATE requests SET expected_by=?, turnaround_source=?, updated_at=?, "
                f"status = CASE WHEN status IN ('', 'requested') THEN 'accepted' ELSE status END, "
                f"open = CASE WHEN {not_final} THEN 1 ELSE open END WHERE request_id=?",
                (data.expected_by.isoformat(), data.turnaround_source, at, rid),
            )
        elif isinstance(data, VerificationDeferred):
            db.execute(
                "UPDATE requests SET status='deferred', attempts=max(attempts, ?), retry_at=?, detail=?, updated_at=? "
                f"WHERE request_id=? AND {not_final}",
                (data.attempt, data.retry_at.isoformat(), data.detail, at, rid),
            )
        elif isinstance(data, CertificateVerified):
            code = read_code(data.verification_code)
            compact = code.compact or "".join(data.verification_code.split()).upper()
            db.execute(
                "UPDATE requests SET status='verified', open=0, answered=1, certificate_key=?, verification_code=?, "
                f"verified_at=?, verified_by=?, detail='', updated_at=? WHERE request_id=? AND {not_final}",
                (data.certificate_key, data.verification_code, data.verified_at.isoformat(), data.verified_by, at, rid),
            )
            db.execute(
                "INSERT OR IGNORE INTO codes (code, printed, request_id, holder_id, certificate_key, entry_id, issuer, "
                "verified_at, verified_by, expires, disclaimer) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    compact,
                    data.verification_code,
                    rid,
                    data.holder_id,
                    data.certificate_key,
                    data.entry_id,
                    data.issuer,
                    data.verified_at.isoformat(),
                    data.verified_by,
                    _iso(data.expires),
                    data.disclaimer,
                ),
            )
        elif isinstance(data, VerificationRejected):
            db.execute(
                "UPDATE requests SET status='rejected', open=0, answered=1, reason=?, detail=?, updated_at=? "
                f"WHERE request_id=? AND {not_final}",
                (data.reason, data.detail, at, rid),
            )
        elif isinstance(data, CertificateRevoked):
            code = read_code(data.verification_code)
            compact = code.compact or "".join(data.verification_code.split()).upper()
            db.execute(
                "UPDATE codes SET revoked=1, revoked_at=?, revoke_reason=? WHERE code=? AND revoked=0",
                (data.revoked_at.isoformat(), data.reason, compact),
            )

    # queries ---------------------------------------------------------------------------------------------------
    def request(self, request_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(
            "SELECT * FROM requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        return row

    def code(self, compact: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute("SELECT * FROM codes WHERE code = ?", (compact,)).fetchone()
        return row

    def knows_holder(self, holder_id: str) -> bool:
        """Whether a request or a verified certificate of the holder was read."""
        return (
            self.db.execute(
                "SELECT 1 FROM requests WHERE holder_id = ? UNION ALL SELECT 1 FROM codes WHERE holder_id = ? LIMIT 1",
                (holder_id, holder_id),
            ).fetchone()
            is not None
        )

    def code_taken(self, compact: str) -> bool:
        if self.code(compact) is not None:
            return True
        return any(
            (read_code(json.loads(r["body"]).get("verification_code", "")).compact == compact)
            for r in self.db.execute(
                "SELECT body FROM outbox WHERE type LIKE 'cn.jjj.verification.certificate_verified.%'"
            )
        )

    def open_requests(self) -> list[sqlite3.Row]:
        return list(
            self.db.execute(
                "SELECT * FROM requests WHERE open = 1 AND answered = 0 AND entry_id IS NOT NULL "
                "ORDER BY requested_at, request_id"
            )
        )

    def mark_answered(self, db: sqlite3.Connection, request_id: str) -> None:
        """Record, inside the transaction ``db``, that the issuer's answer to the request was taken."""
        db.execute("UPDATE requests SET answered = 1 WHERE request_id = ?", (request_id,))

    def mark_deferred(self, db: sqlite3.Connection, request_id: str, attempt: int, retry_at: datetime) -> None:
        """Record, inside the transaction ``db``, an attempt that did not reach the issuer and when to try again."""
        db.execute(
            "UPDATE requests SET attempts = ?, retry_at = ? WHERE request_id = ?",
            (attempt, retry_at.isoformat(), request_id),
        )

    def requests_by_employer(self, text: str, limit: int) -> list[sqlite3.Row]:
        """Requests with a known holder whose employer's name or credit code contains ``text``, latest first
        (holder_id, request_id, status, employer_name)."""
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return list(
            self.db.execute(
                "SELECT holder_id, request_id, status, employer_name FROM requests WHERE holder_id != '' AND "
                "(employer_name LIKE ? ESCAPE '\\' OR employer_credit_code LIKE ? ESCAPE '\\') "
                "ORDER BY requested_at DESC LIMIT ?",
                (like, like, limit),
            )
        )

    def counts(self, *, requested_only: bool = False) -> dict[str, int]:
        """Requests by status; with ``requested_only``, those that came as a request (not a verification published
        directly)."""
        where = "WHERE requested_at IS NOT NULL " if requested_only else ""
        rows = self.db.execute(f"SELECT status, count(*) AS n FROM requests {where}GROUP BY status ORDER BY status")
        return {r["status"] or "unknown": int(r["n"]) for r in rows}

    def revoked_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM codes WHERE revoked = 1").fetchone()[0])

    # the outbox ------------------------------------------------------------------------------------------------
    def enqueue(self, db: sqlite3.Connection, event_id: str, request_id: str, data: Event, at: datetime) -> None:
        """Queue a result for ``request_id`` inside the transaction ``db`` that records it."""
        self.outbox.queue(db, event_id, data.ce_type(), data.model_dump_json(), at, request_id=request_id)

    def unsent(self) -> list[sqlite3.Row]:
        return self.outbox.unsent()

    def relay(self, publisher: Publisher) -> int:
        """Publish what the outbox holds, in order, under the ids and times it was written with."""
        return self.outbox.relay(publisher, _RESULTS)
