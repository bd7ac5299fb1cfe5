"""An employer's verification request (附件2 一) and every reason to refuse it (附件2 二).

The request is read with pydantic and then reviewed against the loaded catalogues and jurisdictions: a refused
request gets all its reasons at once. No reason echoes an input value (it may be personal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mra.core.catalogue import normalise
from mra.core.errors import NotFound
from mra.core.models import CatalogueEdition, CatalogueEntry, holder_category
from mra.core.plugins import Registry
from mra.i18n.places import PROVINCES, Unknown, country_name, place_names, resolve_country
from mra.services.platform.settings import CST, DOCUMENT_TYPES

__all__ = [
    "CertificateIn",
    "EmployerIn",
    "HolderIn",
    "RequestIn",
    "Review",
    "add_working_days",
    "credit_code_problem",
    "review",
    "validation_reasons",
]


NAME_CHARS = 200
"""The longest name (of a holder, an employer, an issuer) a request may carry."""
NUMBER_CHARS = 64
"""The longest document or certificate number."""
TEXT_CHARS = 500
"""The longest of any other text field."""


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True, str_max_length=TEXT_CHARS)


class EmployerIn(_In):
    name: str = Field(min_length=1, max_length=NAME_CHARS)
    credit_code: str = Field(min_length=1, description="统一社会信用代码, 18 characters (GB 32100-2015)")
    region: str = Field(min_length=1, description="region code, Chinese name or abbreviation (beijing, 北京, 京)")

    @field_validator("region")
    @classmethod
    def _region_code(cls, value: str) -> str:
        """北京, 北京市 and 京 are beijing; anything else is kept as written for the review to judge."""
        return place_names(PROVINCES).get(value.strip().casefold(), value)


class HolderIn(_In):
    name: str = Field(min_length=1, max_length=NAME_CHARS)
    nationality: str = Field(
        min_length=1, description="ISO 3166 code or country name (GB, GBR, 英国); HK, MO, TW for those residents"
    )
    residence: str | None = Field(
        None, description="mainland, HK, MO, TW or abroad; omitted: what the nationality alone stands for"
    )
    birth_date: date
    document_type: str = Field(min_length=1)
    document_number: str = Field(min_length=1, max_length=NUMBER_CHARS)

    @field_validator("nationality")
    @classmethod
    def _iso_code(cls, value: str) -> str:
        """The alpha-2 code of a known country; anything else is kept as written for the review to refuse."""
        try:
            return resolve_country(value)
        except Unknown:
            return value


class CertificateIn(_In):
    entry: str = Field(min_length=1, description="catalogue entry id (BJ2025-I-139) or short form (I-139)")
    issuer: str = Field(min_length=1, max_length=NAME_CHARS)
    number: str = Field(min_length=1, max_length=NUMBER_CHARS)
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


def validation_reasons(error: ValidationError) -> list[str]:
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
        holder_category(resolve_country(holder.nationality))
    except Unknown as e:
        near = " / ".join(f"{c} ({country_name(c, 'zh_CN')})" for c in e.suggestions)
        out.reasons.append(
            f"holder.nationality must be an ISO country code such as CN, HK, MO, TW, GB, or a country name such as "
            f"英国; {holder.nationality!r} is neither" + (f" (did you mean {near}?)" if near else "")
        )
    except ValueError:
        out.reasons.append("holder.nationality must be an ISO country code such as CN, HK, MO, TW, GB")
    else:
        if holder.residence is not None:
            try:
                holder_category(resolve_country(holder.nationality), holder.residence)
            except ValueError as e:
                out.reasons.append(f"holder.residence: {e}")
    if holder.birth_date >= on:
        out.reasons.append("holder.birth_date is not before the day of the request")
    if holder.document_type not in DOCUMENT_TYPES:
        out.reasons.append(f"holder.document_type must be one of {', '.join(DOCUMENT_TYPES)}")
    return out
