"""The message catalogue: every text a person reads, in Simplified Chinese (``zh_CN``) and English (``en``).

Messages are gettext catalogues (``locale/<lang>/LC_MESSAGES/mra.po``), read with Babel when first needed,
so nothing is compiled at install time and no system locale has to be installed. The msgid is the English
text; a message missing from a catalogue prints in English. ``docs/interfaces.md`` says how to add one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources

__all__ = ["LANGUAGES", "cli_language", "negotiate", "normalize", "translator"]

LANGUAGES = ("zh_CN", "en")
"""The catalogues shipped, the first the one a bare ``zh`` means."""

DOMAIN = "mra"


def normalize(tag: str | None) -> str | None:
    """The catalogue a language tag or locale name means (``zh-CN``, ``zh_CN.UTF-8``, ``zh-Hans`` → ``zh_CN``;
    ``en_GB`` → ``en``), or None for C/POSIX and languages without a catalogue. Chinese of every region reads
    the Simplified catalogue, the only Chinese one."""
    if not tag:
        return None
    base = re.split(r"[.@]", tag.strip(), maxsplit=1)[0].replace("-", "_").lower()
    if base in ("", "c", "posix"):
        return None
    primary = base.split("_", 1)[0]
    if primary == "zh":
        return "zh_CN"
    if primary == "en":
        return "en"
    return None


@cache
def _messages(lang: str) -> Mapping[str, str]:
    """msgid → msgstr of one catalogue: translated, non-fuzzy entries only."""
    from babel.messages.pofile import read_po

    path = resources.files(__name__).joinpath("locale", lang, "LC_MESSAGES", f"{DOMAIN}.po")
    with path.open("rb") as f:
        catalog = read_po(f, locale=lang, domain=DOMAIN)
    out: dict[str, str] = {}
    for message in catalog:
        msgid, msgstr = message.id, message.string
        if isinstance(msgid, str) and isinstance(msgstr, str) and msgid and msgstr and not message.fuzzy:
            out[msgid] = msgstr
    return out


def translator(lang: str) -> Callable[[str], str]:
    """The function translating an English msgid into ``lang`` (anything :func:`normalize` reads; unknown
    languages translate into English). Placeholders are ``str.format`` fields, filled after translating."""
    messages = _messages(normalize(lang) or "en")

    def translate(message: str) -> str:
        return messages.get(message) or message

    return translate


def negotiate(accept_language: str | None) -> str:
    """The catalogue for an HTTP ``Accept-Language`` header: the supported language of highest weight (the
    earlier one on a tie), English when none is supported or there is no header."""
    if not accept_language:
        return "en"
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        m = re.search(r"q\s*=\s*([^;,\s]*)", params)
        if m:
            try:
                weight = float(m.group(1))
            except ValueError:
                weight = 0.0
        lang = normalize(tag)
        if lang is None or weight <= 0:
            continue
        if best is None or weight > best[0]:
            best = (weight, index, lang)
    return best[2] if best else "en"


def cli_language(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The language of the command line: ``explicit`` (``--lang``) when given, else the environment as GNU
    gettext reads it: the locale is ``LC_ALL``, else ``LC_MESSAGES``, else ``LANG``; when it is set and not
    C/POSIX, ``LANGUAGE`` (a colon-separated list) comes first. Unset or C gives English."""
    if explicit:
        return normalize(explicit) or "en"
    env = os.environ if environ is None else environ
    locale_name = env.get("LC_ALL") or env.get("LC_MESSAGES") or env.get("LANG") or ""
    if normalize(locale_name) is None and locale_name.split(".", 1)[0].upper() in ("", "C", "POSIX"):
        return "en"
    for tag in (env.get("LANGUAGE") or "").split(":"):
        lang = normalize(tag)
        if lang:
            return lang
    return normalize(locale_name) or "en"
