"""Policy settings: the questions the source leaves open, named rather than answered by invention."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PolicySetting"]

SettingValue = str | int | float | bool | None


class PolicySetting(BaseModel):
    """One open question, its default, and why it is a setting."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=r"^[a-z]{2,4}\.[a-z0-9_.]+$")
    default: SettingValue
    description: str
    why: str = Field(description="what the source says, or that it is silent")
    choices: tuple[SettingValue, ...] = ()
