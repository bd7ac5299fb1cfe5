"""How commands speak to people: in their language, one time convention, aligned tables, JSON on request.

Times are shown in the user's zone as ISO 8601 without fractions of a second; ``--json`` keeps English codes
and ISO 8601 times (with their offset) whatever the language.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, TextIO

import click

from mra.i18n import cli_language, translator

__all__ = [
    "_",
    "current_language",
    "echo_error_json",
    "localize",
    "set_language",
    "shown_time",
    "table",
    "text_width",
    "to_json",
    "working",
]

_state: dict[str, str] = {}


def set_language(lang: str | None) -> str:
    """Fix the language of this invocation: ``--lang`` when given, else the environment's."""
    _state["lang"] = cli_language(lang)
    return _state["lang"]


def current_language() -> str:
    if "lang" not in _state:
        set_language(None)
    return _state["lang"]


def localize(root: click.Command, lang: str) -> None:
    """Show the help of ``root`` and every command under it, and click's own texts, in ``lang``. The English
    texts are kept, so the same tree can be shown in another language later (tests run many in one process)."""
    import inspect

    from mra.commands._click_text import use_translator

    translate = translator(lang)
    use_translator(translate)

    def walk(command: click.Command) -> None:
        source: dict[str, Any] = command.__dict__.setdefault(
            "_mra_english", {"help": command.help, "short_help": command.short_help}
        )
        if source["help"]:
            english = inspect.cleandoc(source["help"]).partition("\f")[0].strip()
            command.help = translate(english)
        if source["short_help"]:
            command.short_help = translate(inspect.cleandoc(source["short_help"]))
        elif command.help and lang != "en":
            command.short_help = _first_sentence(command.help)
        else:
            command.short_help = None
        if getattr(command, "_help_option", None) is not None:
            command._help_option = None  # click keeps the --help option it made, with its text: make it anew
        for param in command.params:
            original = param.__dict__.setdefault("_mra_english", getattr(param, "help", None))
            if original and isinstance(param, click.Option):
                param.help = translate(original)
        if isinstance(command, click.Group):
            for sub in command.commands.values():
                walk(sub)

    walk(root)


def _first_sentence(text: str, limit: int = 56) -> str:
    """The first sentence of a help text written without spaces between words (click's own shortening cuts at
    spaces), at most ``limit`` characters."""
    first = text.strip().split("\n\n", 1)[0].replace("\n", "")
    for stop in ("。", "；", "："):
        if stop in first:
            first = first.split(stop, 1)[0]
            break
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _(message: str) -> str:
    """``message`` in the language of this invocation."""
    return translator(current_language())(message)


def shown_time(value: datetime | str | None, zone: Any = None) -> str:
    """A time as people read it: in the user's zone (``zone`` for tests), ISO 8601, no microseconds. A date
    stays a date; a naive time is taken as UTC; text that is not a time is shown as it is."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if len(value) == 10:
            return value
        value = parsed
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def text_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters take two."""
    wide = ("W", "F")
    return sum(2 if unicodedata.east_asian_width(c) in wide else 0 if unicodedata.combining(c) else 1 for c in text)


def _pad(text: str, width: int, right: bool) -> str:
    gap = " " * max(0, width - text_width(text))
    return gap + text if right else text + gap


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[tuple[str, str]],
    *,
    total: str | None = None,
    sort: Callable[[Mapping[str, Any]], Any] | None = None,
) -> str:
    """Rows as an aligned table: ``columns`` are (key, heading) pairs, numbers right-aligned. ``total`` is
    the line under the table (a count or a sum the caller words); ``sort`` orders the rows."""
    ordered = sorted(rows, key=sort) if sort else list(rows)
    cells = [[_cell(r.get(k)) for k, _h in columns] for r in ordered]
    heads = [h for _k, h in columns]
    numeric = [all(isinstance(r.get(k), int | float) for r in ordered) and bool(ordered) for k, _h in columns]
    widths = [max([text_width(h), *(text_width(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    lines = ["  ".join(_pad(h, widths[i], numeric[i]) for i, h in enumerate(heads)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(_pad(c, widths[i], numeric[i]) for i, c in enumerate(row)).rstrip() for row in cells]
    if total:
        lines.append(total)
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime):
        return shown_time(value)
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def to_json(data: Any) -> str:
    """The JSON every ``--json`` prints: UTF-8 text, times as ISO 8601."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


@contextmanager
def working(label: str, *, quiet: bool = False, stream: TextIO | None = None, every: float = 1.0) -> Iterator[None]:
    """Say on a terminal that long work goes on: ``label… 12s``, updated in place, erased when done. Nothing is
    written when stderr is not a terminal (pipes, files, tests) or under ``--json``."""
    out = stream or sys.stderr
    if quiet or not out.isatty():
        yield
        return
    done = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not done.wait(every):
            out.write(f"\r{label}… {time.monotonic() - started:.0f}s")
            out.flush()

    thread = threading.Thread(target=tick, name="mra-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        out.write("\r" + " " * (text_width(label) + 12) + "\r")
        out.flush()


def echo_error_json(message: str, **extra: Any) -> None:
    """An error under ``--json``: ``{"error": …}`` on stdout (the exit code says it failed)."""
    click.echo(to_json({"error": message, **extra}))
