"""The words of the domain as people read them: decision outcomes and holder categories.

``--json`` and events keep the English codes; people see these labels, in their language.
"""

from __future__ import annotations

from mra.i18n import translator

__all__ = ["CATEGORIES", "FIELDS", "OUTCOMES", "category_label", "outcome_label"]


def N_(message: str) -> str:
    """Marks a message for the catalogue without translating it here."""
    return message


OUTCOMES = {
    "eligible": N_("eligible"),
    "conditional": N_("conditional"),
    "ineligible": N_("ineligible"),
    "advisory": N_("advisory"),
}
"""Decision outcome code → English label (符合 / 有条件符合 / 不符合 / 仅供参考)."""

CATEGORIES = {
    "mainland": N_("mainland resident"),
    "hkmotw": N_("Hong Kong, Macao or Taiwan resident"),
    "cn_abroad": N_("Chinese national resident abroad"),
    "foreign": N_("foreign national"),
}
"""Holder category code → English label."""


FIELDS = {
    "教育": "education",
    "金融": "finance",
    "信息技术": "information technology",
    "医疗健康服务": "health care",
    "科技": "science and technology",
    "云计算": "cloud computing",
    "会计": "accounting",
    "建筑与工程服务": "construction and engineering services",
    "工程": "engineering",
    "商业服务": "business services",
    "体育": "sports",
    "建筑": "construction",
    "智能制造": "smart manufacturing",
    "文化旅游 及娱乐服务": "culture, tourism and entertainment",
    "环保": "environmental protection",
    "测绘": "surveying and mapping",
    "项目管理": "project management",
    "供应链": "supply chain",
    "现代农业": "modern agriculture",
    "技术转移": "technology transfer",
}
"""The catalogue's fields of work (领域) and their English names, so ``--field finance`` finds 金融."""


def outcome_label(code: str, lang: str) -> str:
    """The label of a decision outcome in ``lang``; an unknown code is shown as it is."""
    return translator(lang)(OUTCOMES[code]) if code in OUTCOMES else code


def category_label(code: str, lang: str) -> str:
    """The label of a holder category in ``lang``; an unknown code is shown as it is."""
    return translator(lang)(CATEGORIES[code]) if code in CATEGORIES else code
