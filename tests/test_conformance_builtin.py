"""The built-in jurisdictions pass the same conformance kit a third-party plugin runs."""

from __future__ import annotations

from mra.core.testing import JurisdictionConformance


class TestBeijingConformance(JurisdictionConformance):
    jurisdiction = "beijing"


class TestTianjinConformance(JurisdictionConformance):
    jurisdiction = "tianjin"


class TestHebeiConformance(JurisdictionConformance):
    jurisdiction = "hebei"
