"""Clerks' reports: a jurisdiction's benefit decisions counted by list, field, holder category and month.

The counting is a pure function over decision records (:func:`aggregate`), so it gives the same report whichever
way the records arrive: read from the benefits topic here (:func:`load_records`, through the topic's read view
:class:`mra.events.benefits.BenefitsView` behind :func:`mra.services.audit.export_decisions`), or from a bureau's
read model.
A decision counts in the period of its event time, as a calendar day in China Standard Time; a decision made and
later withdrawn still counts where it was made, and is also counted as withdrawn.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from mra.core.errors import ValidationFailed
from mra.core.models import CatalogueEdition, CatalogueEntry, Outcome
from mra.core.plugins import Registry
from mra.events.bus import Transport
from mra.events.envelope import DecodeError, decode
from mra.events.schemas import HolderRegistered
from mra.events.topics import Topics
from mra.services.audit import export_decisions, read_log, resolve_topics
from mra.services.labels import CATEGORY, REPORT, label

__all__ = [
    "CST",
    "DIMENSION_ORDER",
    "OUTCOMES",
    "DecisionRecord",
    "Report",
    "Row",
    "aggregate",
    "holder_categories",
    "load_records",
    "records_from_rows",
]

CST = timezone(timedelta(hours=8), "CST")
"""China Standard Time: the calendar a decision's day and month are counted in."""

OUTCOMES: tuple[str, ...] = tuple(o.value for o in (Outcome.ELIGIBLE, Outcome.CONDITIONAL, Outcome.ADVISORY,
                                                     Outcome.INELIGIBLE))
DIMENSION_ORDER: tuple[str, ...] = ("list", "field", "category", "month")


@dataclass(frozen=True)
class DecisionRecord:
    """What the report needs of one decision: no reasons, no personal data."""

    decision_id: str
    jurisdiction: str
    holder_id: str
    code: str
    outcome: str
    status: str
    entry_id: str
    decided_at: datetime
    list: str = ""
    list_name: str = ""
    list_name_en: str = ""
    fields: tuple[str, ...] = ()
    category: str = ""

    @property
    def day(self) -> date:
        return self.decided_at.astimezone(CST).date()

    @property
    def month(self) -> str:
        return self.day.strftime("%Y-%m")


@dataclass(frozen=True)
class Row:
    """One line of a table: a key (list code, field, category, month), its label, and what was counted."""

    key: str
    label: str
    outcomes: dict[str, int]
    total: int
    withdrawn: int
    holders: int

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, **self.outcomes, "total": self.total,
                "withdrawn": self.withdrawn, "holders": self.holders}


@dataclass(frozen=True)
class Report:
    """The counts of one jurisdiction's decisions in a period, by dimension, and the decisions counted."""

    jurisdiction: str
    jurisdiction_name: str
    start: date | None
    until: date | None
    totals: Row
    tables: dict[str, list[Row]]
    records: list[DecisionRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "from": self.start.isoformat() if self.start else None,
            "until": self.until.isoformat() if self.until else None,
            "totals": self.totals.as_dict(),
            "tables": {d: [r.as_dict() for r in rows] for d, rows in self.tables.items()},
        }


def _row(key: str, name: str, records: Sequence[DecisionRecord]) -> Row:
    outcomes = {o: sum(r.outcome == o for r in records) for o in OUTCOMES}
    return Row(
        key=key,
        label=name,
        outcomes=outcomes,
        total=len(records),
        withdrawn=sum(r.status == "withdrawn" for r in records),
        holders=len({r.holder_id for r in records}),
    )


def _keys(record: DecisionRecord, dimension: str, lang: str) -> list[tuple[str, str]]:
    """The (key, label) pairs a decision counts under in one dimension: several fields, one of anything else."""
    none = label(REPORT, "not_stated", lang)
    if dimension == "list":
        name = record.list_name if lang.startswith("zh") else record.list_name_en
        return [(record.list, f"{record.list} {name}".strip() if record.list else none)]
    if dimension == "field":
        return [(f, f) for f in record.fields] or [("", none)]
    if dimension == "category":
        return [(record.category, label(CATEGORY, record.category, lang))]
    if dimension == "month":
        return [(record.month, record.month)]
    raise ValueError(f"unknown dimension {dimension!r}")


