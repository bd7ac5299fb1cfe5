"""Who the Hebei plugin speaks for.

The region is the province. The areas of the China (Hebei) Pilot Free Trade Zone (雄安, 正定, 曹妃甸,
大兴机场) are not separate regions: no source found gives them a treatment of their own for holders of the
Beijing catalogue, and an employer there is an employer in Hebei.
"""

from __future__ import annotations

from mra.core.models import Jurisdiction

__all__ = ["JURISDICTION"]

JURISDICTION = Jurisdiction(
    code="hebei",
    prefix="hb",
    name_zh="河北省",
    name_en="Hebei",
    regions=("hebei",),
)
