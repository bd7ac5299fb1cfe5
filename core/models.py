"""The domain: catalogues, holders, employment, verified certificates and benefit decisions.

Plain pydantic models with no I/O, so that plugins, services and tests share one vocabulary and every
value that crosses the bus is validated on the way in and out.
"""

from __future__ import annotations

import re
from datetime import date, datetime
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
    "VerifiedCertificate",
    "full_years",
    "holder_category",
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
    """Who a holder is, as the notice distinguishes them."""

    MAINLAND = "mainland"
    HKMOTW = "hkmotw"
    FOREIGN = "foreign"


_ISO2 = re.compile(r"^[A-Z]{2,3}$")


def holder_category(nationality: str) -> HolderCategory:
    """CN is a mainland resident; HK, MO and TW residents are Chinese nationals of their own category."""
    code = nationality.strip().upper()
    if not _ISO2.match(code):
        raise ValueError(f"nationality must be an ISO country code such as CN, HK, GB; got {nationality!r}")
    if code in {"CN", "CHN"}:
        return HolderCategory.MAINLAND
    if code in {"HK", "HKG", "MO", "MAC", "TW", "TWN"}:
        return HolderCategory.HKMOTW
    return HolderCategory.FOREIGN


def full_years(born: date, on: date) -> int:
    """Age in full years on a day (a person is 65 until the day before their 66th birthday)."""
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years


class HolderFacts(Frozen):
    """What a decision may know of a holder: derived, non-personal facts only."""

    holder_id: str
    category: HolderCategory
    age: int | None = Field(None, description="full years at the decision's event time")
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
