"""Keeping the catalogues whole: extract every message, merge new ones into each ``.po``, list the missing.

Messages are the strings marked with ``_()`` or ``N_()`` in the source, plus every help text of the ``mra``
command. Run ``python -m mra.i18n update`` after adding messages, translate the new entries, and
``python -m mra.i18n check`` (a test runs it) lists what is still untranslated.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click

from mra.i18n import DOMAIN, LANGUAGES

__all__ = ["command_texts", "extract", "missing", "update"]

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
SKIP_DIRS = {"tests", "benchmarks", "build", ".venv", "docs", "examples", "scripts"}


def command_texts(command: click.Command) -> Iterator[str]:
    """The help texts of a click command and everything under it, as the help page shows them."""
    if command.help:
        yield inspect.cleandoc(command.help).partition("\f")[0].strip()
    if command.short_help:
        yield inspect.cleandoc(command.short_help)
    for param in command.params:
        text = getattr(param, "help", None)
        if text:
            yield text
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from command_texts(sub)


def _source_messages() -> Iterator[tuple[str, str]]:
    from babel.messages.extract import extract_from_file

    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        rel = path.relative_to(PACKAGE_ROOT)
        if rel.parts[0] in SKIP_DIRS or any(p.startswith(".") for p in rel.parts):
            continue
        for lineno, message, _comments, _context in extract_from_file(
            "python", str(path), keywords={"_": None, "N_": None}
        ):
            if isinstance(message, str) and message:
                yield message, f"{rel}:{lineno}"


def extract() -> dict[str, list[str]]:
    """Every message, with where it comes from."""
    from mra.cli import cli

    found: dict[str, list[str]] = {}
    for message, where in _source_messages():
        found.setdefault(message, []).append(where)
    for text in command_texts(cli):
        found.setdefault(text, []).append("mra-help:0")
    return found


def _po_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def update() -> dict[str, int]:
    """Add new messages to every catalogue (untranslated) and mark the ones no longer used obsolete."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import read_po, write_po

    template = Catalog(domain=DOMAIN, project="mra", creation_date=datetime(2025, 1, 1, tzinfo=UTC))
    for message, where in extract().items():
        template.add(message, locations=[(w.rsplit(":", 1)[0], 0) for w in where[:3]])
    added: dict[str, int] = {}
    for lang in LANGUAGES:
        path = _po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with path.open("rb") as f:
                catalog = read_po(f, locale=lang, domain=DOMAIN)
        else:
            catalog = Catalog(locale=lang, domain=DOMAIN, project="mra")
        before = {m.id for m in catalog if m.id}
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        added[lang] = len({m.id for m in catalog if m.id} - before)
        with path.open("wb") as f:
            write_po(f, catalog, width=120, omit_header=False, sort_output=True, include_previous=False)
    return added


def missing(lang: str) -> list[str]:
    """Messages in use that the catalogue of ``lang`` does not translate (English needs none)."""
    from mra.i18n import _messages

    if lang == "en":
        return []
    have = _messages(lang)
    return sorted(m for m in extract() if m not in have)
