"""The web door's settings, each with a stated default, read from ``web/settings.json`` in the state dir.

The notice (附件2 三) says anyone may check a verification code, but not what a check shows beyond the result,
nor how often one client may ask: both are settings here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mra.core.errors import MraError

__all__ = ["CHECK_FIELDS", "WebSettings", "load_web_settings"]

CheckField = Literal["entry", "issuer", "verified", "expires", "holder"]
CHECK_FIELDS: tuple[CheckField, ...] = ("entry", "issuer", "verified", "expires", "holder")


class WebSettings(BaseModel):
    """What ``mra serve`` is configured with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check_fields: tuple[CheckField, ...] = Field(
        CHECK_FIELDS,
        description="what a public check shows beyond the status: the catalogue entry, the issuer, the verification "
        "date, the certificate's expiry and the holder's masked name (default: all five; an empty list shows the "
        "status only)",
    )
    check_rate_per_minute: int = Field(
        60, ge=1, le=100_000, description="public checks one client may make per minute, on average (default 60)"
    )
    check_burst: int = Field(
        60, ge=1, le=100_000, description="public checks one client may make at once before the rate applies (60)"
    )
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest request body accepted (default 64 KiB)"
    )
    public_url: str | None = Field(
        None, description="the address the QR code on a result opens (default: the address the page was served at)"
    )
    trust_forwarded_for: bool = Field(
        False,
        description="rate-limit by the first X-Forwarded-For address (only behind a proxy that sets it; default "
        "off: by the connecting address)",
    )


def load_web_settings(state_dir: Path) -> WebSettings:
    path = state_dir / "web" / "settings.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return WebSettings()
    try:
        return WebSettings.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as e:
        raise MraError(f"{path}: not valid web settings: {str(e).splitlines()[0]}") from None
