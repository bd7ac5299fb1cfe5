"""What-if: the same history decided under other policy data, to see a change's impact before it is published.

A scenario is a TOML file of changes to one jurisdiction's policy data:

- ``[settings]``: policy-setting values (``"bj.withdrawal.decided_benefits" = "revoke"``). They reach the plugin
  the way a bureau's own choices do, merged into the settings of every decision, so the plugin decides afresh.
- ``[[entries]]``: catalogue rows changed (any :class:`~mra.core.models.CatalogueEntry` field) or ``removed``.
  Rows reach the plugin in the decision context, so the plugin decides afresh on the changed row.
- ``[[rules]]``: a benefit rule narrowed — fewer holder categories (``who``), fewer lists (``lists``) — or
  ``disabled``. A plugin keeps the rest of a rule (its conditions, parameters, readings) in its own code and
  data, which mra does not reach into; narrowing is what can be decided from outside without guessing: the
  rule's own decision, made ineligible where the narrowed rule no longer covers the holder or the row.

:class:`WhatIfRegistry` is the loaded registry with the scenario applied; a replay decides with it into a
fresh read model beside a baseline one, and :func:`changes` lists the decisions that differ.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mra.core.errors import ValidationFailed
from mra.core.models import (
    BenefitDecision,
    CatalogueEntry,
    DecisionContext,
    HolderCategory,
    Outcome,
)
from mra.core.plugins import Registry
from mra.core.settings import SettingValue
from mra.core.validation import Declarations
from mra.services.bureau import BureauStore

__all__ = [
    "Change",
    "EntryChange",
    "RuleChange",
    "Scenario",
    "WhatIfRegistry",
    "changes",
    "check_scenario",
    "load_scenario",
    "summary",
    "what_if_registry",
]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleChange(_Spec):
    """One benefit rule, narrowed or disabled."""

    code: str
    who: tuple[HolderCategory, ...] | None = None
    lists: tuple[str, ...] | None = None
    disabled: bool = False
    why: str = ""


class EntryChange(BaseModel):
    """One catalogue row: ``removed``, or new values for any of its fields (validated as a row)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str
    removed: bool = False

    def fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Scenario(_Spec):
    """A what-if: a title, setting values, changed rows and narrowed rules."""

    title: str = ""
    settings: dict[str, SettingValue] = {}
    entries: tuple[EntryChange, ...] = ()
    rules: tuple[RuleChange, ...] = ()