def aggregate(
    records: Iterable[DecisionRecord],
    *,
    jurisdiction: str,
    jurisdiction_name: str = "",
    start: date | None = None,
    until: date | None = None,
    lang: str = "zh_CN",
) -> Report:
    """Count the decisions of ``jurisdiction`` made from ``start`` to ``until`` (both days included, CST): by
    outcome, with how many were withdrawn since and how many holders they concern, in total and by each
    dimension. Rows are sorted by key; a field table may add up to more than the total (a row has several)."""
    if start and until and start > until:
        raise ValidationFailed(f"--from {start} is after --until {until}")
    chosen = sorted(
        (
            r
            for r in records
            if r.jurisdiction == jurisdiction
            and (start is None or r.day >= start)
            and (until is None or r.day <= until)
        ),
        key=lambda r: (r.decided_at, r.holder_id, r.code, r.decision_id),
    )
    tables: dict[str, list[Row]] = {}
    for dimension in DIMENSION_ORDER:
        groups: dict[str, list[DecisionRecord]] = defaultdict(list)
        names: dict[str, str] = {}
        for r in chosen:
            for key, name in _keys(r, dimension, lang):
                groups[key].append(r)
                names[key] = name
        tables[dimension] = [_row(k, names[k], groups[k]) for k in sorted(groups, key=lambda k: (k == "", k))]
    return Report(
        jurisdiction=jurisdiction,
        jurisdiction_name=jurisdiction_name or jurisdiction,
        start=start,
        until=until,
        totals=_row("total", label(REPORT, "total", lang), chosen),
        tables=tables,
        records=chosen,
    )


# --- reading the records ----------------------------------------------------------------------------------------


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def records_from_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    find: Callable[[str], tuple[CatalogueEdition, CatalogueEntry] | None],
    categories: Mapping[str, str],
) -> list[DecisionRecord]:
    """Decision records from exported decisions (:func:`mra.services.audit.export_decisions` rows): the list and
    fields from the catalogue row (``find``), the holder category from ``categories`` or the decision's inputs."""
    out: list[DecisionRecord] = []
    for row in rows:
        entry_id = str(row["entry_id"])
        found = find(entry_id)
        inputs = row.get("inputs") or {}
        if found is not None:
            edition, entry = found
            code = entry.list
            lst = next((x for x in edition.lists if x.code == code), None)
            list_name, list_name_en = (lst.name_zh, lst.name_en) if lst else ("", "")
            fields = entry.fields
        else:
            parts = entry_id.split("-")
            code = str(inputs.get("list") or (parts[-2] if len(parts) >= 3 else ""))
            list_name, list_name_en, fields = "", "", ()
        category = categories.get(str(row["holder_id"])) or str(inputs.get("holder_category") or "")
        out.append(
            DecisionRecord(
                decision_id=str(row["decision_id"]),
                jurisdiction=str(row["jurisdiction"]),
                holder_id=str(row["holder_id"]),
                code=str(row["code"]),
                outcome=str(row["outcome"]),
                status=str(row.get("status") or "active"),
                entry_id=entry_id,
                decided_at=_when(row["decided_at"]),
                list=code,
                list_name=list_name,
                list_name_en=list_name_en,
                fields=tuple(fields),
                category=category if category in CATEGORY else "",
            )
        )
    return out


def holder_categories(transport: Transport, topics: Topics, *, timeout: float | None = 600) -> dict[str, str]:
    """Each registered holder's category, from the holders topic (the category is not personal data)."""
    out: dict[str, str] = {}
    for r in read_log(transport, resolve_topics(transport, topics, ["holders"]), timeout=timeout):
        try:
            env = decode(r)
        except DecodeError:
            continue
        if isinstance(env.data, HolderRegistered):
            out[env.data.holder_id] = env.data.category.value
    return out


def load_records(
    transport: Transport,
    topics: Topics,
    registry: Registry,
    jurisdiction: str,
    *,
    editions: Sequence[CatalogueEdition] = (),
    timeout: float | None = 600,
) -> list[DecisionRecord]:
    """The jurisdiction's decisions as published on the benefits topic, with each holder's category from the
    holders topic and each row's list and fields from the loaded catalogues (and ``editions``, imported ones)."""
    rows = export_decisions(transport, topics, jurisdiction, timeout=timeout)
    categories = holder_categories(transport, topics, timeout=timeout)
    known = [*registry.catalogues(), *editions]

    def find(entry_id: str) -> tuple[CatalogueEdition, CatalogueEntry] | None:
        for edition in known:
            entry = edition.entry(entry_id)
            if entry is not None:
                return edition, entry
        return None

    return records_from_rows(rows, find=find, categories=categories)

