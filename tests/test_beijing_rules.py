"""The Beijing benefits as rules: a table of holder cases over the real catalogue, and the contract around it.

Each case names a catalogue row and a holder, and asserts the outcome of the benefits it is about; the
meta-tests below make sure the table covers every benefit code, every outcome a code can have, and
every condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest

from mra.core import (
    BenefitDecision,
    CatalogueEntry,
    DecisionContext,
    EmployerType,
    Employment,
    HolderCategory,
    HolderFacts,
    Outcome,
    ValidationFailed,
    VerifiedCertificate,
    full_years,
    on_birthday,
)
from mra.core.plugins import Registry, load_registry
from mra.core.rules import (
    Check,
    Status,
    category_in,
    decision_from,
    employed_in,
    local_date,
    outcome_of,
    within_age,
    years_at_least,
)
from mra.core.validation import check_decisions
from mra.plugins.beijing import rules as bj

E, C, A, X = Outcome.ELIGIBLE, Outcome.CONDITIONAL, Outcome.ADVISORY, Outcome.INELIGIBLE
MAINLAND, HKMOTW, FOREIGN = HolderCategory.MAINLAND, HolderCategory.HKMOTW, HolderCategory.FOREIGN
CN_ABROAD = HolderCategory.CN_ABROAD
ON = date(2025, 10, 1)
AT = datetime(2025, 10, 1, 10, 0)

ALL_CODES = {
    "bj.work_residence_permit", "bj.title.intermediate", "bj.skill_certificate", "bj.visa_residence",
    "bj.work_permit", "bj.overseas_experience", "bj.employer_support", "bj.title.deputy_senior",
    "bj.talent_introduction", "bj.senior_title_assessment", "bj.hkmo_talent_endorsement", "bj.talent_visa",
    "bj.high_level_talent_services", "bj.sci_tech_projects", "bj.passport_hkmo_convenience",
    "bj.mutual_recognition", "bj.practice", "bj.notarization_waiver", "bj.senior_title.public_institution",
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = load_registry()
    assert "beijing" in reg.jurisdictions, reg.failures
    return reg


def entry(registry: Registry, ref: str) -> CatalogueEntry:
    return registry.find_entry(ref, "beijing")[1]


def born_aged(years: int, plus_days: int = 0, on: date = ON) -> date:
    """A birth date that makes the holder exactly ``years`` old on ``on``, plus ``plus_days`` days."""
    return on.replace(year=on.year - years) - timedelta(days=plus_days)


FORTY = born_aged(40)


@dataclass(frozen=True)
class Holder:
    category: HolderCategory = FOREIGN
    born: date = FORTY
    region: str | None = "beijing"
    started: date = date(2024, 1, 1)
    ended: date | None = None
    years: float | None = 10
    in_scope: bool = True
    high_tech: bool = False
    universal_studios: bool = False
    employer_type: EmployerType | None = None
    verified: bool = True
    at: datetime = AT


def context(registry: Registry, ref: str, h: Holder, *, certificate: VerifiedCertificate | None = None,
            caused_by: str = "") -> DecisionContext:
    day = h.at.date()
    emp = None
    if h.region is not None:
        emp = Employment(
            holder_id="h-1", jurisdiction="beijing", employer="employer-1", employer_region=h.region,
            started=h.started, ended=h.ended, years_in_scope=h.years, in_scope=h.in_scope,
            high_tech=h.high_tech, universal_studios=h.universal_studios, employer_type=h.employer_type,
        )
    return DecisionContext(
        holder=HolderFacts(holder_id="h-1", category=h.category, age=full_years(h.born, day),
                           birthday=on_birthday(h.born, day)),
        employment=emp,
        certificate=certificate,
        entry=entry(registry, ref),
        edition="2025",
        at=h.at,
        platform_verified=h.verified,
        caused_by=caused_by,
    )


def decide(registry: Registry, ref: str, h: Holder, settings: Mapping[str, object] | None = None
           ) -> dict[str, BenefitDecision]:
    decisions = registry.decide("beijing", context(registry, ref, h), settings)
    by_code = {d.code: d for d in decisions}
    assert len(by_code) == len(decisions)
    return by_code


@dataclass(frozen=True)
class Case:
    id: str
    ref: str
    holder: Holder
    expect: dict[str, Outcome]
    settings: dict[str, object] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict, repr=False)
    """code → words one of the decision's reasons or conditions must contain"""
    reading: dict[str, str] = field(default_factory=dict, repr=False)
    """code → words one of the decision's readings must contain"""
    clause: str = ""
    """the notice's words the case rests on, quoted, so that a failing case names the clause it breaks"""


U_ONLY = ("bj.title.deputy_senior", "bj.talent_introduction", "bj.senior_title_assessment",
          "bj.senior_title.public_institution",
          "bj.hkmo_talent_endorsement", "bj.talent_visa", "bj.high_level_talent_services", "bj.sci_tech_projects")
CUMULATION = "还可享受"
# the notice's words the corrected cases rest on
SAN = ("三: 允许持有《目录》内境外金融、会计、医师、教师职业资格的专业人员,"
       "依据本市各相关行业主管部门制定的具体实施办法与操作规范,在本市行政区域内开展执业活动")
SI_2 = "四.2: 对于与在京单位建立人事劳动关系的人员,凭借该平台出具的查询验证结果,可减免相关证书的公证认证材料"
ER = ("二: 以直接认可证书、豁免部分课程、减免考试科目等多种形式,"
      "推进《国际职业资格互认清单》中所列项目与本市专业技术职称实现互认")
