"""The Beijing jurisdiction: the 2025 International Professional Qualification Recognition Catalogue
(京人社事业发〔2025〕11号) and the services its holders get.

This module is the plugin object registered under the ``mra.jurisdictions`` entry point ``beijing``.
"""

from mra.plugins.beijing.catalogue import mra_catalogues
from mra.plugins.beijing.identity import mra_honours, mra_jurisdiction
from mra.plugins.beijing.rules import mra_benefit_rules, mra_decide, mra_policy_settings

__all__ = [
    "mra_benefit_rules",
    "mra_catalogues",
    "mra_decide",
    "mra_honours",
    "mra_jurisdiction",
    "mra_policy_settings",
]
