"""Checks of what a jurisdiction plugin declares and decides.

They run at every start (on declarations) and in the conformance kit (on decisions), so they are pure,
cheap, and return every problem found as a sentence naming what is wrong, rather than stopping at the
first one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    DecisionContext,
    Honour,
    Jurisdiction,
    Outcome,
)
from mra.core.settings import PolicySetting

__all__ = [
    "PERSONAL_INPUTS",
    "Declarations",
    "check_catalogue",
    "check_decisions",
    "check_declarations",
    "check_honours",
    "check_rules",
    "check_settings",
    "revalidate",
]

PERSONAL_INPUTS = frozenset(
    {
        "birth_date",
        "born",
        "name",
        "holder_name",
        "document_number",
        "passport",
        "id_number",
        "certificate_number",
        "address",
        "phone",
        "email",
    }
)
"""Input keys a decision must never carry: the holder is known by a pseudonymous id only."""


@dataclass(frozen=True)
class Declarations:
    """Everything a plugin declares about itself, read once at load and kept."""

    jurisdiction: Jurisdiction
    catalogues: tuple[CatalogueEdition, ...] = ()
    honours: tuple[Honour, ...] = ()
    rules: tuple[BenefitRule, ...] = ()
    settings: tuple[PolicySetting, ...] = ()
    hooks: tuple[str, ...] = ()


M = TypeVar("M", bound=BaseModel)


def revalidate(model_type: type[M], value: object, what: str) -> tuple[M | None, list[str]]:
    """Re-check a value a plugin returned as ``model_type``, catching rows built without validation."""
    if not isinstance(value, model_type):
        return None, [f"{what} must be a {model_type.__name__}, got {type(value).__name__}"]
    try:
        return model_type.model_validate(value.model_dump()), []
    except ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in e.errors()]
        return None, [f"{what} is invalid: {p}" for p in problems[:5]]


def _duplicates(values: Iterable[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


def check_catalogue(code: str, edition: CatalogueEdition) -> list[str]:
    """Structural checks pydantic cannot make: ids, lists, counts and designations agree."""
    where = f"catalogue {edition.catalogue!r} edition {edition.edition!r}"
    problems: list[str] = []
    if edition.jurisdiction != code:
        problems.append(f"{where} says it belongs to {edition.jurisdiction!r}, not {code!r}")
    if not edition.document.strip():
        problems.append(f"{where} does not name the document that publishes it")
    lists = {lst.code: lst for lst in edition.lists}
    for dup in _duplicates(lst.code for lst in edition.lists):
        problems.append(f"{where}: list {dup!r} is declared twice")
    for lst in edition.lists:
        if not lst.source.strip():
            problems.append(f"{where}: list {lst.code!r} does not cite its source")
    for dup in _duplicates(e.id for e in edition.entries):
        problems.append(f"{where}: row {dup} appears more than once")
    rows_by_id = {e.id: e for e in edition.entries}
    per_list: Counter[str] = Counter()
    seqs: Counter[tuple[str, int]] = Counter()
    for e in edition.entries:
        per_list[e.list] += 1
        seqs[(e.list, e.seq)] += 1
        row_list = lists.get(e.list)
        if row_list is None:
            problems.append(f"{where}: row {e.id} is in list {e.list!r}, which the edition does not declare")
            continue
        parts = e.id.split("-")
        if parts[-2] != e.list or int(parts[-1]) != e.seq:
            problems.append(f"{where}: row {e.id} has list {e.list!r} and seq {e.seq}, which its id does not carry")
        if not e.source.strip():
            problems.append(f"{where}: row {e.id} does not cite where it stands in the source")
        if row_list.designates:
            target = rows_by_id.get(e.designates or "")
            if e.designates is None:
                problems.append(f"{where}: row {e.id} is in designating list {e.list!r} but designates nothing")
            elif target is None:
                problems.append(f"{where}: row {e.id} designates {e.designates}, which is not a row of the edition")
            elif lists.get(target.list) is None or lists[target.list].designates:
                problems.append(f"{where}: row {e.id} designates {e.designates}, itself a designation")
        elif e.designates is not None:
            problems.append(f"{where}: row {e.id} designates {e.designates} but list {e.list!r} does not designate")
    for (lst_code, seq), n in sorted(seqs.items()):
        if n > 1:
            problems.append(f"{where}: list {lst_code!r} has {n} rows numbered {seq}")
    for lst in edition.lists:
        if per_list[lst.code] != lst.count:
            problems.append(f"{where}: list {lst.code!r} declares {lst.count} rows but has {per_list[lst.code]}")
    return problems


def check_honours(code: str, honours: Sequence[Honour]) -> list[str]:
    problems: list[str] = []
    for h in honours:
        if h.jurisdiction == code:
            problems.append(f"honour of {h.catalogue!r}: a jurisdiction cannot honour its own catalogue")
        if not h.basis.strip():
            problems.append(f"honour of {h.catalogue!r} does not cite its basis")
    for dup in _duplicates(h.catalogue for h in honours):
        problems.append(f"catalogue {dup!r} is honoured more than once")
    return problems


def check_rules(jurisdiction: Jurisdiction, rules: Sequence[BenefitRule]) -> list[str]:
    problems: list[str] = []
    for dup in _duplicates(r.code for r in rules):
        problems.append(f"benefit code {dup!r} is declared more than once")
    for r in rules:
        if not r.code.startswith(jurisdiction.prefix + "."):
            problems.append(f"benefit code {r.code!r} is not namespaced by the prefix '{jurisdiction.prefix}.'")
        if not r.clause.strip():
            problems.append(f"benefit {r.code!r} does not cite a clause")
    return problems


def check_settings(jurisdiction: Jurisdiction, settings: Sequence[PolicySetting]) -> list[str]:
    problems: list[str] = []
    for dup in _duplicates(s.key for s in settings):
        problems.append(f"policy setting {dup!r} is declared more than once")
    for s in settings:
        if not s.key.startswith(jurisdiction.prefix + "."):
            problems.append(f"policy setting {s.key!r} is not namespaced by the prefix '{jurisdiction.prefix}.'")
        if not s.why.strip():
            problems.append(f"policy setting {s.key!r} does not say why it is a setting")
        if s.choices and s.default not in s.choices:
            problems.append(f"policy setting {s.key!r} defaults to {s.default!r}, not one of its choices")
    return problems


def check_declarations(name: str, d: Declarations) -> list[str]:
    """Every problem with one plugin's declarations; an empty list means it may load."""
    j = d.jurisdiction
    problems: list[str] = []
    if j.code != name:
        problems.append(f"it is registered as {name!r} but speaks for jurisdiction {j.code!r}")
    if not j.regions:
        problems.append("its jurisdiction names no employer regions")
    for dup in _duplicates(c.catalogue for c in d.catalogues):
        problems.append(f"catalogue {dup!r} is published more than once")
    for edition in d.catalogues:
        problems.extend(check_catalogue(j.code, edition))
    problems.extend(check_honours(j.code, d.honours))
    problems.extend(check_rules(j, d.rules))
    problems.extend(check_settings(j, d.settings))
    if d.rules and "mra_decide" not in d.hooks:
        problems.append("it declares benefit rules but does not implement mra_decide")
    return problems