YI_SAN_2 = "一(三)2: 部分职业认证可按要求对应核发相关职业技能等级证书"
I121 = "附件1 (一) 121: 经我市农业农村主管部门备案，从事2年以上动物诊疗相关工作"
I118 = "附件1 (一) 118: 从事2年以上药剂相关工作；执业药师须在我市药监主管部门注册"
I116 = "附件1 (一) 116: 从事职业治疗的须在我市卫生健康主管部门注册后从事2年以上医师工作"
I13 = "附件1 (一) 13, 68: 可不受母语国限制 — 一(一)5: 外籍人员办理工作许可…"
CN_NATIONALS = "一(一)1: 中国籍人员可纳入本市工作居住证办理范围; 一(二)4: 外籍人员可办理人才签证确认函"
PUBLIC = ("一(二)3: 事业单位不受岗位总量和结构比例限制,正高级可破格聘用在二、三级专业技术岗位,"
          "副高级可破格聘用在五、六级专业技术岗位")
AGE = "一(一)5: 年龄可放宽至65周岁(高精尖产业领域可放宽至70周岁)"
HKMOTW_TRAVEL = "一(二)4: 中国籍人员可享受赴港澳人才签注政策; 一(三)3: 中国籍人员在办理护照、港澳签注方面可享受相关便利"
I134 = ("附件1 (一) 134: 与阿里云云计算工程师 ACA 认证互认; "
        "136, 137: 与北京北辰实业集团有限责任公司注册国际商务会展专业人士认证互认")

