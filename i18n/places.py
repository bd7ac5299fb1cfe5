"""Names of places as people type them: countries (ISO 3166-1 codes, Chinese or English names) and the
provincial-level divisions of China by code, Chinese name or one-character abbreviation (简称).

Country names come from the CLDR data Babel ships, so no table is kept here. A name that matches nothing is
refused with the closest names (``did you mean``), never guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from functools import cache

__all__ = ["PROVINCES", "Unknown", "closest", "countries", "country_name", "place_names", "resolve_country"]

_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ", "AC", "CP", "DG", "EA", "IC", "TA"}
"""CLDR regions that are not ISO 3166-1 countries (unions, pseudo-regions, exceptionally reserved codes)."""

_EXTRA_NAMES = {
    "香港": "HK",
    "中国香港": "HK",
    "澳门": "MO",
    "澳門": "MO",
    "中国澳门": "MO",
    "中国台湾": "TW",
    "台灣": "TW",
    "中国内地": "CN",
    "中国大陆": "CN",
    "内地": "CN",
    "大陆": "CN",
    "英國": "GB",
    "美國": "US",
    "hong kong": "HK",
    "macau": "MO",
    "macao": "MO",
}
"""Everyday names CLDR does not give (its names for HK and MO are the long official ones). Loose names
(Britain, Korea, America) are left out on purpose: they are refused with the closest name suggested."""

PROVINCES: Mapping[str, tuple[str, str]] = {
    "beijing": ("北京市", "京"),
    "tianjin": ("天津市", "津"),
    "hebei": ("河北省", "冀"),
    "shanxi": ("山西省", "晋"),
    "neimenggu": ("内蒙古自治区", "蒙"),
    "liaoning": ("辽宁省", "辽"),
    "jilin": ("吉林省", "吉"),
    "heilongjiang": ("黑龙江省", "黑"),
    "shanghai": ("上海市", "沪"),
    "jiangsu": ("江苏省", "苏"),
    "zhejiang": ("浙江省", "浙"),
    "anhui": ("安徽省", "皖"),
    "fujian": ("福建省", "闽"),
    "jiangxi": ("江西省", "赣"),
    "shandong": ("山东省", "鲁"),
    "henan": ("河南省", "豫"),
    "hubei": ("湖北省", "鄂"),
    "hunan": ("湖南省", "湘"),
    "guangdong": ("广东省", "粤"),
    "guangxi": ("广西壮族自治区", "桂"),
    "hainan": ("海南省", "琼"),
    "chongqing": ("重庆市", "渝"),
    "sichuan": ("四川省", "川"),
    "guizhou": ("贵州省", "黔"),
    "yunnan": ("云南省", "云"),
    "xizang": ("西藏自治区", "藏"),
    "shaanxi": ("陕西省", "陕"),
    "gansu": ("甘肃省", "甘"),
    "qinghai": ("青海省", "青"),
    "ningxia": ("宁夏回族自治区", "宁"),
    "xinjiang": ("新疆维吾尔自治区", "新"),
}
"""Provincial-level divisions of the mainland by pinyin code: Chinese name and abbreviation (简称)."""

OLD_NAMES = {"peking": "beijing", "tientsin": "tianjin", "hopei": "hebei", "hopeh": "hebei", "chihli": "hebei"}
"""Older romanisations people still type: accepted, since they name one place without doubt."""


class Unknown(ValueError):
    """A name that matches nothing; ``suggestions`` are the closest known names, best first."""

    def __init__(self, text: str, suggestions: list[str]) -> None:
        super().__init__(text)
        self.text, self.suggestions = text, suggestions


def closest(text: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The known names nearest ``text`` (case-insensitive), best first."""
    by_key: dict[str, str] = {}
    for choice in choices:
        by_key.setdefault(choice.casefold(), choice)
    hits = difflib.get_close_matches(text.strip().casefold(), list(by_key), n=n, cutoff=0.6)
    return [by_key[h] for h in hits]


@cache
def countries() -> Mapping[str, tuple[str, str]]:
    """ISO 3166-1 alpha-2 code → (Chinese name, English name)."""
    from babel import Locale

    zh, en = Locale.parse("zh_CN").territories, Locale.parse("en").territories
    return {
        code: (str(zh.get(code, name)), str(name))
        for code, name in sorted(en.items())
        if re.fullmatch(r"[A-Z]{2}", code) and code not in _NOT_COUNTRIES
    }


@cache
def _names() -> Mapping[str, str]:
    """Every accepted spelling, folded → alpha-2 code."""
    from babel.core import get_global

    out: dict[str, str] = {}
    known = countries()
    for code, (zh, en) in known.items():
        out[code.casefold()] = code
        out[zh.casefold()] = code
        out[en.casefold()] = code
    for alias, targets in get_global("territory_aliases").items():
        if len(alias) == 3 and alias.isalpha() and len(targets) == 1 and targets[0] in known:
            out.setdefault(alias.casefold(), targets[0])
    for name, code in _EXTRA_NAMES.items():
        out.setdefault(name.casefold(), code)
    return out


def country_name(code: str, lang: str) -> str:
    """A country's name in ``lang`` (``zh_CN`` or ``en``), or the code when it is not a country."""
    names = countries().get(code.upper())
    if names is None:
        return code
    return names[0] if lang == "zh_CN" else names[1]


def resolve_country(text: str) -> str:
    """The ISO 3166-1 alpha-2 code of a country given by alpha-2 or alpha-3 code, Chinese or English name.
    Raises :class:`Unknown` with the closest codes (a retired or user-assigned code such as ``UK`` suggests its
    ISO code, ``GB``)."""
    from babel.core import get_global

    key = text.strip().casefold()
    hit = _names().get(key)
    if hit:
        return hit
    known = countries()
    aliases = get_global("territory_aliases")
    suggestions: list[str] = []
    for target in aliases.get(text.strip().upper(), []):
        if target in known:
            suggestions.append(target)
    if len(key) > 3:  # a short code near another is a different country, not a typo worth suggesting
        for name in closest(text, _names(), n=5):
            code = _names()[name.casefold()]
            if code not in suggestions:
                suggestions.append(code)
    raise Unknown(text, suggestions[:3])


def place_names(codes: Iterable[str], names: Mapping[str, Iterable[str]] | None = None) -> dict[str, str]:
    """Every spelling of each place code (folded) → the code: the code, its Chinese name with and without
    市/省, its abbreviation, older romanisations, and ``names`` given for it."""
    out: dict[str, str] = {}
    for code in codes:
        spellings = [code, *(names or {}).get(code, ())]
        if code in PROVINCES:
            full, short = PROVINCES[code]
            spellings += [full, full.removesuffix("市").removesuffix("省"), short]
        spellings += [old for old, new in OLD_NAMES.items() if new == code]
        for s in spellings:
            if s:
                out.setdefault(s.strip().casefold(), code)
                out.setdefault(s.strip().casefold().replace(" ", ""), code)
    return out
