"""Outcomes the notice's own words decide, one test per correction, each quoting the clause it rests on.

Each test states the clause (京人社事业发〔2025〕11号) in its docstring and asserts the outcome those words give;
the case table in test_beijing_rules.py carries the same cases for regression.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.facts import World, employer, holder_facts, registered, verified

from mra.cli import cli
from mra.core import (
    BenefitDecision,
    DecisionContext,
    EmployerType,
    Employment,
    HolderCategory,
    HolderFacts,
    Outcome,
    Residence,
)
from mra.core.hookspecs import PluginConfig
from mra.core.models import standing
from mra.core.plugins import Registry, load_registry
from mra.events.schemas import EmploymentStarted, HolderRegistered, upcast
from mra.events.topics import Topics
from mra.i18n.terms import category_label
from mra.plugins.beijing import rules as bj

E, C, A, X = Outcome.ELIGIBLE, Outcome.CONDITIONAL, Outcome.ADVISORY, Outcome.INELIGIBLE
AT = datetime(2025, 10, 1, 10, 0)


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = load_registry()
    assert "beijing" in reg.jurisdictions, reg.failures
    return reg


def decide(
    registry: Registry,
    ref: str,
    *,
    category: HolderCategory = HolderCategory.FOREIGN,
    region: str | None = "beijing",
    years: float | None = 10,
    age: int = 40,
    settings: Mapping[str, object] | None = None,
    verified: bool = True,
) -> dict[str, BenefitDecision]:
    edition, entry = registry.find_entry(ref, "beijing")
    employment = None
    if region is not None:
        employment = Employment(holder_id="h", jurisdiction="beijing", employer="e", employer_region=region,
                                started=date(2024, 1, 1), years_in_scope=years)
    context = DecisionContext(
        holder=HolderFacts(holder_id="h", category=category, age=age), employment=employment, certificate=None,
        entry=entry, edition=edition.edition, at=AT, platform_verified=verified,
    )
    return {d.code: d for d in registry.decide("beijing", context, settings)}


def text(d: BenefitDecision) -> str:
    return " | ".join([*d.reasons, *d.conditions, *d.readings])


# --- 1. 三 covers the whole 《目录》 ------------------------------------------------------------------------------


def test_practice_covers_the_finance_rows_of_the_urgent_list(registry: Registry) -> None:
    """三: "允许持有《目录》内境外金融、会计、医师、教师职业资格的专业人员…在本市行政区域内开展执业活动" — the
    《目录》 is all 163 items, so list (二)'s FCCA (U-08) and CFA (U-09) are 境外 finance qualifications in it."""
    for ref in ("U-08", "U-09"):
        d = decide(registry, ref)["bj.practice"]
        assert d.outcome is C, (ref, d.reasons)
        assert "finance" in text(d)


def test_no_outbound_row_gets_practice(registry: Registry) -> None:
    """三: "境外…职业资格" — every list (三) row is issued in 中国 and none is finance, accounting, medical or
    teaching: none gets bj.practice."""
    edition, _ = registry.find_entry("O-01", "beijing")
    outbound = [e for e in edition.entries if e.list == "O"]
    assert len(outbound) == 11
    for e in outbound:
        d = decide(registry, e.id)["bj.practice"]
        assert d.outcome is X, e.id
        assert not any(r.startswith("only for rows of") for r in d.reasons), e.id


# --- 2. 三 is always conditional on the sector's rules ----------------------------------------------------------


def test_practice_is_never_plainly_eligible(registry: Registry) -> None:
    """三: "依据本市各相关行业主管部门制定的具体实施办法与操作规范" — the sector's rules always apply, so a row with no
    term of its own (an actuary, a teacher) is conditional on them, never eligible."""
    edition, _ = registry.find_entry("I-1", "beijing")
    outcomes = {e.id: decide(registry, e.id)["bj.practice"] for e in edition.entries if e.list != "M"}
    assert E not in {d.outcome for d in outcomes.values()}
    for ref in ("BJ2025-I-007", "BJ2025-I-052", "BJ2025-I-011"):
        assert outcomes[ref].outcome is C
        assert any("具体实施办法与操作规范" in c for c in outcomes[ref].conditions)