CASES = [
    # --- holder categories, on a list (一) row with 2 years required (I-14 特许化学家) ---------------------------
    Case("foreign-I14", "I-14", Holder(FOREIGN, years=2), {
        "bj.work_residence_permit": X, "bj.visa_residence": E, "bj.work_permit": E, "bj.overseas_experience": E,
        "bj.employer_support": A, "bj.title.intermediate": X, "bj.skill_certificate": X, "bj.practice": X,
        "bj.notarization_waiver": E, "bj.passport_hkmo_convenience": X, "bj.mutual_recognition": X,
        **{c: X for c in U_ONLY},
    }, why={"bj.work_residence_permit": "foreign national", "bj.title.deputy_senior": "list (二)",
            "bj.practice": "领域 (科技、工程)", "bj.mutual_recognition": "not designated"}),
    Case("mainland-I14", "I-14", Holder(MAINLAND), {
        "bj.work_residence_permit": E, "bj.visa_residence": X, "bj.work_permit": X, "bj.overseas_experience": E,
    }, why={"bj.visa_residence": "mainland resident"}),
    Case("hkmotw-I14-reading", "I-14", Holder(HKMOTW), {
        "bj.work_residence_permit": E, "bj.visa_residence": X, "bj.work_permit": X,
    }, reading={"bj.work_residence_permit": "Hong Kong, Macao and Taiwan"}),
    Case("hkmotw-I14-conditional", "I-14", Holder(HKMOTW), {"bj.work_residence_permit": C},
         settings={"bj.hkmotw.where_unclear": "conditional"}, why={"bj.work_residence_permit": "confirmation"}),
    Case("hkmotw-I14-excluded", "I-14", Holder(HKMOTW), {"bj.work_residence_permit": X, "bj.overseas_experience": E},
         settings={"bj.hkmotw.where_unclear": "excluded"}, why={"bj.work_residence_permit": "excluded"}),
    # --- a Chinese national resident abroad (华侨): nationality and residence as two facts -------------------
    Case("cn-abroad-U01", "U-01", Holder(CN_ABROAD), {
        "bj.work_residence_permit": E, "bj.talent_introduction": C, "bj.hkmo_talent_endorsement": C,
        "bj.talent_visa": X, "bj.visa_residence": X, "bj.work_permit": X, "bj.overseas_experience": E,
    }, why={"bj.hkmo_talent_endorsement": "bj.cn_abroad.where_unclear = conditional",
            "bj.work_permit": "Chinese national resident abroad"}, clause=CN_NATIONALS),
    Case("cn-abroad-O01-included", "O-01", Holder(CN_ABROAD), {"bj.passport_hkmo_convenience": E},
         settings={"bj.cn_abroad.where_unclear": "included"},
         reading={"bj.passport_hkmo_convenience": "settled abroad"}, clause=CN_NATIONALS),
    Case("cn-abroad-O01-excluded", "O-01", Holder(CN_ABROAD), {"bj.passport_hkmo_convenience": X},
         settings={"bj.cn_abroad.where_unclear": "excluded"}, clause=CN_NATIONALS),
    # --- the work-permit age limit ------------------------------------------------------------------------
    Case("age-64", "I-14", Holder(born=born_aged(64)), {"bj.work_permit": E, "bj.visa_residence": E}),
    Case("age-65-and-a-day", "I-14", Holder(born=born_aged(65, 1)), {"bj.work_permit": E}),
    Case("age-66th-birthday", "I-14", Holder(born=born_aged(66)), {"bj.work_permit": X, "bj.visa_residence": E},
         why={"bj.work_permit": "age 66 is over the limit of 65"},
         reading={"bj.work_permit": "bj.work_permit.limit_birthday = outside"}, clause=AGE),
    Case("age-66th-birthday-within", "I-14", Holder(born=born_aged(66)), {"bj.work_permit": E},
         settings={"bj.work_permit.limit_birthday": "within"},
         reading={"bj.work_permit": "bj.work_permit.limit_birthday = within"}, clause=AGE),
    Case("age-66-and-a-day-within", "I-14", Holder(born=born_aged(66, 1)), {"bj.work_permit": X},
         settings={"bj.work_permit.limit_birthday": "within"}, clause=AGE),
    Case("age-71st-birthday-high-tech-within", "I-14", Holder(born=born_aged(71), high_tech=True),
         {"bj.work_permit": E}, settings={"bj.work_permit.limit_birthday": "within"}, clause=AGE),
    Case("age-66-high-tech", "I-14", Holder(born=born_aged(66), high_tech=True), {"bj.work_permit": E}),
    Case("age-69-high-tech", "I-14", Holder(born=born_aged(69), high_tech=True), {"bj.work_permit": E}),
    Case("age-69-not-high-tech", "I-14", Holder(born=born_aged(69)), {"bj.work_permit": X}),
    Case("age-70-and-a-day-high-tech", "I-14", Holder(born=born_aged(70, 1), high_tech=True), {"bj.work_permit": E}),
    Case("age-71-high-tech", "I-14", Holder(born=born_aged(71), high_tech=True), {"bj.work_permit": X},
         why={"bj.work_permit": "over the limit of 70"}),
    Case("age-71st-birthday-eve-high-tech", "I-14", Holder(born=born_aged(71, -1), high_tech=True),
         {"bj.work_permit": E}),
    # --- years in the row's scope (I-32 says 3 years) -----------------------------------------------------
    Case("years-below", "I-32", Holder(years=2.9), {
        "bj.work_permit": X, "bj.visa_residence": X, "bj.overseas_experience": X, "bj.employer_support": X,
        "bj.practice": X, "bj.notarization_waiver": E,
    }, why={"bj.work_permit": "fewer than the 3 required", "bj.employer_support": "fewer than the 3 required"},
        clause=SI_2),
    Case("years-at", "I-32", Holder(years=3), {"bj.work_permit": E, "bj.overseas_experience": E, "bj.practice": C},
         clause=SAN),
    Case("years-above", "I-32", Holder(years=12), {"bj.work_permit": E, "bj.notarization_waiver": E}),
    Case("years-not-shown", "I-32", Holder(years=None), {"bj.work_permit": C, "bj.overseas_experience": C},
         why={"bj.work_permit": "employer_attestation"}),
    Case("years-evidence-setting", "I-32", Holder(years=None), {"bj.visa_residence": C},
         settings={"bj.experience.evidence": "documentary_proof"}, why={"bj.visa_residence": "documentary_proof"}),
    Case("not-in-scope", "I-32", Holder(years=10, in_scope=False), {"bj.work_permit": X, "bj.overseas_experience": X},
         why={"bj.work_permit": "not working in the row's scope"}),
    Case("not-in-scope-no-years-row", "I-1", Holder(in_scope=False), {"bj.title.intermediate": X},
         why={"bj.title.intermediate": "not working in the row's scope"}),
    Case("I137-above-range-default", "I-137", Holder(years=6), {"bj.work_permit": E},
         reading={"bj.work_permit": "not an upper bound"}),
    Case("I137-above-range-bound", "I-137", Holder(years=6), {"bj.work_permit": X},
         settings={"bj.experience.range_upper_bound": True}, why={"bj.work_permit": "more than the 4"}),
    Case("I137-within-range-bound", "I-137", Holder(years=4), {"bj.work_permit": E},
         settings={"bj.experience.range_upper_bound": True}),
    Case("I137-below-range", "I-137", Holder(years=0.5), {"bj.work_permit": X}),
    Case("I98-either-alternative", "I-98", Holder(years=2), {"bj.work_permit": E}),
    # --- the urgent list (二), and its cumulation of the list (一) services ----------------------------------
    Case("urgent-foreign-U03", "U-03", Holder(FOREIGN, years=None), {
        "bj.work_residence_permit": X, "bj.visa_residence": E, "bj.work_permit": E, "bj.overseas_experience": E,
        "bj.employer_support": A, "bj.title.intermediate": X, "bj.skill_certificate": X,
        "bj.title.deputy_senior": C, "bj.talent_introduction": X, "bj.senior_title_assessment": C,
        "bj.hkmo_talent_endorsement": X, "bj.talent_visa": E, "bj.high_level_talent_services": C,
        "bj.sci_tech_projects": C, "bj.passport_hkmo_convenience": X, "bj.mutual_recognition": X,
        "bj.practice": X, "bj.notarization_waiver": E,
    }, why={"bj.title.intermediate": "deputy_senior", "bj.practice": "领域 (科技、信息技术)",
            "bj.title.deputy_senior": "对应副高级职称", "bj.senior_title_assessment": "突出贡献"},
        reading={"bj.work_permit": CUMULATION, "bj.overseas_experience": CUMULATION,
                 "bj.employer_support": CUMULATION}),
    Case("urgent-mainland-U09-cfa", "U-09", Holder(MAINLAND), {
        "bj.work_residence_permit": E, "bj.talent_introduction": C, "bj.hkmo_talent_endorsement": E,
        "bj.talent_visa": X, "bj.title.deputy_senior": C, "bj.visa_residence": X,
    }, why={"bj.title.deputy_senior": "10 年以上", "bj.talent_introduction": "用人单位推荐"},
        reading={"bj.work_residence_permit": CUMULATION}),
    Case("urgent-hkmotw-U01", "U-01", Holder(HKMOTW), {
        "bj.work_residence_permit": E, "bj.talent_introduction": C, "bj.hkmo_talent_endorsement": X,
        "bj.talent_visa": X,
    }, reading={"bj.talent_introduction": "Hong Kong, Macao and Taiwan"}),
    Case("urgent-hkmotw-U01-excluded", "U-01", Holder(HKMOTW), {"bj.talent_introduction": X},
         settings={"bj.hkmotw.where_unclear": "excluded"}),
    Case("urgent-old-no-high-tech", "U-03", Holder(born=born_aged(67)), {"bj.work_permit": X, "bj.talent_visa": E}),
    # --- 一(二)3: a public institution's posts ------------------------------------------------------------
    Case("public-institution-U01", "U-01", Holder(employer_type=EmployerType.PUBLIC_INSTITUTION),
         {"bj.senior_title.public_institution": C, "bj.senior_title_assessment": C},
         why={"bj.senior_title.public_institution": "认定取得高级职称"}, clause=PUBLIC),
    Case("public-institution-unsaid-U01", "U-01", Holder(), {"bj.senior_title.public_institution": C},
         why={"bj.senior_title.public_institution": "its type is not said"}, clause=PUBLIC),
    Case("public-institution-other-U01", "U-01", Holder(employer_type=EmployerType.OTHER),
         {"bj.senior_title.public_institution": X, "bj.senior_title_assessment": C},
         why={"bj.senior_title.public_institution": "only at a public institution"}, clause=PUBLIC),
    Case("public-institution-list-one", "I-14", Holder(employer_type=EmployerType.PUBLIC_INSTITUTION),
         {"bj.senior_title.public_institution": X}),
    # --- the outbound list (三) ---------------------------------------------------------------------------
    Case("outbound-mainland-O01", "O-01", Holder(MAINLAND), {
        "bj.title.intermediate": C, "bj.passport_hkmo_convenience": E, "bj.visa_residence": X,
        "bj.work_residence_permit": X, "bj.overseas_experience": X, "bj.employer_support": X, "bj.practice": X,
        "bj.notarization_waiver": E, **{c: X for c in U_ONLY},
    }, why={"bj.work_residence_permit": "list (三)", "bj.title.intermediate": "基本标准条件"}),
    Case("outbound-foreign-O02", "O-02", Holder(FOREIGN, years=2), {
        "bj.visa_residence": E, "bj.work_permit": E, "bj.passport_hkmo_convenience": X, "bj.title.intermediate": X,
    }),
    Case("outbound-hkmotw-O01", "O-01", Holder(HKMOTW), {"bj.passport_hkmo_convenience": X},
         reading={"bj.passport_hkmo_convenience": "mainland residents"},
         why={"bj.passport_hkmo_convenience": "bj.hkmotw.unclear_rules does not name"}, clause=HKMOTW_TRAVEL),
    Case("outbound-hkmotw-O01-named", "O-01", Holder(HKMOTW), {"bj.passport_hkmo_convenience": C},
         settings={"bj.hkmotw.unclear_rules": "bj.passport_hkmo_convenience", "bj.hkmotw.where_unclear": "conditional"},
         clause=HKMOTW_TRAVEL),
    Case("urgent-hkmotw-U01-endorsement-named", "U-01", Holder(HKMOTW), {"bj.hkmo_talent_endorsement": E,
         "bj.work_residence_permit": X},
         settings={"bj.hkmotw.unclear_rules": "bj.hkmo_talent_endorsement"}, clause=HKMOTW_TRAVEL),
    # --- titles and skill certificates on list (一) ----------------------------------------------------------
    Case("skill-certificate-I138", "I-138", Holder(MAINLAND, years=None), {
        "bj.skill_certificate": E, "bj.title.intermediate": C, "bj.mutual_recognition": A, "bj.practice": X,
    }, why={"bj.skill_certificate": "可对应取得相关职业技能等级证书", "bj.practice": "issued in the mainland"}),
    Case("title-further-condition-I139", "I-139", Holder(MAINLAND), {"bj.title.intermediate": C},
         why={"bj.title.intermediate": "申报高一职称需取得中级会计专业技术资格"}),
    # --- Universal Studios (I-93…96) ----------------------------------------------------------------------
    Case("universal-studios-old-and-new", "I-93", Holder(born=born_aged(78), years=0, universal_studios=True), {
        "bj.work_permit": E, "bj.visa_residence": E, "bj.overseas_experience": E,
    }, why={"bj.work_permit": "环球影城", "bj.visa_residence": "环球影城"}),
    Case("universal-studios-row-other-work", "I-93", Holder(born=born_aged(78), years=0), {
        "bj.work_permit": X, "bj.visa_residence": X,
    }, why={"bj.work_permit": "over the limit of 65"}),
    Case("universal-studios-flag-other-row", "I-14", Holder(born=born_aged(78), years=0, universal_studios=True), {
        "bj.work_permit": X, "bj.visa_residence": X,
    }),
    # --- no Beijing employer ------------------------------------------------------------------------------
    Case("employer-in-tianjin", "I-14", Holder(region="tianjin"), {c: X for c in ALL_CODES},
         why={"bj.work_permit": "一(一) is for holders", "bj.employer_support": "not in beijing",
              "bj.notarization_waiver": "四.2 is for holders"}, clause=SI_2),
    Case("employer-in-tianjin-urgent-cites-its-heading", "U-03", Holder(region="tianjin"), {"bj.work_permit": X},
         why={"bj.work_permit": "一(二) is for holders \"与在京单位建立人事劳动关系\""}, clause=CUMULATION),
    Case("employer-in-tianjin-outbound-cites-its-heading", "O-02", Holder(region="tianjin"), {"bj.work_permit": X},
         why={"bj.work_permit": "《出海职业认证清单》"}),
    Case("practice-needs-no-beijing-employer", "I-33", Holder(region="tianjin"), {"bj.practice": C,
         "bj.work_permit": X}, why={"bj.practice": "北京注册会计师协会"}, clause=SAN),
    Case("practice-no-employment", "I-7", Holder(region=None), {"bj.practice": C}, clause=SAN),
    Case("no-employment", "U-03", Holder(region=None), {c: X for c in ALL_CODES},
         why={"bj.talent_visa": "no employment"}),
    Case("employment-ended", "I-14", Holder(ended=date(2025, 6, 30)), {"bj.work_permit": X, "bj.visa_residence": X},
         why={"bj.work_permit": "not active on 2025-10-01"}),
    Case("employment-not-yet-started", "I-14", Holder(started=date(2025, 10, 2)), {"bj.work_permit": X}),
    # --- clause 三: practice --------------------------------------------------------------------------------
    Case("practice-cpa-I33", "I-33", Holder(), {"bj.practice": C},
         why={"bj.practice": "须通过中国注册会计师考试"}),
    Case("practice-cpa-exam-exemption-I35", "I-35", Holder(), {"bj.practice": C},
         why={"bj.practice": "部分科目可免试"}),
    Case("practice-actuary-I7", "I-7", Holder(), {"bj.practice": C}, reading={"bj.practice": "境外"},
         why={"bj.practice": "依据本市各相关行业主管部门制定的具体实施办法与操作规范"}, clause=SAN),
    Case("practice-hk-actuary-I11", "I-11", Holder(HKMOTW), {"bj.practice": C}, why={"bj.practice": "中国香港"},
         clause=SAN),
    Case("practice-physician-I102", "I-102", Holder(), {"bj.practice": C}, why={"bj.practice": "短期行医许可"}),
    Case("practice-teacher-I52", "I-52", Holder(), {"bj.practice": C},
         why={"bj.practice": "competent for teachers"}, clause=SAN),
    Case("practice-urgent-fcca-U08", "U-08", Holder(MAINLAND, years=None), {"bj.practice": C},
         why={"bj.practice": "须通过中国注册会计师考试"}, clause=SAN),
    Case("practice-urgent-cfa-U09", "U-09", Holder(), {"bj.practice": C}, why={"bj.practice": "美国"}, clause=SAN),
    Case("practice-urgent-not-finance-U01", "U-01", Holder(), {"bj.practice": X}, why={"bj.practice": "领域"}),
    Case("practice-outbound-issued-in-china-O05", "O-05", Holder(), {"bj.practice": X},
         why={"bj.practice": "issued in the mainland"}, clause=SAN),
    Case("practice-teacher-I84", "I-84", Holder(HKMOTW), {"bj.practice": C}, why={"bj.practice": "具备教师资格"}),
    Case("practice-not-pharmacist-I118", "I-118", Holder(), {"bj.practice": X}),
    Case("practice-not-vet-I121", "I-121", Holder(), {"bj.practice": X}),
    # --- list (四): mutual recognition --------------------------------------------------------------------
    Case("mutual-I139", "I-139", Holder(), {"bj.mutual_recognition": A},
         why={"bj.mutual_recognition": "BJ2025-M-03"}, reading={"bj.mutual_recognition": "推进"}),
    Case("mutual-I142", "I-142", Holder(), {"bj.mutual_recognition": A, "bj.practice": C},
         why={"bj.mutual_recognition": "最多13门"}),
    Case("mutual-I141-no-years", "I-141", Holder(HKMOTW, years=None), {"bj.mutual_recognition": A}),
    Case("mutual-counterpart-I134", "I-134", Holder(), {"bj.mutual_recognition": A},
         why={"bj.mutual_recognition": "BJ2025-M-01"}, reading={"bj.mutual_recognition": "counterparts = included"},
         clause=I134),
    Case("mutual-counterpart-I136", "I-136", Holder(years=6), {"bj.mutual_recognition": A},
         why={"bj.mutual_recognition": "BJ2025-M-02"}, clause=I134),
    Case("mutual-counterpart-I137-excluded", "I-137", Holder(years=2), {"bj.mutual_recognition": X},
         settings={"bj.mutual_recognition.counterparts": "excluded"}, why={"bj.mutual_recognition": "BJ2025-I-138"},
         clause=I134),
    Case("mutual-not-designated-I133", "I-133", Holder(), {"bj.mutual_recognition": X}),
    Case("mutual-no-beijing-employer", "I-139", Holder(region="hebei"), {"bj.mutual_recognition": A}, clause=ER),
    # --- the rows' own terms on the work, and provisions that qualify a decision ---------------------------
    Case("vet-filing-I121", "I-121", Holder(years=3), {"bj.work_permit": C, "bj.visa_residence": C,
         "bj.notarization_waiver": E}, why={"bj.work_permit": "农业农村主管部门备案"}, clause=I121),
    Case("pharmacist-registration-I118", "I-118", Holder(years=3), {"bj.work_permit": C},
         why={"bj.work_permit": "药监主管部门注册"}, clause=I118),
    Case("therapist-registration-I116", "I-116", Holder(years=3), {"bj.overseas_experience": C},
         why={"bj.overseas_experience": "卫生健康主管部门注册"}, clause=I116),
    Case("native-speaker-I13", "I-13", Holder(), {"bj.work_permit": E}, why={"bj.work_permit": "可不受母语国限制"},
         clause=I13),
    Case("native-speaker-I68", "I-68", Holder(), {"bj.work_permit": E}, why={"bj.work_permit": "可不受母语国限制"},
         clause=I13),
    # --- 一(三)2: skill-level certificates for list (三) -----------------------------------------------------
    Case("skill-certificate-outbound-O03", "O-03", Holder(MAINLAND), {"bj.skill_certificate": C},
         why={"bj.skill_certificate": "skills authority"}, clause=YI_SAN_2),
    Case("skill-certificate-outbound-named", "O-03", Holder(MAINLAND), {"bj.skill_certificate": E},
         settings={"bj.skill_certificate.outbound_rows": "BJ2025-O-01; BJ2025-O-03"}, clause=YI_SAN_2),
    Case("skill-certificate-outbound-not-named", "O-05", Holder(MAINLAND), {"bj.skill_certificate": X},
         settings={"bj.skill_certificate.outbound_rows": "BJ2025-O-01"}, why={"bj.skill_certificate": "not among"},
         clause=YI_SAN_2),
    Case("skill-certificate-I-row-not-named", "I-14", Holder(), {"bj.skill_certificate": X}),
    # --- the verification platform (四.2) -----------------------------------------------------------------
    Case("platform-verified", "I-14", Holder(verified=True), {"bj.notarization_waiver": E}),
    Case("platform-not-verified", "I-14", Holder(verified=False), {"bj.notarization_waiver": X, "bj.work_permit": E},
         why={"bj.notarization_waiver": "not been verified"}),
    # --- the edition's effective date, 2025-09-05 (Beijing time) --------------------------------------------
    Case("before-effective", "I-14", Holder(at=datetime(2025, 9, 4, 23, 0)), {c: X for c in ALL_CODES},
         why={"bj.work_permit": "before the 2025 edition took effect"}),
    Case("before-effective-decided", "I-14", Holder(at=datetime(2025, 9, 4, 23, 0)),
         {"bj.work_permit": E, "bj.title.deputy_senior": X},
         settings={"bj.before_effective": "decide"}, reading={"bj.work_permit": "bj.before_effective = decide"}),
    Case("effective-in-beijing-time", "I-14",
         Holder(at=datetime(2025, 9, 4, 17, 0, tzinfo=UTC)), {"bj.work_permit": E}),
    Case("before-effective-in-beijing-time", "I-14",
         Holder(at=datetime(2025, 9, 4, 15, 59, tzinfo=UTC)), {"bj.work_permit": X}),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_table(registry: Registry, case: Case) -> None:
    got = decide(registry, case.ref, case.holder, case.settings)
    assert set(got) == ALL_CODES
    clause = f" [{case.clause}]" if case.clause else ""
    assert {code: got[code].outcome for code in case.expect} == case.expect, clause
    for code, words in case.why.items():
        d = got[code]
        text = " | ".join([*d.reasons, *d.conditions])
        assert words in text, f"{code}: {words!r} not in {text!r}{clause}"
    for code, words in case.reading.items():
        assert any(words in r for r in got[code].readings), f"{code}: {words!r} not in {got[code].readings}{clause}"
    for d in got.values():
        if d.outcome is X:
            assert d.reasons and not d.conditions
        if d.outcome is C:
            assert d.conditions


def test_the_table_covers_every_code_and_its_outcomes() -> None:
    seen: dict[str, set[Outcome]] = {c: set() for c in ALL_CODES}
    for case in CASES:
        for code, outcome in case.expect.items():
            seen[code].add(outcome)
    assert all(X in s for s in seen.values()), {c for c, s in seen.items() if X not in s}
    granted = {c for c, s in seen.items() if s & {E, C, A}}
    assert granted == ALL_CODES
    assert A in seen["bj.employer_support"] and A in seen["bj.mutual_recognition"]
    conditional = {"bj.title.intermediate", "bj.title.deputy_senior", "bj.talent_introduction",
                   "bj.senior_title_assessment", "bj.high_level_talent_services", "bj.sci_tech_projects",
                   "bj.senior_title.public_institution",
                   "bj.practice", "bj.work_residence_permit", "bj.work_permit"}
    assert all(C in seen[c] for c in conditional)
    categories = {c.holder.category for c in CASES}
    assert categories == set(HolderCategory)


def test_the_table_exercises_every_condition(registry: Registry) -> None:
    data = bj.benefits_data()
    named = {*data.common_conditions, *(n for s in data.rule for n in s.conditions)}
    assert named == set(bj.CONDITIONS)
    seen: dict[str, set[Status]] = {n: set() for n in bj.CONDITIONS}
    for case in CASES:
        ctx = context(registry, case.ref, case.holder)
        values = bj.resolve_settings(data, case.settings)
        for spec in data.rule:
            env = bj.Env(data=data, spec=spec, context=ctx, settings=values, day=local_date(ctx.at, 8),
                         designation=bj.designations().get(ctx.entry.id),
                         counterpart=bj.counterpart_of(data, ctx.entry.id, bj.designations()))
            for name in (*data.common_conditions, *spec.conditions):
                result = bj.CONDITIONS[name](env)
                checks = [result] if isinstance(result, Check) else list(result or [])
                seen[name].update(c.status for c in checks)
    met, pending, failed = Status.MET, Status.PENDING, Status.FAILED
    assert seen == {
        "in_force": {met, failed},
        "beijing_employment": {met, failed},
        "row_experience": {met, pending, failed},
        "holder_category": {met, pending, failed},
        "title_level": {met, pending, failed},
        "row_terms": {pending},
        "row_notes": {met},
        "employer_type": {met, pending, failed},
        "skill_certificate_row": {met, pending, failed},
        "work_permit_age": {met, failed},
        "to_show": {pending},
        "notes": {met},
        "practice_row": {met, pending, failed},
        "designated_in_list_four": {met, pending, failed},
        "platform_verified": {met, failed},
    }


# --- which rules are for which rows ---------------------------------------------------------------------------

LISTS = {  # the "lists" column of the policy reading's Benefits table
    "bj.work_residence_permit": {"I", "U"}, "bj.title.intermediate": {"I", "O"}, "bj.skill_certificate": {"I", "O"},
    "bj.visa_residence": {"I", "U", "O"}, "bj.work_permit": {"I", "U", "O"}, "bj.overseas_experience": {"I", "U"},
    "bj.employer_support": {"I", "U"}, **{c: {"U"} for c in U_ONLY}, "bj.passport_hkmo_convenience": {"O"},
    "bj.mutual_recognition": {"M"}, "bj.practice": {"I", "U", "O"}, "bj.notarization_waiver": {"I", "U", "O"},
}
ONE_ONE = {"bj.work_residence_permit", "bj.title.intermediate", "bj.skill_certificate", "bj.visa_residence",
           "bj.work_permit", "bj.overseas_experience", "bj.employer_support"}
DESIGNATED = {"BJ2025-I-135", "BJ2025-I-138", "BJ2025-I-139", "BJ2025-I-140", "BJ2025-I-142", "BJ2025-I-143",
              "BJ2025-I-141"}
COUNTERPARTS = {"BJ2025-I-134", "BJ2025-I-136", "BJ2025-I-137"}


def _ids(list_code: str, numbers: list[int]) -> set[str]:
    return {f"BJ2025-{list_code}-{n:03d}" for n in numbers}


def test_rules_are_the_reading_s_table(registry: Registry) -> None:
    rules = {r.code: r for r in registry.rules("beijing")}
    assert set(rules) == ALL_CODES
    assert {c: set(r.lists) for c, r in rules.items()} == LISTS
    for r in rules.values():
        assert r.clause.startswith("京人社事业发〔2025〕11号 ")
        assert r.title_zh and r.title_en and r.conditions
    assert set(rules["bj.visa_residence"].who) == {FOREIGN}
    assert set(rules["bj.hkmo_talent_endorsement"].who) == {MAINLAND, HKMOTW, CN_ABROAD}
    assert set(rules["bj.work_residence_permit"].who) == {MAINLAND, HKMOTW, CN_ABROAD}
    assert rules["bj.work_permit"].clause.endswith("一(一)5, 一(三)5")
    assert any("Hong Kong" in x for x in rules["bj.talent_introduction"].readings)


def test_every_row_gets_every_rule_and_the_right_ones_apply(registry: Registry) -> None:
    edition, _ = registry.find_entry("I-1", "beijing")
    rules = registry.rules("beijing")
    jurisdiction = registry.jurisdiction("beijing")
    holder = Holder(years=None)
    for e in edition.entries:
        if e.list == "M":
            continue
        ctx = context(registry, e.id, holder)
        decisions = registry.decide("beijing", ctx)
        assert check_decisions(jurisdiction, "beijing", rules, ctx, decisions) == []
        applied = {d.code for d in decisions if not any(r.startswith("only for rows of") for r in d.reasons)}
        expected = {c for c, lists in LISTS.items() if e.list in lists}
        if e.list == "U":
            expected |= {c for c in ONE_ONE if "I" in LISTS[c]}
        if e.id in DESIGNATED | COUNTERPARTS:
            expected.add("bj.mutual_recognition")
        assert applied == expected, e.id
        for d in decisions:
            cumulated = e.list == "U" and d.code in ONE_ONE and d.code in applied
            assert any(CUMULATION in r for r in d.readings) == cumulated, (e.id, d.code)


def test_practice_membership_is_derived_from_the_rows(registry: Registry) -> None:
    edition, _ = registry.find_entry("I-1", "beijing")
    data = bj.benefits_data()
    members = {e.id for e in edition.entries if e.list == "I" and bj.practice_sector(data, e) is not None}
    finance = _ids("I", [*range(7, 13), *range(27, 39), 139, 140, 142, 143])
    physicians = _ids("I", list(range(102, 106)))
    teachers = _ids("I", [13, *range(52, 85)])
    assert members == finance | physicians | teachers


def test_practice_needs_a_row_issued_outside_the_mainland(registry: Registry) -> None:
    data = bj.benefits_data()
    actuary = entry(registry, "I-7")
    assert bj.practice_sector(data, actuary) is not None
    assert bj.practice_sector(data, actuary.model_copy(update={"country": "中国"})) is None
    assert bj.practice_sector(data, actuary.model_copy(update={"country": "中国台湾"})) is not None
    assert bj.practice_sector(data, actuary.model_copy(update={"fields": ("体育",)})) is None


def test_the_rules_data_belongs_to_the_catalogue_edition(registry: Registry) -> None:
    edition, _ = registry.find_entry("I-1", "beijing")
    data = bj.benefits_data()
    assert (data.document, data.edition, data.effective) == (edition.document, edition.edition, edition.effective)
    assert set(data.lists) == {lst.code for lst in edition.lists}


def test_designations_come_from_list_four(registry: Registry) -> None:
    assert {k: v.id for k, v in bj.designations().items()} == {
        "BJ2025-I-135": "BJ2025-M-01", "BJ2025-I-138": "BJ2025-M-02", "BJ2025-I-139": "BJ2025-M-03",
        "BJ2025-I-140": "BJ2025-M-04", "BJ2025-I-142": "BJ2025-M-05", "BJ2025-I-143": "BJ2025-M-06",
        "BJ2025-I-141": "BJ2025-M-07",
    }


# --- the decision itself --------------------------------------------------------------------------------------


def test_a_decision_carries_its_context_and_no_personal_data(registry: Registry) -> None:
    cert = VerifiedCertificate(
        certificate_key="ck-1", holder_id="h-1", entry_id="BJ2025-I-014", issuer="RSC", verification_code="VC-9",
        verified_at=datetime(2025, 9, 30), verified_by="beijing",
    )
    h = Holder(born=date(1961, 3, 1), high_tech=True)
    ctx = context(registry, "I-14", h, certificate=cert, caused_by="evt-7")
    decisions = registry.decide("beijing", ctx)
    for d in decisions:
        assert (d.entry_id, d.certificate_key, d.verification_code) == ("BJ2025-I-014", "ck-1", "VC-9")
        assert (d.edition, d.rule_version, d.plugin, d.jurisdiction) == ("2025", "1", "beijing", "beijing")
        assert (d.caused_by, d.decided_at, d.decision_id, d.holder_id) == ("evt-7", AT, "", "h-1")
        assert d.inputs["age"] == 64 and d.inputs["holder_category"] == "foreign"
        assert d.inputs["high_tech"] is True and d.inputs["years_in_scope"] == 10
        assert d.inputs["platform_verified"] is True and d.inputs["universal_studios"] is False
        dumped = d.model_dump_json()
        assert "1961-03-01" not in dumped
        assert not {k for k in d.inputs if "birth" in k or "born" in k or "name" in k or "number" in k}
    waiver = next(d for d in decisions if d.code == "bj.notarization_waiver")
    assert any("VC-9" in r for r in waiver.reasons)


def test_decisions_are_pure_and_deterministic(registry: Registry) -> None:
    ctx = context(registry, "U-08", Holder(MAINLAND, years=None))
    first = registry.decide("beijing", ctx)
    again = load_registry().decide("beijing", ctx.model_copy(deep=True))
    assert [d.model_dump() for d in first] == [d.model_dump() for d in again]
    assert bj.decide(ctx) == bj.decide(ctx)


def test_only_beijing_answers(registry: Registry) -> None:
    ctx = context(registry, "I-14", Holder())
    assert bj.mra_decide(jurisdiction="tianjin", context=ctx, settings={}) is None
    assert len(bj.mra_decide(jurisdiction="beijing", context=ctx, settings={}) or []) == len(ALL_CODES)


def test_a_list_four_row_is_never_a_certificate(registry: Registry) -> None:
    ctx = context(registry, "M-3", Holder())
    with pytest.raises(ValidationFailed, match="BJ2025-I-139"):
        bj.decide(ctx)


def test_a_revoked_verification_does_not_waive_notarisation(registry: Registry) -> None:
    cert = VerifiedCertificate(
        certificate_key="ck", holder_id="h-1", entry_id="BJ2025-I-014", issuer="RSC", verification_code="VC",
        verified_at=datetime(2025, 9, 30), verified_by="beijing", revoked=True,
    )
    by_code = {d.code: d for d in bj.decide(context(registry, "I-14", Holder(), certificate=cert))}
    assert by_code["bj.notarization_waiver"].outcome is X


def test_settings_are_the_open_questions(registry: Registry) -> None:
    settings = {s.key: s for s in registry.policy_settings("beijing")}
    assert set(settings) == {"bj.experience.evidence", "bj.experience.range_upper_bound", "bj.hkmotw.where_unclear",
                             "bj.before_effective", "bj.withdrawal.decided_benefits",
                             "bj.skill_certificate.outbound_rows", "bj.mutual_recognition.counterparts",
                             "bj.hkmotw.unclear_rules", "bj.work_permit.limit_birthday",
                             "bj.cn_abroad.where_unclear"}
    for s in settings.values():
        assert s.why and s.description and (s.default in s.choices or not s.choices)
    assert settings["bj.experience.range_upper_bound"].default is False
    assert settings["bj.hkmotw.where_unclear"].default == "included"


def test_a_setting_outside_its_choices_is_refused(registry: Registry) -> None:
    ctx = context(registry, "I-14", Holder())
    with pytest.raises(ValidationFailed, match=r"bj\.hkmotw\.where_unclear"):
        bj.decide(ctx, {"bj.hkmotw.where_unclear": "sometimes"})


# --- the generic toolkit (mra.core.rules) ---------------------------------------------------------------------


def test_outcome_of() -> None:
    met, pending, failed = Check.met("a", "m"), Check.pending("b", "p"), Check.failed("c", "f")
    assert outcome_of([met]) is E
    assert outcome_of([met, pending]) is C
    assert outcome_of([met, pending, failed]) is X
    assert outcome_of([met, pending], Outcome.ADVISORY) is A
    assert outcome_of([failed], Outcome.ADVISORY) is X


@pytest.mark.parametrize(("age", "limit", "status"), [
    (65, 65, Status.MET), (66, 65, Status.FAILED), (None, 65, Status.PENDING), (0, 0, Status.MET),
])
def test_within_age(age: int | None, limit: int, status: Status) -> None:
    assert within_age("age", age, limit).status is status


@pytest.mark.parametrize(("years", "required", "max_years", "status"), [
    (1.99, 2, None, Status.FAILED), (2, 2, None, Status.MET), (30, 2, None, Status.MET),
    (5, 1, 4, Status.FAILED), (4, 1, 4, Status.MET), (None, 2, None, Status.PENDING),
])
def test_years_at_least(years: float | None, required: int, max_years: int | None, status: Status) -> None:
    assert years_at_least("y", years, required, "scope", max_years=max_years).status is status


def test_local_date_and_employment() -> None:
    assert local_date(datetime(2025, 9, 4, 16, 0, tzinfo=UTC), 8) == date(2025, 9, 5)
    assert local_date(datetime(2025, 9, 4, 23, 59), 8) == date(2025, 9, 4)
    emp = Employment(holder_id="h", jurisdiction="x", employer="e", employer_region="tianjin", started=date(2025, 1, 1))
    assert employed_in("e", emp, date(2025, 2, 1), ("tianjin",)).status is Status.MET
    assert employed_in("e", emp, date(2024, 12, 31), ("tianjin",)).status is Status.FAILED
    assert employed_in("e", None, date(2025, 2, 1), ("tianjin",)).status is Status.FAILED
    assert category_in("c", FOREIGN, (MAINLAND,), {}).status is Status.FAILED


def test_decision_from_keeps_what_explains_it(registry: Registry) -> None:
    rule = next(r for r in registry.rules("beijing") if r.code == "bj.work_permit")
    ctx = context(registry, "I-14", Holder())
    checks = [Check.met("a", "ok", ["r1"]), Check.pending("b", "show it"), Check.failed("c", "no")]
    d = decision_from(rule, checks, context=ctx, jurisdiction="beijing", plugin="beijing", readings=["r0"])
    assert (d.outcome, d.reasons, d.conditions, d.readings) == (X, ("no",), (), ("r0", "r1"))
    d = decision_from(rule, checks[:2], context=ctx, jurisdiction="beijing", plugin="beijing")
    assert (d.outcome, d.reasons, d.conditions) == (C, ("ok",), ("show it",))