def load_scenario(path: Path) -> Scenario:
    """Read a scenario file; a missing file, bad TOML or an unknown key is refused with the reason."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationFailed(f"no what-if file at {path}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValidationFailed(f"cannot read the what-if file {path}: {e}") from None
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        reasons = [f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in e.errors()]
        raise ValidationFailed(f"invalid what-if file {path}", reasons) from None


def _same_kind(value: SettingValue, default: SettingValue) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def check_scenario(scenario: Scenario, registry: Registry, jurisdiction: str) -> list[str]:
    """Every way the scenario does not fit ``jurisdiction``'s loaded policy (empty when it fits)."""
    problems: list[str] = []
    declared = {s.key: s for s in registry.policy_settings(jurisdiction)}
    for key, value in scenario.settings.items():
        setting = declared.get(key)
        if setting is None:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(f"settings: {key!r} is not a setting of {jurisdiction} (its settings: {known})")
        elif setting.choices and value not in setting.choices:
            problems.append(f"settings: {key} = {value!r}: expected one of {', '.join(map(repr, setting.choices))}")
        elif not _same_kind(value, setting.default):
            problems.append(f"settings: {key} = {value!r}: expected a value like its default {setting.default!r}")
    rules = {r.code: r for r in registry.rules(jurisdiction)}
    seen: set[str] = set()
    for change in scenario.rules:
        rule = rules.get(change.code)
        if change.code in seen:
            problems.append(f"rules: {change.code} is changed twice")
        seen.add(change.code)
        if rule is None:
            problems.append(f"rules: {change.code!r} is not a rule of {jurisdiction}")
            continue
        if change.who is None and change.lists is None and not change.disabled:
            problems.append(f"rules: {change.code} changes nothing (give who, lists or disabled)")
        wider_who = sorted(set(change.who or ()) - set(rule.who))
        if wider_who:
            problems.append(
                f"rules: {change.code} who adds {', '.join(wider_who)}: a what-if narrows a rule; deciding it for "
                f"more holders needs the plugin's own conditions (its rule covers {', '.join(rule.who)})"
            )
        wider_lists = sorted(set(change.lists or ()) - set(rule.lists))
        if wider_lists:
            problems.append(
                f"rules: {change.code} lists adds {', '.join(wider_lists)}: a what-if narrows a rule "
                f"(its rule is for lists {', '.join(rule.lists) or 'none'})"
            )
    seen = set()
    for entry_change in scenario.entries:
        if entry_change.id in seen:
            problems.append(f"entries: {entry_change.id} is changed twice")
        seen.add(entry_change.id)
        found = _find_entry(registry, entry_change.id)
        if found is None:
            problems.append(f"entries: {entry_change.id!r} is not a row of any loaded catalogue")
            continue
        if entry_change.removed and entry_change.fields():
            problems.append(f"entries: {entry_change.id} is removed and changed at once")
        elif not entry_change.removed and not entry_change.fields():
            problems.append(f"entries: {entry_change.id} changes nothing (give removed = true or fields to change)")
        if "id" in entry_change.fields():
            problems.append(f"entries: {entry_change.id}: a row's id cannot change")
        try:
            _changed_entry(found, entry_change)
        except ValidationError as e:
            problems += [
                f"entries: {entry_change.id}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in e.errors()
            ]
    return problems


def _find_entry(registry: Registry, entry_id: str) -> CatalogueEntry | None:
    for edition in registry.catalogues():
        entry = edition.entry(entry_id)
        if entry is not None:
            return entry
    return None


def _changed_entry(entry: CatalogueEntry, change: EntryChange) -> CatalogueEntry:
    return CatalogueEntry.model_validate({**entry.model_dump(), **change.fields()})


@dataclass
class WhatIfRegistry(Registry):
    """The loaded registry with a scenario applied: the same plugins, other policy data."""

    scenario: Scenario = field(default_factory=Scenario)
    target: str = ""

    def settings(self, jurisdiction: str, overrides: Mapping[str, object] | None = None) -> dict[str, object]:
        values = super().settings(jurisdiction, overrides)
        if jurisdiction == self.target:
            values.update({k: v for k, v in self.scenario.settings.items() if k in values})
        return values

    def decide(
        self, jurisdiction: str, context: DecisionContext, settings: Mapping[str, object] | None = None
    ) -> list[BenefitDecision]:
        decided = super().decide(jurisdiction, context, settings)
        if jurisdiction != self.target:
            return decided
        narrowed = {c.code: c for c in self.scenario.rules}
        out: list[BenefitDecision] = []
        for d in decided:
            change = narrowed.get(d.code)
            if change is None:
                out.append(d)
            elif not change.disabled:
                out.append(_narrowed(d, change, context))
        return out


def _narrowed(d: BenefitDecision, change: RuleChange, context: DecisionContext) -> BenefitDecision:
    """The decision under the narrowed rule: ineligible, with the reason, where it no longer covers the holder."""
    why = f" ({change.why})" if change.why else ""
    failed: list[str] = []
    category = context.holder.category
    if change.who is not None and category not in change.who:
        failed.append(f"what-if: {d.code} is for {', '.join(change.who)} holders only; the holder is {category}{why}")
    if change.lists is not None and context.entry.list not in change.lists:
        failed.append(
            f"what-if: {d.code} is for rows of lists {', '.join(change.lists)} only; "
            f"{context.entry.id} is a row of list {context.entry.list}{why}"
        )
    if not failed:
        return d
    if d.outcome is Outcome.INELIGIBLE:
        return d.model_copy(update={"reasons": (*d.reasons, *failed)})
    return d.model_copy(update={"outcome": Outcome.INELIGIBLE, "reasons": tuple(failed), "conditions": ()})


