"""Catalogue rows as text: parsing a catalogue CSV, deriving what a row's remark says, and searching rows.

Pure functions over strings, so that every jurisdiction's plugin reads its own packaged file and hands the text
here: a Tianjin or Hebei catalogue in the same columns is imported by the same code. The deriver reads only the
remark (备注) and keeps, for every value it derives, the words it was read from.

The CSV has one row per catalogue row and these columns (UTF-8, header required)::

    id,list,seq,name,issuer_text,country,fields,remark,issuers,aliases,designates

``name``, ``issuer_text``, ``country``, ``fields`` and ``remark`` are the source's columns verbatim (wrap spaces
and typos included). ``fields`` is the 领域 text, split on 、 when loaded. ``issuers`` is ``中文名|English name``
pairs joined by `` ; `` (either side may be empty); ``aliases`` is ``;``-separated; ``designates`` is the id of
the row a designating list's row points at, empty elsewhere.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

from pydantic import ValidationError

from mra.core.errors import ValidationFailed
from mra.core.models import CatalogueEntry, CatalogueList, Experience, Issuer, Provision

__all__ = [
    "BEIJING_2025_PROVISIONS",
    "CSV_COLUMNS",
    "IMPORT_ID_WIDTH",
    "TITLE_LEVELS",
    "Derived",
    "Deriver",
    "ProvisionPattern",
    "entry_id",
    "format_issuers",
    "matches",
    "normalise",
    "parse_catalogue_csv",
    "parse_issuers",
    "search",
    "select",
    "split_fields",
]

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "list",
    "seq",
    "name",
    "issuer_text",
    "country",
    "fields",
    "remark",
    "issuers",
    "aliases",
    "designates",
)

# --- deriving from the remark ---------------------------------------------------------------------------------

TITLE_LEVELS: dict[str, str] = {"中级": "intermediate", "副高级": "deputy_senior"}
"""The professional-title levels a remark may name ("对应中级职称"), and the codes mra uses for them."""

# "从事2年以上…相关工作", "从事 1—4 年…工作", "从事…工作" (no years). Lazy up to the first 工作, so that two
# alternatives in one sentence stay two (I-98); "…教学工作相关工作" keeps its tail. "在京从事注册会计师业务" is
# a practice rule, not experience.
_EXPERIENCE = re.compile(r"(?<!在京)从事[^。；;]*?工作(?:相关工作)?")
_YEARS_RANGE = re.compile(r"(\d+)\s*[—–-]\s*(\d+)\s*年")
_YEARS_MIN = re.compile(r"(\d+)\s*年以上")
_TITLE = re.compile(r"对应([^\s,，。；;]{1,4}?)职称(?:需符合[^,，。；;]*)?")
_TITLE_CONDITIONS = (
    re.compile(r"申报[^,，。；;]*?职称需取得[^,，。；;]*"),
    re.compile(r"年限\([^)]*\d[^)]*\)"),
)
_MUTUAL = re.compile(r"与[^。]*?互认")


@dataclass(frozen=True)
class ProvisionPattern:
    """A special provision: its stable code and the pattern of the remark's words that state it."""

    code: str
    pattern: re.Pattern[str]


