"""Synthetic holders, employments and certificates to drive a plugin's decisions with.

The cases are built from the plugin's own catalogue rows (and those of the catalogues it honours), so
they exercise its real data; they vary one fact at a time from a base case that should be favourable
(employed here, verified certificate), which covers every condition a rule is likely to test without the
cost of a full cross product. Everything is fixed: the same registry always gives the same cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from math import ceil

from mra.core.models import (
    CatalogueEdition,
    CatalogueEntry,
    CatalogueList,
    DecisionContext,
    Employment,
    HolderCategory,
    HolderFacts,
    Jurisdiction,
    VerifiedCertificate,
)
from mra.core.plugins import Registry

__all__ = ["AT", "SyntheticCase", "sample_entries", "synthetic_cases", "synthetic_edition"]

AT = datetime(2025, 10, 1, 9, 30, tzinfo=timezone(timedelta(hours=8)))
"""The event time of every synthetic case: after the 2025 catalogue took effect."""

ELSEWHERE = "synthetic-elsewhere"


@dataclass(frozen=True)
class SyntheticCase:
    """One context to decide, and what was varied to make it (for failure messages)."""

    label: str
    context: DecisionContext


def synthetic_edition(jurisdiction: Jurisdiction) -> CatalogueEdition:
    """A one-row stand-in where neither the plugin nor what it honours has rows loaded."""
    code = f"{jurisdiction.prefix.upper()}SYN"
    return CatalogueEdition(
        jurisdiction=jurisdiction.code,
        catalogue=f"{jurisdiction.code}-synthetic",
        edition="synthetic",
        title="synthetic catalogue of the conformance kit",
        document="none: made by the conformance kit",
        effective=date(2025, 1, 1),
        lists=(CatalogueList(code="X", name_zh="合成", name_en="synthetic", count=1, source="the kit"),),
        entries=(
            CatalogueEntry(
                id=f"{code}-X-001",
                list="X",
                seq=1,
                name="synthetic qualification",
                issuer_text="synthetic issuer",
                source="made by the conformance kit",
            ),
        ),
    )


def _spread(rows: Sequence[CatalogueEntry], k: int) -> list[CatalogueEntry]:
    if k <= 0 or not rows:
        return []
    if k == 1 or len(rows) <= k:
        return list(rows[:k])
    step = (len(rows) - 1) / (k - 1)
    return [rows[round(i * step)] for i in range(k)]


def sample_entries(
    editions: Sequence[CatalogueEdition], max_entries: int
) -> list[tuple[CatalogueEdition, CatalogueEntry]]:
    """Up to ``max_entries`` certificate rows (designations excluded), spread over every list."""
    groups: list[tuple[CatalogueEdition, list[CatalogueEntry]]] = []
    for edition in editions:
        designating = {lst.code for lst in edition.lists if lst.designates}
        for lst in edition.lists:
            if lst.code not in designating:
                groups.append((edition, [e for e in edition.entries if e.list == lst.code]))
    groups = [(ed, rows) for ed, rows in groups if rows]
    if not groups:
        return []
    per_group = max(1, ceil(max_entries / len(groups)))
    out = [(ed, row) for ed, rows in groups for row in _spread(rows, per_group)]
    return out[:max_entries]


def _holder(n: int, category: HolderCategory, age: int | None) -> HolderFacts:
    return HolderFacts(holder_id=f"syn-holder-{n:04d}", category=category, age=age)


def synthetic_cases(registry: Registry, code: str, max_entries: int = 16) -> list[SyntheticCase]:
    """Cases for jurisdiction ``code`` from its own catalogues, then those it honours."""
    jurisdiction = registry.jurisdiction(code)
    own = [(e, jurisdiction.code) for e in registry.catalogues(code)]
    honoured = [(e, e.jurisdiction) for e in registry.honoured_catalogues(code)]
    platform_of = {(e.jurisdiction, e.catalogue): p for e, p in [*own, *honoured]}
    editions = [e for e, _ in [*own, *honoured]] or [synthetic_edition(jurisdiction)]
    platforms = sorted({jurisdiction.code, *(h.jurisdiction for h in registry.honours(code))})
    region = jurisdiction.regions[0]
    cases: list[SyntheticCase] = []

    def add(label: str, edition: CatalogueEdition, entry: CatalogueEntry, holder: HolderFacts,
            employment: Employment | None, platform: str | None, revoked: bool = False) -> None:
        n = len(cases)
        holder = holder.model_copy(update={"holder_id": f"syn-holder-{n:04d}"})
        if employment is not None:
            employment = employment.model_copy(update={"holder_id": holder.holder_id})
        cert = None
        if platform is not None:
            cert = VerifiedCertificate(
                certificate_key=f"syn-cert-{n:04d}",
                holder_id=holder.holder_id,
                entry_id=entry.id,
                issuer=entry.issuer_names()[0] if entry.issuer_names() else entry.issuer_text,
                verification_code=f"SYN-{platform.upper()}-{n:04d}",
                verified_at=AT - timedelta(days=30),
                verified_by=platform,
                revoked=revoked,
            )
        context = DecisionContext(
            holder=holder,
            employment=employment,
            certificate=cert,
            entry=entry,
            edition=edition.edition,
            at=AT,
            platform_verified=cert is not None and not revoked,
            caused_by=f"syn-event-{n:04d}",
        )
        cases.append(SyntheticCase(f"{entry.id} {label}", context))

    def employed(**changes: object) -> Employment:
        base = Employment(
            holder_id="",
            jurisdiction=jurisdiction.code,
            employer="synthetic employer",
            employer_region=region,
            started=date(2024, 3, 1),
            years_in_scope=6.0,
        )
        return base.model_copy(update=changes)

    for edition, entry in sample_entries(editions, max_entries):
        home = platform_of.get((edition.jurisdiction, edition.catalogue), jurisdiction.code)
        base_holder = _holder(0, HolderCategory.FOREIGN, 35)
        add("base: foreign, 35, employed here, verified", edition, entry, base_holder, employed(), home)
        for category, age in [
            (HolderCategory.MAINLAND, 35),
            (HolderCategory.HKMOTW, 40),
            (HolderCategory.CN_ABROAD, 45),
            (HolderCategory.FOREIGN, 66),
            (HolderCategory.FOREIGN, 71),
            (HolderCategory.FOREIGN, None),
        ]:
            add(f"holder {category.value}, age {age}", edition, entry, _holder(0, category, age), employed(), home)
        for label, employment in [
            ("not employed", None),
            ("employed in a high-tech industry, age 66", employed(high_tech=True)),
            ("employed on the Universal Studios project", employed(universal_studios=True)),
            ("years in scope not attested", employed(years_in_scope=None)),
            ("half a year in scope", employed(years_in_scope=0.5)),
            ("employment ended", employed(started=date(2023, 1, 1), ended=date(2025, 6, 30))),
            ("employment not yet started", employed(started=date(2026, 1, 1))),
            ("employed elsewhere", employed(jurisdiction=ELSEWHERE, employer_region=ELSEWHERE)),
        ]:
            age = 66 if "age 66" in label else 35
            add(label, edition, entry, _holder(0, HolderCategory.FOREIGN, age), employment, home)
        add("no certificate", edition, entry, base_holder, employed(), None)
        add("verification revoked", edition, entry, base_holder, employed(), home, revoked=True)
        for platform in platforms:
            if platform != home:
                add(f"verified by {platform}", edition, entry, base_holder, employed(), platform)
    return cases
