"""The conformance kit for jurisdiction plugins.

``JurisdictionConformance`` is a pytest base class that checks a plugin against the contract; the
synthetic cases and decision drivers it uses are public so that a plugin's own tests (or a test class
that drives the plugin through the event bus) can reuse them. Needs pytest.
"""

from mra.core.testing.conformance import JurisdictionConformance
from mra.core.testing.drivers import DecisionDriver, RegistryDriver
from mra.core.testing.synthetic import AT, SyntheticCase, sample_entries, synthetic_cases, synthetic_edition

__all__ = [
    "AT",
    "DecisionDriver",
    "JurisdictionConformance",
    "RegistryDriver",
    "SyntheticCase",
    "sample_entries",
    "synthetic_cases",
    "synthetic_edition",
]
