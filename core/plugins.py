"""Loading jurisdiction plugins, and the typed facade through which the rest of mra calls their hooks."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from mra.core import hookspecs
from mra.core.connectors import IssuerConnector
from mra.core.errors import NotFound
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    CatalogueEntry,
    DecisionContext,
    Honour,
    Jurisdiction,
)
from mra.core.settings import PolicySetting

__all__ = ["ENTRY_POINT_GROUP", "PluginFailure", "Registry", "load_registry", "resolve_entry_ref"]

ENTRY_POINT_GROUP = "mra.jurisdictions"
PLUGINS_ENV = "MRA_PLUGINS"

_SHORT_REF = re.compile(r"^(?:(?P<prefix>[A-Z]{2}[0-9A-Z]*)-)?(?P<list>[A-Z]+)-?0*(?P<seq>[0-9]+)$")


def resolve_entry_ref(edition: CatalogueEdition, ref: str) -> CatalogueEntry | None:
    """Find a row by canonical id (``BJ2025-I-001``) or short form (``I-1``, ``I-001``, ``i1``)."""
    text = ref.strip().upper()
    exact = edition.entry(text)
    if exact is not None:
        return exact
    m = _SHORT_REF.match(text)
    if not m:
        return None
    list_code, seq = m["list"], int(m["seq"])
    for e in edition.entries:
        if e.list == list_code and e.seq == seq and (m["prefix"] is None or e.id.startswith(m["prefix"] + "-")):
            return e
    return None


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded or was refused, and why."""

    name: str
    reasons: tuple[str, ...]


@dataclass
class Registry:
    """The loaded jurisdictions. Every hook call in mra goes through here."""

    pm: pluggy.PluginManager
    jurisdictions: dict[str, Jurisdiction] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)

    # identity ------------------------------------------------------------------------------------------------
    def jurisdiction(self, code: str) -> Jurisdiction:
        try:
            return self.jurisdictions[code]
        except KeyError:
            known = ", ".join(sorted(self.jurisdictions)) or "none loaded"
            raise NotFound(f"unknown jurisdiction {code!r} (loaded: {known})") from None

    def plugin_object(self, code: str) -> Any:
        plugin = self.pm.get_plugin(code)
        if plugin is None:
            self.jurisdiction(code)
        return plugin

    def _call(self, code: str, hook: str, **kwargs: Any) -> Any:
        """Call one jurisdiction's implementation of a hook (None where it does not implement it)."""
        plugin = self.plugin_object(code)
        caller = self.pm.subset_hook_caller(hook, [p for p in self.pm.get_plugins() if p is not plugin])
        return caller(**kwargs)

    # catalogues ----------------------------------------------------------------------------------------------
    def catalogues(self, jurisdiction: str | None = None) -> list[CatalogueEdition]:
        codes = [jurisdiction] if jurisdiction else sorted(self.jurisdictions)
        out: list[CatalogueEdition] = []
        for code in codes:
            for result in self._call(code, "mra_catalogues") or []:
                out.extend(result)
        return out

    def find_entry(self, ref: str, jurisdiction: str | None = None) -> tuple[CatalogueEdition, CatalogueEntry]:
        for edition in self.catalogues(jurisdiction):
            entry = resolve_entry_ref(edition, ref)
            if entry is not None:
                return edition, entry
        raise NotFound(f"unknown catalogue entry {ref!r}")

    def honours(self, jurisdiction: str) -> list[Honour]:
        return [h for result in self._call(jurisdiction, "mra_honours") or [] for h in result]

    # rules and decisions -------------------------------------------------------------------------------------
    def rules(self, jurisdiction: str) -> list[BenefitRule]:
        return [r for result in self._call(jurisdiction, "mra_benefit_rules") or [] for r in result]

    def policy_settings(self, jurisdiction: str) -> list[PolicySetting]:
        return [s for result in self._call(jurisdiction, "mra_policy_settings") or [] for s in result]

    def settings(self, jurisdiction: str, overrides: Mapping[str, object] | None = None) -> dict[str, object]:
        values: dict[str, object] = {s.key: s.default for s in self.policy_settings(jurisdiction)}
        values.update(overrides or {})
        return values

    def decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object] | None = None
    ) -> list[BenefitDecision]:
        self.jurisdiction(jurisdiction)
        merged = self.settings(jurisdiction, settings)
        result: Sequence[BenefitDecision] | None = self.pm.hook.mra_decide(
            jurisdiction=jurisdiction, context=context, settings=merged
        )
        return list(result or [])

    def issuer_connector(self, entry: CatalogueEntry, settings: Mapping[str, object]) -> IssuerConnector | None:
        result: IssuerConnector | None = self.pm.hook.mra_issuer_connector(entry=entry, settings=settings)
        return result


def _wanted(names: Iterable[str]) -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV, "").strip()
    if not raw:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def load_registry(extra: Mapping[str, object] | None = None) -> Registry:
    """Load every plugin of the entry-point group (limited by ``MRA_PLUGINS``), plus ``extra`` objects.

    A plugin that fails to import or to answer ``mra_jurisdiction`` is recorded in ``failures`` and the
    others load on.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm=pm)
    eps: list[EntryPoint] = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    wanted = _wanted(e.name for e in eps)
    candidates: list[tuple[str, object | EntryPoint]] = [(e.name, e) for e in eps]
    candidates += list((extra or {}).items())
    for name, source in candidates:
        if wanted is not None and name not in wanted:
            continue
        try:
            obj = source.load() if isinstance(source, EntryPoint) else source
            pm.register(obj, name=name)
        except Exception as e:  # a broken plugin must not take the others down
            registry.failures.append(PluginFailure(name, (f"cannot load: {type(e).__name__}: {e}",)))
            continue
        try:
            ident = pm.subset_hook_caller(
                "mra_jurisdiction", [p for p in pm.get_plugins() if p is not obj]
            )()
            if not ident:
                raise ValueError("it does not implement mra_jurisdiction")
            jurisdiction: Jurisdiction = ident[0]
            registry.jurisdictions[name] = jurisdiction
            if isinstance(source, EntryPoint) and source.dist is not None:
                registry.distributions[name] = (source.dist.name, source.dist.version)
        except Exception as e:
            pm.unregister(obj)
            registry.failures.append(PluginFailure(name, (f"refused: {type(e).__name__}: {e}",)))
    return registry
