"""The 2025 Beijing catalogue against its source: every row, the counts, the hash and the derived fields.

The fidelity test re-reads the notice packaged with the plugin with its own small parser of the tab-separated
table rows (independent of the CSV and of mra.core.catalogue) and holds every data row against it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import time
from importlib import resources

import pytest

from mra.core.catalogue import (
    CSV_COLUMNS,
    Deriver,
    format_issuers,
    matches,
    normalise,
    parse_catalogue_csv,
    parse_issuers,
    search,
    select,
)
from mra.core.errors import ValidationFailed
from mra.core.models import CatalogueEdition, CatalogueEntry, CatalogueList
from mra.core.plugins import load_registry, resolve_entry_ref
from mra.plugins.beijing import catalogue as bj

SEED_SHA256 = "ca48f3c832daefbe064fcca2306e4aa6d8bf2ab37d887a8829e5d4e40ba6972b"
HEADINGS = {"(一)": "I", "(二)": "U", "(三)": "O", "(四)": "M"}


def _data(name: str) -> bytes:
    return resources.files("mra.plugins.beijing").joinpath("data", name).read_bytes()


def _source_rows() -> dict[tuple[str, int], list[str]]:
    """(list, 序号) → [名称, 颁发机构, 国家(地区), 领域, 备注], straight from the notice's table lines."""
    rows: dict[tuple[str, int], list[str]] = {}
    current = None
    for line in _data(bj.SOURCE_FILE).decode("utf-8").splitlines():
        if line.startswith("#"):
            for mark, code in HEADINGS.items():
                if mark in line and "清单" in line:
                    current = code
            continue
        cells = line.split("\t")
        if len(cells) == 6 and cells[0].isdigit():
            assert current is not None, f"table row before any list heading: {line[:40]}"
            key = (current, int(cells[0]))
            assert key not in rows, f"row {key} appears twice in the notice"
            rows[key] = cells[1:]
    return rows


def _heading_counts() -> dict[str, int]:
    counts = {}
    for line in _data(bj.SOURCE_FILE).decode("utf-8").splitlines():
        for mark, code in HEADINGS.items():
            m = re.search(re.escape(mark) + r"\s*[^(]*清单\((\d+)\s*项\)", line)
            if line.startswith("#") and m:
                counts[code] = int(m.group(1))
    return counts


def _csv_rows() -> dict[tuple[str, int], dict[str, str]]:
    reader = csv.DictReader(io.StringIO(_data(bj.CSV_FILE).decode("utf-8"), newline=""))
    return {(r["list"], int(r["seq"])): r for r in reader}


SOURCE = _source_rows()
CSV_ROWS = _csv_rows()


@pytest.fixture(scope="module")
def edition() -> CatalogueEdition:
    return bj.load_edition()


def entry(edition: CatalogueEdition, ref: str) -> CatalogueEntry:
    found = resolve_entry_ref(edition, ref)
    assert found is not None, ref
    return found


def ids(entries: list[CatalogueEntry] | tuple[CatalogueEntry, ...]) -> set[str]:
    return {e.id for e in entries}


def short(*refs: str) -> set[str]:
    out = set()
    for ref in refs:
        code, _, rest = ref.partition("-")
        width = 3 if code == "I" else 2
        if "…" in rest:
            lo, hi = (int(x) for x in rest.split("…"))
            out |= {f"BJ2025-{code}-{n:0{width}d}" for n in range(lo, hi + 1)}
        else:
            out.add(f"BJ2025-{code}-{int(rest):0{width}d}")
    return out


# --- fidelity -------------------------------------------------------------------------------------------------


def test_the_source_has_every_row_and_only_those() -> None:
    assert len(SOURCE) == 170
    assert set(SOURCE) == set(CSV_ROWS)


