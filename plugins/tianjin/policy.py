"""Tianjin's policy settings: what the sources leave for its bureau to say.

Tianjin publishes its own catalogue, 《天津市境外职业资格认可目录》, scoped to the China (Tianjin) Pilot Free
Trade Zone (draft 2022-12-01 on hrss.tj.gov.cn, 征求意见稿; version 2.0 with 27 qualifications reported by
人民日报 2024-08-23 p.14). Its rows were not found, so the plugin publishes none: they come from the bureau
by import. Its published treatments are for holders of that catalogue; nothing says they apply to holders
of the Beijing catalogue, so they are not decided here but left to the bureau's setting.
"""

from __future__ import annotations

from mra.core.jjj import treatments_setting
from mra.core.settings import PolicySetting

__all__ = ["SETTINGS"]

SETTINGS: tuple[PolicySetting, ...] = (
    treatments_setting(
        "tj",
        why=(
            "京人社事业发〔2025〕11号 四.3 grants treatments 'according to the relevant rules' of the destination "
            "and names none. Tianjin's published treatments (FTZ practice, overseas experience counted as "
            "domestic, 高级工程师 matching for planning, work-permit and visa facilitation) are for holders of its "
            "own FTZ catalogue (hrss.tj.gov.cn notice of 2022-12-01, 征求意见稿; 人民日报 2024-08-23 p.14); "
            "applying them to Beijing-catalogue holders is said nowhere, so the bureau names what applies"
        ),
    ),
)
