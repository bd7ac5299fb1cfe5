"""The benefits of 京人社事业发〔2025〕11号 as explainable rules.

The policy — every benefit, its clause, lists, holder categories, conditions, readings and the open
questions (policy settings) — is data in ``data/benefits-2025.toml``. This module holds only the small
named conditions the data refers to, and :func:`decide`, a pure function of the decision context and the
settings: no clock, no I/O beyond reading this plugin's own packaged data.
"""

from __future__ import annotations

import threading
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mra.core import (
    BenefitDecision,
    BenefitRule,
    CatalogueEntry,
    DecisionContext,
    HolderCategory,
    Outcome,
    PolicySetting,
    ValidationFailed,
    hookimpl,
)
from mra.core.rules import (
    Check,
    Decider,
    RuleOutcome,
    Status,
    category_in,
    employed_in,
    evaluate,
    local_date,
    rule_outcome,
    within_age,
    years_at_least,
)
from mra.core.settings import SettingValue
from mra.plugins.beijing.catalogue import load_edition
from mra.plugins.beijing.identity import JURISDICTION

__all__ = [
    "CONDITIONS",
    "DATA_FILE",
    "BenefitsData",
    "Env",
    "RuleSpec",
    "benefits_data",
    "clear_memo",
    "counterpart_of",
    "decide",
    "designations",
    "memo_off",
    "mra_benefit_rules",
    "mra_decide",
    "mra_policy_settings",
    "practice_sector",
    "resolve_settings",
    "row_ids",
]

DATA_FILE = "benefits-2025.toml"
PLUGIN = "beijing"

EVIDENCE = "bj.experience.evidence"
UPPER_BOUND = "bj.experience.range_upper_bound"
HKMOTW_UNCLEAR = "bj.hkmotw.where_unclear"
BEFORE_EFFECTIVE = "bj.before_effective"
HKMOTW_RULES = "bj.hkmotw.unclear_rules"
OUTBOUND_SKILL_ROWS = "bj.skill_certificate.outbound_rows"
COUNTERPARTS = "bj.mutual_recognition.counterparts"
LIMIT_BIRTHDAY = "bj.work_permit.limit_birthday"
READ_BY_CONDITIONS = (
    EVIDENCE, UPPER_BOUND, HKMOTW_UNCLEAR, HKMOTW_RULES, BEFORE_EFFECTIVE, OUTBOUND_SKILL_ROWS, COUNTERPARTS,
    LIMIT_BIRTHDAY,
)
"""The settings the conditions below read; the data file must declare each."""


# --- the data file's shape ------------------------------------------------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleSpec(_Data):
    """One ``[[rule]]`` of the data file: a :class:`BenefitRule` plus how it is decided."""

    code: str
    clause: str
    title_zh: str
    title_en: str
    lists: tuple[str, ...]
    who: tuple[HolderCategory, ...] = tuple(HolderCategory)
    who_unclear: dict[HolderCategory, str] = Field(
        default_factory=dict, description="categories covered only by a reading, with that reading"
    )
    outcome: Outcome
    conditions: tuple[str, ...] = ()
    words: str
    readings: tuple[str, ...] = ()
    params: dict[str, Any] = Field(default_factory=dict)

    def text(self, key: str) -> str:
        value = self.params.get(key, "")
        if not isinstance(value, str):
            raise TypeError(f"{self.code}: params.{key} must be text")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.params.get(key, ())
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"{self.code}: params.{key} must be a list of text")
        return tuple(value)

    def number(self, key: str) -> int:
        value = self.params.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{self.code}: params.{key} must be a whole number")
        return value


class _Unclear(_Data):
    """Where the notice leaves a holder category unclear: the setting that decides it, and the setting naming the
    rules it decides for (empty: every rule that names the category as unclear)."""

    setting: str
    rules_setting: str = ""


class _Employment(_Data):
    words: str
    list_clause: dict[str, str]
    headings: dict[str, str] = Field(description="clause → the words that set the Beijing-employer term")

    def clause_for(self, rule_clause: str, entry_list: str) -> str:
        """The clause whose heading sets the term for this rule and row: the rule's own where it has a heading
        (四.2), else the heading of the row's list (一(一), 一(二), 一(三))."""
        parts = [p.strip() for p in rule_clause.split(",")]
        own = [p for p in parts if p in self.headings]
        if own:
            return own[0]
        return self.list_clause.get(entry_list, parts[0])


class _Experience(_Data):
    words: str
    universal_studios_provision: str
    term_provisions: dict[str, str] = Field(default_factory=dict, description="provision code → what it asks")


class _Cumulation(_Data):
    from_list: str
    to_list: str
    clause_prefix: str
    words: str
    reading: str


