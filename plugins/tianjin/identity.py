"""Who the Tianjin plugin speaks for."""

from __future__ import annotations

from mra.core.models import Jurisdiction

__all__ = ["JURISDICTION"]

JURISDICTION = Jurisdiction(
    code="tianjin",
    prefix="tj",
    name_zh="天津市",
    name_en="Tianjin",
    regions=("tianjin",),
)
