"""The domain: catalogues, holders, employment, verified certificates and benefit decisions.

Plain pydantic models with no I/O, so that plugins, services and tests share one vocabulary and every
value that crosses the bus is validated on the way in and out.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BenefitDecision",
    "BenefitRule",
    "CatalogueEdition",
    "CatalogueEntry",
    "CatalogueList",
    "DecisionContext",
    "EmployerType",
    "Employment",
    "Experience",
    "HolderCategory",
    "HolderFacts",
    "Honour",
    "Issuer",
    "Jurisdiction",
    "Outcome",
    "Provision",
    "RepealedEdition",
    "Residence",
    "VerifiedCertificate",
    "full_years",
    "holder_category",
    "on_birthday",
    "parse_employer_type",
    "parse_residence",
    "standing",
]


class Frozen(BaseModel):
    """Immutable and strict about unknown fields: a typo in data is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- catalogues -----------------------------------------------------------------------------------------------


class Issuer(Frozen):
    """One issuing body of a catalogue row, as the row names it."""

    name_zh: str = ""
    name_en: str = ""


class Experience(Frozen):
    """One way to meet a row's experience condition ("从事N年以上…相关工作").

    ``years`` is None where the row names a work scope but no years. ``max_years`` is only set where the
    source gives a range (I-137 "从事 1—4 年"); whether it is an upper bound is a policy setting.
    """

    years: int | None = None
    max_years: int | None = None
    scope: str = ""
    words: str = Field(description="the remark's words this alternative is read from")


class Provision(Frozen):
    """A special provision of a row, flagged by a stable code, with the remark's words."""

    code: str
    words: str


class CatalogueList(Frozen):
    """One list of a catalogue edition (for Beijing 2025: I, U, O and the designating list M)."""

    code: str
    name_zh: str
    name_en: str
    count: int
    designates: bool = Field(False, description="rows point at rows of another list and add no qualification")
    source: str


EntryId = Annotated[str, Field(pattern=r"^[A-Z]{2}[0-9A-Z]*-[A-Z]+-[0-9]{2,3}$")]


class CatalogueEntry(Frozen):
    """One catalogue row: every column verbatim, then what is derived from the remark, with its words."""

    id: EntryId
    list: str
    seq: int = Field(ge=1)
    name: str
    issuer_text: str = Field(description="the 颁发机构 column verbatim")
    issuers: tuple[Issuer, ...] = ()
    aliases: tuple[str, ...] = Field((), description="other names a certificate's issuer may go by")
    country: str = ""
    fields: tuple[str, ...] = ()
    remark: str = ""
    experience: tuple[Experience, ...] = ()
    title_level: str | None = Field(None, description="'intermediate' or 'deputy_senior' where the row says so")
    title_words: str = Field("", description="the remark's words title_level is read from")
    title_conditions: tuple[str, ...] = ()
    provisions: tuple[Provision, ...] = ()
    designates: str | None = Field(None, description="for a designating row: the id of the row it designates")
    normalised: str = Field("", description="lower-cased, space-folded copy of the text, for search")
    source: str = Field(description="where the row stands in the source document")

    def has_provision(self, code: str) -> bool:
        return any(p.code == code for p in self.provisions)

    def issuer_names(self) -> tuple[str, ...]:
        """Every name that identifies this row's issuer: Chinese, English and aliases."""
        names = [n for i in self.issuers for n in (i.name_zh, i.name_en) if n]
        return tuple(dict.fromkeys([*names, *self.aliases]))


class RepealedEdition(Frozen):
    """An earlier edition the new one repeals; its rows are kept only where the source gives them."""

    edition: str
    document: str
    repealed_on: date


class CatalogueEdition(Frozen):
    """A published edition of one jurisdiction's catalogue."""

    jurisdiction: str
    catalogue: str = Field(description="stable catalogue name, e.g. 'beijing-international'")
    edition: str
    title: str
    document: str = Field(description="the document that publishes it, e.g. 京人社事业发〔2025〕11号")
    effective: date
    source_sha256: str = ""
    lists: tuple[CatalogueList, ...]
    entries: tuple[CatalogueEntry, ...]
    repeals: tuple[RepealedEdition, ...] = ()

    def entry(self, entry_id: str) -> CatalogueEntry | None:
        for e in self.entries:
            if e.id == entry_id:
                return e
        return None


