"""The words of the columns and values of files written for people (decision exports, clerks' reports).

Each table maps a code to its English text, marked for the message catalogue (:mod:`mra.i18n`); :func:`label`
gives it in a language. Machine formats (JSON, JSON Lines) keep the codes.
"""

from __future__ import annotations

from mra.i18n import translator
from mra.i18n.terms import CATEGORIES, OUTCOMES

__all__ = [
    "CATEGORY",
    "DIMENSIONS",
    "EXPORT_HEADERS",
    "INPUT_HEADER",
    "LIST_SEPARATOR",
    "OUTCOME",
    "REPORT",
    "STATUS",
    "export_header",
    "label",
]


def N_(message: str) -> str:
    """Marks a message for the catalogue; translated where it is shown."""
    return message


LIST_SEPARATOR = "；"
"""Joins the items of a list (reasons, conditions, readings) in one CSV cell: the full-width semicolon, which
the items themselves do not use as a separator."""

EXPORT_HEADERS: dict[str, str] = {
    "decision_id": N_("decision id"),
    "status": N_("decision status"),
    "jurisdiction": N_("deciding jurisdiction"),
    "holder_id": N_("holder id"),
    "code": N_("benefit code"),
    "outcome": N_("decision outcome"),
    "clause": N_("clause relied on"),
    "reasons": N_("reasons"),
    "conditions": N_("conditions still to show"),
    "readings": N_("policy readings"),
    "entry_id": N_("catalogue row"),
    "certificate_key": N_("certificate key"),
    "verification_code": N_("verification code"),
    "edition": N_("catalogue edition"),
    "rule_version": N_("rule version"),
    "plugin": N_("deciding plugin"),
    "caused_by": N_("caused by event"),
    "decided_at": N_("decided at"),
    "withdrawn_at": N_("withdrawn at"),
    "withdrawn_reason": N_("withdrawal reason"),
    "event_id": N_("event id"),
    "position": N_("position in the log"),
}
"""CSV header of each exported decision field (the JSON Lines export keeps the code)."""

INPUT_HEADER = N_("input: {key}")
"""CSV header of one of a decision's derived inputs, which are flattened into one column each."""

OUTCOME: dict[str, str] = dict(OUTCOMES)
"""Decision outcomes (符合 / 有条件符合 / 仅供参考 / 不符合), from the catalogue's terms."""

STATUS: dict[str, str] = {"active": N_("in force"), "withdrawn": N_("withdrawn")}

CATEGORY: dict[str, str] = {**CATEGORIES, "": N_("not stated")}
"""Holder categories, from the catalogue's terms, and the word for a decision whose holder's is not known."""

DIMENSIONS: dict[str, str] = {
    "list": N_("catalogue list"),
    "field": N_("field of work"),
    "category": N_("holder category"),
    "month": N_("month"),
}

REPORT: dict[str, str] = {
    "title": N_("Benefit decisions in {jurisdiction}"),
    "period": N_("period"),
    "from_start": N_("from the start of the log"),
    "to_end": N_("to date"),
    "generated": N_("generated at"),
    "source": N_("data source"),
    "total": N_("total"),
    "decisions": N_("decisions"),
    "holders": N_("holders"),
    "withdrawn": N_("of which withdrawn"),
    "summary": N_("summary"),
    "decisions_sheet": N_("decisions counted"),
    "key": N_("item"),
    "dimension": N_("counted by"),
    "not_stated": N_("not stated"),
    "field_note": N_(
        "A decision counts once under each field of its catalogue row, so the fields may add up to more than the "
        "total."
    ),
}
"""Words of the clerks' report."""


def label(table: dict[str, str], key: str, lang: str = "zh_CN") -> str:
    """The word for ``key`` in ``lang`` (``zh_CN`` or ``en``); the key itself where the table has none."""
    message = table.get(key)
    return key if message is None else translator(lang)(message)


def export_header(code: str) -> str:
    """The Chinese CSV header of an exported field (``inputs.KEY`` for one of the inputs)."""
    if code.startswith("inputs."):
        return translator("zh_CN")(INPUT_HEADER).format(key=code[len("inputs."):])
    return label(EXPORT_HEADERS, code, "zh_CN")
