"""The catalogue editions a command can read: those the loaded plugins ship, and those a bureau imported.

``mra catalogue import`` publishes a bureau's own edition on the catalogue topic and keeps a copy in the state
directory (``catalogues/JURISDICTION/CATALOGUE@EDITION.json``, the edition exactly as published), so that every
catalogue command and ``mra benefits check`` know its rows without a broker. Of several imported editions of one
catalogue, the one with the latest effective date is read (the last imported where two share a date).
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import ValidationError

from mra.core.errors import MraError
from mra.core.models import CatalogueEdition
from mra.core.plugins import Registry

__all__ = ["all_editions", "imported_editions", "save_imported"]

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
