"""The conformance kit: what every jurisdiction plugin must do, as a pytest base class.

Subclass it in the plugin's tests, name the jurisdiction, and pytest runs every check::

    from mra.core.testing import JurisdictionConformance

    class TestConformance(JurisdictionConformance):
        jurisdiction = "tianjin"

The plugin is loaded the way mra loads it (the ``mra.jurisdictions`` entry points, or ``extra_plugins``)
and driven through the :class:`~mra.core.plugins.Registry` facade with synthetic cases built from its own
(or honoured) catalogue rows. To run the same checks through another transport, override :meth:`driver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from mra.core.hookspecs import PluginConfig
from mra.core.models import BenefitDecision, Jurisdiction
from mra.core.plugins import Registry, load_registry
from mra.core.testing.drivers import DecisionDriver, RegistryDriver
from mra.core.testing.synthetic import SyntheticCase, synthetic_cases
from mra.core.validation import (
    check_catalogue,
    check_decisions,
    check_honours,
    check_rules,
    check_settings,
    revalidate,
)

__all__ = ["JurisdictionConformance"]

Decided = list[tuple[SyntheticCase, list[BenefitDecision]]]


def _assert_none(problems: list[str], what: str) -> None:
    if problems:
        shown = "\n  ".join(problems[:25])
        more = f"\n  … and {len(problems) - 25} more" if len(problems) > 25 else ""
        pytest.fail(f"{what}: {len(problems)} problem(s)\n  {shown}{more}", pytrace=False)


class JurisdictionConformance:
    """Checks of one jurisdiction plugin: identity, catalogues, honours, rules, settings and decisions."""

    jurisdiction: ClassVar[str] = ""
    """The jurisdiction code, which is also the plugin's entry-point name."""
    extra_plugins: ClassVar[Mapping[str, object]] = {}
    """Plugin objects to load besides the installed ones (a plugin not installed yet)."""
    config: ClassVar[PluginConfig | None] = None
    """The deployment configuration the plugins receive (default: an empty one)."""
    max_entries: ClassVar[int] = 16
    """How many catalogue rows the synthetic cases are built from."""

    # how the plugin is reached: override to drive it another way -----------------------------------------------
    def load(self) -> Registry:
        return load_registry(extra=dict(self.extra_plugins) or None, config=self.config)

    def driver(self, registry: Registry) -> DecisionDriver:
        return RegistryDriver(registry)

    # fixtures --------------------------------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def conformance_registry(cls) -> Registry:
        return cls().loaded()

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_cases(cls, conformance_registry: Registry) -> list[SyntheticCase]:
        return synthetic_cases(conformance_registry, cls.jurisdiction, cls.max_entries)

    @pytest.fixture(scope="class")
    @classmethod
    def conformance_decided(cls, conformance_registry: Registry, conformance_cases: list[SyntheticCase]) -> Decided:
        return cls().decide_all(conformance_registry, conformance_cases)

    def loaded(self) -> Registry:
        """The registry, failing the test with the plugin's refusal reasons where it did not load."""
        if not self.jurisdiction:
            pytest.fail(f"{type(self).__name__} does not name its jurisdiction", pytrace=False)
        registry = self.load()
        if self.jurisdiction not in registry.jurisdictions:
            reasons = [f.message() for f in registry.failures if f.name == self.jurisdiction]
            why = "; ".join(reasons) or "no plugin of that name is installed (or MRA_PLUGINS leaves it out)"
            pytest.fail(f"jurisdiction {self.jurisdiction!r} did not load: {why}", pytrace=False)
        return registry

    def decide_all(self, registry: Registry, cases: list[SyntheticCase]) -> Decided:
        driver = self.driver(registry)
        return [(case, driver.decide(self.jurisdiction, case.context)) for case in cases]

    # identity and declarations ---------------------------------------------------------------------------------
    def test_identity(self, conformance_registry: Registry) -> None:
        j = conformance_registry.jurisdiction(self.jurisdiction)
        problems = revalidate(Jurisdiction, j, "identity")[1]
        if j.code != self.jurisdiction:
            problems.append(f"plugin {self.jurisdiction!r} speaks for {j.code!r}")
        if not (j.name_zh.strip() and j.name_en.strip()):
            problems.append("the jurisdiction's Chinese and English names must both be given")
        if not j.regions or any(not r.strip() for r in j.regions):
            problems.append("the jurisdiction must name its employer regions")
        if "mra_jurisdiction" not in conformance_registry.hooks(self.jurisdiction):
            problems.append("mra_jurisdiction is not implemented")
        _assert_none(problems, "identity")

    def test_catalogue_schema(self, conformance_registry: Registry) -> None:
        problems: list[str] = []
        for edition in conformance_registry.catalogues(self.jurisdiction):
            checked, errors = revalidate(type(edition), edition, f"catalogue {edition.catalogue!r}")
            problems += errors
            problems += check_catalogue(self.jurisdiction, checked or edition)
        _assert_none(problems, "catalogues")

    def test_honours_well_formed(self, conformance_registry: Registry) -> None:
        honours = conformance_registry.honours(self.jurisdiction)
        problems = check_honours(self.jurisdiction, honours)
        for h in honours:
            if h.jurisdiction in conformance_registry.jurisdictions:
                names = {e.catalogue for e in conformance_registry.catalogues(h.jurisdiction)}
                if h.catalogue not in names:
                    problems.append(f"{h.jurisdiction!r} publishes no catalogue {h.catalogue!r} to honour")
        _assert_none(problems, "honours")

    def test_rules_cite_clauses(self, conformance_registry: Registry) -> None:
        j = conformance_registry.jurisdiction(self.jurisdiction)
        rules = conformance_registry.rules(self.jurisdiction)
        problems = check_rules(j, rules)
        for r in rules:
            if not (r.title_zh.strip() and r.title_en.strip()):
                problems.append(f"rule {r.code!r} must have Chinese and English titles")
        if rules and "mra_decide" not in conformance_registry.hooks(self.jurisdiction):
            problems.append("rules are declared but mra_decide is not implemented")
        _assert_none(problems, "benefit rules")

    def test_settings_namespaced(self, conformance_registry: Registry) -> None:
        j = conformance_registry.jurisdiction(self.jurisdiction)
        settings = conformance_registry.policy_settings(self.jurisdiction)
        problems = check_settings(j, settings)
        problems += [f"setting {s.key!r} has no description" for s in settings if not s.description.strip()]
        _assert_none(problems, "policy settings")

    # decisions -------------------------------------------------------------------------------------------------
    def test_decision_shape(self, conformance_registry: Registry, conformance_decided: Decided) -> None:
        j = conformance_registry.jurisdiction(self.jurisdiction)
        rules = conformance_registry.rules(self.jurisdiction)
        assert conformance_decided, "the kit built no case to decide"
        problems: list[str] = []
        for case, decisions in conformance_decided:
            found = check_decisions(j, self.jurisdiction, rules, case.context, decisions)
            problems += [f"{case.label}: {p}" for p in found]
        _assert_none(problems, "decision shape")

    def test_determinism(self, conformance_cases: list[SyntheticCase], conformance_decided: Decided) -> None:
        """A fresh load, in reverse order, with the defaults given explicitly, decides the same."""
        fresh = self.load()
        driver = self.driver(fresh)
        defaults = fresh.settings(self.jurisdiction)
        again = {
            case.context.caused_by: driver.decide(self.jurisdiction, case.context, defaults)
            for case in reversed(conformance_cases)
        }
        problems = [
            f"{case.label}: decided differently on a fresh load"
            for case, decisions in conformance_decided
            if again[case.context.caused_by] != decisions
        ]
        _assert_none(problems, "determinism")

    def test_idempotency(self, conformance_registry: Registry, conformance_decided: Decided) -> None:
        """Deciding again changes nothing: neither the decisions nor what the plugin declares."""
        before = self._declared(conformance_registry)
        driver = self.driver(conformance_registry)
        problems = [
            f"{case.label}: a second decision differs from the first"
            for case, decisions in conformance_decided
            if driver.decide(self.jurisdiction, case.context) != decisions
        ]
        fresh = self._declared(self.load())
        if fresh != before:
            problems.append("what the plugin declares changed after it decided")
        _assert_none(problems, "idempotency")

    def _declared(self, registry: Registry) -> tuple[object, ...]:
        code = self.jurisdiction
        return (
            registry.jurisdiction(code),
            registry.catalogues(code),
            registry.honours(code),
            registry.rules(code),
            registry.policy_settings(code),
        )
