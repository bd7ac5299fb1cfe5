"""What the verification platform asks an issuer, and what an issuer can answer."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

__all__ = ["CertificateClaim", "IssuerAnswer", "IssuerConnector", "IssuerStatus"]


class IssuerStatus(StrEnum):
    GENUINE = "genuine"
    NOT_FOUND = "not_found"
    MISMATCH = "mismatch"
    FALSE_MATERIAL = "false_material"
    """The issuer says the certificate is not one it issued (附件2 四: 虚假材料)."""
    UNREACHABLE = "unreachable"


class CertificateClaim(BaseModel):
    """The certificate data an employer submitted, as the issuer is asked about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_id: str
    issuer: str
    certificate_number: str
    holder_name: str
    issued: date | None = None
    expires: date | None = None


class IssuerAnswer(BaseModel):
    """An issuer's answer; ``unreachable`` keeps the request open to be asked again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: IssuerStatus
    detail: str = ""


@runtime_checkable
class IssuerConnector(Protocol):
    """Checks certificates with one issuing body. May block up to ``timeout`` seconds."""

    name: str

    def check(self, claim: CertificateClaim, timeout: float) -> IssuerAnswer: ...