@pytest.mark.parametrize(
    "key", sorted(SOURCE, key=lambda k: ("IUOM".index(k[0]), k[1])), ids=lambda k: f"{k[0]}-{k[1]}"
)
def test_row_matches_the_notice(edition: CatalogueEdition, key: tuple[str, int]) -> None:
    name, issuer_text, country, fields, remark = SOURCE[key]
    row = CSV_ROWS[key]
    assert (row["name"], row["issuer_text"], row["country"], row["fields"], row["remark"]) == (
        name, issuer_text, country, fields, remark,
    )
    e = entry(edition, f"{key[0]}-{key[1]}")
    assert (e.name, e.issuer_text, e.country, e.remark) == (name, issuer_text, country, remark)
    assert e.fields == tuple(f.strip() for f in fields.split("、"))
    heading = {"I": "(一)", "U": "(二)", "O": "(三)", "M": "(四)"}[key[0]]
    assert e.source == f"京人社事业发〔2025〕11号 附件1 {heading} 序号 {key[1]}"


def test_counts_match_the_headings(edition: CatalogueEdition) -> None:
    headings = _heading_counts()
    assert headings == {"I": 143, "U": 9, "O": 11, "M": 7}
    for lst in edition.lists:
        assert lst.count == headings[lst.code] == sum(1 for e in edition.entries if e.list == lst.code)
    assert "共计 163 项" in _data(bj.SOURCE_FILE).decode("utf-8")
    assert sum(1 for e in edition.entries if e.designates is None) == 163
    assert [lst.code for lst in edition.lists if lst.designates] == ["M"]


def test_packaged_notice_hash(edition: CatalogueEdition) -> None:
    digest = hashlib.sha256(_data(bj.SOURCE_FILE)).hexdigest()
    assert digest == SEED_SHA256 == bj.SOURCE_SHA256 == edition.source_sha256


def test_a_changed_notice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = bj.read_data
    monkeypatch.setattr(bj, "read_data", lambda n: real(n) + b"\n" if n == bj.SOURCE_FILE else real(n))
    with pytest.raises(ValidationFailed, match="not the document"):
        bj.load_edition.__wrapped__()


def test_source_typos_and_wrap_spaces_are_kept(edition: CatalogueEdition) -> None:
    assert entry(edition, "I-4").name == "CISA 注册信息系统 审计师认证"
    assert "研究 and 应用" in entry(edition, "U-1").remark
    assert entry(edition, "O-11").issuer_text.startswith("领羊")
    assert entry(edition, "O-1").issuer_text.startswith("瓴羊")
    assert "教育教育" in entry(edition, "I-84").remark
    assert "评价评价" in entry(edition, "M-7").remark
    assert entry(edition, "I-93").fields == ("文化旅游 及娱乐服务",)
    assert entry(edition, "M-4").remark.endswith("可免考8门澳洲注册")  # cut short in the notice itself
    assert entry(edition, "M-1").issuer_text.startswith("阿里云技术有限公司")
    assert entry(edition, "I-135").issuer_text.startswith("阿里云有限公司")


# --- edition --------------------------------------------------------------------------------------------------


def test_edition_metadata(edition: CatalogueEdition) -> None:
    assert (edition.jurisdiction, edition.catalogue, edition.edition) == ("beijing", "beijing-international", "2025")
    assert edition.document == "京人社事业发〔2025〕11号"
    assert edition.effective.isoformat() == "2025-09-05"
    assert [(r.edition, r.document, r.repealed_on.isoformat()) for r in edition.repeals] == [
        ("1.0", "京人社事业发〔2024〕10号", "2025-09-05")
    ]
    assert all(lst.name_zh and lst.name_en and lst.source for lst in edition.lists)
    assert [e.id for e in edition.entries][:2] == ["BJ2025-I-001", "BJ2025-I-002"]
    assert {e.id for e in edition.entries if e.list == "U"} == short("U-1…9")
    assert ids(edition.entries) >= short("I-1…143", "O-1…11", "M-1…7")


