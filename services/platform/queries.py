"""What the command line asks of the verification platform: a request's status, the public check of a code
(附件2 三), and a code's revocation. Nothing personal is shown but a masked name; every answer carries the
disclaimer of 附件2 四.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.ids import stable_id
from mra.core.plugins import Registry
from mra.events.schemas import CertificateRevoked, Event
from mra.services.codes import CodeFormat, Reading, format_code, read_code
from mra.services.platform.intake import Intake
from mra.services.platform.settings import CST, DISCLAIMER, PlatformPaths, load_settings
from mra.services.platform.store import PlatformStore
from mra.services.privacy import PersonalData, is_sealed

__all__ = ["check_code", "request_status", "revoke_code"]


@contextmanager
def _stores(state_dir: Path) -> Iterator[tuple[PlatformStore, Intake]]:
    paths = PlatformPaths(state_dir)
    store, intake = PlatformStore(paths.read_model), Intake(paths.intake)
    try:
        yield store, intake
    finally:
        store.close()
        intake.close()


def _masked(state_dir: Path, taken: sqlite3.Row | None) -> str | None:
    """The masked name a check shows, opened through the key store; ``(erased)`` once the holder is erased."""
    if taken is None or taken["masked_name"] is None:
        return None
    if not is_sealed(taken["masked_name"]):
        return str(taken["masked_name"])
    with closing(PersonalData.at(state_dir)) as personal:
        return personal.shown(taken["holder_id"], "masked_name", taken["masked_name"])


def _local(value: str | None) -> str | None:
    return datetime.fromisoformat(value).astimezone(CST).strftime("%Y-%m-%d %H:%M CST") if value else None


def request_status(state_dir: Path, request_id: str) -> dict[str, Any]:
    """What the employer sees of a request: its status and result, nothing personal but a masked name, and once
    verified the pseudonymous holder id that employment facts name the holder by."""
    with _stores(state_dir) as (store, intake):
        row, taken = store.request(request_id.strip()), intake.get(request_id.strip())
        if row is None and taken is None:
            raise NotFound(f"no verification request {request_id!r} is known here")
        out: dict[str, Any] = {"request_id": request_id.strip(), "disclaimer": DISCLAIMER}
        if taken is not None:
            out |= {"holder": _masked(state_dir, taken), "submitted_at": taken["submitted_at"]}
        if row is None or not row["status"]:
            assert taken is not None
            out |= {
                "status": taken["status"] if taken["status"] == "refused" else "submitted",
                "reasons": json.loads(taken["reasons"]),
                "expected_by": taken["expected_by"],
                "expected_by_local": _local(taken["expected_by"]),
                "turnaround_source": taken["turnaround_source"],
                "note": "not yet processed by the platform (`mra platform run`)",
            }
            return out
        code_row = store.code(read_code(row["verification_code"]).compact) if row["verification_code"] else None
        out |= {
            "status": row["status"],
            "entry_id": row["entry_id"],
            "issuer": row["issuer"],
            "employer": row["employer_name"],
            "requested_at": row["requested_at"],
            "expected_by": row["expected_by"],
            "expected_by_local": _local(row["expected_by"]),
            "turnaround_source": row["turnaround_source"],
            "reasons": json.loads(row["reasons"]) if row["reasons"] else [],
            "reason": row["reason"],
            "detail": row["detail"] or None,
            "attempts": row["attempts"],
            "retry_at": row["retry_at"] if row["status"] == "deferred" else None,
            "verification_code": row["verification_code"],
            "verified_at": row["verified_at"],
            "revoked": bool(code_row["revoked"]) if code_row is not None else False,
            "revoked_at": code_row["revoked_at"] if code_row is not None else None,
            "revoke_reason": code_row["revoke_reason"] if code_row is not None else None,
        }
        if code_row is not None and row["status"] == "verified":
            out["holder_id"] = code_row["holder_id"]  # pseudonymous: what the employer names the holder by
        return out


def check_code(
    state_dir: Path,
    text: str,
    registry: Registry | None = None,
    fmt: CodeFormat | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """The public check (附件2 三): valid, revoked, unknown or mistyped; a masked name, nothing else personal."""
    fmt = fmt or load_settings(state_dir).code
    reading = read_code(text, fmt)
    if reading.reading is Reading.MALFORMED:
        raise ValidationFailed(f"{text.strip()!r} is not a verification code: {reading.detail}")
    out: dict[str, Any] = {"code": text.strip().upper(), "disclaimer": DISCLAIMER}
    if reading.reading is Reading.MISTYPED:
        return out | {"status": "mistyped", "detail": reading.detail}
    out["code"] = format_code(reading.compact, fmt)
    with _stores(state_dir) as (store, intake):
        row = store.code(reading.compact)
        if row is None:
            return out | {"status": "unknown", "detail": "no certificate was verified under this code"}
        taken = intake.get(row["request_id"])
    entry_name = None
    if registry is not None:
        try:
            entry_name = registry.find_entry(row["entry_id"])[1].name
        except NotFound:
            entry_name = None
    today = today or datetime.now(CST).date()
    expired = row["expires"] is not None and date.fromisoformat(row["expires"]) < today
    return out | {
        "status": "revoked" if row["revoked"] else "valid",
        "detail": f"revoked on {row['revoked_at'][:10]}" if row["revoked"] else "",
        "entry_id": row["entry_id"],
        "entry_name": entry_name,
        "issuer": row["issuer"],
        "verified_at": row["verified_at"],
        "verified_by": row["verified_by"],
        "certificate_expires": row["expires"],
        "certificate_expired": expired,
        "holder": _masked(state_dir, taken),
        "revoked_at": row["revoked_at"],
    }


def revoke_code(
    state_dir: Path,
    text: str,
    reason: str,
    now: datetime,
    publish: Callable[[Event, str, datetime], None],
    fmt: CodeFormat | None = None,
) -> dict[str, Any]:
    """Publish (through ``publish(data, id, time)``) that a verified certificate was withdrawn.

    The event id is derived from the code and the revocation's time and reason: a revocation published again (the
    command run twice before the platform read the first) is an event of its own, never an id reused for other
    content; every reader keeps the first revocation it reads. The code checks as revoked once the platform has
    read the event.
    """
    fmt = fmt or load_settings(state_dir).code
    if not reason.strip():
        raise MraError("give the reason for the revocation (--reason)")
    reading = read_code(text, fmt)
    if reading.reading is not Reading.OK:
        raise ValidationFailed(f"{text.strip()!r} is {reading.reading.value}: {reading.detail}")
    with _stores(state_dir) as (store, _):
        row = store.code(reading.compact)
    if row is None:
        raise NotFound(
            f"no certificate was verified under {format_code(reading.compact, fmt)} (as far as this platform has read)"
        )
    out = {"code": row["printed"], "request_id": row["request_id"], "entry_id": row["entry_id"]}
    if row["revoked"]:
        return out | {"status": "revoked", "revoked_at": row["revoked_at"], "published": False}
    data = CertificateRevoked(
        holder_id=row["holder_id"],
        certificate_key=row["certificate_key"],
        verification_code=row["printed"],
        revoked_at=now,
        reason=reason.strip(),
    )
    publish(data, stable_id("verification.certificate_revoked", reading.compact, now.isoformat(), data.reason), now)
    return out | {"status": "revoked", "revoked_at": now.isoformat(), "published": True}