class _Sector(_Data):
    name: str
    fields: tuple[str, ...] = ()
    provisions: tuple[str, ...] = ()
    department: str = Field("", description="the competent department, where the rows or the notice name one")
    department_provisions: dict[str, str] = Field(
        default_factory=dict, description="provision code → the department a row with it names"
    )


class _Practice(_Data):
    words: str
    sector_rules: str
    mainland_countries: tuple[str, ...]
    term_provisions: tuple[str, ...]
    note_provisions: tuple[str, ...] = ()
    reading: str
    sector: tuple[_Sector, ...]


class _Counterpart(_Data):
    row: str
    counterpart: str


class _Mutual(_Data):
    list: str
    words: str
    reading: str
    counterpart_reading: str
    counterpart: tuple[_Counterpart, ...] = ()

    def counterpart_of(self, row: str) -> str | None:
        return next((c.counterpart for c in self.counterpart if c.row == row), None)


class BenefitsData(_Data):
    """The whole data file: the edition it belongs to, shared terms, settings and rules."""

    document: str
    edition: str
    version: str
    effective: date
    effective_words: str
    utc_offset_hours: float
    common_conditions: tuple[str, ...]
    labels: dict[str, str]
    unclear: dict[HolderCategory, _Unclear] = Field(default_factory=dict)
    lists: dict[str, str]
    employment: _Employment
    experience: _Experience
    cumulation: _Cumulation
    practice: _Practice
    mutual: _Mutual
    provision_notes: dict[str, str] = Field(default_factory=dict, description="provision code → what it means")
    setting: tuple[PolicySetting, ...]
    rule: tuple[RuleSpec, ...]

    def benefit_rule(self, spec: RuleSpec) -> BenefitRule:
        return BenefitRule(
            code=spec.code,
            clause=f"{self.document} {spec.clause}",
            title_zh=spec.title_zh,
            title_en=spec.title_en,
            lists=spec.lists,
            who=spec.who,
            conditions=(*self.common_conditions, *spec.conditions),
            readings=(*spec.readings, *spec.who_unclear.values()),
            version=self.version,
        )

    def cumulates(self, spec: RuleSpec) -> bool:
        """Whether a rule is one of the services an urgent-list holder also gets (一(一))."""
        return any(part.strip().startswith(self.cumulation.clause_prefix) for part in spec.clause.split(","))

    def list_label(self, code: str) -> str:
        return self.lists.get(code, f"list {code}")

    def label(self, category: HolderCategory) -> str:
        return self.labels.get(category.value, category.value)


@cache
def benefits_data() -> BenefitsData:
    """The packaged data file, read once and checked: unique codes in the ``bj.`` namespace, known
    conditions, and known setting keys."""
    raw = files("mra.plugins.beijing").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    data = BenefitsData.model_validate(tomllib.loads(raw))
    codes = [r.code for r in data.rule]
    problems = [f"duplicate rule code {c!r}" for c in sorted({c for c in codes if codes.count(c) > 1})]
    problems += [f"{c!r} is not in the {JURISDICTION.prefix}. namespace" for c in codes
                 if not c.startswith(JURISDICTION.prefix + ".")]
    for spec in data.rule:
        problems += [f"{spec.code}: unknown condition {n!r}" for n in (*data.common_conditions, *spec.conditions)
                     if n not in CONDITIONS]
        if "row_notes" in spec.params:
            problems += [f"{spec.code}: row note {c!r} is not in [provision_notes]" for c in spec.texts("row_notes")
                         if c not in data.provision_notes]
        data.benefit_rule(spec)
    declared = {st.key for st in data.setting}
    problems += [f"setting {k!r} is read but not declared" for k in READ_BY_CONDITIONS if k not in declared]
    for category, u in data.unclear.items():
        problems += [f"unclear.{category.value}: setting {k!r} is not declared"
                     for k in (u.setting, u.rules_setting) if k and k not in declared]
    if problems:
        raise ValueError(f"{DATA_FILE}: " + "; ".join(problems))
    return data


# --- settings -------------------------------------------------------------------------------------------------


def resolve_settings(data: BenefitsData, settings: Mapping[str, object]) -> dict[str, SettingValue]:
    """The value of every Beijing setting: the given one where set, else the default; a value outside a
    setting's choices is refused rather than guessed at."""
    out: dict[str, SettingValue] = {}
    bad: list[str] = []
    for s in data.setting:
        value = settings.get(s.key, s.default)
        if s.choices and value not in s.choices:
            bad.append(f"{s.key}={value!r}: expected one of {', '.join(map(repr, s.choices))}")
            continue
        if value is not None and not isinstance(value, str | int | float | bool):
            bad.append(f"{s.key}={value!r}: not a plain value")
            continue
        if s.key in _ROW_LIST_SETTINGS:
            bad += _bad_rows(s.key, value, _ROW_LIST_SETTINGS[s.key])
        for category, u in data.unclear.items():
            if s.key == u.rules_setting:
                bad += _bad_rules(data, s.key, value, category)
        out[s.key] = value
    if bad:
        raise ValidationFailed("invalid Beijing policy settings", bad)
    return out


