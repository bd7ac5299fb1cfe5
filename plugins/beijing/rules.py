"""The benefits of the notice as rules (placeholder until the rules land)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mra.core import BenefitDecision, BenefitRule, DecisionContext, PolicySetting, hookimpl


@hookimpl
def mra_benefit_rules() -> Sequence[BenefitRule]:
    return ()


@hookimpl
def mra_policy_settings() -> Sequence[PolicySetting]:
    return ()


@hookimpl
def mra_decide(
    jurisdiction: str, context: DecisionContext, settings: Mapping[str, object]
) -> Sequence[BenefitDecision] | None:
    return None