class Honour(Frozen):
    """A catalogue of another jurisdiction that this one honours, and on what basis."""

    catalogue: str
    jurisdiction: str
    basis: str = Field(description="the clause that grants it, e.g. 京人社事业发〔2025〕11号 四.3")


class Jurisdiction(Frozen):
    """Who a plugin speaks for."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="'beijing'")
    prefix: str = Field(pattern=r"^[a-z]{2,4}$", description="benefit code namespace, 'bj'")
    name_zh: str
    name_en: str
    regions: tuple[str, ...] = Field(description="employer regions the jurisdiction covers")


# --- holders and facts ----------------------------------------------------------------------------------------


class HolderCategory(StrEnum):
    """Who a holder is, as the notice distinguishes them: a Chinese national (中国籍人员) resident in the mainland,
    in Hong Kong, Macao or Taiwan, or abroad (华侨), or a foreign national (外籍人员)."""

    MAINLAND = "mainland"
    HKMOTW = "hkmotw"
    CN_ABROAD = "cn_abroad"
    FOREIGN = "foreign"


class Residence(StrEnum):
    """Where a holder is a resident in law: the mainland (户籍), Hong Kong, Macao or Taiwan (居民身份), or abroad
    (settled in another country). Not where they happen to live this year."""

    MAINLAND = "mainland"
    HK = "HK"
    MO = "MO"
    TW = "TW"
    ABROAD = "abroad"


class EmployerType(StrEnum):
    """Whether the employer is a public institution (事业单位), which 一(二)3 treats apart."""

    PUBLIC_INSTITUTION = "public-institution"
    OTHER = "other"


_ISO2 = re.compile(r"^[A-Z]{2,3}$")
_CHINA = {"CN", "CHN"}
_REGIONS = {"HK": Residence.HK, "HKG": Residence.HK, "MO": Residence.MO, "MAC": Residence.MO,
            "TW": Residence.TW, "TWN": Residence.TW}


def parse_residence(text: str) -> Residence:
    """``mainland``, ``HK``, ``MO``, ``TW`` or ``abroad``, in any letter case."""
    folded = text.strip().lower()
    for r in Residence:
        if r.value.lower() == folded:
            return r
    raise ValueError(f"residence must be one of {', '.join(r.value for r in Residence)}; got {text!r}")


def parse_employer_type(text: str) -> EmployerType:
    """``public-institution`` or ``other``, in any letter case."""
    folded = text.strip().lower().replace("_", "-")
    for t in EmployerType:
        if t.value == folded:
            return t
    raise ValueError(f"employer type must be one of {', '.join(t.value for t in EmployerType)}; got {text!r}")


def holder_category(nationality: str, residence: Residence | str | None = None) -> HolderCategory:
    """The category of a holder from two facts: nationality (an ISO country code) and residence.

    Nationality alone keeps its long-standing meaning: CN is a mainland resident, HK, MO and TW stand for a
    resident of that region (a Chinese national), any other code is a foreign national. With a residence, CN is a
    Chinese national resident there (in the mainland, in Hong Kong, Macao or Taiwan, or abroad), HK/MO/TW must
    match it, and any other nationality is a foreign national wherever resident.
    """
    code = nationality.strip().upper()
    if not _ISO2.match(code):
        raise ValueError(f"nationality must be an ISO country code such as CN, HK, GB; got {nationality!r}")
    where = parse_residence(residence) if isinstance(residence, str) else residence
    region = _REGIONS.get(code)
    if where is None:
        if code in _CHINA:
            return HolderCategory.MAINLAND
        return HolderCategory.HKMOTW if region is not None else HolderCategory.FOREIGN
    if region is not None:
        if where is not region:
            raise ValueError(
                f"nationality {code} stands for a resident of {region.value}, not {where.value}: give the "
                f"holder's nationality (CN for a Chinese national, else the passport's country) with the residence"
            )
        return HolderCategory.HKMOTW
    if code not in _CHINA:
        return HolderCategory.FOREIGN
    if where is Residence.MAINLAND:
        return HolderCategory.MAINLAND
    if where is Residence.ABROAD:
        return HolderCategory.CN_ABROAD
    return HolderCategory.HKMOTW


def standing(
    nationality: str, residence: Residence | str | None = None
) -> tuple[HolderCategory, bool, Residence | None]:
    """The two facts a holder's events carry, with the category they give: (category, Chinese national or not,
    residence). A nationality alone gives the residence it has always stood for (CN the mainland, HK/MO/TW that
    region); a foreign nationality alone gives none."""
    category = holder_category(nationality, residence)
    code = nationality.strip().upper()
    where = parse_residence(residence) if isinstance(residence, str) else residence
    if where is None:
        where = Residence.MAINLAND if code in _CHINA else _REGIONS.get(code)
    return category, category is not HolderCategory.FOREIGN, where


def full_years(born: date, on: date) -> int:
    """Age in full years on a day (a person is 65 until the day before their 66th birthday)."""
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


def on_birthday(born: date, on: date) -> bool:
    """Whether ``on`` is the day the age in full years goes up (1 March for 29 February outside leap years)."""
    return on > born and full_years(born, on) > full_years(born, on - timedelta(days=1))


class HolderFacts(Frozen):
    """What a decision may know of a holder: derived, non-personal facts only."""

    holder_id: str
    category: HolderCategory
    age: int | None = Field(None, description="full years at the decision's event time")
    birthday: bool = Field(False, description="the decision's day is the day the age in full years went up")
    erased: bool = False


class Employment(Frozen):
    """A personnel/labour relationship with an employer in a jurisdiction."""

    holder_id: str
    jurisdiction: str
    employer: str
    employer_region: str
    started: date
    ended: date | None = None
    field: str | None = None
    years_in_scope: float | None = Field(None, ge=0, description="years of work in the row's scope, as attested")
    in_scope: bool = True
    high_tech: bool = Field(False, description="the employer is in a 高精尖 industry")
    universal_studios: bool = Field(False, description="the work is for the Universal Studios project")
    employer_type: EmployerType | None = Field(None, description="public institution (事业单位) or not; None: not said")

    def active_on(self, day: date) -> bool:
        return self.started <= day and (self.ended is None or day < self.ended)


class VerifiedCertificate(Frozen):
    """A certificate the verification platform found genuine."""

    certificate_key: str = Field(description="stable id of the certificate: entry + issuer + number, hashed")
    holder_id: str
    entry_id: str
    issuer: str
    verification_code: str
    verified_at: datetime
    verified_by: str = Field(description="the platform that verified it, e.g. 'beijing'")
    expires: date | None = None
    revoked: bool = False


# --- rules and decisions --------------------------------------------------------------------------------------


class Outcome(StrEnum):
    ELIGIBLE = "eligible"
    CONDITIONAL = "conditional"
    ADVISORY = "advisory"
    INELIGIBLE = "ineligible"


class BenefitRule(Frozen):
    """A benefit as policy data: who gets what under which clause."""

    code: str = Field(pattern=r"^[a-z]{2,4}\.[a-z0-9_.]+$")
    clause: str = Field(min_length=1)
    title_zh: str
    title_en: str
    lists: tuple[str, ...] = ()
    who: tuple[HolderCategory, ...] = tuple(HolderCategory)
    conditions: tuple[str, ...] = ()
    readings: tuple[str, ...] = Field((), description="readings of the source this rule rests on")
    version: str = "1"


class DecisionContext(Frozen):
    """Everything a benefit handler may look at, at one event time."""

    holder: HolderFacts
    employment: Employment | None
    certificate: VerifiedCertificate | None
    entry: CatalogueEntry
    edition: str
    at: datetime = Field(description="event time of the fact that triggered the decision")
    platform_verified: bool = True
    caused_by: str = Field("", description="id of the event that triggered the decision")


class BenefitDecision(Frozen):
    """One benefit decided for one holder and certificate, with everything needed to explain it."""

    decision_id: str = ""
    holder_id: str
    jurisdiction: str
    code: str
    outcome: Outcome
    clause: str
    reasons: tuple[str, ...] = ()
    conditions: tuple[str, ...] = Field((), description="what the holder must still show (conditional)")
    readings: tuple[str, ...] = ()
    entry_id: str
    certificate_key: str = ""
    verification_code: str = ""
    edition: str
    rule_version: str
    plugin: str
    inputs: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="derived, non-personal inputs only"
    )
    caused_by: str = ""
    decided_at: datetime

    @field_validator("inputs")
    @classmethod
    def _no_personal_inputs(
        cls, value: dict[str, str | int | float | bool | None]
    ) -> dict[str, str | int | float | bool | None]:
        forbidden = {"birth_date", "name", "document_number", "passport", "id_number"} & value.keys()
        if forbidden:
            raise ValueError(f"decision inputs must not hold personal data: {sorted(forbidden)}")
        return value