_ROW_LIST_SETTINGS = {OUTBOUND_SKILL_ROWS: "O"}
"""Settings whose value names catalogue rows (ids separated by ';'), with the list the rows must be in."""


def row_ids(value: object) -> tuple[str, ...]:
    """The row ids a row-list setting names (';'-separated; empty: none)."""
    return tuple(part.strip() for part in str(value or "").split(";") if part.strip())


def _bad_rows(key: str, value: object, list_code: str) -> list[str]:
    edition = load_edition()
    rows = {e.id for e in edition.entries if e.list == list_code}
    return [f"{key}: {ident!r} is not a row of list {list_code} (ids like {min(rows)})"
            for ident in row_ids(value) if ident not in rows]


def _bad_rules(data: BenefitsData, key: str, value: object, category: HolderCategory) -> list[str]:
    unclear = {spec.code for spec in data.rule if category in spec.who_unclear}
    return [f"{key}: {code!r} is not a rule that leaves a {data.label(category)} unclear "
            f"(those are: {', '.join(sorted(unclear))})" for code in row_ids(value) if code not in unclear]


# --- conditions -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Env:
    """What a condition may look at for one rule and one decision context."""

    data: BenefitsData
    spec: RuleSpec
    context: DecisionContext
    settings: Mapping[str, SettingValue]
    day: date
    designation: CatalogueEntry | None
    counterpart: tuple[str, CatalogueEntry] | None = None
    """For a row whose own remark states a mutual recognition: the counterpart row and its list (四) designation."""


def _in_force(env: Env) -> Check | None:
    data = env.data
    if env.day >= data.effective:
        return None
    key = BEFORE_EFFECTIVE
    if env.settings[key] == "decide":
        return Check.met(
            "in_force",
            f"dated {env.day}, before the edition took effect on {data.effective}; decided all the same",
            [f"decided under the {data.edition} edition before it took effect (setting {key} = decide)"],
        )
    return Check.failed(
        "in_force",
        f"dated {env.day}, before the {data.edition} edition took effect on {data.effective} "
        f"(\"{data.effective_words}\"; setting {key} = {env.settings[key]})",
    )


def _beijing_employment(env: Env) -> Check:
    check = employed_in("beijing_employment", env.context.employment, env.day, JURISDICTION.regions)
    if check.status is not Status.FAILED:
        return check
    terms = env.data.employment
    clause = terms.clause_for(env.spec.clause, env.context.entry.list)
    return Check.failed(
        check.condition,
        f"{check.detail}: {clause} is for holders \"{terms.words}\" (\"{terms.headings[clause]}\")",
    )


def _universal_studios(env: Env) -> str | None:
    """The row's words where its Universal Studios exemption applies to this employment, else None."""
    emp = env.context.employment
    code = env.data.experience.universal_studios_provision
    if emp is None or not emp.universal_studios:
        return None
    for p in env.context.entry.provisions:
        if p.code == code:
            return p.words
    return None


def _row_experience(env: Env) -> Check | Sequence[Check] | None:
    entry, emp = env.context.entry, env.context.employment
    if emp is None or not entry.experience:
        return None
    exempt = _universal_studios(env)
    if exempt is not None:
        return Check.met(
            "row_experience", f"no experience limit for work on the Universal Studios project (\"{exempt}\")"
        )
    scopes = "; ".join(dict.fromkeys(x.scope for x in entry.experience if x.scope)) or "the row's work"
    if not emp.in_scope:
        return Check.failed("row_experience", f"not working in the row's scope: {scopes}")
    timed = [x for x in entry.experience if x.years is not None]
    if not timed:
        return Check.met("row_experience", f"working in the row's scope: {scopes}")
    key_bound, key_evidence = UPPER_BOUND, EVIDENCE
    enforce_max = bool(env.settings[key_bound])
    checks: list[Check] = []
    for x in timed:
        assert x.years is not None
        checks.append(
            years_at_least(
                "row_experience",
                emp.years_in_scope,
                x.years,
                x.scope,
                max_years=x.max_years if enforce_max else None,
                evidence=f"{env.settings[key_evidence]}, setting {key_evidence}",
            )
        )
    best = next((c for c in checks if c.status is Status.MET), None) or next(
        (c for c in checks if c.status is Status.PENDING), checks[0]
    )
    ranged = [x for x in timed if x.max_years is not None]
    readings: list[str] = []
    if ranged and emp.years_in_scope is not None:
        x = ranged[0]
        if enforce_max:
            readings.append(
                f"\"{x.words}\" read with {x.max_years} years as an upper bound (setting {key_bound} = true)"
            )
        elif emp.years_in_scope > (x.max_years or 0):
            readings.append(f"\"{x.words}\" read as at least {x.years} years, {x.max_years} not an upper bound "
                            f"(setting {key_bound} = false)")
    return Check(best.condition, best.status, best.detail, tuple(readings))


