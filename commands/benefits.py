"""``mra benefits``: what a catalogue qualification would bring a holder, and the rules behind it.

``check`` decides directly through the jurisdiction's plugin, without the bus, so that an employer
weighing a hire sees each benefit's outcome and why. It is the only place here that reads the clock
(the default decision date is today); the decision itself only sees the date it is given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

import click

from mra.commands._common import current_state_dir, emit, json_option, jurisdiction_option
from mra.commands._input import COUNTRY, REGION
from mra.commands._output import _, current_language
from mra.core.errors import NotFound, ValidationFailed
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    CatalogueEntry,
    DecisionContext,
    EmployerType,
    Employment,
    HolderFacts,
    Outcome,
    Residence,
    VerifiedCertificate,
    full_years,
    holder_category,
    on_birthday,
    parse_employer_type,
    parse_residence,
)
from mra.core.plugins import Registry, load_registry, resolve_entry_ref
from mra.core.settings import PolicySetting, SettingValue
from mra.i18n.terms import category_label, outcome_label
from mra.services.catalogues import all_editions

__all__ = ["COMMANDS", "benefits"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ORDER = (Outcome.ELIGIBLE, Outcome.CONDITIONAL, Outcome.ADVISORY, Outcome.INELIGIBLE)
_HOLDER_ID = "prospective-holder"
_CERTIFICATE_KEY = "prospective-certificate"


def _date(value: str, option: str) -> date:
    if not _DATE.match(value.strip()):
        raise ValidationFailed(f"{option} must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError as e:
        raise ValidationFailed(f"{option} is not a valid date: {value!r} ({e})") from None


def _find(registry: Registry, jurisdiction: str, ref: str) -> tuple[CatalogueEdition, CatalogueEntry]:
    """The row in the jurisdiction's own catalogues, else in the catalogues it honours."""
    own = all_editions(registry, current_state_dir(), jurisdiction)  # imported ones too
    for edition in [*own, *registry.honoured_catalogues(jurisdiction)]:
        entry = resolve_entry_ref(edition, ref)
        if entry is not None:
            return edition, entry
    raise NotFound(f"unknown catalogue entry {ref!r} for jurisdiction {jurisdiction!r} "
                   f"(try `mra catalogue search` to find its id)")


def _refuse_designation(edition: CatalogueEdition, entry: CatalogueEntry) -> None:
    """A row of a designating list (Beijing's list 四) is never a certificate: point at the row it designates."""
    designating = {lst.code for lst in edition.lists if lst.designates}
    if entry.list in designating:
        target = entry.designates or "the row it designates"
        raise ValidationFailed(
            f"{entry.id} is a designation, not a certificate: use the row it designates, {target} "
            f"(e.g. --entry {target})"
        )


def _parse_setting(raw: str, known: dict[str, PolicySetting]) -> tuple[str, SettingValue]:
    key, sep, text = raw.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key:
        raise ValidationFailed(f"--setting must be KEY=VALUE, got {raw!r}")
    setting = known.get(key)
    if setting is None:
        raise ValidationFailed(f"unknown policy setting {key!r}", [f"known: {k}" for k in sorted(known)])
    sample = setting.default if setting.default is not None else next(iter(setting.choices), None)
    if isinstance(sample, bool):
        if text.lower() not in {"true", "false"}:
            raise ValidationFailed(f"--setting {key} takes true or false, got {text!r}")
        return key, text.lower() == "true"
    if isinstance(sample, int):
        try:
            return key, int(text)
        except ValueError:
            raise ValidationFailed(f"--setting {key} takes a whole number, got {text!r}") from None
    if isinstance(sample, float):
        try:
            return key, float(text)
        except ValueError:
            raise ValidationFailed(f"--setting {key} takes a number, got {text!r}") from None
    return key, text


def _titles(rules: Sequence[BenefitRule]) -> dict[str, str]:
    return {r.code: f"{r.title_zh} — {r.title_en}" for r in rules}


