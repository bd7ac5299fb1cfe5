"""What people type, read the way they mean it: jurisdictions and regions by code, Chinese name or
abbreviation (``beijing``, ``北京``, ``北京市``, ``京``), countries by ISO code or name (``GB``, ``GBR``, ``英国``).
Anything else is refused with the closest names, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click

from mra.commands._output import _
from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.i18n.places import PROVINCES, Unknown, closest, country_name, place_names, resolve_country

__all__ = [
    "COUNTRY",
    "JURISDICTION",
    "REGION",
    "resolve_catalogue_country",
    "resolve_field",
    "resolve_jurisdiction",
    "resolve_nationality",
    "resolve_region",
]


def _shown(code: str) -> str:
    if code in PROVINCES:
        return f"{code} ({PROVINCES[code][0]}, {PROVINCES[code][1]})"
    return code


def _resolve(
    kind: str, text: str, spellings: Mapping[str, str], codes: Iterable[str], error: type[MraError] = ValidationFailed
) -> str:
    key = text.strip().casefold()
    hit = spellings.get(key) or spellings.get(key.replace(" ", ""))
    if hit:
        return hit
    near: list[str] = []
    for name in closest(text, spellings, n=5):
        code = spellings[name.casefold()]
        if code not in near:
            near.append(code)
    known = ", ".join(_shown(c) for c in sorted(codes)) or _("none loaded")
    if near:
        raise error(
            _("unknown {kind} {text!r}: did you mean {suggestion}? (known: {known})").format(
                kind=kind, text=text, suggestion=" / ".join(near[:3]), known=known
            )
        )
    raise error(_("unknown {kind} {text!r} (known: {known})").format(kind=kind, text=text, known=known))


def _registry() -> Any:
    from mra.core.plugins import load_registry

    return load_registry()


def resolve_jurisdiction(text: str, registry: Any = None) -> str:
    """The code of a loaded jurisdiction named by code, Chinese name, abbreviation or English name."""
    registry = registry or _registry()
    codes = list(registry.jurisdictions)
    names = {c: (j.name_zh, j.name_en) for c, j in registry.jurisdictions.items()}
    return _resolve(_("jurisdiction"), text, place_names(codes, names), codes, NotFound)


def resolve_region(text: str, registry: Any = None) -> str:
    """A region covered by a loaded jurisdiction, named as :func:`resolve_jurisdiction` reads names."""
    registry = registry or _registry()
    regions = sorted({r for j in registry.jurisdictions.values() for r in j.regions})
    names = {c: (j.name_zh, j.name_en) for c, j in registry.jurisdictions.items() if c in regions}
    return _resolve(_("region"), text, place_names(regions, names), regions)


def resolve_nationality(text: str, lang: str = "en") -> str:
    """The ISO 3166-1 alpha-2 code of a nationality given by code or country name; unknown ones refused."""
    try:
        return resolve_country(text)
    except Unknown as e:
        if e.suggestions:
            shown = " / ".join(f"{c} ({country_name(c, 'zh_CN')}, {country_name(c, 'en')})" for c in e.suggestions)
            raise ValidationFailed(
                _("unknown nationality {text!r}: did you mean {suggestion}?").format(text=text, suggestion=shown)
            ) from None
        raise ValidationFailed(
            _("unknown nationality {text!r}: give an ISO 3166 country code (CN, HK, MO, TW, GB, …) or a country "
              "name such as 英国").format(text=text)
        ) from None


def resolve_field(text: str, known: Iterable[str]) -> str:
    """A field of work (领域) of the catalogue as it is written there, named in Chinese or English
    (``finance`` → 金融); unknown ones refused with the closest."""
    from mra.i18n.terms import FIELDS

    fields = sorted(set(known))
    spellings = {f.casefold(): f for f in fields}
    spellings |= {en.casefold(): zh for zh, en in FIELDS.items() if zh in fields}
    key = text.strip().casefold()
    if key in spellings:
        return spellings[key]
    near = [spellings[n.casefold()] for n in closest(text, spellings, n=3)]
    shown = ", ".join(f"{f} ({FIELDS[f]})" if f in FIELDS else f for f in fields)
    hint = _(" did you mean {suggestion}?").format(suggestion=" / ".join(dict.fromkeys(near))) if near else ""
    raise ValidationFailed(
        _("unknown field {text!r}:{hint} (fields: {known})").format(text=text, hint=hint, known=shown)
    )


def resolve_catalogue_country(text: str, known: Iterable[str]) -> str:
    """A 国家(地区) as the catalogue writes it, named by ISO code or any name of the country (``GB``, ``UK``
    refused, ``United Kingdom`` and ``英国`` → 英国; ``HK`` → 中国香港)."""
    values = sorted({k for k in known if k})
    if text.strip() in values:
        return text.strip()
    def in_catalogue(code: str) -> str | None:
        for value in values:
            try:
                if resolve_country(value) == code:
                    return value
            except Unknown:
                continue
        return None

    try:
        code = resolve_country(text)
    except Unknown as e:
        near = [v for v in (in_catalogue(c) for c in e.suggestions) if v] or closest(text, values, n=3)
    else:
        return in_catalogue(code) or country_name(code, "zh_CN")  # a country with no row: an empty list
    hint = _(" did you mean {suggestion}?").format(suggestion=" / ".join(near)) if near else ""
    raise ValidationFailed(
        _("unknown country {text!r}:{hint} (in the catalogue: {known})").format(
            text=text, hint=hint, known=", ".join(values)
        )
    )


class _Resolved(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A click type that reads a value with one of the resolvers above: an invalid value is click's usage error
    (exit 2); a jurisdiction that is not loaded is not found (exit 3), as everywhere else."""

    def __init__(self, name: str, resolver: Any) -> None:
        self.name, self._resolver = name, resolver

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        try:
            return self._resolver(str(value))
        except NotFound:
            raise
        except ValidationFailed as e:
            self.fail(str(e), param, ctx)


JURISDICTION = _Resolved("jurisdiction", resolve_jurisdiction)
REGION = _Resolved("region", resolve_region)
COUNTRY = _Resolved("country", resolve_nationality)