def _holder_category(env: Env) -> Check | None:
    spec, category = env.spec, env.context.holder.category
    if set(spec.who) == set(HolderCategory):
        return None
    labels = env.data.labels
    check = category_in("holder_category", category, spec.who, labels)
    reading = spec.who_unclear.get(category)
    unclear = env.data.unclear.get(category)
    if check.status is not Status.MET or reading is None or unclear is None:
        return check
    label = env.data.label(category)
    if unclear.rules_setting and spec.code not in row_ids(env.settings[unclear.rules_setting]):
        return Check.failed(
            "holder_category",
            f"not extended to a {label} (setting {unclear.rules_setting} does not name {spec.code})",
            [reading],
        )
    key = unclear.setting
    how = env.settings[key]
    if how == "excluded":
        return Check.failed("holder_category", f"not extended to a {label} (setting {key} = excluded)", [reading])
    if how == "conditional":
        return Check.pending(
            "holder_category",
            f"the authority's confirmation that this service extends to a {label} (setting {key} = conditional)",
            [reading],
        )
    return Check.met("holder_category", f"holder is a {label}", [f"{reading} (setting {key} = {how})"])


def _title_level(env: Env) -> list[Check]:
    entry, level, name = env.context.entry, env.spec.text("title_level"), env.spec.text("title_name")
    if entry.title_level != level:
        has = f"it corresponds to the {entry.title_level} level" if entry.title_level else "it names no title"
        return [Check.failed("title_level", f"the row does not correspond to {name} ({has})")]
    standard = f"the row's standard: \"{entry.title_words}\"" if entry.title_words else env.spec.text("standard")
    return [
        Check.met("title_level", f"the row corresponds to {name}"),
        Check.pending("title_level", standard),
        *(
            Check.pending("title_level", f"the row's further title condition: \"{t}\"")
            for t in entry.title_conditions
            if t not in entry.title_words
        ),
    ]


def _row_terms(env: Env) -> list[Check]:
    """The row's own filing and registration terms (I-121, I-116, I-118…120): still to be shown."""
    terms = env.data.experience.term_provisions
    return [
        Check.pending("row_terms", f"the row's term: \"{p.words}\" ({terms[p.code]})")
        for p in env.context.entry.provisions
        if p.code in terms
    ]


def _row_notes(env: Env) -> list[Check]:
    """Provisions of the row that qualify this rule in the holder's favour (I-13, I-68: 可不受母语国限制)."""
    codes = env.spec.texts("row_notes")
    notes = env.data.provision_notes
    return [
        Check.met("row_notes", f"the row provides: \"{p.words}\" ({notes[p.code]})")
        for p in env.context.entry.provisions
        if p.code in codes
    ]


def _skill_certificate_row(env: Env) -> Check:
    entry, spec = env.context.entry, env.spec
    name = "skill_certificate_row"
    if entry.list == spec.text("outbound_list"):
        key = OUTBOUND_SKILL_ROWS
        named = row_ids(env.settings[key])
        words = spec.text("outbound_words")
        if not named:
            return Check.pending(
                name,
                f"the skills authority naming this certification among those with a matching skill-level "
                f"certificate (一(三)2: \"{words}\"; no list (三) row names one; setting {key} names none)",
            )
        if entry.id in named:
            return Check.met(name, f"named among the list (三) certifications with a matching skill-level "
                                   f"certificate (\"{words}\"; setting {key})")
        return Check.failed(name, f"not among the list (三) certifications named as having a matching skill-level "
                                  f"certificate (\"{words}\"; setting {key} = {env.settings[key]})")
    code = spec.text("provision")
    for p in entry.provisions:
        if p.code == code:
            return Check.met(name, f"the row provides it: \"{p.words}\"")
    return Check.failed(name, spec.text("absent"))