BEIJING_2025_PROVISIONS: tuple[ProvisionPattern, ...] = (
    ProvisionPattern("native_speaker_waived", re.compile(r"可不受母语国限制")),
    ProvisionPattern("universal_studios_exempt", re.compile(r"环球\s*影城\s*项目可不受年龄、工作经验限制")),
    ProvisionPattern(
        "cpa_practice_requires_cn_cpa",
        re.compile(r"在京从事注册会计师业务[,，]\s*须通过中国注册会计师考试及在北京注册会计师协会注册后执业"),
    ),
    ProvisionPattern("cn_cpa_exam_partial_exemption", re.compile(r"中国注册会计师考试部分科目可免试")),
    ProvisionPattern("cn_cpa_course_exemption", re.compile(r"中国注册会计师(?!考试)[^。]*?(?:免考|免试)[^。]*")),
    ProvisionPattern("short_term_medical_licence", re.compile(r"需在中国办理短期行医许可后执业")),
    ProvisionPattern("pharmacist_registration", re.compile(r"执业药师须在[^。；;]*?注册")),
    ProvisionPattern("veterinary_filing", re.compile(r"经[^。；;,，]*?农业农村主管部门备案")),
    ProvisionPattern("occupational_therapy_registration", re.compile(r"从事职业治疗的须在[^。；;]*?注册[^。；;]*")),
    ProvisionPattern("teacher_qualification_required", re.compile(r"具备教师资格的")),
    ProvisionPattern("skill_certificate", re.compile(r"可对应取得[^。；;,，]*?职业技能等级证书")),
    ProvisionPattern("mutual_recognition", _MUTUAL),
)
"""The provisions of the 2025 Beijing catalogue's remarks, in the wording of 京人社事业发〔2025〕11号 附件1."""


@dataclass(frozen=True)
class Derived:
    """What a remark says beyond its words: experience, title level and conditions, provisions."""

    experience: tuple[Experience, ...] = ()
    title_level: str | None = None
    title_words: str = ""
    title_conditions: tuple[str, ...] = ()
    provisions: tuple[Provision, ...] = ()


@dataclass(frozen=True)
class Deriver:
    """Reads a remark. Deterministic: the same remark always gives the same result, each value with its words.

    ``provisions`` are the patterns to flag; ``title_levels`` maps the level a remark names to mra's code. A
    remark that names a title level not in ``title_levels`` is an error, not a silent None.
    """

    provisions: tuple[ProvisionPattern, ...] = BEIJING_2025_PROVISIONS
    title_levels: dict[str, str] = dc_field(default_factory=lambda: dict(TITLE_LEVELS), hash=False)

    def derive(self, remark: str, designating_list: str | None = None) -> Derived:
        """Derive from ``remark``. ``designating_list`` is the name of the list the row stands in when that list
        designates (互认清单): its rows are mutual-recognition rows even where the remark has no 互认 sentence,
        and then the list's name is the words."""
        title_level, title_words = self._title(remark)
        provisions = [
            Provision(code=p.code, words=m.group(0).strip())
            for p in self.provisions
            for m in p.pattern.finditer(remark)
        ]
        if designating_list and not any(p.code == "mutual_recognition" for p in provisions):
            provisions.append(Provision(code="mutual_recognition", words=designating_list))
        return Derived(
            experience=_experience(remark),
            title_level=title_level,
            title_words=title_words,
            title_conditions=tuple(
                m.group(0) for m in sorted(
                    (m for pat in _TITLE_CONDITIONS for m in pat.finditer(remark)), key=lambda m: m.start()
                )
            ),
            provisions=tuple(provisions),
        )

    def _title(self, remark: str) -> tuple[str | None, str]:
        found = [(m.group(1), m.group(0)) for m in _TITLE.finditer(remark)]
        if not found:
            return None, ""
        levels = {self.title_levels.get(level) for level, _ in found}
        if None in levels or len(levels) > 1:
            names = sorted({level for level, _ in found})
            raise ValueError(f"remark names a title level mra does not know or several levels: {names}")
        return levels.pop(), found[0][1]


def _experience(remark: str) -> tuple[Experience, ...]:
    out: list[Experience] = []
    for m in _EXPERIENCE.finditer(remark):
        words = m.group(0)
        years: int | None = None
        max_years: int | None = None
        rest = words[len("从事"):]
        if r := _YEARS_RANGE.search(words):
            years, max_years = int(r.group(1)), int(r.group(2))
            rest = words[r.end():]
        elif y := _YEARS_MIN.search(words):
            years = int(y.group(1))
            rest = words[y.end():]
        out.append(Experience(years=years, max_years=max_years, scope=rest.strip(), words=words))
    return tuple(out)


