"""The catalogue editions a command can read: those the loaded plugins ship, and those a bureau imported.

``mra catalogue import`` publishes a bureau's own edition on the catalogue topic and keeps a copy in the state
directory (``catalogues/JURISDICTION/CATALOGUE@EDITION.json``, the edition exactly as published), so that every
catalogue command and ``mra benefits check`` know its rows without a broker. Of several imported editions of one
catalogue, the one with the latest effective date is read (the last imported where two share a date).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from mra.core.catalogue import CSV_COLUMNS, IMPORT_ID_WIDTH, parse_catalogue_csv
from mra.core.errors import MraError, ValidationFailed
from mra.core.models import CatalogueEdition, CatalogueList
from mra.core.plugins import Registry

__all__ = [
    "ENCODINGS",
    "all_editions",
    "canonical_id",
    "edition_from_csv",
    "imported_editions",
    "read_csv_text",
    "save_imported",
]

ENCODINGS = ("utf-8", "gb18030")
"""What an import reads, in this order: UTF-8 (with or without a byte-order mark), then GB18030, which also reads
GBK and GB2312 (what Excel saves as "CSV" on Chinese Windows)."""

_SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: Save As → \"CSV UTF-8 (逗号分隔)\")"

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _dir(state_dir: Path) -> Path:
    return state_dir / "catalogues"


def save_imported(state_dir: Path, edition: CatalogueEdition) -> Path:
    """Keep the imported ``edition`` (replacing an earlier import of the same catalogue and edition)."""
    name = f"{_SAFE.sub('_', edition.catalogue)}@{_SAFE.sub('_', edition.edition)}.json"
    path = _dir(state_dir) / _SAFE.sub("_", edition.jurisdiction) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(edition.model_dump_json(indent=1), encoding="utf-8")
    tmp.replace(path)
    return path


def imported_editions(state_dir: Path, jurisdiction: str | None = None) -> list[CatalogueEdition]:
    """The imported editions in force, one per catalogue, of one jurisdiction or of all."""
    root = _dir(state_dir)
    if not root.is_dir():
        return []
    found: list[tuple[CatalogueEdition, float]] = []
    for path in sorted(root.glob("*/*.json")):
        try:
            edition = CatalogueEdition.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError) as e:
            raise MraError(f"imported catalogue {path} cannot be read ({e}): import it again") from None
        if jurisdiction is None or edition.jurisdiction == jurisdiction:
            found.append((edition, path.stat().st_mtime))
    latest: dict[tuple[str, str], tuple[CatalogueEdition, float]] = {}
    for edition, mtime in found:
        key = (edition.jurisdiction, edition.catalogue)
        held = latest.get(key)
        if held is None or (edition.effective, mtime) >= (held[0].effective, held[1]):
            latest[key] = (edition, mtime)
    return [latest[k][0] for k in sorted(latest)]


def all_editions(registry: Registry, state_dir: Path, jurisdiction: str | None = None) -> list[CatalogueEdition]:
    """The plugins' editions, then the imported ones (an imported edition of a catalogue a plugin ships takes
    its place)."""
    imported = imported_editions(state_dir, jurisdiction)
    replaced = {(e.jurisdiction, e.catalogue) for e in imported}
    shipped = [e for e in registry.catalogues(jurisdiction) if (e.jurisdiction, e.catalogue) not in replaced]
    return [*shipped, *imported]


# --- importing ------------------------------------------------------------------------------------------------


def read_csv_text(path: Path) -> tuple[str, str]:
    """The file's text and the encoding it was read in (:data:`ENCODINGS`); anything else is refused with the
    advice to save it as UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise MraError(f"cannot read {path}: {e.strerror or e}") from None
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValidationFailed(f"{path} is UTF-16 text (Excel's \"Unicode text\"): {_SAVE_AS_UTF8}")
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    for encoding in ENCODINGS:
        try:
            return raw.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(f"{path} is neither UTF-8 nor GBK/GB18030 text: {_SAVE_AS_UTF8}")


_ID = re.compile(r"^(?P<prefix>.+)-(?P<list>[A-Za-z0-9]+)-0*(?P<seq>[0-9]+)$")


def canonical_id(text: str) -> str:
    """An imported row's id with its number padded to three digits (``TJ2024-A-1``, ``TJ2024-A-01`` →
    ``TJ2024-A-001``); text that is no ``PREFIX-LIST-NUMBER`` is returned as it is, for validation to refuse."""
    m = _ID.match(text.strip())
    if not m:
        return text
    return f"{m['prefix']}-{m['list']}-{int(m['seq']):0{IMPORT_ID_WIDTH}d}"


def edition_from_csv(
    text: str,
    jurisdiction: str,
    edition: str,
    effective: date,
    document: str,
    title: str | None = None,
    catalogue_name: str | None = None,
) -> CatalogueEdition:
    """A bureau's own edition from CSV text in the catalogue columns. Lists and the id prefix come from the file
    itself: ``{prefix}-{list}-{seq}`` ids, numbers padded to three digits whatever the file wrote, one list per
    code, in the order the codes first appear."""
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    if not rows or "id" not in rows[0] or "list" not in rows[0]:
        raise ValidationFailed("the CSV has no rows, or no id and list columns", [f"columns: {CSV_COLUMNS}"])
    short = [
        f"line {n}: {'no id' if not row.get('id') else 'no list'}"
        for n, row in enumerate(rows, start=2)
        if not row.get("id") or not row.get("list")
    ]
    if short:
        raise ValidationFailed(f"{len(short)} row(s) without an id or a list code", short[:20])
    for row in rows:
        row["id"] = canonical_id(row["id"])
        if row.get("designates"):
            row["designates"] = canonical_id(row["designates"])
    first = rows[0]
    marker = f"-{first['list']}-"
    if marker not in first["id"]:
        raise ValidationFailed("ids must look like PREFIX-LIST-SEQ", [f"line 2: id {first['id']!r}"])
    prefix = first["id"].split(marker)[0]
    counts: dict[str, int] = {}
    designating: set[str] = set()
    for row in rows:
        counts[row["list"]] = counts.get(row["list"], 0) + 1
        if row.get("designates"):
            designating.add(row["list"])
    lists = tuple(
        CatalogueList(
            code=code,
            name_zh=f"{title or document} ({code})",
            name_en=f"list {code}",
            count=n,
            designates=code in designating,
            source=f"{document} 清单 {code}",
        )
        for code, n in counts.items()
    )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0].keys()), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    entries = parse_catalogue_csv(out.getvalue(), prefix=prefix, lists=lists, id_width=IMPORT_ID_WIDTH)
    return CatalogueEdition(
        jurisdiction=jurisdiction,
        catalogue=catalogue_name or f"{jurisdiction}-own",
        edition=edition,
        title=title or document,
        document=document,
        effective=effective,
        source_sha256=hashlib.sha256(text.encode()).hexdigest(),
        lists=lists,
        entries=entries,
    )