def _work_permit_age(env: Env) -> Check:
    exempt = _universal_studios(env)
    if exempt is not None:
        return Check.met("work_permit_age", f"no age limit for work on the Universal Studios project (\"{exempt}\")")
    emp = env.context.employment
    high_tech = bool(emp and emp.high_tech)
    if high_tech:
        limit, why = env.spec.number("max_age_high_tech"), "the employer is in a 高精尖 industry"
    else:
        limit = env.spec.number("max_age")
        why = f"{env.spec.number('max_age_high_tech')} only for an employer in a 高精尖 industry"
    holder = env.context.holder
    if holder.age != limit + 1:
        return within_age("work_permit_age", holder.age, limit, why)
    key = LIMIT_BIRTHDAY
    how = env.settings[key]
    if holder.birthday and how == "within":
        return Check.met(
            "work_permit_age",
            f"age {holder.age} today, the birthday itself, is still within the limit of {limit} ({why})",
            [f"the birthday on which the holder turns {limit + 1} read as within \"放宽至{limit}周岁\" "
             f"(setting {key} = within)"],
        )
    check = within_age("work_permit_age", holder.age, limit, why)
    return Check(check.condition, check.status, check.detail,
                 (f"a holder who has turned {limit + 1}, the birthday itself included, read as past "
                  f"\"放宽至{limit}周岁\" (setting {key} = {how})",))


def _employer_type(env: Env) -> Check:
    """The employer's type where a rule is for one kind of employer (一(二)3: a public institution, 事业单位)."""
    emp, wanted, words = env.context.employment, env.spec.text("employer_type"), env.spec.text("employer_words")
    kind = emp.employer_type if emp is not None else None
    if kind is None:
        return Check.pending("employer_type", f"the employer is a public institution (事业单位) (\"{words}\"); "
                                              f"its type is not said")
    if kind.value == wanted:
        return Check.met("employer_type", f"the employer is a public institution (事业单位) (\"{words}\")")
    return Check.failed("employer_type", f"only at a public institution (事业单位) (\"{words}\"); the employer is "
                                         f"not one ({kind.value})")


def _to_show(env: Env) -> list[Check]:
    return [Check.pending("to_show", t) for t in env.spec.texts("to_show")]


def _notes(env: Env) -> list[Check]:
    return [Check.met("notes", t) for t in env.spec.texts("notes")]


def _sector(data: BenefitsData, entry: CatalogueEntry) -> _Sector | None:
    if entry.country.strip() in data.practice.mainland_countries:
        return None
    for sector in data.practice.sector:
        if set(sector.fields) & set(entry.fields) or any(entry.has_provision(p) for p in sector.provisions):
            return sector
    return None


def practice_sector(data: BenefitsData, entry: CatalogueEntry) -> str | None:
    """The clause 三 sector of a row issued outside the mainland, or None where 三 does not cover it."""
    sector = _sector(data, entry)
    return sector.name if sector is not None else None


def _practice_row(env: Env) -> list[Check]:
    data, entry = env.data, env.context.entry
    sector = _sector(data, entry)
    reading = data.practice.reading
    if sector is None:
        if entry.country.strip() in data.practice.mainland_countries:
            why = f"the row is issued in the mainland (国家(地区): {entry.country})"
        else:
            fields = "、".join(entry.fields) or "none"
            why = f"the row's 领域 ({fields}) is not finance, accounting, a physician's or a teacher's"
        scope = "三 covers 境外 finance, accounting, physician and teacher qualifications only"
        return [Check.failed("practice_row", f"{scope}: {why}", [reading])]
    where = entry.country or "an international body, no country named"
    rules = data.practice.sector_rules
    department = sector.department or next(
        (d for code, d in sector.department_provisions.items() if entry.has_provision(code)), ""
    )
    named = f"; competent department: {department}" if department else "; the notice and the row name no department"
    checks = [
        Check.met(
            "practice_row",
            f"a 境外 {sector.name} qualification ({where}), practising under the sector regulator's rules "
            f"(\"{rules}\")",
            [reading],
        ),
        Check.pending(
            "practice_row",
            f"the implementing rules and operating norms of the Beijing department competent for {sector.name}"
            f"{named} (\"{data.practice.sector_rules}\")",
        ),
    ]
    for p in entry.provisions:
        if p.code in data.practice.term_provisions:
            checks.append(Check.pending("practice_row", f"the row's term: \"{p.words}\""))
        elif p.code in data.practice.note_provisions:
            checks.append(Check.met("practice_row", f"the row notes: \"{p.words}\""))
    return checks


def _designated_in_list_four(env: Env) -> list[Check]:
    m = env.designation
    name = "designated_in_list_four"
    if m is None and env.counterpart is not None:
        row, cm = env.counterpart
        words = next((p.words for p in env.context.entry.provisions if p.code == "mutual_recognition"), "")
        key = COUNTERPARTS
        if env.settings[key] == "excluded":
            return [Check.failed(name, f"the row is not designated in list (四); its own mutual recognition "
                                       f"(\"{words}\") with {row} does not bring it into 二 "
                                       f"(setting {key} = excluded)")]
        return [
            Check.met(name, f"the row's own mutual recognition (\"{words}\") with {row}, designated in list (四) by "
                            f"{cm.id}", [env.data.mutual.reading, f"{env.data.mutual.counterpart_reading} "
                                                                 f"(setting {key} = included)"]),
            Check.pending(name, f"{cm.id}'s own terms: \"{cm.remark}\""),
        ]
    if m is None:
        return [Check.failed(name, "the row is not designated in list (四)")]
    return [
        Check.met("designated_in_list_four", f"designated in list (四) by {m.id}", [env.data.mutual.reading]),
        Check.pending("designated_in_list_four", f"{m.id}'s own terms: \"{m.remark}\""),
    ]


