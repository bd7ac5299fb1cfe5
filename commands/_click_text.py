"""The texts click itself prints (usage, sections, errors), marked for the catalogue, and the switch that
makes click print them in the language of the invocation.

click translates through ``gettext`` under its own names; each of its modules binds ``_`` at import, so the
switch rebinds that name to mra's translator (and back to English), and touches nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

__all__ = ["MESSAGES", "use_translator"]


def N_(message: str) -> str:
    return message


MESSAGES = (
    N_("Aborted!"),
    N_("Options"),
    N_("Commands"),
    N_("Positional arguments"),
    N_("Missing command."),
    N_("env var: {var}"),
    N_("default: {default}"),
    N_("(dynamic)"),
    N_("Usage:"),
    N_("Error: {message}"),
    N_("Try '{command} {option}' for help."),
    N_("Invalid value: {message}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Missing argument"),
    N_("Missing option"),
    N_("Missing parameter"),
    N_("Missing {param_type}"),
    N_("Missing parameter: {param_name}"),
    N_("No such option {name!r}."),
    N_("No such command {name!r}."),
    N_("Could not open file {filename!r}: {message}"),
    N_("Show the version and exit."),
    N_("Show this message and exit."),
    N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is a directory."),
    N_("Option {name!r} does not take a value."),
    N_("Option {name!r} requires an argument."),
    N_("{value!r} is not {choice}."),
    N_("{value!r} is not one of {choices}."),
    N_("{value!r} does not match the format {format}."),
    N_("{value!r} does not match the formats {formats}."),
    N_("file"),
    N_("directory"),
    N_("path"),
    N_("integer"),
    N_("float"),
)

_MODULES = ("core", "formatting", "exceptions", "decorators", "types", "parser", "termui", "utils")


def use_translator(translate: Callable[[str], str]) -> None:
    """Make click print its own texts through ``translate``."""
    for name in _MODULES:
        try:
            module = importlib.import_module(f"click.{name}")
        except ImportError:
            continue
        if callable(getattr(module, "_", None)):
            module._ = translate  # type: ignore[attr-defined]
        if callable(getattr(module, "ngettext", None)):
            module.ngettext = _plural(translate)  # type: ignore[attr-defined]


def _plural(translate: Callable[[str], str]) -> Callable[[str, str, int], str]:
    def ngettext(singular: str, plural: str, n: int) -> str:
        return translate(singular if n == 1 else plural)

    return ngettext