def what_if_registry(base: Registry, scenario: Scenario, jurisdiction: str) -> WhatIfRegistry:
    """``base`` with ``scenario`` applied to ``jurisdiction``; refused with every problem if it does not fit."""
    problems = check_scenario(scenario, base, jurisdiction)
    if problems:
        raise ValidationFailed(f"the what-if does not fit {jurisdiction}'s policy", problems)
    changed = {c.id: c for c in scenario.entries}
    narrowed = {c.code: c for c in scenario.rules}
    declarations: dict[str, Declarations] = {}
    for code, d in base.declarations.items():
        editions = tuple(
            e.model_copy(
                update={
                    "entries": tuple(
                        x if x.id not in changed else _changed_entry(x, changed[x.id])
                        for x in e.entries
                        if not (x.id in changed and changed[x.id].removed)
                    )
                }
            )
            for e in d.catalogues
        )
        rules = d.rules
        if code == jurisdiction:
            rules = tuple(
                r
                if r.code not in narrowed
                else r.model_copy(
                    update={
                        "who": narrowed[r.code].who if narrowed[r.code].who is not None else r.who,
                        "lists": narrowed[r.code].lists if narrowed[r.code].lists is not None else r.lists,
                    }
                )
                for r in d.rules
                if not (r.code in narrowed and narrowed[r.code].disabled)
            )
        declarations[code] = Declarations(
            jurisdiction=d.jurisdiction,
            catalogues=editions,
            honours=d.honours,
            rules=rules,
            settings=d.settings,
            hooks=d.hooks,
        )
    return WhatIfRegistry(
        pm=base.pm,
        jurisdictions=dict(base.jurisdictions),
        failures=list(base.failures),
        distributions=dict(base.distributions),
        declarations=declarations,
        info=dict(base.info),
        config=base.config,
        scenario=scenario,
        target=jurisdiction,
    )


@dataclass(frozen=True)
class Change:
    """One decision the scenario changes: its outcome before and after (None: not decided), and why."""

    holder_id: str
    certificate_key: str
    entry_id: str
    code: str
    before: str | None
    after: str | None
    clause: str
    reasons_before: tuple[str, ...]
    reasons_after: tuple[str, ...]


def _explained(d: BenefitDecision) -> str:
    return json.dumps([d.reasons, d.conditions, d.readings], ensure_ascii=False)


def changes(baseline: BureauStore, scenario: BureauStore) -> tuple[list[Change], int]:
    """The decisions whose outcome differs (or that exist on one side only), and how many others keep their
    outcome but are explained differently (reasons, conditions or readings)."""
    before = {(d.holder_id, d.certificate_key, d.code): d for d in baseline.active_decisions()}
    after = {(d.holder_id, d.certificate_key, d.code): d for d in scenario.active_decisions()}
    out: list[Change] = []
    reworded = 0
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a.outcome == b.outcome:
            reworded += _explained(a) != _explained(b)
            continue
        either = b or a
        assert either is not None
        out.append(
            Change(
                holder_id=key[0],
                certificate_key=key[1],
                entry_id=either.entry_id,
                code=key[2],
                before=a.outcome.value if a else None,
                after=b.outcome.value if b else None,
                clause=either.clause,
                reasons_before=a.reasons if a else (),
                reasons_after=b.reasons if b else (),
            )
        )
    return out, reworded


def summary(items: Sequence[Change]) -> dict[str, int]:
    """How many decisions move from each outcome to each other ("eligible → ineligible": 3)."""
    counts: dict[str, int] = {}
    for c in items:
        key = f"{c.before or 'none'} → {c.after or 'none'}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