# --- columns --------------------------------------------------------------------------------------------------


def split_fields(text: str) -> tuple[str, ...]:
    """领域 as a list: split on 、, wrap spaces at the edges dropped (inner ones kept, as in the source)."""
    return tuple(part.strip() for part in text.split("、") if part.strip())


def parse_issuers(text: str) -> tuple[Issuer, ...]:
    """``中文名|English name ; 中文名|English name`` → issuers (a side may be empty)."""
    out: list[Issuer] = []
    for chunk in text.split(" ; "):
        if not chunk.strip():
            continue
        zh, _, en = chunk.partition("|")
        out.append(Issuer(name_zh=zh.strip(), name_en=en.strip()))
    return tuple(out)


def format_issuers(issuers: Iterable[Issuer]) -> str:
    """The inverse of :func:`parse_issuers`."""
    return " ; ".join(f"{i.name_zh}|{i.name_en}" for i in issuers)


IMPORT_ID_WIDTH = 3
"""Digits of the sequence number in the ids of an imported catalogue: ``TJ2024-A-001`` whatever the row count
(``TJ2024-A-1000`` from the thousandth row on)."""


def entry_id(prefix: str, catalogue_list: CatalogueList, seq: int, width: int | None = None) -> str:
    """Canonical id: ``{prefix}-{list}-{seq}`` with ``seq`` zero-padded to ``width`` digits. Without a width, the
    rule of the Beijing 2025 ids: three digits where the list has 100 rows or more, else two (``BJ2025-I-001``,
    ``BJ2025-U-01``)."""
    if width is None:
        width = max(2, len(str(catalogue_list.count)))
    return f"{prefix}-{catalogue_list.code}-{seq:0{width}d}"


# --- parsing --------------------------------------------------------------------------------------------------


def parse_catalogue_csv(
    text: str,
    *,
    prefix: str,
    lists: Sequence[CatalogueList],
    deriver: Deriver | None = None,
    id_width: int | None = None,
) -> tuple[CatalogueEntry, ...]:
    """Parse and check a catalogue CSV; every problem is reported at once as a :class:`ValidationFailed`.

    Checked: the header, ids (``{prefix}-{list}-{seq}``), unique and contiguous sequence numbers per list,
    each list's declared count, and that designating rows point at an existing row of a non-designating list.
    Each row's ``source`` is its list's source plus ``序号 N``. ``id_width`` is as in :func:`entry_id`.
    """
    deriver = deriver or Deriver()
    by_code = {lst.code: lst for lst in lists}
    reasons: list[str] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise ValidationFailed(
            "catalogue CSV has the wrong columns", [f"expected {','.join(CSV_COLUMNS)}; got {reader.fieldnames}"]
        )
    entries: list[CatalogueEntry] = []
    for line_no, row in enumerate(reader, start=2):
        where = f"line {line_no} ({row.get('id') or '?'})"
        if None in row or any(v is None for v in row.values()):
            reasons.append(f"{where}: wrong number of columns")
            continue
        lst = by_code.get(row["list"])
        if lst is None:
            reasons.append(f"{where}: unknown list {row['list']!r}")
            continue
        try:
            seq = int(row["seq"])
            if seq < 1:
                raise ValueError
        except ValueError:
            reasons.append(f"{where}: seq must be a positive number, got {row['seq']!r}")
            continue
        expected = entry_id(prefix, lst, seq, id_width)
        if row["id"] != expected:
            reasons.append(f"{where}: id should be {expected}")
        if bool(row["designates"]) != lst.designates:
            need = "needs" if lst.designates else "must not have"
            reasons.append(f"{where}: a row of list {lst.code} {need} a 'designates' id")
        try:
            derived = deriver.derive(row["remark"], designating_list=lst.name_zh if lst.designates else None)
            issuers = parse_issuers(row["issuers"])
            aliases = tuple(a.strip() for a in row["aliases"].split(";") if a.strip())
            fields = split_fields(row["fields"])
            entries.append(
                CatalogueEntry(
                    id=row["id"],
                    list=lst.code,
                    seq=seq,
                    name=row["name"],
                    issuer_text=row["issuer_text"],
                    issuers=issuers,
                    aliases=aliases,
                    country=row["country"],
                    fields=fields,
                    remark=row["remark"],
                    experience=derived.experience,
                    title_level=derived.title_level,
                    title_words=derived.title_words,
                    title_conditions=derived.title_conditions,
                    provisions=derived.provisions,
                    designates=row["designates"] or None,
                    normalised=_normalised_text(row["name"], issuers, aliases, row["country"], fields, row["remark"]),
                    source=f"{lst.source} 序号 {seq}",
                )
            )
        except (ValueError, ValidationError) as e:
            reasons.append(f"{where}: {e}")
    reasons += _check_lists(entries, lists)
    if reasons:
        raise ValidationFailed(f"catalogue CSV rejected ({len(reasons)} problems)", reasons)
    return tuple(entries)


