"""``mra catalogue``: read the catalogues the loaded jurisdictions publish (list, show one row, search)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, current_state_dir, emit, json_option, jurisdiction_option, pass_ctx
from mra.commands._input import resolve_catalogue_country, resolve_field
from mra.core.catalogue import search, select
from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.ids import stable_id
from mra.core.models import CatalogueEdition, CatalogueEntry
from mra.core.plugins import load_registry, resolve_entry_ref
from mra.core.validation import check_catalogue
from mra.events.schemas import CatalogueEditionPublished
from mra.services.catalogues import all_editions, edition_from_csv, read_csv_text, save_imported

__all__ = ["COMMANDS", "catalogue"]

_J_HELP = "Only this jurisdiction's catalogues (beijing, tianjin, hebei, …). Default: every loaded jurisdiction."


def _editions(jurisdiction: str | None, imported: bool = True) -> list[CatalogueEdition]:
    """The plugins' editions and, unless ``imported`` is false, those imported into the state directory."""
    registry = load_registry()
    if jurisdiction:
        registry.jurisdiction(jurisdiction)
    editions = all_editions(registry, current_state_dir(), jurisdiction) if imported else registry.catalogues(
        jurisdiction)
    if not editions:
        where = f"jurisdiction {jurisdiction!r}" if jurisdiction else "any loaded jurisdiction"
        raise NotFound(f"no catalogue is published by {where}")
    return editions


def _as_json(edition: CatalogueEdition, entry: CatalogueEntry) -> dict[str, Any]:
    return {
        "jurisdiction": edition.jurisdiction,
        "catalogue": edition.catalogue,
        "edition": edition.edition,
        **entry.model_dump(mode="json"),
    }


# --- text output ----------------------------------------------------------------------------------------------


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cut(text: str, limit: int) -> str:
    if _width(text) <= limit:
        return text
    out, used = "", 0
    for c in text:
        w = _width(c)
        if used + w > limit - 1:
            break
        out, used = out + c, used + w
    return out + "…"