def test_designations(edition: CatalogueEdition) -> None:
    expected = {1: 135, 2: 138, 3: 139, 4: 140, 5: 142, 6: 143, 7: 141}
    got = {e.seq: e.designates for e in edition.entries if e.list == "M"}
    assert got == {m: f"BJ2025-I-{i:03d}" for m, i in expected.items()}
    assert all(e.designates is None for e in edition.entries if e.list != "M")
    # each designation keeps its own columns: they differ from the designated row where the notice differs
    assert entry(edition, "M-2").remark != entry(edition, "I-138").remark
    assert "会展策划" in entry(edition, "M-2").remark and "展览策划" in entry(edition, "I-138").remark


def test_issuers_come_from_the_issuer_column(edition: CatalogueEdition) -> None:
    def bare(s: str) -> str:
        return re.sub(r"\s+", "", s)

    for e in edition.entries:
        assert e.issuers, e.id
        for issuer in e.issuers:
            assert issuer.name_zh or issuer.name_en
            for name in (issuer.name_zh, issuer.name_en):
                assert bare(name) in bare(e.issuer_text), (e.id, name)
    assert [len(entry(edition, r).issuers) for r in ("I-29", "I-30", "I-31", "I-32", "I-46")] == [3, 3, 3, 3, 2]
    assert entry(edition, "I-37").issuers[0].name_en == ""  # Chinese-only row
    assert entry(edition, "I-122").issuers[0].name_en == "British Computer Society"  # English in parentheses
    assert "美国医师资质认证相关机构" in entry(edition, "I-102").issuer_names()
    for ref, alias in [("I-139", "ACCA"), ("I-28", "CIMA"), ("I-124", "RICS"), ("I-122", "BCS"),
                       ("I-128", "HKIA"), ("I-131", "AAPM"), ("I-126", "GBCI"), ("I-142", "IPA")]:
        assert alias in entry(edition, ref).aliases


def test_issuers_round_trip() -> None:
    text = (
        "伦敦银行与金融学院|The London Institute of Banking & Finance ; "
        "国际商会|The International Chamber of Commerce"
    )
    assert format_issuers(parse_issuers(text)) == text
    assert parse_issuers("香港会计师公会|")[0].name_en == ""


def test_loading_is_fast_and_cached(edition: CatalogueEdition) -> None:
    start = time.perf_counter()
    fresh = bj.load_edition.__wrapped__()
    took = time.perf_counter() - start
    assert fresh == edition
    assert took < 0.5, f"loading took {took:.3f}s"
    assert bj.load_edition() is bj.load_edition() is bj.EDITION


def test_published_through_the_registry(edition: CatalogueEdition) -> None:
    editions = load_registry().catalogues("beijing")
    assert [ed.catalogue for ed in editions] == ["beijing-international"]
    assert editions[0] == edition
    assert bj.mra_catalogues() == (edition,)


# --- derived fields -------------------------------------------------------------------------------------------


def test_experience_years(edition: CatalogueEdition) -> None:
    def years(ref: str) -> list[tuple[int | None, int | None]]:
        return [(x.years, x.max_years) for x in entry(edition, ref).experience]

    assert years("I-32") == [(3, None)]
    assert years("I-136") == [(5, None)]
    assert years("I-137") == [(1, 4)]
    assert years("I-14") == [(2, None)]
    assert years("I-98") == [(2, None), (2, None)]
    assert [x.scope for x in entry(edition, "I-98").experience] == ["彩色宝石鉴定相关工作", "钻石鉴定相关工作"]
    assert len(entry(edition, "I-116").experience) == 2
    assert "职业治疗" in entry(edition, "I-116").experience[1].words
    no_years = short("I-1…13", "I-27", "I-138…140", "U-1…9", "O-1", "O-3", "O-5…10", "M-2…4")
    assert {e.id for e in edition.entries if e.experience and all(x.years is None for x in e.experience)} == no_years
    assert ids([e for e in edition.entries if not e.experience]) == short("I-141", "O-11", "M-5…7")
    assert years("O-2") == years("O-4") == years("M-1") == [(2, None)]


def test_experience_only_where_the_remark_says_so(edition: CatalogueEdition) -> None:
    for e in edition.entries:
        said = re.sub(r"在京从事注册会计师业务", "", e.remark)
        assert bool(e.experience) == ("从事" in said), e.id
        for x in e.experience:
            assert x.words in e.remark and x.words.startswith("从事") and x.scope in x.words


