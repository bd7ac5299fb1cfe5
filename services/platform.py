"""The certificate verification platform (京人社事业发〔2025〕11号 附件2), as an event-driven service.

附件2 has four steps, and this module has a part for each:

一 申请查验 (apply): :func:`prepare` reads an employer's request, refuses what is invalid with every reason, and
   keeps the holder's personal fields in the platform's local intake store; :func:`publish_submission` puts the
   request on the verification topic. Only a pseudonym travels: the holder id is a keyed hash (HMAC-SHA256 under
   a secret in the state dir) of the identity document, and no event carries a name, document number or birth
   date in plain text: the birth date travels sealed under the holder's data key (:mod:`mra.services.privacy`).
二 在线受理 (accept): a valid request is accepted at once, with an expected completion time from a per-issuer
   turnaround setting (the notice publishes none: mra's default is 5 working days).
三 核验结果 (result): :class:`Platform` consumes the verification topic into its read model, asks the issuer's
   connector about every open request (with a timeout, retries and backoff), and publishes the result: a
   verification code for a genuine certificate, the reason for any other. An unreachable issuer defers the
   request, which stays open. Results are written to an outbox in the same transaction that marks the request
   answered, then published under ids derived from the request id: a platform killed at any point re-publishes
   the same events, and every reader dedupes them by id.
四 责任确认 (responsibility): every result and every check carries :data:`DISCLAIMER`.

The read model (``platform/platform.db``) is a cache of the verification topic, rebuilt by replay if deleted.
The intake store (``platform/intake.db``) holds what the topic must not: the holder's name, sealed under the holder's
data key, so that erasing the holder (``mra holder erase``) erases it here too.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mra.core.catalogue import normalise
from mra.core.connectors import CertificateClaim, IssuerAnswer, IssuerConnector, IssuerStatus
from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.hookspecs import PluginConfig
from mra.core.ids import stable_id
from mra.core.models import CatalogueEdition, CatalogueEntry, holder_category
from mra.core.plugins import Registry, load_registry
from mra.core.settings import PolicySetting
from mra.events.bus import Transport
from mra.events.consumer import Delivery, Processor
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CertificateRevoked,
    CertificateVerified,
    EmployerRef,
    Event,
    HolderRegistered,
    VerificationAccepted,
    VerificationDeferred,
    VerificationRefused,
    VerificationRejected,
    VerificationRequested,
    upcast,
)
from mra.events.topics import Topics
from mra.services.codes import CodeFormat, Reading, format_code, new_code, read_code
from mra.services.keys import consumer_guard, open_publisher
from mra.services.privacy import ErasedHolder, PersonalData, holder_pseudonym, is_sealed, pseudonym_key
from mra.services.privacy import fold as _fold
from mra.services.privacy import keyed as _keyed
from mra.services.register import RegisterConnector
from mra.services.store import SqliteStore

__all__ = [
    "CST",
    "DISCLAIMER",
    "DOCUMENT_TYPES",
    "PUBLISHER",
    "SETTINGS",
    "Intake",
    "Platform",
    "PlatformPaths",
    "PlatformSettings",
    "PlatformStats",
    "PlatformStore",
    "RequestIn",
    "Submission",
    "add_working_days",
    "check_code",
    "credit_code_problem",
    "holder_key",
    "holder_pseudonym",
    "load_settings",
    "mask_name",
    "prepare",
    "publish_submission",
    "request_status",
    "revoke_code",
]

log = logging.getLogger(__name__)

NOTICE = "京人社事业发〔2025〕11号"
DISCLAIMER = (
    "核查结果仅对证书的真实性进行确认,不对证书持有人真实资历及实际水平进行确认。"
    "The result confirms the certificate's authenticity only, not the holder's actual qualifications or "
    f"competence ({NOTICE} 附件2 四)."
)
PUBLISHER = "verification-platform"
CST = timezone(timedelta(hours=8), "CST")
"""China Standard Time: working days and dates of a request are counted in Beijing."""

DOCUMENT_TYPES = {
    "passport": "passport",
    "id_card": "居民身份证 (mainland resident identity card)",
    "hk_macao_pass": "港澳居民来往内地通行证",
    "taiwan_pass": "台湾居民来往大陆通行证",
    "residence_permit": "港澳台居民居住证 or 外国人永久居留身份证",
}
"""Identity documents a request may name; the holder id is derived from the document."""

_FINAL = ("refused", "verified", "rejected")


# --- settings -------------------------------------------------------------------------------------------------

_SILENT = f"not published by the notice ({NOTICE} 附件2 gives no figure or format); mra's default"

SETTINGS: tuple[PolicySetting, ...] = (
    PolicySetting(
        key="mra.verification.turnaround_working_days",
        default=5,
        description="working days (Mon–Fri, China Standard Time) the platform expects a check to take",
        why=f"附件2 二 says the platform tells the employer the time needed, per issuer; {_SILENT}",
    ),
    PolicySetting(
        key="mra.verification.turnaround_by_issuer",
        default=None,
        description="per-issuer turnaround in working days, by any of the issuer's names (settings file)",
        why=f"附件2 二: the time depends on the contact with the issuing body; {_SILENT}",
    ),
    PolicySetting(
        key="mra.verification.issuer_timeout_s",
        default=10.0,
        description="seconds one call to an issuer connector may take before it counts as unreachable",
        why="an operational choice the notice does not make",
    ),
    PolicySetting(
        key="mra.verification.issuer_attempts",
        default=3,
        description="calls per check before the request is deferred (backoff doubles from issuer_backoff_s)",
        why="an operational choice the notice does not make",
    ),
    PolicySetting(
        key="mra.verification.retry_after_s",
        default=300.0,
        description="delay before a deferred request is retried by a running platform (doubling, capped)",
        why="an operational choice the notice does not make",
    ),
    PolicySetting(
        key="mra.verification.code_payload",
        default=12,
        description="random Crockford base32 symbols in a verification code (5 bits each), before the check symbol",
        why=f"附件2 三 names a 验证编码 but no format; {_SILENT}",
    ),
)


class PlatformSettings(BaseModel):
    """The platform's configuration: ``platform/settings.json`` in the state dir, then command-line options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    turnaround_working_days: int = Field(5, ge=0, le=365)
    turnaround_by_issuer: dict[str, int] = Field(default_factory=dict)
    issuer_timeout_s: float = Field(10.0, gt=0)
    issuer_attempts: int = Field(3, ge=1, le=10)
    issuer_backoff_s: float = Field(0.5, ge=0)
    retry_after_s: float = Field(300.0, ge=0)
    retry_max_s: float = Field(6 * 3600.0, ge=0)
    issuer_register: Path | None = Field(
        None, description="the issuer register file; default platform/issuer-register.json"
    )
    code: CodeFormat = CodeFormat()

    def value(self, key: str) -> object:
        """The current value of one of :data:`SETTINGS`, by its key."""
        name = key.removeprefix("mra.verification.")
        if name == "code_payload":
            return self.code.payload
        return self.model_dump(mode="json")[name]

    def connector_settings(self) -> dict[str, object]:
        """What a plugin's ``mra_issuer_connector`` sees."""
        return {
            "mra.verification.issuer_timeout_s": self.issuer_timeout_s,
            "mra.verification.issuer_attempts": self.issuer_attempts,
            "mra.verification.issuer_register": str(self.issuer_register) if self.issuer_register else None,
        }


