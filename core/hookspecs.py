"""The jurisdiction plugin contract.

A jurisdiction is a plugin: a module or object with ``@hookimpl`` functions, registered through the
``mra.jurisdictions`` entry-point group. mra never calls these hooks directly outside
:mod:`mra.core.plugins`, whose :class:`~mra.core.plugins.Registry` is the typed facade over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pluggy

from mra.core.connectors import IssuerConnector
from mra.core.models import (
    BenefitDecision,
    BenefitRule,
    CatalogueEdition,
    CatalogueEntry,
    DecisionContext,
    Honour,
    Jurisdiction,
)
from mra.core.settings import PolicySetting

PROJECT = "mra"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]


@hookspec
def mra_jurisdiction() -> Jurisdiction:
    """Return the jurisdiction this plugin speaks for.

    Called once when the plugin is loaded. Every jurisdiction plugin must implement it: its ``code`` names
    the bureau (``beijing``), its ``prefix`` namespaces its benefit codes (``bj``), and its ``regions``
    are the employer regions it covers.
    """
    raise NotImplementedError


@hookspec
def mra_catalogues() -> Sequence[CatalogueEdition]:
    """Return the catalogue editions this jurisdiction publishes (possibly none).

    Called when plugins are validated and when a catalogue is published or listed. Every row must be
    data with its source: ``CatalogueEntry.source`` says where it stands in the publishing document.
    """
    raise NotImplementedError


@hookspec
def mra_honours() -> Sequence[Honour]:
    """Return the catalogues of other jurisdictions this one honours, each with the clause that grants it.

    For 京津冀 this is clause 四.3 of 京人社事业发〔2025〕11号: a holder who moves within the region needs
    no re-recognition. Return an empty sequence where the jurisdiction honours nothing.
    """
    raise NotImplementedError


@hookspec
def mra_benefit_rules() -> Sequence[BenefitRule]:
    """Return the benefit rules this jurisdiction decides, as data.

    Codes must be unique and start with the jurisdiction's prefix (``bj.``); every rule cites a clause.
    """
    raise NotImplementedError


@hookspec
def mra_policy_settings() -> Sequence[PolicySetting]:
    """Return the policy settings this jurisdiction reads, each with its default and why it is a setting.

    A setting is where the source is silent: mra does not invent an answer, it names the question.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def mra_decide(
    jurisdiction: str, context: DecisionContext, settings: Mapping[str, object]
) -> Sequence[BenefitDecision] | None:
    """Decide the benefits of one holder's verified certificate in ``jurisdiction`` at ``context.at``.

    Called by a bureau when a certificate is verified for a holder employed there, when such a holder
    starts employment, and when a catalogue edition changes. Only the plugin whose jurisdiction code
    equals ``jurisdiction`` answers; every other plugin returns None. The answer must be a pure function
    of ``context`` and ``settings`` (no clock, no I/O), so that a replay decides the same. Return every
    rule's decision, ``ineligible`` ones included, so that the read model explains what was not granted.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def mra_issuer_connector(entry: CatalogueEntry, settings: Mapping[str, object]) -> IssuerConnector | None:
    """Return the connector that checks certificates of ``entry`` with its issuer, or None to pass.

    Called by the verification platform for each request. The first plugin that returns a connector
    serves the request; mra's file-backed register is the fallback.
    """
    raise NotImplementedError
