"""Loading jurisdiction plugins, and the typed facade through which the rest of mra calls their hooks.

Every plugin, built-in or third-party, is loaded from the ``mra.jurisdictions`` entry-point group the
same way, validated once, and kept only if valid. A plugin that cannot be imported, declares invalid
data, or raises in a hook is refused with its reasons in :attr:`Registry.failures`; the others load on.
What a plugin declares (identity, catalogues, honours, rules, settings) is read once at load and kept,
so that every later call sees exactly what was validated.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

import pluggy
from pydantic import BaseModel

from mra.core import hookspecs
from mra.core.connectors import IssuerConnector
from mra.core.errors import MraError, NotFound
from mra.core.hookspecs import PluginConfig
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
from mra.core.validation import Declarations, check_declarations, revalidate

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV",
    "PluginError",
    "PluginFailure",
    "PluginInfo",
    "Registry",
    "load_registry",
    "resolve_entry_ref",
]

ENTRY_POINT_GROUP = "mra.jurisdictions"
PLUGINS_ENV = "MRA_PLUGINS"

_SHORT_REF = re.compile(r"^(?:(?P<prefix>[A-Z]{2}[0-9A-Z]*)-)?(?P<list>[A-Z]+)-?0*(?P<seq>[0-9]+)$")

M = TypeVar("M", bound=BaseModel)


_INDEXES: dict[int, tuple[CatalogueEdition, dict[str, CatalogueEntry]]] = {}
_INDEXES_KEPT = 64


def _entries_by_id(edition: CatalogueEdition) -> dict[str, CatalogueEntry]:
    """The edition's rows by id, the first of an id as :meth:`CatalogueEdition.entry` finds it: built once per
    edition object (frozen), kept with the edition so that its id stays its own."""
    found = _INDEXES.get(id(edition))
    if found is None or found[0] is not edition:
        index: dict[str, CatalogueEntry] = {}
        for e in edition.entries:
            index.setdefault(e.id, e)
        if len(_INDEXES) >= _INDEXES_KEPT:
            _INDEXES.clear()
        found = _INDEXES[id(edition)] = (edition, index)
    return found[1]


def resolve_entry_ref(edition: CatalogueEdition, ref: str) -> CatalogueEntry | None:
    """Find a row by canonical id (``BJ2025-I-001``) or short form (``I-1``, ``I-001``, ``i1``)."""
    text = ref.strip().upper()
    exact = _entries_by_id(edition).get(text)
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

    def message(self) -> str:
        return f"plugin {self.name!r} refused: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class PluginInfo:
    """Where a loaded plugin comes from, what it implements, and what loading it cost.

    ``load_ms`` is the whole load (import, hook calls, checks); ``validate_ms`` is mra's own checks.
    """

    name: str
    version: str
    distribution: str
    hooks: tuple[str, ...]
    load_ms: float
    validate_ms: float


class PluginError(MraError):
    """A loaded plugin failed while answering a hook, or answered outside the contract."""


@dataclass
class Registry:
    """The loaded jurisdictions. Every hook call in mra goes through here."""

    pm: pluggy.PluginManager
    jurisdictions: dict[str, Jurisdiction] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    declarations: dict[str, Declarations] = field(default_factory=dict)
    info: dict[str, PluginInfo] = field(default_factory=dict)
    config: PluginConfig | None = None
    _checks_s: float = field(default=0.0, init=False, repr=False)

    # identity ------------------------------------------------------------------------------------------------
    def jurisdiction(self, code: str) -> Jurisdiction:
        try:
            return self.jurisdictions[code]
        except KeyError:
            known = ", ".join(sorted(self.jurisdictions)) or "none loaded"
            raise NotFound(f"unknown jurisdiction {code!r} (loaded: {known})") from None

    def plugin_object(self, code: str) -> Any:
        plugin = self.pm.get_plugin(code)
        if plugin is None or code not in self.jurisdictions:
            self.jurisdiction(code)
        return plugin

    def plugins(self) -> list[PluginInfo]:
        """The loaded plugins, by name."""
        return [self.info[name] for name in sorted(self.info)]

    def _call_plugin(self, plugin: object, hook: str, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, and no other plugin's."""
        caller = self.pm.subset_hook_caller(hook, [p for p in self.pm.get_plugins() if p is not plugin])
        return caller(**kwargs)

    def _call(self, code: str, hook: str, **kwargs: Any) -> Any:
        """Call one jurisdiction's implementation of a hook (None or [] where it does not implement it)."""
        return self._call_plugin(self.plugin_object(code), hook, **kwargs)

    def _declared(self, code: str) -> Declarations:
        try:
            return self.declarations[code]
        except KeyError:
            self.jurisdiction(code)
            raise

    # catalogues ----------------------------------------------------------------------------------------------
    def catalogues(self, jurisdiction: str | None = None) -> list[CatalogueEdition]:
        codes = [jurisdiction] if jurisdiction else sorted(self.jurisdictions)
        return [edition for code in codes for edition in self._declared(code).catalogues]

    def find_entry(self, ref: str, jurisdiction: str | None = None) -> tuple[CatalogueEdition, CatalogueEntry]:
        for edition in self.catalogues(jurisdiction):
            entry = resolve_entry_ref(edition, ref)
            if entry is not None:
                return edition, entry
        raise NotFound(f"unknown catalogue entry {ref!r}")

    def honours(self, jurisdiction: str) -> list[Honour]:
        return list(self._declared(jurisdiction).honours)

    def honoured_catalogues(self, jurisdiction: str) -> list[CatalogueEdition]:
        """The loaded editions of other jurisdictions' catalogues that ``jurisdiction`` honours."""
        wanted = {(h.jurisdiction, h.catalogue) for h in self.honours(jurisdiction)}
        return [
            e
            for code in sorted(self.jurisdictions)
            if code != jurisdiction
            for e in self.declarations[code].catalogues
            if (e.jurisdiction, e.catalogue) in wanted
        ]

    # rules and decisions -------------------------------------------------------------------------------------
    def rules(self, jurisdiction: str) -> list[BenefitRule]:
        return list(self._declared(jurisdiction).rules)

    def policy_settings(self, jurisdiction: str) -> list[PolicySetting]:
        return list(self._declared(jurisdiction).settings)

    def hooks(self, jurisdiction: str) -> tuple[str, ...]:
        return self._declared(jurisdiction).hooks

    def settings(self, jurisdiction: str, overrides: Mapping[str, object] | None = None) -> dict[str, object]:
        """Every setting of ``jurisdiction``: its defaults, the deployment's overrides, then ``overrides``."""
        values: dict[str, object] = {s.key: s.default for s in self.policy_settings(jurisdiction)}
        if self.config is not None:
            values.update({k: v for k, v in self.config.overrides.items() if k in values})
        values.update(overrides or {})
        return values

    def decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object] | None = None
    ) -> list[BenefitDecision]:
        """Ask the jurisdiction's own plugin, and no other, to decide ``context``."""
        merged = self.settings(jurisdiction, settings)
        try:
            result = self._call(jurisdiction, "mra_decide", jurisdiction=jurisdiction, context=context, settings=merged)
        except MraError:
            raise
        except Exception as e:
            raise PluginError(f"plugin {jurisdiction!r} failed in mra_decide: {type(e).__name__}: {e}") from e
        if result is None:
            return []
        if isinstance(result, str | bytes) or not isinstance(result, Sequence):
            raise PluginError(f"plugin {jurisdiction!r}: mra_decide must return a sequence of BenefitDecision")
        return list(result)

    def issuer_connector(self, entry: CatalogueEntry, settings: Mapping[str, object]) -> IssuerConnector | None:
        result: IssuerConnector | None = self.pm.hook.mra_issuer_connector(entry=entry, settings=settings)
        return result

    # configuration and registration --------------------------------------------------------------------------
    def configure(self, config: PluginConfig) -> None:
        """Hand every plugin, loaded now or registered later, the deployment's configuration (once).

        A plugin whose ``mra_configure`` raises is unloaded and recorded in ``failures``.
        """
        if self.config is not None:
            raise MraError("the plugin registry is already configured")
        self.config = config
        impls = self.pm.hook.mra_configure.get_hookimpls()
        # Record the call for plugins registered later, calling none of the current ones here: a
        # plugin that raises must be isolated, which one historic call over all of them cannot do.
        self.pm.subset_hook_caller("mra_configure", [i.plugin for i in impls]).call_historic(
            kwargs={"config": config}
        )
        for impl in impls:
            try:
                impl.function(*[{"config": config}[a] for a in impl.argnames])
            except Exception as e:  # isolate a broken plugin
                self._drop(impl.plugin_name, f"hook mra_configure raised {type(e).__name__}: {e}")

    def _drop(self, name: str, reason: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.jurisdictions.pop(name, None)
        self.declarations.pop(name, None)
        self.info.pop(name, None)
        self.distributions.pop(name, None)
        self.failures.append(PluginFailure(name, (reason,)))

    def add(self, name: str, source: object) -> PluginFailure | None:
        """Load, register and validate one plugin; keep it if valid, else record and return why not.

        ``source`` is an entry point or the plugin object itself. A plugin added after
        :meth:`configure` still receives the configuration (``mra_configure`` is historic).
        """
        started = time.perf_counter()
        self._checks_s = 0.0
        failure = self._add(name, source, started)
        if failure is not None:
            self.failures.append(failure)
        return failure

    def _add(self, name: str, source: object, started: float) -> PluginFailure | None:
        def refuse(*reasons: str) -> PluginFailure:
            return PluginFailure(name, tuple(reasons))

        try:
            obj = source.load() if isinstance(source, EntryPoint) else source
        except Exception as e:  # isolate a broken plugin
            return refuse(f"cannot import {getattr(source, 'value', name)!r}: {type(e).__name__}: {e}")
        if self.pm.get_plugin(name) is not None or name in self.jurisdictions:
            return refuse(f"a plugin named {name!r} is already loaded")
        if self.pm.is_registered(obj):
            return refuse(f"the same plugin object is already loaded as {self.pm.get_name(obj)!r}")
        try:
            self.pm.register(obj, name=name)
        except pluggy.PluginValidationError as e:
            self._unregister(name, obj)
            return refuse(f"invalid hook implementation: {e}")
        except Exception as e:  # isolate a broken plugin
            self._unregister(name, obj)
            return refuse(f"hook mra_configure raised {type(e).__name__}: {e}")

        problems: list[str] = []
        callers = self.pm.get_hookcallers(obj) or []
        unknown = sorted(c.name for c in callers if not c.has_spec())
        problems += [f"it implements {h}, which is not an mra hook" for h in unknown]
        hooks = tuple(sorted(c.name for c in callers if c.has_spec()))

        jurisdiction = self._identity(obj, problems)
        if jurisdiction is None:
            self._unregister(name, obj)
            return refuse(*problems)
        for other, j in self.jurisdictions.items():
            if j.prefix == jurisdiction.prefix:
                problems.append(f"its prefix {j.prefix!r} is already used by {other!r}")
        declarations = Declarations(
            jurisdiction=jurisdiction,
            catalogues=self._declared_items(obj, "mra_catalogues", CatalogueEdition, problems),
            honours=self._declared_items(obj, "mra_honours", Honour, problems),
            rules=self._declared_items(obj, "mra_benefit_rules", BenefitRule, problems),
            settings=self._declared_items(obj, "mra_policy_settings", PolicySetting, problems),
            hooks=hooks,
        )
        published = {e.catalogue: code for code, d in self.declarations.items() for e in d.catalogues}
        for edition in declarations.catalogues:
            if edition.catalogue in published:
                owner = published[edition.catalogue]
                problems.append(f"catalogue {edition.catalogue!r} is already published by {owner!r}")
        checking = time.perf_counter()
        problems += check_declarations(name, declarations)
        self._checks_s += time.perf_counter() - checking
        if problems:
            self._unregister(name, obj)
            return refuse(*problems)

        dist_name, dist_version = "", ""
        if isinstance(source, EntryPoint) and source.dist is not None:
            dist_name, dist_version = source.dist.name, source.dist.version
            self.distributions[name] = (dist_name, dist_version)
        version = getattr(obj, "__version__", None)
        self.jurisdictions[name] = jurisdiction
        self.declarations[name] = declarations
        self.info[name] = PluginInfo(
            name=name,
            version=version if isinstance(version, str) else dist_version,
            distribution=dist_name,
            hooks=hooks,
            load_ms=round((time.perf_counter() - started) * 1000, 3),
            validate_ms=round(self._checks_s * 1000, 3),
        )
        return None

    def _unregister(self, name: str, obj: object) -> None:
        if self.pm.get_plugin(name) is obj:
            self.pm.unregister(obj)

    def _identity(self, obj: object, problems: list[str]) -> Jurisdiction | None:
        try:
            answers = self._call_plugin(obj, "mra_jurisdiction")
        except Exception as e:  # isolate a broken plugin
            problems.append(f"hook mra_jurisdiction raised {type(e).__name__}: {e}")
            return None
        if not answers:
            problems.append("it does not implement mra_jurisdiction (are its hook functions marked @hookimpl?)")
            return None
        jurisdiction, errors = revalidate(Jurisdiction, answers[0], "mra_jurisdiction's answer")
        problems += errors
        return jurisdiction

    def _declared_items(self, obj: object, hook: str, model: type[M], problems: list[str]) -> tuple[M, ...]:
        try:
            answers = self._call_plugin(obj, hook)
        except Exception as e:  # isolate a broken plugin
            problems.append(f"hook {hook} raised {type(e).__name__}: {e}")
            return ()
        if not answers:
            return ()
        answer = answers[0]
        if isinstance(answer, str | bytes | BaseModel) or not isinstance(answer, Sequence):
            problems.append(f"hook {hook} must return a sequence of {model.__name__}, got {type(answer).__name__}")
            return ()
        items: list[M] = []
        checking = time.perf_counter()
        for i, raw in enumerate(answer):
            item, errors = revalidate(model, raw, f"{hook} item {i}")
            problems += errors
            if item is not None:
                items.append(item)
        self._checks_s += time.perf_counter() - checking
        return tuple(items)


def _wanted() -> set[str] | None:
    raw = os.environ.get(PLUGINS_ENV, "").strip()
    if not raw:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def load_registry(extra: Mapping[str, object] | None = None, config: PluginConfig | None = None) -> Registry:
    """Load every plugin of the entry-point group (limited by ``MRA_PLUGINS``), plus ``extra`` objects.

    The registry is configured first (with ``config`` or an empty one), so each plugin receives the
    configuration as it registers. A plugin that fails to import, register, answer or validate is
    recorded in ``failures`` and the others load on.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm=pm)
    registry.configure(config or PluginConfig())
    eps: list[EntryPoint] = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    candidates: list[tuple[str, object]] = [(e.name, e) for e in eps]
    candidates += list((extra or {}).items())
    wanted = _wanted()
    for name, source in candidates:
        if wanted is None or name in wanted:
            registry.add(name, source)
    known = {name for name, _ in candidates}
    for name in sorted((wanted or set()) - known):
        registry.failures.append(
            PluginFailure(name, (f"{PLUGINS_ENV} names {name!r}, but no plugin of that name is installed",))
        )
    return registry