def _table(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...], limits: tuple[int, ...]) -> str:
    cells = [tuple(_cut(v, lim) for v, lim in zip(r, limits, strict=True)) for r in [headers, *rows]]
    widths = [max(_width(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(v + " " * (widths[i] - _width(v)) for i, v in enumerate(r)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _issuer_short(entry: CatalogueEntry) -> str:
    names = [i.name_zh or i.name_en for i in entry.issuers]
    return "; ".join(names) or entry.issuer_text


def _list_text(found: list[tuple[CatalogueEdition, CatalogueEntry]]) -> str:
    if not found:
        return "No catalogue rows match."
    rows = [
        (e.id, e.name, _issuer_short(e), e.country, "、".join(e.fields), e.designates or "")
        for _, e in found
    ]
    table = _table(
        rows, ("ID", "名称 name", "颁发机构 issuer", "国家(地区)", "领域 fields", "→"), (13, 40, 30, 10, 20, 13)
    )
    designations = sum(1 for _, e in found if e.designates)
    summary = _plural(len(found) - designations, "qualification")
    if designations:
        summary += f", {_plural(designations, 'designation')} (→ the row designated)"
    return f"{table}\n\n{summary}."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _show_text(edition: CatalogueEdition, entry: CatalogueEntry) -> str:
    lst = next(x for x in edition.lists if x.code == entry.list)
    lines = [f"{entry.id}  {entry.name}"]

    def add(label: str, value: str) -> None:
        lines.append(f"  {label}{' ' * max(1, 15 - _width(label))}{value}")

    add("catalogue", f"{edition.title} ({edition.document}), edition {edition.edition}")
    add("list", f"{lst.code} {lst.name_zh} / {lst.name_en}")
    add("source", entry.source)
    add("颁发机构", entry.issuer_text)
    for issuer in entry.issuers:
        add("issuer", " / ".join(n for n in (issuer.name_zh, issuer.name_en) if n))
    if entry.aliases:
        add("aliases", "; ".join(entry.aliases))
    add("国家(地区)", entry.country or "—")
    add("领域", "、".join(entry.fields) or "—")
    add("备注", entry.remark or "—")
    if entry.designates:
        target = edition.entry(entry.designates)
        add("designates", f"{entry.designates} {target.name if target else ''}".rstrip())
    designated_by = [e.id for e in edition.entries if e.designates == entry.id]
    if designated_by:
        add("designated by", ", ".join(designated_by))
    for x in entry.experience:
        if x.years is None:
            years = "years not given"
        elif x.max_years is not None:
            years = f"{x.years}–{x.max_years} years"
        else:
            years = f"{x.years}+ years"
        add("experience", f"{years}: {x.scope}   «{x.words}»")
    if entry.title_level:
        add("title", f"{entry.title_level}   «{entry.title_words}»")
    for c in entry.title_conditions:
        add("title cond.", f"«{c}»")
    for p in entry.provisions:
        add("provision", f"{p.code}   «{p.words}»")
    return "\n".join(lines)


# --- commands -------------------------------------------------------------------------------------------------


@click.group("catalogue")
def catalogue() -> None:
    """The recognition catalogues of the loaded jurisdictions: every row with its source."""


@catalogue.command("list")
@jurisdiction_option(required=False, help=_J_HELP)
@click.option("--list", "list_code", type=click.Choice(["I", "U", "O", "M"], case_sensitive=False),
              help="Only one list: I international, U urgently needed, O going-global, M mutual recognition.")
@click.option("--field", help="Only rows with this 领域, in Chinese or English (金融, finance).")
@click.option("--country", help="Only rows of this 国家(地区), by name or ISO code (英国, United Kingdom, GB).")
@json_option
def list_(jurisdiction: str | None, list_code: str | None, field: str | None, country: str | None,
          as_json: bool) -> None:
    """List catalogue rows, optionally filtered."""
    editions = list(_editions(jurisdiction))
    rows = [e for ed in editions for e in ed.entries]
    if field:
        field = resolve_field(field, (f for e in rows for f in e.fields))
    if country:
        country = resolve_catalogue_country(country, (e.country for e in rows))
    found = [
        (ed, e)
        for ed in editions
        for e in select(ed.entries, list_code=list_code, field=field, country=country)
    ]
    emit([_as_json(ed, e) for ed, e in found], as_json, lambda _: _list_text(found))


@catalogue.command("show")
@click.argument("entry_id", metavar="ID")
@jurisdiction_option(required=False, help=_J_HELP)
@json_option
def show(entry_id: str, jurisdiction: str | None, as_json: bool) -> None:
    """Show one row: BJ2025-I-001, or a short form such as I-1, I-001, M-03."""
    hits = [(ed, e) for ed in _editions(jurisdiction) if (e := resolve_entry_ref(ed, entry_id)) is not None]
    if not hits:
        raise NotFound(
            f"no catalogue entry {entry_id!r}; ids look like BJ2025-I-001 or I-1 (see `mra catalogue list`)"
        )
    if len(hits) > 1:
        ids = ", ".join(f"{e.id} ({ed.jurisdiction})" for ed, e in hits)
        raise MraError(f"{entry_id!r} is ambiguous: {ids}; give the full id or --jurisdiction")
    edition, entry = hits[0]
    emit(_as_json(edition, entry), as_json, lambda _: _show_text(edition, entry))


@catalogue.command("search")
@click.argument("text")
@jurisdiction_option(required=False, help=_J_HELP)
@json_option
def search_(text: str, jurisdiction: str | None, as_json: bool) -> None:
    """Find rows by name, issuer (Chinese, English, abbreviation such as ACCA), field or remark."""
    if not text.strip():
        raise MraError("search text is empty")
    found = [(ed, e) for ed in _editions(jurisdiction) for e in search(ed.entries, text)]
    emit([_as_json(ed, e) for ed, e in found], as_json, lambda _: _list_text(found))




@catalogue.command("publish")
@jurisdiction_option(help="The jurisdiction whose catalogue editions to publish.")
@json_option
@pass_ctx
def publish(ctx: Ctx, jurisdiction: str, as_json: bool) -> None:
    """Publish the jurisdiction's catalogue editions on the catalogue topic, so every bureau and replay
    knows which edition is in force from when. Publishing the same edition again is recognised as the same event."""
    runtime = ctx.runtime()
    publisher = runtime.publisher(runtime.connect(), f"{jurisdiction}-intake")
    out = []
    for edition in _editions(jurisdiction, imported=False):
        env = publisher.publish(
            CatalogueEditionPublished(edition=edition),
            id=stable_id("edition", edition.catalogue, edition.edition, edition.source_sha256),
            time=datetime.combine(edition.effective, time(0), timezone(timedelta(hours=8))),
        )
        out.append({"catalogue": edition.catalogue, "edition": edition.edition, "entries": len(edition.entries),
                    "effective": edition.effective.isoformat(), "event_id": env.id})
    publisher.flush()
    emit(out, as_json, "\n".join(f"published {o['catalogue']} {o['edition']} ({o['entries']} rows, effective "
                                 f"{o['effective']})" for o in out))




@catalogue.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@jurisdiction_option(help="The jurisdiction whose own catalogue this is.")
@click.option("--edition", required=True, help="Edition name, e.g. 2.0.")
@click.option("--effective", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Date the edition takes effect.")
@click.option("--document", required=True, help="The document that publishes it, cited by every row.")
@click.option("--title", help="The catalogue's title (default: the document).")
@click.option("--catalogue-name", help="Stable catalogue name (default: JURISDICTION-own).")
@click.option("--dry-run", is_flag=True, help="Validate and report, publish nothing.")
@json_option
@pass_ctx
def import_(
    ctx: Ctx,
    csv_file: Path,
    jurisdiction: str,
    edition: str,
    effective: datetime,
    document: str,
    title: str | None,
    catalogue_name: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Publish a bureau's own catalogue edition from a spreadsheet export (CSV in UTF-8, GBK or GB18030, the
    columns of docs/catalogue.md), validated row by row, as a catalogue event, and keep it in the state directory
    so that every catalogue command and `benefits check` know its rows. Ids are PREFIX-LIST-NNN (three digits)."""
    registry = load_registry()
    registry.jurisdiction(jurisdiction)
    text, encoding = read_csv_text(csv_file)
    new = edition_from_csv(text, jurisdiction, edition, effective.date(), document, title, catalogue_name)
    problems = check_catalogue(jurisdiction, new)
    if problems:
        raise ValidationFailed(f"{csv_file} is not a valid catalogue", problems)
    out: dict[str, object] = {
        "jurisdiction": jurisdiction,
        "catalogue": new.catalogue,
        "edition": new.edition,
        "encoding": encoding,
        "entries": len(new.entries),
        "lists": {lst.code: lst.count for lst in new.lists},
        "first": new.entries[0].id,
        "last": new.entries[-1].id,
        "published": False,
    }
    if not dry_run:
        runtime = ctx.runtime()
        publisher = runtime.publisher(runtime.connect(), f"{jurisdiction}-intake")
        env = publisher.publish(
            CatalogueEditionPublished(edition=new),
            id=stable_id("edition", new.catalogue, new.edition, new.source_sha256),
            time=datetime.combine(new.effective, time(0), timezone(timedelta(hours=8))),
        )
        publisher.flush()
        out |= {"published": True, "event_id": env.id, "kept": str(save_imported(ctx.state_dir, new))}
    verb = "published" if out["published"] else "validated (dry run)"
    lists = ", ".join(f"{lst.code} {lst.count}" for lst in new.lists)
    emit(out, as_json, f"{verb} {new.catalogue} {new.edition}: {len(new.entries)} rows ({out['first']} … "
                       f"{out['last']}; by list: {lists}), read as {encoding}")


COMMANDS: list[click.Command] = [catalogue]
