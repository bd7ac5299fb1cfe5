"""Hebei's policy settings: what the sources leave for its bureau to say.

No Hebei catalogue of international qualifications was found, so the plugin publishes none: rows come
from the bureau by import. Nor was a list of treatments for holders of the Beijing catalogue.
"""

from __future__ import annotations

from mra.core.jjj import treatments_setting
from mra.core.settings import PolicySetting

__all__ = ["SETTINGS"]

SETTINGS: tuple[PolicySetting, ...] = (
    treatments_setting(
        "hb",
        why=(
            "京人社事业发〔2025〕11号 四.3 grants treatments 'according to the relevant rules' of the destination "
            "and names none. No Hebei catalogue or treatment list for Beijing-catalogue holders was found; the "
            "China (Hebei) Pilot FTZ (雄安, 正定, 曹妃甸, 大兴机场) is to align with 京津冀 coordination, which names "
            "no treatment either, so the bureau names what applies"
        ),
    ),
)