def _platform_verified(env: Env) -> Check:
    cert = env.context.certificate
    if not env.context.platform_verified:
        return Check.failed("platform_verified", "the certificate has not been verified by the platform (查询验证结果)")
    if cert is not None and cert.revoked:
        return Check.failed("platform_verified", "the platform's verification of the certificate was revoked")
    code = f" (验证编码 {cert.verification_code})" if cert is not None and cert.verification_code else ""
    return Check.met("platform_verified", f"verified by the platform{code}")


CONDITIONS: Mapping[str, Callable[[Env], Check | Sequence[Check] | None]] = {
    "in_force": _in_force,
    "beijing_employment": _beijing_employment,
    "row_experience": _row_experience,
    "holder_category": _holder_category,
    "title_level": _title_level,
    "row_terms": _row_terms,
    "row_notes": _row_notes,
    "skill_certificate_row": _skill_certificate_row,
    "work_permit_age": _work_permit_age,
    "employer_type": _employer_type,
    "to_show": _to_show,
    "notes": _notes,
    "practice_row": _practice_row,
    "designated_in_list_four": _designated_in_list_four,
    "platform_verified": _platform_verified,
}
"""The named conditions the data file's rules refer to."""


# --- deciding -------------------------------------------------------------------------------------------------


@cache
def _benefit_rules() -> Mapping[str, BenefitRule]:
    """The packaged data's rules as :class:`BenefitRule`, built and validated once, not once per decision."""
    data = benefits_data()
    return {spec.code: data.benefit_rule(spec) for spec in data.rule}


@cache
def designations() -> Mapping[str, CatalogueEntry]:
    """List (四) of this plugin's own catalogue: the designated row's id → the designating row."""
    return {e.designates: e for e in load_edition().entries if e.designates}


def counterpart_of(
    data: BenefitsData, entry_id: str, designated: Mapping[str, CatalogueEntry]
) -> tuple[str, CatalogueEntry] | None:
    """The counterpart of a row whose own remark states a mutual recognition, where that counterpart is
    designated in list (四) and the row itself is not: (counterpart id, its designating row)."""
    if entry_id in designated:
        return None
    row = data.mutual.counterpart_of(entry_id)
    if row is None or row not in designated:
        return None
    return row, designated[row]


def _placement(data: BenefitsData, spec: RuleSpec, entry_list: str, designated: bool) -> bool | None:
    """Whether a rule is for a row of ``entry_list`` — True where the urgent-list cumulation reading is
    what brings it in, False where the rule's lists name the row's list or its designation — or None."""
    c = data.cumulation
    cumulated = entry_list == c.from_list and data.cumulates(spec)
    if entry_list in spec.lists:
        return cumulated
    if cumulated and c.to_list in spec.lists:
        return True
    if designated and data.mutual.list in spec.lists:
        return False
    return None


def _outside_lists(data: BenefitsData, spec: RuleSpec, entry: CatalogueEntry) -> Check:
    """The reason a row outside a rule's lists does not get it."""
    lists = " or ".join(data.list_label(code) for code in spec.lists)
    detail = f"only for rows of {lists}; {entry.id} is a row of {data.list_label(entry.list)}"
    if data.mutual.list in spec.lists:
        detail += f" not designated in {data.list_label(data.mutual.list)}"
    elif entry.list == data.cumulation.from_list and data.cumulation.to_list in spec.lists:
        detail += f" (urgent-list holders also get the {data.cumulation.clause_prefix} services only)"
    return Check.failed("row_list", detail)


def _inputs(
    context: DecisionContext, day: date, designation: CatalogueEntry | None,
    counterpart: tuple[str, CatalogueEntry] | None = None,
) -> dict[str, str | int | float | bool | None]:
    """Derived, non-personal facts the decision used (never a birth date or a document number)."""
    emp = context.employment
    return {
        "decision_date": day.isoformat(),
        "list": context.entry.list,
        "holder_category": context.holder.category.value,
        "age": context.holder.age,
        "employer_region": emp.employer_region if emp else None,
        "employed": bool(emp and emp.active_on(day)),
        "years_in_scope": emp.years_in_scope if emp else None,
        "in_scope": emp.in_scope if emp else None,
        "high_tech": emp.high_tech if emp else False,
        "universal_studios": emp.universal_studios if emp else False,
        "employer_type": emp.employer_type.value if emp and emp.employer_type else None,
        "platform_verified": context.platform_verified,
        "designated_by": designation.id if designation else None,
        "counterpart": counterpart[0] if counterpart else None,
    }


