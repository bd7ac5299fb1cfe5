"""The verification platform's constants, settings and file layout (京人社事业发〔2025〕11号 附件2).

Where 附件2 gives no figure (the turnaround, timeouts, the code format), the value is a :class:`PolicySetting`
with mra's default, read from ``platform/settings.json`` in the state dir and then from command-line options.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mra.core.catalogue import normalise
from mra.core.errors import MraError
from mra.core.models import CatalogueEntry
from mra.core.settings import PolicySetting
from mra.services.codes import CodeFormat

__all__ = [
    "CST",
    "DISCLAIMER",
    "DOCUMENT_TYPES",
    "NOTICE",
    "PUBLISHER",
    "SETTINGS",
    "PlatformPaths",
    "PlatformSettings",
    "keep_register",
    "load_settings",
    "turnaround",
]

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


def keep_register(state_dir: Path, register: Path) -> Path:
    """Keep ``register`` (made absolute) as the issuer register in the settings file, so every later run of
    the platform (``mra platform run``, ``mra up``) reads it without being told again."""
    path = register.expanduser().resolve()
    if not path.is_file():
        raise MraError(f"issuer register {register}: no such file")
    settings = PlatformPaths(state_dir).settings
    data: dict[str, Any] = {}
    if settings.exists():
        load_settings(state_dir)  # refuse to rewrite a settings file that does not read
        data = json.loads(settings.read_text(encoding="utf-8"))
    if data.get("issuer_register") != str(path):
        data["issuer_register"] = str(path)
        settings.parent.mkdir(parents=True, exist_ok=True)
        tmp = settings.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        tmp.replace(settings)
    return path


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