def test_practice_names_the_department_the_row_names(registry: Registry) -> None:
    """三 with I-33's remark: "在京从事注册会计师业务，须通过中国注册会计师考试及在北京注册会计师协会注册后执业" — the
    row names the competent body; the decision names it."""
    d = decide(registry, "I-33")["bj.practice"]
    assert any("competent department: 北京注册会计师协会" in c for c in d.conditions)
    teacher = decide(registry, "I-52")["bj.practice"]
    assert any("name no department" in c for c in teacher.conditions)


# --- 3. no Beijing-employer term where the clause has none ------------------------------------------------------


def test_practice_and_mutual_recognition_need_no_beijing_employer(registry: Registry) -> None:
    """二 ("推进《国际职业资格互认清单》中所列项目与本市专业技术职称实现互认") and 三 ("在本市行政区域内开展执业活动")
    do not say "与在京单位建立人事劳动关系": an employer in Tianjin, or none, does not bar them."""
    for region in ("tianjin", None):
        got = decide(registry, "I-139", region=region)
        assert got["bj.practice"].outcome is C, region
        assert got["bj.mutual_recognition"].outcome is A, region
        assert got["bj.work_permit"].outcome is X


def test_a_refusal_cites_the_rule_s_own_clause(registry: Registry) -> None:
    """一(三): "持有《出海职业认证清单》内职业资格与在京单位建立人事劳动关系的人员" and 四.2: "对于与在京单位建立
    人事劳动关系的人员" — a refusal for want of a Beijing employer cites the heading of the rule and row, not a list
    of clauses."""
    got = decide(registry, "O-02", region="tianjin")
    assert "一(三) is for holders" in text(got["bj.work_permit"])
    assert "《出海职业认证清单》" in text(got["bj.work_permit"])
    assert "一(一)" not in " ".join(got["bj.work_permit"].reasons)
    assert "四.2 is for holders" in text(got["bj.notarization_waiver"])
    urgent = decide(registry, "U-03", region="tianjin")
    assert "一(二) is for holders" in text(urgent["bj.overseas_experience"])


# --- 4. 四.2 has two terms --------------------------------------------------------------------------------------


def test_notarisation_waiver_has_two_terms_only(registry: Registry) -> None:
    """四.2: "对于与在京单位建立人事劳动关系的人员,凭借该平台出具的查询验证结果,可减免相关证书的公证认证材料" — a
    Beijing employer and the platform's result; not the row's years of experience."""
    got = decide(registry, "I-32", years=1)
    assert got["bj.work_permit"].outcome is X
    assert got["bj.notarization_waiver"].outcome is E
    assert decide(registry, "I-32", years=1, verified=False)["bj.notarization_waiver"].outcome is X
    assert decide(registry, "I-32", years=1, region="hebei")["bj.notarization_waiver"].outcome is X
    rule = next(r for r in registry.rules("beijing") if r.code == "bj.notarization_waiver")
    assert "row_experience" not in rule.conditions


# --- 5. 一(三)2 is not dead --------------------------------------------------------------------------------------


def test_outbound_skill_certificate_is_conditional_until_rows_are_named(registry: Registry) -> None:
    """一(三)2: "部分职业认证可按要求对应核发相关职业技能等级证书" — no list (三) row names which; the outcome is
    conditional on the skills authority naming it, or decided by the setting naming rows."""
    edition, _ = registry.find_entry("O-01", "beijing")
    for e in (e for e in edition.entries if e.list == "O"):
        assert decide(registry, e.id)["bj.skill_certificate"].outcome is C, e.id
    named = {"bj.skill_certificate.outbound_rows": "BJ2025-O-02"}
    assert decide(registry, "O-02", settings=named, years=3)["bj.skill_certificate"].outcome is E
    assert decide(registry, "O-04", settings=named, years=3)["bj.skill_certificate"].outcome is X


def test_the_outbound_rows_setting_must_name_list_three_rows(registry: Registry) -> None:
    """The setting names rows of list (三) only: anything else is refused, not ignored."""
    from mra.core import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        decide(registry, "O-02", settings={"bj.skill_certificate.outbound_rows": "BJ2025-I-138;O-1"})
    assert "BJ2025-I-138" in str(info.value.reasons) and "'O-1'" in str(info.value.reasons)