def check_decisions(
    jurisdiction: Jurisdiction,
    plugin: str,
    rules: Sequence[BenefitRule],
    context: DecisionContext,
    decisions: Sequence[object],
) -> list[str]:
    """Every way ``decisions`` break the shape :func:`mra_decide` promises for ``context``."""
    by_code = {r.code: r for r in rules}
    problems: list[str] = []
    seen: list[str] = []
    for i, raw in enumerate(decisions):
        d, errors = revalidate(BenefitDecision, raw, f"decision {i}")
        problems.extend(errors)
        if d is None:
            continue
        seen.append(d.code)
        rule = by_code.get(d.code)
        label = f"decision {d.code!r}"
        if rule is None:
            problems.append(f"{label} is not one of the plugin's rules")
        else:
            if d.clause != rule.clause:
                problems.append(f"{label} cites {d.clause!r}, not its rule's clause {rule.clause!r}")
            if d.rule_version != rule.version:
                problems.append(f"{label} has rule version {d.rule_version!r}, not {rule.version!r}")
        expected: dict[str, object] = {
            "jurisdiction": jurisdiction.code,
            "plugin": plugin,
            "holder_id": context.holder.holder_id,
            "entry_id": context.entry.id,
            "edition": context.edition,
            "caused_by": context.caused_by,
            "decided_at": context.at,
        }
        for attr, want in expected.items():
            got = getattr(d, attr)
            if got != want:
                problems.append(f"{label} has {attr}={got!r}, expected {want!r}")
        if d.outcome not in set(Outcome):
            problems.append(f"{label} has an unknown outcome {d.outcome!r}")
        if d.outcome is Outcome.INELIGIBLE and not d.reasons:
            problems.append(f"{label} is ineligible without a reason")
        if d.outcome is Outcome.CONDITIONAL and not d.conditions:
            problems.append(f"{label} is conditional without naming a condition")
        personal = PERSONAL_INPUTS & {k.lower() for k in d.inputs}
        if personal:
            problems.append(f"{label} carries personal inputs {sorted(personal)}")
    for dup in _duplicates(seen):
        problems.append(f"rule {dup!r} is decided more than once")
    missing = sorted(set(by_code) - set(seen))
    if missing:
        problems.append(f"rules {missing} are not decided (every rule's decision is returned, ineligible included)")
    return problems
