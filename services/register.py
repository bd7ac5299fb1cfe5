"""mra's file-backed issuer connector: a local register of genuine certificates, per issuer.

It answers as an issuer's public register would: the certificate number is there (and the holder and dates match),
is there with other details, is marked void, or is not there. It is the fallback where no plugin provides a
connector for a catalogue row (``mra_issuer_connector``). A register that cannot be read, or that holds no section
for the issuer, makes the issuer *unreachable*, never "not found": a missing register says nothing about a
certificate, so the request stays open.

The register is JSON (or CSV with the columns ``issuer,number,holder,entry,issued,expires,status``, the issuer's
names joined by ``|``)::

    {"source": "...", "issuers": [{"names": ["ACCA", "特许公认会计师公会"], "certificates": [
        {"number": "...", "holder": "...", "entry": "BJ2025-I-139", "issued": "2019-06-30",
         "expires": null, "status": "valid"}]}]}

``status`` is ``valid`` or ``void`` (the issuer says it never issued that number: false material).
"""

from __future__ import annotations

import csv
import threading
import unicodedata
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mra.core.connectors import CertificateClaim, IssuerAnswer, IssuerStatus
from mra.core.models import CatalogueEntry

__all__ = [
    "CSV_COLUMNS",
    "Register",
    "RegisterCertificate",
    "RegisterConnector",
    "RegisterIssuer",
    "RegisterUnavailable",
    "load_register",
]

CSV_COLUMNS = ("issuer", "number", "holder", "entry", "issued", "expires", "status")


class RegisterUnavailable(Exception):
    """The register file cannot be read or is not a register: the issuer counts as unreachable."""


class RegisterCertificate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: str = Field(min_length=1)
    holder: str = Field(min_length=1)
    entry: str | None = Field(None, description="the catalogue entry id the certificate belongs to, if known")
    issued: date | None = None
    expires: date | None = None
    status: Literal["valid", "void"] = "valid"


class RegisterIssuer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    names: tuple[str, ...] = Field(min_length=1, description="the issuer's names, any of which identifies it")
    certificates: tuple[RegisterCertificate, ...] = ()


class Register(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field("", description="where the register's data comes from")
    issuers: tuple[RegisterIssuer, ...] = ()


def _fold(text: str) -> str:
    """NFKC, case-folded, whitespace dropped: how names and numbers are compared."""
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def _csv_register(text: str) -> Register:
    rows = list(csv.DictReader(text.splitlines()))
    if rows and set(CSV_COLUMNS) - set(rows[0]):
        missing = ", ".join(sorted(set(CSV_COLUMNS) - set(rows[0])))
        raise RegisterUnavailable(f"register CSV lacks the column(s) {missing}")
    issuers: dict[tuple[str, ...], list[RegisterCertificate]] = {}
    for i, row in enumerate(rows, start=2):
        names = tuple(n.strip() for n in (row["issuer"] or "").split("|") if n.strip())
        try:
            cert = RegisterCertificate.model_validate(
                {k: (row[k] or "").strip() or None for k in CSV_COLUMNS if k != "issuer"}
                | {"status": (row["status"] or "").strip() or "valid"}
            )
        except ValidationError as e:
            raise RegisterUnavailable(f"register CSV line {i}: {e.errors()[0]['msg']}") from None
        if not names:
            raise RegisterUnavailable(f"register CSV line {i}: no issuer name")
        issuers.setdefault(names, []).append(cert)
    return Register(issuers=tuple(RegisterIssuer(names=n, certificates=tuple(c)) for n, c in issuers.items()))


_CACHE: dict[Path, tuple[tuple[int, int], Register]] = {}
_CACHE_LOCK = threading.Lock()


def load_register(path: Path) -> Register:
    """Read a register (JSON, or CSV by suffix), re-reading it when the file changes."""
    try:
        stat = path.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        with _CACHE_LOCK:
            cached = _CACHE.get(path)
        if cached is not None and cached[0] == version:
            return cached[1]
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RegisterUnavailable(f"issuer register {path} cannot be read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise RegisterUnavailable(f"issuer register {path} is not UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        register = _csv_register(text)
    else:
        try:
            register = Register.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "document"
            raise RegisterUnavailable(f"issuer register {path} is not a register: {where}: {first['msg']}") from None
    with _CACHE_LOCK:
        _CACHE[path] = (version, register)
    return register


class RegisterConnector:
    """Checks one catalogue row's certificates against the local register file."""

    name = "mra-register"

    def __init__(self, path: Path | None, entry: CatalogueEntry) -> None:
        self.path = path
        self.entry = entry

    def check(self, claim: CertificateClaim, timeout: float) -> IssuerAnswer:
        """Answer from the file (reading a local file needs no timeout)."""
        if self.path is None:
            return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail="no issuer register is configured")
        try:
            register = load_register(self.path)
        except RegisterUnavailable as e:
            return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail=str(e))
        wanted = {_fold(n) for n in (*self.entry.issuer_names(), claim.issuer)}
        sections = [i for i in register.issuers if any(_fold(n) in wanted for n in i.names)]
        if not sections:
            return IssuerAnswer(
                status=IssuerStatus.UNREACHABLE, detail=f"the register holds no section for issuer {claim.issuer!r}"
            )
        number = _fold(claim.certificate_number)
        found = [c for s in sections for c in s.certificates if _fold(c.number) == number]
        issuer = sections[0].names[0]
        if not found:
            return IssuerAnswer(status=IssuerStatus.NOT_FOUND, detail=f"the number is not in {issuer}'s register")
        cert = found[0]
        if cert.status == "void":
            return IssuerAnswer(
                status=IssuerStatus.FALSE_MATERIAL, detail=f"{issuer}'s register marks the number as not issued by it"
            )
        differs = []
        if cert.entry is not None and cert.entry.strip().upper() != claim.entry_id.upper():
            differs.append("catalogue entry")
        if _fold(cert.holder) != _fold(claim.holder_name):
            differs.append("holder's name")
        if claim.issued is not None and cert.issued is not None and claim.issued != cert.issued:
            differs.append("issue date")
        if claim.expires != cert.expires and (claim.expires is not None or cert.expires is not None):
            differs.append("expiry date")
        if differs:
            return IssuerAnswer(
                status=IssuerStatus.MISMATCH, detail=f"the {', '.join(differs)} differ(s) from {issuer}'s register"
            )
        return IssuerAnswer(status=IssuerStatus.GENUINE, detail=f"found in {issuer}'s register")
