"""Chinese and English words for the columns and values of files written for people (exports, reports).

Kept in one table so that files for people name things the same way everywhere, and so that the wording can move
into a message catalogue without touching the code that writes the files. Machine formats (JSON, JSON Lines) keep
the English codes; these labels are only for headers and captions.
"""

from __future__ import annotations

__all__ = [
    "CATEGORY",
    "DIMENSIONS",
    "EXPORT_HEADERS",
    "INPUT_HEADER",
    "LIST_SEPARATOR",
    "OUTCOME",
    "REPORT",
    "STATUS",
    "label",
]

LIST_SEPARATOR = "；"
"""Joins the items of a list (reasons, conditions, readings) in one CSV cell: the full-width semicolon, which
the items themselves do not use as a separator."""

EXPORT_HEADERS: dict[str, str] = {
    "decision_id": "决定编号",
    "status": "状态",
    "jurisdiction": "辖区",
    "holder_id": "持证人编号",
    "code": "待遇代码",
    "outcome": "结果",
    "clause": "依据条款",
    "reasons": "理由",
    "conditions": "待补条件",
    "readings": "政策解读",
    "entry_id": "目录条目",
    "certificate_key": "证书标识",
    "verification_code": "核验码",
    "edition": "目录版本",
    "rule_version": "规则版本",
    "plugin": "插件",
    "caused_by": "触发事件",
    "decided_at": "决定时间",
    "withdrawn_at": "撤回时间",
    "withdrawn_reason": "撤回原因",
    "event_id": "事件编号",
    "position": "日志位置",
}
"""CSV header of each exported decision field (the JSON Lines export keeps the English code)."""

INPUT_HEADER = "输入:{key}"
"""CSV header of one of a decision's derived inputs, which are flattened into one column each."""

OUTCOME: dict[str, tuple[str, str]] = {
    "eligible": ("符合", "eligible"),
    "conditional": ("有条件符合", "conditional"),
    "advisory": ("仅供参考", "advisory"),
    "ineligible": ("不符合", "ineligible"),
}

STATUS: dict[str, tuple[str, str]] = {
    "active": ("有效", "active"),
    "withdrawn": ("已撤回", "withdrawn"),
}

CATEGORY: dict[str, tuple[str, str]] = {
    "mainland": ("内地居民", "mainland"),
    "hkmotw": ("港澳台居民", "Hong Kong, Macao, Taiwan"),
    "foreign": ("外籍人员", "foreign"),
    "": ("未注明", "not stated"),
}

DIMENSIONS: dict[str, tuple[str, str]] = {
    "list": ("清单", "list"),
    "field": ("领域", "field"),
    "category": ("持证人类别", "holder category"),
    "month": ("月份", "month"),
}

REPORT: dict[str, tuple[str, str]] = {
    "title": ("{jurisdiction}职业资格认可待遇决定统计", "Benefit decisions in {jurisdiction}"),
    "period": ("统计期间", "period"),
    "from_start": ("自日志起始", "from the start of the log"),
    "to_end": ("至今", "to date"),
    "generated": ("生成时间", "generated"),
    "source": ("数据来源", "source"),
    "total": ("合计", "total"),
    "decisions": ("决定数", "decisions"),
    "holders": ("持证人数", "holders"),
    "withdrawn": ("其中已撤回", "of which withdrawn"),
    "summary": ("总览", "summary"),
    "decisions_sheet": ("决定明细", "decisions"),
    "value": ("数值", "value"),
    "key": ("项目", "item"),
    "dimension": ("维度", "dimension"),
    "not_stated": ("未注明", "not stated"),
    "field_note": (
        "一条决定按其目录条目的每个领域各计一次，故各领域之和可大于决定总数。",
        "A decision counts once under each field of its catalogue row, so the fields may add up to more than the "
        "total.",
    ),
    "chart": ("图", "chart"),
}
"""Words of the clerks' report: (Chinese, English)."""


def label(table: dict[str, tuple[str, str]], key: str, lang: str = "zh_CN") -> str:
    """The word for ``key`` in ``lang`` (``zh_CN`` or ``en``); the key itself where the table has none."""
    pair = table.get(key)
    if pair is None:
        return key
    return pair[0] if lang.startswith("zh") else pair[1]
