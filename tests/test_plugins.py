"""Loading and validating jurisdiction plugins; the Registry facade; the historic configure hook."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pluggy
import pytest

from mra.core import hookspecs
from mra.core.errors import MraError, NotFound
from mra.core.hookspecs import PluginConfig, hookimpl
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    CatalogueEntry,
    CatalogueList,
    DecisionContext,
    HolderCategory,
    HolderFacts,
    Honour,
    Jurisdiction,
    Outcome,
)
from mra.core.plugins import ENTRY_POINT_GROUP, PLUGINS_ENV, PluginError, Registry, load_registry
from mra.core.settings import PolicySetting
from mra.core.validation import Declarations, check_declarations

BUILTIN = {"beijing", "tianjin", "hebei"}
AT = datetime(2025, 10, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)


def edition(code: str = "demo", prefix: str = "DM", rows: int = 2, count: int | None = None,
            catalogue: str | None = None, designate: str | None = None) -> CatalogueEdition:
    entries = [
        CatalogueEntry(id=f"{prefix}-I-{i:02d}", list="I", seq=i, name=f"row {i}", issuer_text="issuer",
                       source=f"test list I 序号 {i}")
        for i in range(1, rows + 1)
    ]
    lists = [CatalogueList(code="I", name_zh="清单", name_en="list", count=rows if count is None else count,
                           source="test list I")]
    if designate is not None:
        entries.append(CatalogueEntry(id=f"{prefix}-M-01", list="M", seq=1, name="m", issuer_text="issuer",
                                      designates=designate, source="test list M 序号 1"))
        lists.append(CatalogueList(code="M", name_zh="互认", name_en="mutual", count=1, designates=True,
                                   source="test list M"))
    return CatalogueEdition(jurisdiction=code, catalogue=catalogue or f"{code}-catalogue", edition="1",
                            title="t", document="doc", effective=date(2025, 1, 1), lists=tuple(lists),
                            entries=tuple(entries))


class Demo:
    """A small valid plugin; tests break one thing at a time."""

    def __init__(self, code: str = "demo", prefix: str = "dm", **overrides: Any) -> None:
        self.ident = Jurisdiction(code=code, prefix=prefix, name_zh="演示", name_en="Demo", regions=(code,))
        self.editions: Sequence[object] = (edition(code),)
        self.honour_list: Sequence[object] = ()
        self.rule_list: Sequence[object] = (
            BenefitRule(code=f"{prefix}.thing", clause="demo 1", title_zh="t", title_en="t"),
        )
        self.setting_list: Sequence[object] = (
            PolicySetting(key=f"{prefix}.knob", default="a", description="d", why="silent", choices=("a", "b")),
        )
        self.configured: list[PluginConfig] = []
        self.seen_settings: list[Mapping[str, object]] = []
        for k, v in overrides.items():
            setattr(self, k, v)

    @hookimpl
    def mra_configure(self, config: PluginConfig) -> None:
        self.configured.append(config)

    @hookimpl
    def mra_jurisdiction(self) -> Jurisdiction:
        return self.ident

    @hookimpl
    def mra_catalogues(self) -> Sequence[object]:
        return self.editions

    @hookimpl
    def mra_honours(self) -> Sequence[object]:
        return self.honour_list

    @hookimpl
    def mra_benefit_rules(self) -> Sequence[object]:
        return self.rule_list

    @hookimpl
    def mra_policy_settings(self) -> Sequence[object]:
        return self.setting_list

    @hookimpl
    def mra_decide(self, jurisdiction: str, context: DecisionContext,
                   settings: Mapping[str, object]) -> Sequence[BenefitDecision] | None:
        if jurisdiction != self.ident.code:
            return None
        self.seen_settings.append(dict(settings))
        rule = self.rule_list[0]
        assert isinstance(rule, BenefitRule)
        return [BenefitDecision(holder_id=context.holder.holder_id, jurisdiction=self.ident.code, code=rule.code,
                                outcome=Outcome.ADVISORY, clause=rule.clause, entry_id=context.entry.id,
                                edition=context.edition, rule_version=rule.version, plugin=self.ident.code,
                                decided_at=context.at)]


def refused(registry: Registry, name: str) -> str:
    reasons = [r for f in registry.failures if f.name == name for r in f.reasons]
    assert reasons, f"{name} was not refused: {registry.failures}"
    assert name not in registry.jurisdictions
    return "\n".join(reasons)


def assert_builtins_loaded(registry: Registry) -> None:
    assert set(registry.jurisdictions) >= BUILTIN, registry.failures


def context(entry: CatalogueEntry) -> DecisionContext:
    return DecisionContext(holder=HolderFacts(holder_id="h", category=HolderCategory.FOREIGN, age=30),
                           employment=None, certificate=None, entry=entry, edition="1", at=AT)


# --- loading --------------------------------------------------------------------------------------------------


def test_builtin_jurisdictions_load_through_the_entry_point_group() -> None:
    registry = load_registry()
    assert_builtins_loaded(registry)
    for name in BUILTIN:
        assert registry.distributions[name][0] == "mra"
        assert registry.jurisdiction(name).code == name
        assert "mra_jurisdiction" in registry.hooks(name)
    assert not [f for f in registry.failures if f.name in BUILTIN]


def test_mra_plugins_limits_which_load_and_names_unknown_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PLUGINS_ENV, " hebei , nosuch ")
    registry = load_registry(extra={"demo": Demo()})
    assert set(registry.jurisdictions) == {"hebei"}
    assert "no plugin of that name" in refused(registry, "nosuch")


def test_a_valid_extra_plugin_loads_beside_the_builtins() -> None:
    registry = load_registry(extra={"demo": Demo()})
    assert_builtins_loaded(registry)
    assert registry.catalogues("demo")[0].catalogue == "demo-catalogue"
    assert registry.info["demo"].distribution == ""
    assert registry.rules("demo")[0].code == "dm.thing"


def test_an_import_error_is_refused_by_name_and_the_rest_load() -> None:
    broken = EntryPoint(name="broken", value="mra_no_such_module_anywhere", group=ENTRY_POINT_GROUP)
    registry = load_registry(extra={"broken": broken})
    why = refused(registry, "broken")
    assert "cannot import" in why and "ModuleNotFoundError" in why
    assert_builtins_loaded(registry)


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (Demo(editions=(edition(count=3),)), "list 'I' declares 3 rows but has 2"),
        (Demo(editions=(edition(designate="DM-I-09"),)), "designates DM-I-09, which is not a row"),
        (Demo(editions=(edition(designate="DM-M-01"),)), "itself a designation"),
        (Demo(editions=(edition(code="other"),)), "belongs to 'other'"),
        (Demo(editions=(edition(catalogue="beijing-international"),)), "already published by 'beijing'"),
        (Demo(editions=(edition(), edition())), "published more than once"),
        (Demo(code="demo2"), "registered as 'demo' but speaks for jurisdiction 'demo2'"),
        (Demo(prefix="bj"), "prefix 'bj' is already used by 'beijing'"),
        (Demo(rule_list=(BenefitRule(code="xx.thing", clause="c", title_zh="t", title_en="t"),)),
         "'xx.thing' is not namespaced"),
        (Demo(rule_list=(BenefitRule(code="dm.thing", clause="  ", title_zh="t", title_en="t"),)),
         "does not cite a clause"),
        (Demo(rule_list=[BenefitRule(code="dm.a", clause="c", title_zh="t", title_en="t")] * 2),
         "'dm.a' is declared more than once"),
        (Demo(setting_list=(PolicySetting(key="bj.knob", default=None, description="d", why="w"),)),
         "'bj.knob' is not namespaced"),
        (Demo(setting_list=(PolicySetting(key="dm.knob", default="z", description="d", why="w", choices=("a",)),)),
         "not one of its choices"),
        (Demo(honour_list=(Honour(catalogue="demo-catalogue", jurisdiction="demo", basis="b"),)),
         "cannot honour its own catalogue"),
        (Demo(honour_list=(Honour(catalogue="beijing-international", jurisdiction="beijing", basis=" "),)),
         "does not cite its basis"),
        (Demo(editions=({"catalogue": "as a dict"},)), "must be a CatalogueEdition, got dict"),
        (Demo(editions="not a sequence"), "must return a sequence of CatalogueEdition"),
    ],
)
def test_invalid_declarations_are_refused_with_the_reason(plugin: Demo, expected: str) -> None:
    registry = load_registry(extra={"demo": plugin})
    assert expected in refused(registry, "demo")
    assert_builtins_loaded(registry)


def test_rows_built_without_validation_are_caught() -> None:
    good = edition()
    bad_row = CatalogueEntry.model_construct(**{**good.entries[0].__dict__, "seq": 0})
    sneaky = good.model_copy(update={"entries": (bad_row, good.entries[1])})
    assert "greater than or equal to 1" in refused(load_registry(extra={"demo": Demo(editions=(sneaky,))}), "demo")


def test_every_problem_is_reported_not_just_the_first() -> None:
    plugin = Demo(editions=(edition(count=5),),
                  rule_list=(BenefitRule(code="xx.a", clause="c", title_zh="t", title_en="t"),))
    why = refused(load_registry(extra={"demo": plugin}), "demo")
    assert "declares 5 rows" in why and "'xx.a' is not namespaced" in why


class Raising(Demo):
    @hookimpl
    def mra_catalogues(self) -> Sequence[object]:
        raise RuntimeError("catalogue file missing")


class NoIdentity:
    @hookimpl
    def mra_catalogues(self) -> Sequence[object]:
        return ()


class Unmarked:
    def mra_jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(code="unmarked", prefix="um", name_zh="x", name_en="x", regions=("x",))


class Typo(Demo):
    @hookimpl
    def mra_decides(self) -> None:
        return None


class WrongSignature:
    @hookimpl
    def mra_jurisdiction(self, region: str) -> Jurisdiction:
        raise AssertionError("never called")


class RulesWithoutDecide:
    @hookimpl
    def mra_jurisdiction(self) -> Jurisdiction:
        return Jurisdiction(code="demo", prefix="dm", name_zh="x", name_en="x", regions=("x",))

    @hookimpl
    def mra_benefit_rules(self) -> Sequence[BenefitRule]:
        return (BenefitRule(code="dm.a", clause="c", title_zh="t", title_en="t"),)


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        (Raising(), "hook mra_catalogues raised RuntimeError: catalogue file missing"),
        (NoIdentity(), "does not implement mra_jurisdiction"),
        (Unmarked(), "does not implement mra_jurisdiction (are its hook functions marked @hookimpl?)"),
        (Typo(), "implements mra_decides, which is not an mra hook"),
        (WrongSignature(), "invalid hook implementation"),
        (RulesWithoutDecide(), "declares benefit rules but does not implement mra_decide"),
    ],
)
def test_broken_hooks_are_refused_and_the_rest_load(plugin: object, expected: str) -> None:
    registry = load_registry(extra={"demo": plugin})
    assert expected in refused(registry, "demo")
    assert_builtins_loaded(registry)
    assert registry.pm.get_plugin("demo") is None


def test_the_same_name_twice_is_refused() -> None:
    registry = load_registry(extra={"demo": Demo()})
    assert registry.add("demo", Demo()) is not None
    assert "already loaded" in refused_reasons(registry, "demo")
    assert "demo" in registry.jurisdictions


def refused_reasons(registry: Registry, name: str) -> str:
    return "\n".join(r for f in registry.failures if f.name == name for r in f.reasons)


# --- the facade -----------------------------------------------------------------------------------------------


def test_facade_reads_what_was_validated_once() -> None:
    registry = load_registry()
    beijing = registry.catalogues("beijing")
    assert beijing and registry.catalogues("beijing")[0] is beijing[0]
    assert registry.honoured_catalogues("tianjin") == beijing
    edition_, entry = registry.find_entry("I-1", "beijing")
    assert entry.id == edition_.entries[0].id
    with pytest.raises(NotFound):
        registry.rules("nowhere")
    with pytest.raises(NotFound):
        registry.find_entry("Q-999")


def test_decide_asks_only_the_jurisdictions_own_plugin() -> None:
    class Impostor(Demo):
        @hookimpl
        def mra_decide(self, jurisdiction: str, context: DecisionContext,
                       settings: Mapping[str, object]) -> Sequence[BenefitDecision] | None:
            raise AssertionError("asked to decide for another jurisdiction")

    registry = load_registry(extra={"demo": Demo(), "zimp": Impostor(code="zimp", prefix="zi")})
    entry = registry.catalogues("demo")[0].entries[0]
    (decision,) = registry.decide("demo", context(entry))
    assert decision.code == "dm.thing"


def test_a_decide_that_raises_is_a_plugin_error_naming_it() -> None:
    class Broken(Demo):
        @hookimpl
        def mra_decide(self, jurisdiction: str, context: DecisionContext,
                       settings: Mapping[str, object]) -> Sequence[BenefitDecision] | None:
            raise KeyError("oops")

    registry = load_registry(extra={"demo": Broken()})
    entry = registry.catalogues("demo")[0].entries[0]
    with pytest.raises(PluginError, match="plugin 'demo' failed in mra_decide: KeyError"):
        registry.decide("demo", context(entry))


def test_settings_are_defaults_then_deployment_then_call_overrides(tmp_path: Path) -> None:
    plugin = Demo()
    config = PluginConfig(state_dir=tmp_path, overrides={"dm.knob": "b", "tj.jjj.treatments": "x", "dm.unknown": 1})
    registry = load_registry(extra={"demo": plugin}, config=config)
    assert registry.settings("demo") == {"dm.knob": "b"}
    assert registry.settings("tianjin") == {"tj.jjj.treatments": "x", "tj.jjj.proof": "beijing_platform"}
    assert registry.settings("hebei") == {"hb.jjj.treatments": "", "hb.jjj.proof": "beijing_platform"}
    entry = registry.catalogues("demo")[0].entries[0]
    registry.decide("demo", context(entry), {"dm.knob": "a"})
    assert plugin.seen_settings == [{"dm.knob": "a"}]


# --- configuration --------------------------------------------------------------------------------------------


def test_configure_reaches_every_plugin_including_late_ones(tmp_path: Path) -> None:
    early, late = Demo(), Demo(code="late", prefix="lt")
    config = PluginConfig(state_dir=tmp_path)
    registry = load_registry(extra={"demo": early}, config=config)
    assert early.configured == [config]
    assert registry.add("late", late) is None
    assert late.configured == [config]
    with pytest.raises(MraError, match="already configured"):
        registry.configure(PluginConfig())
    assert early.configured == [config]


def empty_registry() -> Registry:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return Registry(pm=pm)


def test_configure_after_registration_reaches_loaded_and_later_plugins() -> None:
    registry = empty_registry()
    first, second = Demo(), Demo(code="second", prefix="se")
    assert registry.add("demo", first) is None
    config = PluginConfig(overrides={"dm.knob": "b"})
    registry.configure(config)
    assert registry.add("second", second) is None
    assert first.configured == [config] and second.configured == [config]


class FailsToConfigure(Demo):
    @hookimpl
    def mra_configure(self, config: PluginConfig) -> None:
        raise OSError("state dir unreadable")


def test_a_plugin_whose_configure_raises_is_refused_alone() -> None:
    registry = load_registry(extra={"demo": FailsToConfigure(), "other": Demo(code="other", prefix="ot")})
    assert "mra_configure raised OSError: state dir unreadable" in refused(registry, "demo")
    assert "other" in registry.jurisdictions
    assert_builtins_loaded(registry)


def test_a_configure_failure_after_load_unloads_only_that_plugin() -> None:
    registry = empty_registry()
    good = Demo(code="good", prefix="gd")
    assert registry.add("demo", FailsToConfigure()) is None
    assert registry.add("good", good) is None
    registry.configure(PluginConfig())
    assert "mra_configure raised OSError" in refused(registry, "demo")
    assert good.configured and "good" in registry.jurisdictions


# --- cost -----------------------------------------------------------------------------------------------------


def test_validation_is_cheap() -> None:
    """Validation runs at every CLI start: checking a catalogue six times Beijing's size takes well under 0.5 s."""
    big = edition(rows=999)
    rules = tuple(BenefitRule(code=f"dm.r{i}", clause="c", title_zh="t", title_en="t") for i in range(50))
    declarations = Declarations(jurisdiction=Demo().ident, catalogues=(big,), rules=rules, hooks=("mra_decide",))
    started = time.perf_counter()
    assert check_declarations("demo", declarations) == []
    checks = time.perf_counter() - started
    registry = load_registry(extra={"demo": Demo(editions=(big,))})
    info = registry.info["demo"]
    assert checks < 0.5, checks
    assert 0 < info.validate_ms <= info.load_ms < 1000, info
    for name in BUILTIN:
        assert 0 < registry.info[name].validate_ms <= registry.info[name].load_ms
