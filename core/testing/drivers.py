"""How the conformance kit gets a jurisdiction's decisions.

The kit talks to a :class:`DecisionDriver`, not to the registry, so that the same checks can run against
the plugin called directly (:class:`RegistryDriver`) or driven through the event bus (a driver that
publishes the facts and reads the decisions back from the benefits topic), by overriding
:meth:`~mra.core.testing.conformance.JurisdictionConformance.driver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from mra.core.models import BenefitDecision, DecisionContext
from mra.core.plugins import Registry

__all__ = ["DecisionDriver", "RegistryDriver"]


class DecisionDriver(Protocol):
    """Decides one context in one jurisdiction, however the deployment does it."""

    def decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object] | None = None
    ) -> list[BenefitDecision]: ...


class RegistryDriver:
    """Calls the plugin through the :class:`~mra.core.plugins.Registry` facade."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object] | None = None
    ) -> list[BenefitDecision]:
        return self.registry.decide(jurisdiction, context, settings)