def test_title_levels(edition: CatalogueEdition) -> None:
    intermediate = short("I-1…13", "I-138…140", "O-1", "O-3", "O-5…11", "M-2…4")
    assert ids([e for e in edition.entries if e.title_level == "intermediate"]) == intermediate
    assert ids([e for e in edition.entries if e.title_level == "deputy_senior"]) == short("U-1…9")
    for e in edition.entries:
        if e.title_level:
            assert e.title_words in e.remark and e.title_words.startswith("对应")
        else:
            assert e.title_words == ""


def test_title_conditions(edition: CatalogueEdition) -> None:
    conditioned = {e.id: e.title_conditions for e in edition.entries if e.title_conditions}
    assert set(conditioned) == short("I-139", "I-140", "M-3", "M-4", "U-8", "U-9")
    assert conditioned["BJ2025-I-139"] == ("申报高一职称需取得中级会计专业技术资格",)
    assert conditioned["BJ2025-M-03"] == ("申报高一级的职称需取得中级会计专业技术资格",)
    assert conditioned["BJ2025-U-08"] == ("申报高级职称需取得高级会计专业技术资格",)
    assert conditioned["BJ2025-U-09"] == ("年限(10 年以上)",)


PROVISIONS = {
    "native_speaker_waived": ("I-13", "I-68"),
    "universal_studios_exempt": ("I-93…96",),
    "cpa_practice_requires_cn_cpa": (
        "I-27", "I-28", "I-33…37", "I-139", "I-140", "I-142", "I-143", "U-8", "M-3", "M-4"
    ),
    "cn_cpa_exam_partial_exemption": ("I-35", "I-37"),
    "cn_cpa_course_exemption": ("I-139", "I-140", "I-142", "I-143", "M-3…6"),
    "short_term_medical_licence": ("I-102…105",),
    "pharmacist_registration": ("I-118…120",),
    "veterinary_filing": ("I-121",),
    "occupational_therapy_registration": ("I-116",),
    "teacher_qualification_required": ("I-84",),
    "skill_certificate": ("I-138", "M-2"),
    "mutual_recognition": ("I-134…138", "I-141", "M-1…7"),
}


@pytest.mark.parametrize("code", sorted(PROVISIONS))
def test_provisions(edition: CatalogueEdition, code: str) -> None:
    assert ids([e for e in edition.entries if e.has_provision(code)]) == short(*PROVISIONS[code])


def test_provisions_carry_their_words(edition: CatalogueEdition) -> None:
    codes = set()
    for e in edition.entries:
        for p in e.provisions:
            codes.add(p.code)
            if p.code == "mutual_recognition" and "互认" not in e.remark:
                assert e.list == "M" and p.words == "国际职业资格互认清单"
            else:
                assert p.words and p.words in e.remark, (e.id, p)
    assert codes == set(PROVISIONS)
    assert "在京从事注册会计师业务" in entry(edition, "M-3").provisions[0].words
    assert all("互认" in p.words for e in edition.entries if e.list == "I"
               for p in e.provisions if p.code == "mutual_recognition")


def test_cpa_practice_is_flagged_wherever_the_remark_says_so(edition: CatalogueEdition) -> None:
    said = {e.id for e in edition.entries if "须通过中国注册会计师考试" in e.remark}
    assert said == ids([e for e in edition.entries if e.has_provision("cpa_practice_requires_cn_cpa")])


# --- search and filters ---------------------------------------------------------------------------------------


def test_normalised_text(edition: CatalogueEdition) -> None:
    e = entry(edition, "I-33")
    assert e.normalised == normalise(e.normalised)
    assert "american institute of cpas" in e.normalised and "aicpa" in e.normalised
    assert "在京从事注册会计师业务,须通过" in e.normalised  # NFKC: the full-width comma folds to ","
    assert normalise("  ＡＣＣＡ\n会计师  ") == "acca 会计师"