# --- memo: one evaluation of the rules per situation -------------------------------------------------------
#
# A rule's outcome (:class:`RuleOutcome`) depends only on what its conditions read: the row, the decision's
# local day, the holder's category (and, for rules with the work-permit age condition, age and birthday), the
# employment's region, activity on that day, scope, years, high-tech, Universal Studios and employer type, the
# platform's verification, the designation and counterpart of the row, and the resolved settings. Never on the
# holder's id, the certificate's key, the cause or the time of day. Holders in the same situation get the same
# outcomes, stamped onto their own context, so the conditions run once per situation, not once per holder. A rule
# that reads the certificate itself (``platform_verified`` says its code) is evaluated for every context.

_AGE_CONDITIONS = frozenset({"work_permit_age"})
"""The conditions that read the holder's age or birthday."""
_CERTIFICATE_CONDITIONS = frozenset({"platform_verified"})
"""The conditions that read the certificate itself (its code)."""
MEMO_SIZE = 512
"""Situations whose outcomes are kept (least recently used dropped first): about 40 KB each, 20 MB in all."""


@dataclass
class _Situation:
    """The outcomes of one situation: of the rules that read neither the age nor the certificate (None for the
    others), and per age of those that read the age. Holds the row and designation entries its key names by
    identity, so their ids stay theirs while it is kept."""

    keep: tuple[object, ...]
    fixed: tuple[RuleOutcome | None, ...]
    by_age: dict[tuple[str, bool], tuple[RuleOutcome, ...]]


class _Memo:
    """A bounded, thread-safe LRU of situations; the resolved settings by their values."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.enabled = True
        self._lock = threading.Lock()
        self._situations: OrderedDict[tuple[object, ...], _Situation] = OrderedDict()
        self._settings: dict[str, dict[str, SettingValue]] = {}

    def clear(self) -> None:
        with self._lock:
            self._situations.clear()
            self._settings.clear()

    def settings(self, data: BenefitsData, settings: Mapping[str, object]) -> tuple[str, dict[str, SettingValue]]:
        """The resolved settings and a key for them: the repr of what :func:`resolve_settings` reads, so ``True``,
        ``1`` and ``1.0`` stay apart."""
        key = repr([(s.key, settings.get(s.key, s.default)) for s in data.setting])
        found = self._settings.get(key)
        if found is None:
            found = resolve_settings(data, settings)  # raises on a bad value: never kept
            with self._lock:
                if len(self._settings) >= 64:
                    self._settings.clear()
                self._settings[key] = found
        return key, found

    def get(self, key: tuple[object, ...]) -> _Situation | None:
        with self._lock:
            found = self._situations.get(key)
            if found is not None:
                self._situations.move_to_end(key)
            return found

    def put(self, key: tuple[object, ...], situation: _Situation) -> None:
        with self._lock:
            self._situations[key] = situation
            while len(self._situations) > self.size:
                self._situations.popitem(last=False)


_MEMO = _Memo(MEMO_SIZE)


def clear_memo() -> None:
    """Forget every kept situation and resolved settings."""
    _MEMO.clear()


@contextmanager
def memo_off() -> Iterator[None]:
    """Decide without the memo inside the block, every condition run for every context (to check that the memo
    changes no decision)."""
    was, _MEMO.enabled = _MEMO.enabled, False
    try:
        yield
    finally:
        _MEMO.enabled = was


_FIXED, _AGE, _EVERY = 0, 1, 2


@cache
def _reads() -> tuple[int, ...]:
    """Per rule of the data file: kept per situation, per situation and age, or evaluated for every context."""
    data = benefits_data()
    out: list[int] = []
    for spec in data.rule:
        names = {*data.common_conditions, *spec.conditions}
        out.append(_EVERY if names & _CERTIFICATE_CONDITIONS else _AGE if names & _AGE_CONDITIONS else _FIXED)
    return tuple(out)


def _situation_key(
    settings_key: str,
    context: DecisionContext,
    day: date,
    designation: CatalogueEntry | None,
    counterpart: tuple[str, CatalogueEntry] | None,
) -> tuple[object, ...]:
    emp = context.employment
    return (
        settings_key,
        id(context.entry),
        day,
        context.holder.category,
        None if emp is None else (
            emp.employer_region, emp.active_on(day), emp.in_scope, repr(emp.years_in_scope), emp.high_tech,
            emp.universal_studios, emp.employer_type,
        ),
        context.platform_verified,
        None if designation is None else id(designation),
        None if counterpart is None else (counterpart[0], id(counterpart[1])),
    )  # fmt: skip


def _evaluate(
    data: BenefitsData,
    spec: RuleSpec,
    context: DecisionContext,
    values: Mapping[str, SettingValue],
    day: date,
    designation: CatalogueEntry | None,
    counterpart: tuple[str, CatalogueEntry] | None,
) -> RuleOutcome:
    """One rule's outcome for one context: its conditions run on the context."""
    entry = context.entry
    cumulated = _placement(data, spec, entry.list, designation is not None or counterpart is not None)
    readings: list[str] = []
    if cumulated is None:
        checks = [_outside_lists(data, spec, entry)]
    else:
        env = Env(data=data, spec=spec, context=context, settings=values, day=day, designation=designation,
                  counterpart=counterpart)
        checks = evaluate((*data.common_conditions, *spec.conditions), CONDITIONS, env)
        readings = [*spec.readings, *([data.cumulation.reading] if cumulated else [])]
    return rule_outcome(_benefit_rules()[spec.code], checks, base=spec.outcome, readings=readings)