@dataclass(frozen=True)
class PlatformPaths:
    """Where the platform keeps its files, under the state dir."""

    state_dir: Path

    @property
    def root(self) -> Path:
        return self.state_dir / "platform"

    @property
    def key(self) -> Path:
        return self.root / "holder.key"

    @property
    def intake(self) -> Path:
        return self.root / "intake.db"

    @property
    def read_model(self) -> Path:
        return self.root / "platform.db"

    @property
    def settings(self) -> Path:
        return self.root / "settings.json"

    @property
    def register(self) -> Path:
        return self.root / "issuer-register.json"

    def drop_read_model(self) -> None:
        """Delete the read model (a cache of the topic): the next run rebuilds it by replay."""
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.read_model) + suffix).unlink(missing_ok=True)


def load_settings(state_dir: Path, **overrides: Any) -> PlatformSettings:
    """The settings file (if any) with ``overrides`` (those not None) on top."""
    path = PlatformPaths(state_dir).settings
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise MraError(f"platform settings {path} cannot be read: {e}") from None
        if not isinstance(data, dict):
            raise MraError(f"platform settings {path} must be a JSON object")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = PlatformSettings.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise MraError(f"platform settings: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    if settings.issuer_register is None:
        settings = settings.model_copy(update={"issuer_register": PlatformPaths(state_dir).register})
    return settings


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


# --- the request ----------------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class EmployerIn(_In):
    name: str = Field(min_length=1)
    credit_code: str = Field(min_length=1, description="统一社会信用代码, 18 characters (GB 32100-2015)")
    region: str = Field(min_length=1)


class HolderIn(_In):
    name: str = Field(min_length=1)
    nationality: str = Field(min_length=1, description="ISO country code; HK, MO, TW for those residents")
    birth_date: date
    document_type: str = Field(min_length=1)
    document_number: str = Field(min_length=1)


class CertificateIn(_In):
    entry: str = Field(min_length=1, description="catalogue entry id (BJ2025-I-139) or short form (I-139)")
    issuer: str = Field(min_length=1)
    number: str = Field(min_length=1)
    issued: date
    expires: date | None = Field(None, description="null where the certificate does not expire")


class RequestIn(_In):
    """What an employer submits (附件2 一)."""

    reference: str = Field("", description="the employer's own reference; a different one makes a new request")
    employer: EmployerIn
    holder: HolderIn
    certificate: CertificateIn


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a unified social credit code (GB 32100-2015: 18 characters, mod-31 check), or None."""
    text = code.strip().upper()
    if len(text) != 18:
        return f"employer.credit_code must have 18 characters (统一社会信用代码), got {len(text)}"
    bad = sorted({c for c in text if c not in _USCC_ALPHABET})
    if bad:
        return f"employer.credit_code contains {', '.join(map(repr, bad))}, which GB 32100-2015 does not use"
    total = sum(_USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(text[:17]))
    if _USCC_ALPHABET[(31 - total % 31) % 31] != text[17]:
        return "employer.credit_code fails its GB 32100-2015 check character: a character is mistyped"
    return None


def _reasons(error: ValidationError) -> list[str]:
    """One line per problem; input values are never echoed (they may be personal)."""
    out: list[str] = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"])
        if e["type"] == "missing":
            out.append(f"missing field {where}")
        elif e["type"] == "extra_forbidden":
            out.append(f"unknown field {where}")
        elif e["type"] == "string_too_short":
            out.append(f"{where} is empty")
        else:
            out.append(f"{where}: {e['msg']}")
    return out


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` moved ``days`` working days (Mon–Fri in China Standard Time) ahead, same clock time.

    Public holidays and 调休 make-up days are not counted out: no calendar of them is loaded.
    """
    local = start.astimezone(CST)
    while days > 0:
        local += timedelta(days=1)
        if local.weekday() < 5:
            days -= 1
    return local.astimezone(UTC)


def turnaround(entry: CatalogueEntry, issuer: str, settings: PlatformSettings) -> tuple[int, str]:
    """Working days the check should take for this issuer, and where that figure comes from."""
    by_name = {normalise(k): (k, v) for k, v in settings.turnaround_by_issuer.items()}
    for name in (issuer, *entry.issuer_names()):
        hit = by_name.get(normalise(name))
        if hit is not None:
            return hit[1], (
                f"{hit[1]} working days: mra.verification.turnaround_by_issuer[{hit[0]!r}] in the platform's settings"
            )
    days = settings.turnaround_working_days
    if "turnaround_working_days" in settings.model_fields_set:
        return days, f"{days} working days: mra.verification.turnaround_working_days in the platform's settings"
    return days, f"{days} working days: {_SILENT} (mra.verification.turnaround_working_days)"


@dataclass
class Review:
    reasons: list[str] = field(default_factory=list)
    edition: CatalogueEdition | None = None
    entry: CatalogueEntry | None = None


def review(request: RequestIn, registry: Registry, on: date) -> Review:
    """Every reason to refuse ``request`` on day ``on`` (China Standard Time), and the entry it names."""
    out = Review()
    cert = request.certificate
    try:
        out.edition, out.entry = registry.find_entry(cert.entry)
    except NotFound:
        out.reasons.append(
            f"unknown catalogue entry {cert.entry!r}: ids look like BJ2025-I-139 or I-139 (see `mra catalogue list`)"
        )
    entry, edition = out.entry, out.edition
    if entry is not None and edition is not None:
        lst = next((x for x in edition.lists if x.code == entry.list), None)
        if lst is not None and lst.designates:
            out.reasons.append(
                f"{entry.id} is a designation in list {lst.code} ({lst.name_zh}), not a certificate: "
                f"submit the certificate under {entry.designates}"
            )
        names = entry.issuer_names()
        if normalise(cert.issuer) not in {normalise(n) for n in names}:
            out.reasons.append(
                f"issuer {cert.issuer!r} is not an issuer of {entry.id} ({entry.name}); "
                f"the catalogue names {' / '.join(names) or entry.issuer_text}"
            )
    if cert.issued > on:
        out.reasons.append(f"certificate.issued ({cert.issued}) is after the day of the request ({on})")
    if cert.expires is not None:
        if cert.expires < cert.issued:
            out.reasons.append(f"certificate.expires ({cert.expires}) is before certificate.issued ({cert.issued})")
        elif cert.expires < on:
            out.reasons.append(f"the certificate expired on {cert.expires}")
    covered = {normalise(r) for j in registry.jurisdictions.values() for r in j.regions}
    if normalise(request.employer.region) not in covered:
        out.reasons.append(
            f"the holder has no employer in a covered region: employer.region {request.employer.region!r} is not "
            f"a region of a loaded jurisdiction ({', '.join(sorted(covered)) or 'none loaded'})"
        )
    problem = credit_code_problem(request.employer.credit_code)
    if problem:
        out.reasons.append(problem)
    holder = request.holder
    try:
        holder_category(holder.nationality)
    except ValueError:
        out.reasons.append("holder.nationality must be an ISO country code such as CN, HK, MO, TW, GB")
    if holder.birth_date >= on:
        out.reasons.append("holder.birth_date is not before the day of the request")
    if holder.document_type not in DOCUMENT_TYPES:
        out.reasons.append(f"holder.document_type must be one of {', '.join(DOCUMENT_TYPES)}")
    return out


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
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # created owner-only before SQLite opens it: SQLite gives its -wal and -shm files the same mode
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(self.SCHEMA)

    def close(self) -> None:
        self.db.close()

    def get(self, request_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute("SELECT * FROM intake WHERE request_id = ?", (request_id,)).fetchone()
        return row

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
            reasons = _reasons(e)
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
                certificate_number=cert.number,
                issued=cert.issued,
                expires=cert.expires,
                personal={"name_hmac": personal.keyed(hid, "name", _fold(holder.name))},
            ),
        ),
        (
            stable_id("holders.holder_registered", hid),
            HolderRegistered(
                holder_id=hid,
                category=holder_category(holder.nationality),
                personal={"birth_date": personal.seal(hid, "birth_date", holder.birth_date.isoformat())},
            ),
        ),
        (
            stable_id("verification.accepted", rid),
            VerificationAccepted(
                request_id=rid, holder_id=hid, expected_by=sub.expected_by, turnaround_source=sub.turnaround_source
            ),
        ),
    ]