# --- 6. row terms decide -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ref", "words"), [
    ("I-121", "经我市农业农村主管部门备案"),
    ("I-118", "执业药师须在我市药监主管部门注册"),
    ("I-119", "执业药师须在我市药监主管部门注册"),
    ("I-120", "执业药师须在我市药监主管部门注册"),
    ("I-116", "从事职业治疗的须在我市卫生健康主管部门注册"),
])
def test_filing_and_registration_terms_are_conditions(registry: Registry, ref: str, words: str) -> None:
    """I-121: "经我市农业农村主管部门备案，从事2年以上动物诊疗相关工作"; I-118…120: "执业药师须在我市药监主管部门
    注册"; I-116: "从事职业治疗的须在我市卫生健康主管部门注册后从事2年以上医师工作" — the row's terms on the work are
    conditions of the services the row brings, as its years are."""
    got = decide(registry, ref, years=3)
    for code in ("bj.work_permit", "bj.visa_residence", "bj.overseas_experience"):
        assert got[code].outcome is C, (ref, code)
        assert any(words in c for c in got[code].conditions), (ref, code)
    assert got["bj.notarization_waiver"].outcome is E


@pytest.mark.parametrize("ref", ["I-13", "I-68"])
def test_native_speaker_waiver_qualifies_the_work_permit(registry: Registry, ref: str) -> None:
    """I-13 / I-68: "可不受母语国限制" with 一(一)5 "外籍人员办理工作许可…" — stated in the work-permit decision."""
    d = decide(registry, ref)["bj.work_permit"]
    assert d.outcome is E
    assert any("可不受母语国限制" in r for r in d.reasons)


@pytest.mark.parametrize(("ref", "counterpart", "designation"), [
    ("I-134", "BJ2025-I-135", "BJ2025-M-01"),
    ("I-136", "BJ2025-I-138", "BJ2025-M-02"),
    ("I-137", "BJ2025-I-138", "BJ2025-M-02"),
])
def test_a_row_s_own_mutual_recognition_reaches_clause_two(
    registry: Registry, ref: str, counterpart: str, designation: str
) -> None:
    """I-134: "与阿里云云计算工程师 ACA 认证互认"; I-136, I-137: "与北京北辰实业集团有限责任公司注册国际商务会展专业人士
    认证互认" — their counterparts stand in list (四), so 二 is decided for them (advisory), through that row; a
    setting can exclude it."""
    d = decide(registry, ref, years=None)["bj.mutual_recognition"]
    assert d.outcome is A
    assert counterpart in text(d) and designation in text(d)
    assert d.inputs["counterpart"] == counterpart
    off = decide(registry, ref, years=None, settings={"bj.mutual_recognition.counterparts": "excluded"})
    assert off["bj.mutual_recognition"].outcome is X


def test_every_counterpart_is_stated_by_its_row(registry: Registry) -> None:
    """The counterparts in the data are the ones the rows' remarks state (互认), nothing added."""
    data = bj.benefits_data()
    for c in data.mutual.counterpart:
        _, row = registry.find_entry(c.row, "beijing")
        _, other = registry.find_entry(c.counterpart, "beijing")
        assert row.has_provision("mutual_recognition"), c.row
        assert other.id in bj.designations(), c.counterpart


# --- the project's reading lives in the repository ----------------------------------------------------------------


def test_rules_settings_and_decisions_cite_the_notice_not_a_file_outside(registry: Registry) -> None:
    """Every rule cites the notice's clause; no rule, setting or decision cites "policy-reading.md", which is not
    in the repository (the project's reading is docs/policy.md)."""
    texts = [r.model_dump_json() for code in registry.jurisdictions for r in registry.rules(code)]
    texts += [s.model_dump_json() for code in registry.jurisdictions for s in registry.policy_settings(code)]
    texts += [d.model_dump_json() for d in decide(registry, "U-08").values()]
    assert texts and not [t for t in texts if "policy-reading" in t]
    for code in registry.jurisdictions:
        assert all("京人社事业发〔2025〕11号" in r.clause for r in registry.rules(code)), code
    docs = Path(__file__).resolve().parents[1] / "docs" / "policy.md"
    assert "京人社事业发〔2025〕11号" in docs.read_text(encoding="utf-8")


# --- 7. 四.3 for Tianjin and Hebei through `mra benefits check` --------------------------------------------------