def decide(
    context: DecisionContext,
    settings: Mapping[str, object] | None = None,
    *,
    designated_by: Mapping[str, CatalogueEntry] | None = None,
    memo: bool = True,
) -> list[BenefitDecision]:
    """Every Beijing rule's decision for one holder's row at ``context.at``, ineligible ones included
    (a rule whose lists do not cover the row is ineligible for that reason).

    ``designated_by`` maps a list (一) row's id to the list (四) row designating it; by default it is read
    from this plugin's own catalogue. A list (四) row is a designation, never a certificate: deciding on
    one is refused with the row it designates. With ``memo`` (the default) the rules' outcomes are kept per
    situation (see above) and reused for every holder in it; without, every condition runs: the decisions are
    the same.
    """
    data = benefits_data()
    entry = context.entry
    if entry.list == data.mutual.list:
        target = f"the row it designates, {entry.designates}" if entry.designates else "the list (一) row it designates"
        raise ValidationFailed(f"{entry.id} is a designation in list (四), not a certificate: decide on {target}")
    use_memo = memo and _MEMO.enabled
    given = settings or {}
    settings_key, values = _MEMO.settings(data, given) if use_memo else ("", resolve_settings(data, given))
    day = local_date(context.at, data.utc_offset_hours)
    designated = designations() if designated_by is None else designated_by
    designation = designated.get(entry.id)
    counterpart = counterpart_of(data, entry.id, designated)
    decider = Decider(
        context, jurisdiction=JURISDICTION.code, plugin=PLUGIN,
        inputs=_inputs(context, day, designation, counterpart),
    )
    if not use_memo:
        return [decider.stamp(_evaluate(data, spec, context, values, day, designation, counterpart))
                for spec in data.rule]  # fmt: skip
    reads = _reads()
    key = _situation_key(settings_key, context, day, designation, counterpart)
    found = _MEMO.get(key)
    if found is None:
        found = _Situation(
            keep=(entry, designation, counterpart),
            fixed=tuple(_evaluate(data, spec, context, values, day, designation, counterpart) if r == _FIXED else None
                        for spec, r in zip(data.rule, reads, strict=True)),
            by_age={},
        )  # fmt: skip
        _MEMO.put(key, found)
    age_key = (repr(context.holder.age), context.holder.birthday)
    aged = found.by_age.get(age_key)
    if aged is None:
        aged = tuple(_evaluate(data, spec, context, values, day, designation, counterpart)
                     for spec, r in zip(data.rule, reads, strict=True) if r == _AGE)  # fmt: skip
        found.by_age[age_key] = aged
    by_age = iter(aged)
    out: list[BenefitDecision] = []
    for spec, r, o in zip(data.rule, reads, found.fixed, strict=True):
        if o is None:
            o = next(by_age) if r == _AGE else _evaluate(data, spec, context, values, day, designation, counterpart)
        out.append(decider.stamp(o))
    return out


# --- hooks ----------------------------------------------------------------------------------------------------


@hookimpl
def mra_benefit_rules() -> Sequence[BenefitRule]:
    data = benefits_data()
    return tuple(data.benefit_rule(spec) for spec in data.rule)


@hookimpl
def mra_policy_settings() -> Sequence[PolicySetting]:
    return benefits_data().setting


@hookimpl
def mra_decide(
    jurisdiction: str, context: DecisionContext, settings: Mapping[str, object]
) -> Sequence[BenefitDecision] | None:
    if jurisdiction != JURISDICTION.code:
        return None
    return decide(context, settings)