def publish_submission(sub: Submission, publisher: Publisher) -> None:
    """Publish the submission's events, in order, at its submission time; flush before returning."""
    for event_id, data in sub.events:
        publisher.publish(data, id=event_id, time=sub.submitted_at)
    publisher.flush()


# --- the read model -------------------------------------------------------------------------------------------


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
    CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, request_id TEXT NOT NULL,
        type TEXT NOT NULL, time TEXT NOT NULL, body TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0
    );
    """

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self.db.execute("PRAGMA busy_timeout = 30000")

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

    def counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, count(*) AS n FROM requests GROUP BY status ORDER BY status")
        return {r["status"] or "unknown": int(r["n"]) for r in rows}

    def revoked_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM codes WHERE revoked = 1").fetchone()[0])

    # the outbox ------------------------------------------------------------------------------------------------
    def enqueue(self, db: sqlite3.Connection, event_id: str, request_id: str, data: Event, at: datetime) -> None:
        db.execute(
            "INSERT OR IGNORE INTO outbox (event_id, request_id, type, time, body) VALUES (?,?,?,?,?)",
            (event_id, request_id, data.ce_type(), at.isoformat(), data.model_dump_json()),
        )

    def unsent(self) -> list[sqlite3.Row]:
        return list(self.db.execute("SELECT * FROM outbox WHERE sent = 0 ORDER BY seq"))

    def mark_sent(self, seqs: list[int]) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE outbox SET sent = 1 WHERE seq = ?", [(s,) for s in seqs])


# --- the service ----------------------------------------------------------------------------------------------


@dataclass
class PlatformStats:
    consumed: int = 0
    asked: int = 0
    verified: int = 0
    rejected: int = 0
    deferred: int = 0
    relayed: int = 0
    open: int = 0
    idle: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _call(connector: IssuerConnector, claim: CertificateClaim, timeout: float) -> IssuerAnswer:
    """One call, cut off at ``timeout``: a connector that hangs or raises makes the issuer unreachable."""
    box: list[IssuerAnswer | BaseException] = []

    def target() -> None:
        try:
            box.append(connector.check(claim, timeout))
        except BaseException as e:
            box.append(e)

    worker = threading.Thread(target=target, name=f"issuer-{connector.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail=f"{connector.name}: no answer within {timeout:g}s")
    answer = box[0]
    if isinstance(answer, BaseException):
        return IssuerAnswer(
            status=IssuerStatus.UNREACHABLE, detail=f"{connector.name} failed: {type(answer).__name__}: {answer}"
        )
    if not isinstance(answer, IssuerAnswer):
        return IssuerAnswer(
            status=IssuerStatus.UNREACHABLE, detail=f"{connector.name} answered {type(answer).__name__}"
        )
    return answer


class Platform:
    """The running platform: folds the verification topic, asks issuers, publishes results."""

    def __init__(
        self,
        transport: Transport,
        topics: Topics,
        state_dir: Path,
        *,
        registry: Registry | None = None,
        settings: PlatformSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        poll_ms: int = 200,
    ) -> None:
        self.paths = PlatformPaths(state_dir)
        self.settings = settings or load_settings(state_dir)
        self.registry = registry or load_registry(config=PluginConfig(state_dir=state_dir))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = PlatformStore(self.paths.read_model)
        self.intake = Intake(self.paths.intake)
        self.key = holder_key(self.paths)
        self.personal = PersonalData.at(state_dir)
        self.publisher = open_publisher(state_dir, transport, topics, PUBLISHER)
        self.guard = consumer_guard(state_dir, transport, topics, self.paths.root / "checkpoints.db")
        self.processor = Processor(
            transport,
            topics,
            ["verification"],
            self.guard.wrap(self.store),
            None,
            poll_ms=poll_ms,
            validate=self.guard.validate,
        )
        self.stop_event = self.processor.stop_event
        self._asked: set[str] = set()

    def close(self) -> None:
        self.processor.close()
        self.store.close()
        self.intake.close()
        self.personal.close()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, until_idle: bool = False, timeout: float | None = None) -> PlatformStats:
        """Consume, ask and publish until stopped, or with ``until_idle`` until nothing is left to do now.

        Every open request is asked once per run (a deferred one again, whatever its retry time); a running
        platform asks a deferred request again when its retry time comes.
        """
        stats = PlatformStats()
        started = time.monotonic()
        stats.relayed += self.relay()
        while not self.stop_event.is_set():
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                stats.errors.append(f"stopped after {timeout:g}s without becoming idle")
                break
            consumed = self.processor.run(until_idle=True, timeout=left)
            stats.consumed += consumed.applied
            if not consumed.idle:
                continue
            asked = self.work(stats, retry_due=not until_idle)
            if asked == 0 and until_idle:
                stats.idle = True
                break
        stats.open = len(self.store.open_requests())
        stats.seconds = time.monotonic() - started
        return stats

    def work(self, stats: PlatformStats, retry_due: bool = True) -> int:
        """Ask about every open request not yet asked in this run (and, with ``retry_due``, every one due again)."""
        now = self.clock()
        asked = 0
        for row in self.store.open_requests():
            if self.stop_event.is_set():
                break
            due = retry_due and row["retry_at"] is not None and datetime.fromisoformat(row["retry_at"]) <= now
            if row["request_id"] in self._asked and not due:
                continue
            self._asked.add(row["request_id"])
            outcome = self.ask(row)
            asked += 1
            stats.asked += 1
            setattr(stats, outcome, getattr(stats, outcome) + 1)
            stats.relayed += self.relay()
        return asked

    # one request -----------------------------------------------------------------------------------------------
    def ask(self, row: sqlite3.Row) -> str:
        """Ask the issuer about one open request and put the result in the outbox; say which it was."""
        try:
            edition, entry = self.registry.find_entry(row["entry_id"])
        except NotFound:
            return self._defer(row, f"catalogue entry {row['entry_id']} is not in the loaded catalogues")
        taken = self.intake.get(row["request_id"])
        if taken is None or not taken["name"]:
            return self._defer(row, "the holder's details are not in this platform's intake store")
        try:
            name = self.personal.open(row["holder_id"], "name", taken["name"])
            checks = (self.personal.keyed(row["holder_id"], "name", _fold(name)), _keyed(self.key, "name", _fold(name)))
        except ErasedHolder:
            answer = IssuerAnswer(status=IssuerStatus.NOT_FOUND, detail="the holder's personal data was erased")
            return self._rejected(row, answer, reason="erased")
        if row["name_hmac"] and not any(hmac.compare_digest(row["name_hmac"], c) for c in checks):
            return self._defer(row, "the intake store's record does not match the request on the topic")
        claim = CertificateClaim(
            entry_id=entry.id,
            issuer=row["issuer"],
            certificate_number=row["certificate_number"],
            holder_name=name,
            issued=date.fromisoformat(row["issued"]) if row["issued"] else None,
            expires=date.fromisoformat(row["expires"]) if row["expires"] else None,
        )
        answer = self._ask_issuer(entry, claim)
        if answer.status is IssuerStatus.GENUINE:
            return self._verified(row, edition, entry)
        if answer.status is IssuerStatus.UNREACHABLE:
            return self._defer(row, answer.detail or "the issuer could not be reached")
        return self._rejected(row, answer)

    def connector(self, entry: CatalogueEntry) -> IssuerConnector:
        """The plugin connector that serves ``entry``, else mra's file-backed register."""
        plugged = self.registry.issuer_connector(entry, self.settings.connector_settings())
        return plugged if plugged is not None else RegisterConnector(self.settings.issuer_register, entry)

    def _ask_issuer(self, entry: CatalogueEntry, claim: CertificateClaim) -> IssuerAnswer:
        try:
            connector = self.connector(entry)
        except Exception as e:
            return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail=f"no connector: {type(e).__name__}: {e}")
        s = self.settings
        answer = IssuerAnswer(status=IssuerStatus.UNREACHABLE)
        for attempt in range(s.issuer_attempts):
            if attempt and self.stop_event.wait(s.issuer_backoff_s * 2 ** (attempt - 1)):
                break
            answer = _call(connector, claim, s.issuer_timeout_s)
            if answer.status is not IssuerStatus.UNREACHABLE:
                return answer
            log.info("issuer %s unreachable (attempt %d): %s", connector.name, attempt + 1, answer.detail)
        return answer

    def _new_code(self) -> str:
        while True:
            printed = new_code(self.settings.code)
            if not self.store.code_taken(read_code(printed, self.settings.code).compact):
                return printed

    def _verified(self, row: sqlite3.Row, edition: CatalogueEdition, entry: CatalogueEntry) -> str:
        now, rid = self.clock(), row["request_id"]
        data = CertificateVerified(
            request_id=rid,
            holder_id=row["holder_id"],
            certificate_key=stable_id(
                "certificate", entry.id, normalise(entry.issuer_text), _fold(row["certificate_number"])
            ),
            entry_id=entry.id,
            issuer=row["issuer"],
            verification_code=self._new_code(),
            verified_at=now,
            verified_by=edition.jurisdiction,
            expires=date.fromisoformat(row["expires"]) if row["expires"] else None,
            disclaimer=DISCLAIMER,
        )
        with self.store.transaction() as db:
            self.store.enqueue(db, stable_id("verification.certificate_verified", rid), rid, data, now)
            db.execute("UPDATE requests SET answered = 1 WHERE request_id = ?", (rid,))
        return "verified"

    def _rejected(self, row: sqlite3.Row, answer: IssuerAnswer, reason: str | None = None) -> str:
        now, rid = self.clock(), row["request_id"]
        data = VerificationRejected(
            request_id=rid, holder_id=row["holder_id"], reason=reason or answer.status.value, detail=answer.detail
        )
        with self.store.transaction() as db:
            self.store.enqueue(db, stable_id("verification.rejected", rid), rid, data, now)
            db.execute("UPDATE requests SET answered = 1 WHERE request_id = ?", (rid,))
        return "rejected"

    def _defer(self, row: sqlite3.Row, detail: str) -> str:
        now, rid = self.clock(), row["request_id"]
        attempt = int(row["attempts"]) + 1
        delay = min(self.settings.retry_after_s * 2 ** (attempt - 1), self.settings.retry_max_s)
        retry_at = now + timedelta(seconds=delay)
        data = VerificationDeferred(
            request_id=rid, holder_id=row["holder_id"], attempt=attempt, retry_at=retry_at, detail=detail
        )
        with self.store.transaction() as db:
            self.store.enqueue(db, stable_id("verification.deferred", rid, attempt), rid, data, now)
            db.execute(
                "UPDATE requests SET attempts = ?, retry_at = ? WHERE request_id = ?",
                (attempt, retry_at.isoformat(), rid),
            )
        return "deferred"

    def relay(self) -> int:
        """Publish what the outbox holds, in order, under the ids and times it was written with."""
        rows = self.store.unsent()
        if not rows:
            return 0
        for r in rows:
            cls, body = upcast(r["type"], json.loads(r["body"]))
            self.publisher.publish(cls.model_validate(body), id=r["event_id"], time=datetime.fromisoformat(r["time"]))
        self.publisher.flush()
        self.store.mark_sent([int(r["seq"]) for r in rows])
        return len(rows)


# --- what the command line asks -------------------------------------------------------------------------------


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
    """What the employer sees of a request: its status and result, and nothing personal but a masked name."""
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

    The event id is derived from the code, so revoking twice is one revocation. The code checks as revoked once
    the platform has read the event.
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
    publish(data, stable_id("verification.certificate_revoked", reading.compact), now)
    return out | {"status": "revoked", "revoked_at": now.isoformat(), "published": True}
