"""The words of the domain as people read them: decision outcomes and holder categories.

``--json`` and events keep the English codes; people see these labels, in their language.
"""

from __future__ import annotations

from mra.i18n import translator

__all__ = ["CATEGORIES", "OUTCOMES", "category_label", "outcome_label"]


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


def outcome_label(code: str, lang: str) -> str:
    """The label of a decision outcome in ``lang``; an unknown code is shown as it is."""
    return translator(lang)(OUTCOMES[code]) if code in OUTCOMES else code


def category_label(code: str, lang: str) -> str:
    """The label of a holder category in ``lang``; an unknown code is shown as it is."""
    return translator(lang)(CATEGORIES[code]) if code in CATEGORIES else code