def test_search(edition: CatalogueEdition) -> None:
    assert ids(search(edition.entries, "acca")) == short("I-139", "U-8", "M-3")
    assert ids(search(edition.entries, "Royal Society of Chemistry")) == short("I-2", "I-14", "U-5")
    assert ids(search(edition.entries, "审计师认证")) == short("I-4")  # across the source's wrap space
    assert short("I-47") <= ids(search(edition.entries, "PMP"))
    assert ids(search(edition.entries, "瓴羊")) == short("O-1…4", "O-11")  # O-11's 领羊 matches through its alias
    assert not matches(entry(edition, "I-1"), "   ")
    with pytest.raises(ValueError):
        search(edition.entries, " ")


def test_select(edition: CatalogueEdition) -> None:
    finance_uk = select(edition.entries, field="金融", country="英国")
    assert finance_uk and all("金融" in e.fields and e.country == "英国" for e in finance_uk)
    assert short("I-9", "I-143") <= ids(finance_uk)
    assert len(select(edition.entries, list_code="m")) == 7
    assert ids(select(edition.entries, field="文化旅游及娱乐服务")) == short("I-93…96")


# --- the parser on other data (a Tianjin or Hebei import) -----------------------------------------------------

LISTS = (
    CatalogueList(code="I", name_zh="目录", name_en="Catalogue", count=2, source="津人社发〔2024〕X号 附件 (一)"),
    CatalogueList(code="M", name_zh="互认清单", name_en="Mutual", count=1, designates=True, source="同上 (二)"),
)
HEADER = ",".join(CSV_COLUMNS)
GOOD = (
    f"{HEADER}\n"
    "TJ2024-I-01,I,1,甲证书,某协会 Some Society,英国,金融、会计,"
    "从事3年以上审计相关工作。对应中级职称需符合条件。,某协会|Some Society,SS,\n"
    "TJ2024-I-02,I,2,乙证书,乙会,,教育,具备教师资格的从事2年以上教学工作。,乙会|,,\n"
    "TJ2024-M-01,M,1,甲证书,某协会 Some Society,英国,金融,与乙会认证互认。,某协会|Some Society,,TJ2024-I-01\n"
)


def test_parser_reads_another_catalogue() -> None:
    entries = parse_catalogue_csv(GOOD, prefix="TJ2024", lists=LISTS)
    first, second, m = entries
    assert first.experience[0].years == 3 and first.title_level == "intermediate"
    assert first.fields == ("金融", "会计") and first.source == "津人社发〔2024〕X号 附件 (一) 序号 1"
    assert second.has_provision("teacher_qualification_required") and second.title_level is None
    assert m.designates == "TJ2024-I-01" and m.provisions[0].words == "与乙会认证互认"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (GOOD.replace("id,list", "ident,list", 1), "expected id,list"),
        (GOOD.replace("TJ2024-I-02,I,2", "TJ2024-I-2,I,2"), "id should be TJ2024-I-02"),
        (GOOD.replace("TJ2024-I-02,I,2", "TJ2024-I-03,I,3"), "expected rows 1..2"),
        (GOOD.replace(",TJ2024-I-01", ",TJ2024-I-09"), "designates unknown row"),
        (GOOD.replace(",TJ2024-I-01", ","), "needs a 'designates' id"),
        (GOOD.replace("TJ2024-I-02,I,2", "TJ2024-X-02,X,2"), "unknown list"),
        (GOOD.replace("对应中级职称", "对应正高级职称"), "title level"),
    ],
)
def test_parser_rejects_bad_data(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_catalogue_csv(text, prefix="TJ2024", lists=LISTS)
    assert reason in str(caught.value)


def test_deriver_is_deterministic() -> None:
    remark = "FGA 证书须从事 2 年以上彩色宝石鉴定相关工作,DGA 证书须从事 2 年以上钻石鉴定相关工作。"
    assert Deriver().derive(remark) == Deriver().derive(remark)
    cpa = "在京从事注册会计师业务,须通过中国注册会计师考试及在北京注册会计师协会注册后执业。"
    assert Deriver().derive(cpa).experience == ()