def _check_lists(entries: Sequence[CatalogueEntry], lists: Sequence[CatalogueList]) -> list[str]:
    reasons: list[str] = []
    ids = [e.id for e in entries]
    reasons += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    by_id = {e.id: e for e in entries}
    designating = {lst.code for lst in lists if lst.designates}
    for lst in lists:
        seqs = sorted(e.seq for e in entries if e.list == lst.code)
        if seqs != list(range(1, lst.count + 1)):
            reasons.append(f"list {lst.code}: expected rows 1..{lst.count}, got {len(seqs)} rows")
    for e in entries:
        if e.designates is None:
            continue
        target = by_id.get(e.designates)
        if target is None:
            reasons.append(f"{e.id}: designates unknown row {e.designates}")
        elif target.list in designating:
            reasons.append(f"{e.id}: designates {target.id}, itself a designation")
    return reasons


# --- search ---------------------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC, lower-cased, whitespace folded: what search compares."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).lower()).strip()


def _normalised_text(
    name: str, issuers: Sequence[Issuer], aliases: Sequence[str], country: str, fields: Sequence[str], remark: str
) -> str:
    names = [n for i in issuers for n in (i.name_zh, i.name_en) if n]
    return normalise(" | ".join([name, *names, *aliases, country, *fields, remark]))


def matches(entry: CatalogueEntry, query: str) -> bool:
    """Every term of ``query`` occurs in the row's normalised text (spaces ignored, so wrap spaces never hide
    a word: "审计师认证" finds "CISA 注册信息系统 审计师认证")."""
    haystack = entry.normalised.replace(" ", "")
    terms = normalise(query).split()
    return bool(terms) and all(t in haystack for t in terms)


def search(entries: Iterable[CatalogueEntry], query: str) -> list[CatalogueEntry]:
    """Rows matching ``query`` in names, issuers (Chinese, English, aliases), country, fields or remark."""
    if not normalise(query):
        raise ValueError("search text is empty")
    return [e for e in entries if matches(e, query)]


def _same(a: str, b: str) -> bool:
    return normalise(a).replace(" ", "") == normalise(b).replace(" ", "")


def select(
    entries: Iterable[CatalogueEntry],
    *,
    list_code: str | None = None,
    field: str | None = None,
    country: str | None = None,
) -> list[CatalogueEntry]:
    """Rows of a list, with a field (one of its 领域, exactly) and of a country (国家(地区), exactly)."""
    out = []
    for e in entries:
        if list_code and e.list != list_code.strip().upper():
            continue
        if field and not any(_same(f, field) for f in e.fields):
            continue
        if country is not None and country.strip() and not _same(e.country, country):
            continue
        out.append(e)
    return out