def check(*args: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["benefits", "check", "--on", "2025-10-01", "--birth-date", "1985-05-05",
                                      *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert isinstance(rows, list)
    return rows


@pytest.mark.parametrize(("code", "prefix"), [("tianjin", "tj"), ("hebei", "hb")])
def test_a_prospective_hire_in_tianjin_or_hebei_is_answered_without_the_bus(code: str, prefix: str) -> None:
    """四.3: "《目录》内职业资格人员在京津冀区域内流动就业时,无需对所持职业资格重新进行确认,可直接依照相关规定享受
    对应的人才政策待遇" — `mra benefits check -j tianjin|hebei` decides it, and says which reading it used."""
    base = ["-j", code, "--entry", "I-139", "--nationality", "GB", "--employer-region", code]
    (verified,) = check(*base, "--platform-verified")
    assert verified["code"] == f"{prefix}.jjj_recognition" and verified["outcome"] == "eligible", verified
    assert any(f"{prefix}.jjj.proof = beijing_platform" in r for r in verified["readings"])
    assert verified["inputs"]["proof"] == "beijing_platform" and verified["inputs"]["verified_by"] == "beijing"
    (unverified,) = check(*base)
    assert unverified["outcome"] == "ineligible"
    assert any("no certificate verified by the Beijing platform" in r for r in unverified["reasons"])
    (any_proof,) = check(*base, "--setting", f"{prefix}.jjj.proof=any_proof")
    assert any_proof["outcome"] == "conditional"
    assert any("proof of the earlier recognition" in c for c in any_proof["conditions"])
    (elsewhere,) = check(*["-j", code, "--entry", "I-139", "--nationality", "GB", "--employer-region", "beijing"],
                         "--platform-verified")
    assert elsewhere["outcome"] == "ineligible"
    text = CliRunner().invoke(cli, ["benefits", "check", "--on", "2025-10-01", "--birth-date", "1985-05-05", *base,
                                    "--platform-verified"], catch_exceptions=False).output
    assert "Settings used" in text and f"{prefix}.jjj.proof = 'beijing_platform'" in text
    assert f"{prefix}.jjj.treatments = ''" in text


# --- 8. readings that are settings ---------------------------------------------------------------------------------


def test_the_66th_birthday_is_a_setting() -> None:
    """一(一)5: "年龄可放宽至65周岁" — whether the 66th birthday itself is within is a setting (default: outside),
    and the decision says which value it used."""
    base = ["-j", "beijing", "--entry", "I-14", "--nationality", "DE", "--employer-region", "beijing", "--years", "2"]
    on_birthday = ["--on", "2025-10-01", "--birth-date", "1959-10-01"]
    result = CliRunner().invoke(cli, ["benefits", "check", *base, *on_birthday, "--json"], catch_exceptions=False)
    rows = {r["code"]: r for r in json.loads(result.output)}
    assert rows["bj.work_permit"]["outcome"] == "ineligible"
    assert any("limit_birthday = outside" in r for r in rows["bj.work_permit"]["readings"])
    within = CliRunner().invoke(cli, ["benefits", "check", *base, *on_birthday, "--setting",
                                      "bj.work_permit.limit_birthday=within", "--json"], catch_exceptions=False)
    rows = {r["code"]: r for r in json.loads(within.output)}
    assert rows["bj.work_permit"]["outcome"] == "eligible"
    assert any("the birthday itself" in r for r in rows["bj.work_permit"]["reasons"])
    day_after = CliRunner().invoke(cli, ["benefits", "check", *base, "--on", "2025-10-02", "--birth-date",
                                         "1959-10-01", "--setting", "bj.work_permit.limit_birthday=within",
                                         "--json"], catch_exceptions=False)
    rows = {r["code"]: r for r in json.loads(day_after.output)}
    assert rows["bj.work_permit"]["outcome"] == "ineligible"


def test_the_bureau_decides_the_birthday_setting_too(tmp_path: Path) -> None:
    """一(一)5 through the bureau: a holder on their 66th birthday, with the setting at ``within``."""
    registry = load_registry(config=PluginConfig(overrides={"bj.work_permit.limit_birthday": "within"}))
    w = World(tmp_path, Topics("pc.", 2), registry)
    w.publish(*holder_facts("h66", "BJ2025-I-014", born=date(1959, 10, 1), years=3))  # verified 2025-10-01
    b = w.bureau("beijing")
    try:
        b.run(until_idle=True, timeout=10)
        decisions = {d.code: d for d in b.store.active_decisions("h66")}
    finally:
        b.close()
    assert decisions["bj.work_permit"].outcome is E and decisions["bj.work_permit"].inputs["age"] == 66


def test_what_where_unclear_covers_is_a_setting(registry: Registry) -> None:
    """一(二)4 "中国籍人员可享受赴港澳人才签注政策" and 一(三)3 "中国籍人员在办理护照、港澳签注方面可享受相关便利": the
    services for 中国籍人员 that bj.hkmotw.where_unclear decides are named by a setting; the others exclude a Hong
    Kong, Macao or Taiwan resident, saying so."""
    got = decide(registry, "U-01", category=HolderCategory.HKMOTW)
    assert got["bj.work_residence_permit"].outcome is E and got["bj.hkmo_talent_endorsement"].outcome is X
    assert "bj.hkmotw.unclear_rules does not name" in text(got["bj.hkmo_talent_endorsement"])
    named = {"bj.hkmotw.unclear_rules": "bj.hkmo_talent_endorsement", "bj.hkmotw.where_unclear": "conditional"}
    got = decide(registry, "U-01", category=HolderCategory.HKMOTW, settings=named)
    assert got["bj.hkmo_talent_endorsement"].outcome is C and got["bj.work_residence_permit"].outcome is X
    from mra.core import ValidationFailed

    with pytest.raises(ValidationFailed, match=r"bj\.visa_residence"):
        decide(registry, "U-01", settings={"bj.hkmotw.unclear_rules": "bj.visa_residence"})


@pytest.mark.parametrize(("args", "category"), [
    (["--nationality", "CN"], "mainland"),
    (["--nationality", "HK"], "hkmotw"),
    (["--nationality", "GB"], "foreign"),
    (["--nationality", "GB", "--residence", "HK"], "foreign"),
    (["--nationality", "CN", "--residence", "HK"], "hkmotw"),
    (["--nationality", "CN", "--residence", "abroad"], "cn_abroad"),
    (["--nationality", "CN", "--residence", "mainland"], "mainland"),
    (["--nationality", "MO", "--residence", "mo"], "hkmotw"),
])
def test_nationality_and_residence_are_two_facts(args: list[str], category: str) -> None:
    """一(一)1 "中国籍人员…" and 一(二)4 "外籍人员…": nationality decides 中国籍 or 外籍; residence places a Chinese
    national. A Hong Kong resident with a foreign passport is a foreign national; a Chinese national resident abroad
    (华侨) is a 中国籍人员 of a category of their own. Nationality alone keeps its old meaning."""
    rows = {r["code"]: r for r in check("-j", "beijing", "--entry", "U-01", "--employer-region", "beijing", *args)}
    assert rows["bj.work_residence_permit"]["inputs"]["holder_category"] == category
    chinese = category != "foreign"
    assert (rows["bj.work_residence_permit"]["outcome"] == "eligible") is chinese
    assert (rows["bj.talent_visa"]["outcome"] == "eligible") is not chinese
    if category == "cn_abroad":
        assert rows["bj.hkmo_talent_endorsement"]["outcome"] == "conditional"
        assert category_label(category, "zh_CN") == "华侨"


def test_a_residence_that_contradicts_the_nationality_is_refused() -> None:
    """HK as a nationality stands for a Hong Kong resident: with another residence it is a contradiction, refused
    with one clear message (and an unknown residence likewise)."""
    for extra, words in ((["--nationality", "HK", "--residence", "mainland"], "--residence"),
                         (["--nationality", "CN", "--residence", "Mars"], "--residence")):
        mra = shutil.which("mra") or str(Path(sys.executable).parent / "mra")
        proc = subprocess.run([mra, "benefits", "check", "-j", "beijing", "--entry", "I-1", "--on", "2025-10-01",
                               "--birth-date", "1985-05-05", "--employer-region", "beijing", *extra],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_holder_event_carries_the_two_facts_and_old_ones_are_upcast() -> None:
    """HolderRegistered v2 carries nationality (中国籍 or not) and residence; a v1 body is upcast from its
    category, and a category that disagrees with the two facts is refused."""
    body = {"holder_id": "h", "category": "hkmotw", "personal": {}}
    cls, up = upcast("cn.jjj.holders.holder_registered.v1", dict(body))
    old = cls.model_validate(up)
    assert isinstance(old, HolderRegistered) and old.chinese_national is True and old.residence is None
    cls, up = upcast("cn.jjj.holders.holder_registered.v1", {**body, "category": "mainland"})
    assert cls.model_validate(up).residence is Residence.MAINLAND
    cls, up = upcast("cn.jjj.holders.holder_registered.v1", {**body, "category": "foreign"})
    assert cls.model_validate(up).chinese_national is False
    new = HolderRegistered(holder_id="h", category=HolderCategory.CN_ABROAD, chinese_national=True,
                           residence=Residence.ABROAD)
    assert HolderRegistered.ce_type().endswith(".v2") and HolderRegistered.model_validate_json(new.model_dump_json())
    with pytest.raises(ValueError, match="does not agree"):
        HolderRegistered(holder_id="h", category=HolderCategory.MAINLAND, chinese_national=True,
                         residence=Residence.ABROAD)
    assert standing("GB", "HK") == (HolderCategory.FOREIGN, False, Residence.HK)
    assert standing("HK") == (HolderCategory.HKMOTW, True, Residence.HK)
    assert standing("US") == (HolderCategory.FOREIGN, False, None)


# --- 9. 一(二)3's public-institution benefit ------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "outcome"), [
    (["--employer-type", "public-institution"], "conditional"),
    (["--employer-type", "other"], "ineligible"),
    ([], "conditional"),
])
def test_public_institution_posts_depend_on_the_employer_type(extra: list[str], outcome: str) -> None:
    """一(二)3: "事业单位不受岗位总量和结构比例限制,正高级可破格聘用在二、三级专业技术岗位,副高级可破格聘用在五、六级
    专业技术岗位" — decided on the employer's type: a public institution, another employer, or not said."""
    rows = {r["code"]: r for r in check("-j", "beijing", "--entry", "U-01", "--nationality", "CN",
                                        "--employer-region", "beijing", *extra)}
    d = rows["bj.senior_title.public_institution"]
    assert d["outcome"] == outcome, d
    assert d["clause"].endswith("一(二)3")
    if extra == ["--employer-type", "public-institution"]:
        assert d["inputs"]["employer_type"] == "public-institution"
        assert any("认定取得高级职称" in c for c in d["conditions"])
    if not extra:
        assert any("not said" in c for c in d["conditions"])


def test_the_employment_event_carries_the_employer_type_and_old_ones_are_upcast(tmp_path: Path) -> None:
    """EmploymentStarted v3 carries the employer's type; a v2 body reads as 'not said'. Through a bureau, a
    public institution's holder of an urgent-list row gets 一(二)3's posts, conditional on the assessed title."""
    v2 = {"holder_id": "h", "jurisdiction": "beijing", "employer": {"name": "E", "credit_code": "C",
          "region": "beijing"}, "started": "2025-09-01", "years_in_scope": 3.0, "in_scope": True,
          "high_tech": False, "universal_studios": False}
    cls, up = upcast("cn.jjj.holders.employment_started.v2", v2)
    old = cls.model_validate(up)
    assert isinstance(old, EmploymentStarted) and old.employer_type is None and EmploymentStarted.VERSION == 3
    w = World(tmp_path, Topics("pi.", 2), load_registry())
    w.publish(
        registered("hp", category="cn_abroad"),
        verified("hp", "BJ2025-U-01"),
        EmploymentStarted(holder_id="hp", jurisdiction="beijing", employer=employer(), started=date(2025, 9, 1),
                          years_in_scope=3, employer_type=EmployerType.PUBLIC_INSTITUTION),
    )
    b = w.bureau("beijing")
    try:
        b.run(until_idle=True, timeout=10)
        decisions = {d.code: d for d in b.store.active_decisions("hp")}
    finally:
        b.close()
    assert decisions["bj.senior_title.public_institution"].outcome is C
    assert decisions["bj.work_residence_permit"].outcome is E  # a 华侨 is a 中国籍人员
    assert decisions["bj.talent_visa"].outcome is X
    assert decisions["bj.work_residence_permit"].inputs["holder_category"] == "cn_abroad"