def _check_text(data: dict[str, Any]) -> str:
    head = data["head"]
    lang = current_language()
    category = category_label(str(head["holder_category"]), lang)
    lines = [
        _("{entry_id}  {name}  (list {list}, edition {edition})").format(
            entry_id=head["entry_id"], name=head["name"], list=head["list"], edition=head["edition"]
        ),
        _(
            "Holder: {category}, age {age} on {on}; employer region {region}. Jurisdiction: {jurisdiction}."
        ).format(
            category=category,
            age=head["age"],
            on=head["on"],
            region=head["employer_region"],
            jurisdiction=head["jurisdiction"],
        ),
    ]
    decisions: list[BenefitDecision] = data["decisions"]
    titles: dict[str, str] = data["titles"]
    for outcome in _ORDER:
        group = [d for d in decisions if d.outcome is outcome]
        if not group:
            continue
        lines += ["", f"{outcome_label(outcome.value, lang).upper()} ({len(group)})"]
        for d in group:
            lines.append(f"  {d.code}  [{d.clause}]")
            if d.code in titles:
                lines.append(f"      {titles[d.code]}")
            shown = d.reasons if outcome is Outcome.INELIGIBLE else ()
            lines += ["      " + _("because: {why}").format(why=r) for r in shown]
            label = _("terms: {text}") if outcome is Outcome.ADVISORY else _("to show: {text}")
            lines += ["      " + label.format(text=c) for c in d.conditions]
            if outcome is not Outcome.INELIGIBLE:
                lines += ["      " + _("reading: {text}").format(text=r) for r in d.readings]
    counts = ", ".join(f"{sum(d.outcome is o for d in decisions)} {outcome_label(o.value, lang)}" for o in _ORDER)
    settings: list[tuple[str, SettingValue, bool]] = data["settings"]
    if settings:
        lines += ["", _("Settings used (readings where the notice is silent; change with --setting KEY=VALUE):")]
        mark = "  (" + _("set") + ")"
        lines += [f"  {key} = {value!r}{'' if default else mark}" for key, value, default in settings]
    lines += [
        "",
        _("{n} benefits: {counts}. Use --json for every reason and input.").format(n=len(decisions), counts=counts),
    ]
    return "\n".join(lines)


@click.group("benefits")
def benefits() -> None:
    """The benefits of a catalogue qualification: check a holder's, list the rules."""


@benefits.command("check")
@jurisdiction_option()
@click.option("--entry", "entry_ref", required=True, help="The certificate's catalogue row: BJ2025-I-139 or I-139.")
@click.option(
    "--nationality",
    required=True,
    type=COUNTRY,
    help="ISO country code or country name (GB, 英国): CN for a Chinese national, else the passport's country. "
         "Alone, CN means a mainland resident and HK, MO, TW a resident of that region.",
)
@click.option("--residence", "residence_text", metavar="mainland|HK|MO|TW|abroad",
              help="Where the holder is a resident in law (mainland household registration, Hong Kong, Macao or Taiwan "
                   "residence, or settled abroad). With CN: abroad is a Chinese national resident abroad (华侨).")
@click.option("--birth-date", required=True, help="YYYY-MM-DD. Only the age in full years on the date is used.")
@click.option(
    "--employer-region", required=True, type=REGION, help="Where the employer is: beijing, 北京, 京, tianjin, hebei, …"
)
@click.option("--years", type=click.FloatRange(min=0), help="Years of work in the row's scope (omit if not yet shown).")
@click.option("--in-scope/--not-in-scope", default=True, show_default=True,
              help="Whether the work is in the row's scope.")
@click.option("--high-tech-employer", is_flag=True, help="The employer is in a 高精尖 industry.")
@click.option("--universal-studios-project", is_flag=True, help="The work is for the Universal Studios project.")
@click.option("--employer-type", "employer_type_text", metavar="public-institution|other",
              help="Whether the employer is a public institution (事业单位). Omitted: not said.")
@click.option("--platform-verified", is_flag=True,
              help="The Beijing verification platform has verified the certificate (for Tianjin and Hebei: the "
                   "certificate moves with its Beijing result, 四.3).")
@click.option("--on", "on_text", help="Decision date, YYYY-MM-DD. Default: today.")
@click.option("--setting", "setting_texts", multiple=True, metavar="KEY=VALUE",
              help="Override a policy setting (see `mra benefits settings`). Repeatable.")
