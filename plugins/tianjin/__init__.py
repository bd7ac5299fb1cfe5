"""The Tianjin jurisdiction: a 京津冀 destination that honours the Beijing catalogue under 四.3.

This module is the plugin object registered under the ``mra.jurisdictions`` entry point ``tianjin``;
its hooks are those of :class:`mra.core.jjj.JjjDestination`, shared with Hebei.
"""

from mra.core.jjj import JjjDestination
from mra.plugins.tianjin.identity import JURISDICTION
from mra.plugins.tianjin.policy import SETTINGS

PLUGIN = JjjDestination(JURISDICTION, SETTINGS)

mra_jurisdiction = PLUGIN.mra_jurisdiction
mra_catalogues = PLUGIN.mra_catalogues
mra_honours = PLUGIN.mra_honours
mra_benefit_rules = PLUGIN.mra_benefit_rules
mra_policy_settings = PLUGIN.mra_policy_settings
mra_decide = PLUGIN.mra_decide

__all__ = [
    "JURISDICTION",
    "PLUGIN",
    "mra_benefit_rules",
    "mra_catalogues",
    "mra_decide",
    "mra_honours",
    "mra_jurisdiction",
    "mra_policy_settings",
]