@json_option
def check(
    jurisdiction: str,
    entry_ref: str,
    nationality: str,
    residence_text: str | None,
    birth_date: str,
    employer_region: str,
    years: float | None,
    in_scope: bool,
    high_tech_employer: bool,
    universal_studios_project: bool,
    employer_type_text: str | None,
    platform_verified: bool,
    on_text: str | None,
    setting_texts: tuple[str, ...],
    as_json: bool,
) -> None:
    """Decide every benefit for a holder of one catalogue row, as of a date, and say why."""
    residence: Residence | None = None
    employer_type: EmployerType | None = None
    try:
        residence = parse_residence(residence_text) if residence_text is not None else None
    except ValueError as e:
        raise ValidationFailed(f"--residence: {e}") from None
    try:
        employer_type = parse_employer_type(employer_type_text) if employer_type_text is not None else None
    except ValueError as e:
        raise ValidationFailed(f"--employer-type: {e}") from None
    try:
        category = holder_category(nationality)
    except ValueError as e:
        raise ValidationFailed(f"--nationality: {e}") from None
    if residence is not None:
        try:
            category = holder_category(nationality, residence)
        except ValueError as e:
            raise ValidationFailed(f"--residence: {e}") from None
    born = _date(birth_date, "--birth-date")
    on = _date(on_text, "--on") if on_text else date.today()
    if born > on:
        raise ValidationFailed(f"--birth-date {born} is after the decision date {on}")
    registry = load_registry()
    registry.jurisdiction(jurisdiction)
    edition, entry = _find(registry, jurisdiction, entry_ref)
    _refuse_designation(edition, entry)
    known = {s.key: s for s in registry.policy_settings(jurisdiction)}
    overrides = dict(_parse_setting(t, known) for t in setting_texts)
    region = employer_region.strip().lower()
    at = datetime.combine(on, time())
    certificate = None
    if platform_verified:  # what the platform's result would be: verified by the catalogue's own platform
        certificate = VerifiedCertificate(
            certificate_key=_CERTIFICATE_KEY, holder_id=_HOLDER_ID, entry_id=entry.id,
            issuer=entry.issuer_text or entry.name, verification_code="", verified_at=at,
            verified_by=edition.jurisdiction,
        )
    context = DecisionContext(
        holder=HolderFacts(holder_id=_HOLDER_ID, category=category, age=full_years(born, on),
                           birthday=on_birthday(born, on)),
        employment=Employment(
            holder_id=_HOLDER_ID,
            jurisdiction=jurisdiction,
            employer="prospective employer",
            employer_region=region,
            started=on,
            years_in_scope=years,
            in_scope=in_scope,
            high_tech=high_tech_employer,
            universal_studios=universal_studios_project,
            employer_type=employer_type,
        ),
        certificate=certificate,
        entry=entry,
        edition=edition.edition,
        at=at,
        platform_verified=platform_verified,
    )
    decisions = registry.decide(jurisdiction, context, overrides)
    if not decisions:
        raise NotFound(f"jurisdiction {jurisdiction!r} decides no benefits for {entry.id}")
    if as_json:
        emit([d.model_dump(mode="json") for d in decisions], True)
        return
    values = registry.settings(jurisdiction, overrides)
    used = [(key, values.get(key), key not in overrides) for key in sorted(known)]
    head = {
        "entry_id": entry.id,
        "name": entry.name,
        "list": entry.list,
        "edition": edition.edition,
        "holder_category": category.value,
        "age": context.holder.age,
        "on": on.isoformat(),
        "employer_region": region,
        "jurisdiction": jurisdiction,
    }
    data = {"head": head, "decisions": decisions, "titles": _titles(registry.rules(jurisdiction)), "settings": used}
    emit(data, False, _check_text)


def _codes(jurisdiction: str | None, registry: Registry) -> list[str]:
    if jurisdiction:
        registry.jurisdiction(jurisdiction)
        return [jurisdiction]
    return sorted(registry.jurisdictions)


@benefits.command("rules")
@jurisdiction_option(required=False, help="Only this jurisdiction's rules. Default: every loaded jurisdiction.")
@json_option
def rules(jurisdiction: str | None, as_json: bool) -> None:
    """List the benefit rules, each with the clause it rests on, the lists and holders it is for."""
    registry = load_registry()
    found = [(code, r) for code in _codes(jurisdiction, registry) for r in registry.rules(code)]
    if as_json:
        emit([{"jurisdiction": code, **r.model_dump(mode="json")} for code, r in found], True)
        return

    def text(_: object) -> str:
        if not found:
            return "No benefit rules are declared."
        lines: list[str] = []
        for code, r in found:
            lines += [
                f"{r.code}  [{r.clause}]  ({code}, rule version {r.version})",
                f"    {r.title_zh} — {r.title_en}",
                f"    lists: {', '.join(r.lists) or '-'}; for: {', '.join(w.value for w in r.who)}",
                f"    decided by: {', '.join(r.conditions) or '-'}",
                *(f"    reading: {x}" for x in r.readings),
            ]
        lines.append(f"\n{len(found)} rules.")
        return "\n".join(lines)

    emit(found, False, text)


@benefits.command("settings")
@jurisdiction_option(required=False, help="Only this jurisdiction's settings. Default: every loaded jurisdiction.")
@json_option
def settings(jurisdiction: str | None, as_json: bool) -> None:
    """List the policy settings: the questions the source leaves open, with their defaults and why."""
    registry = load_registry()
    found = [(code, s) for code in _codes(jurisdiction, registry) for s in registry.policy_settings(code)]
    if as_json:
        emit([{"jurisdiction": code, **s.model_dump(mode="json")} for code, s in found], True)
        return

    def text(_: object) -> str:
        if not found:
            return "No policy settings are declared."
        lines: list[str] = []
        for code, s in found:
            choices = f" (choices: {', '.join(map(str, s.choices))})" if s.choices else ""
            lines += [f"{s.key} = {s.default!r}{choices}  ({code})", f"    {s.description}", f"    why: {s.why}"]
        return "\n".join(lines)

    emit(found, False, text)


COMMANDS: list[click.Command] = [benefits]
