"""The jurisdiction plugin contract.

A jurisdiction is a plugin: a module or object with ``@hookimpl`` functions, registered through the
``mra.jurisdictions`` entry-point group. mra never calls these hooks directly outside
:mod:`mra.core.plugins`, whose :class:`~mra.core.plugins.Registry` is the typed facade over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pluggy
from pydantic import BaseModel, ConfigDict, Field

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
from mra.core.settings import PolicySetting, SettingValue

PROJECT = "mra"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

__all__ = ["PROJECT", "PluginConfig", "hookimpl", "hookspec"]


class PluginConfig(BaseModel):
    """The deployment's configuration, as every plugin sees it through :func:`mra_configure`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path | None = Field(None, description="where this deployment keeps local state, if anywhere")
    overrides: dict[str, SettingValue] = Field(
        default_factory=dict, description="policy-setting values a bureau chose, by namespaced key"
    )


@hookspec(historic=True)
def mra_configure(config: PluginConfig) -> None:
    """Receive the deployment's configuration once, before any other hook is called.

    Historic: a plugin registered after the call still receives it on registration, so a late plugin
    sees the same configuration as the built-in ones. ``config.overrides`` are the policy-setting
    values the bureau chose; mra already merges them into the ``settings`` given to
    :func:`mra_decide`, so a plugin keeps them only if it needs them elsewhere. Keep what is needed;
    do no I/O here that the decision hooks would then depend on. Optional.
    """


@hookspec
def mra_jurisdiction() -> Jurisdiction:
    """Return the jurisdiction this plugin speaks for.

    Called once when the plugin is loaded. Every jurisdiction plugin must implement it: its ``code`` names
    the bureau (``beijing``) and must equal the plugin's entry-point name, its ``prefix`` namespaces its
    benefit codes and settings (``bj``) and is unique among loaded plugins, and its ``regions`` are the
    employer regions it covers.
    """
    raise NotImplementedError


@hookspec
def mra_catalogues() -> Sequence[CatalogueEdition]:
    """Return the catalogue editions this jurisdiction publishes (possibly none).

    Called once when the plugin is loaded; mra validates and keeps the answer. Every row must be data
    with its source: ``CatalogueEntry.source`` says where it stands in the publishing document. At load,
    ids must be unique, each row's list must be one of the edition's lists and its id must carry that
    list and its ``seq``, each list's ``count`` must equal its rows, and designating rows must point at
    existing rows of non-designating lists. A catalogue name belongs to one jurisdiction.
    """
    raise NotImplementedError


@hookspec
def mra_honours() -> Sequence[Honour]:
    """Return the catalogues of other jurisdictions this one honours, each with the clause that grants it.

    For 京津冀 this is clause 四.3 of 京人社事业发〔2025〕11号: a holder who moves within the region needs
    no re-recognition. Return an empty sequence where the jurisdiction honours nothing. Called once at
    load; a jurisdiction cannot honour itself, and every honour cites its basis.
    """
    raise NotImplementedError


@hookspec
def mra_benefit_rules() -> Sequence[BenefitRule]:
    """Return the benefit rules this jurisdiction decides, as data.

    Called once at load. Codes must be unique and start with the jurisdiction's prefix (``bj.``); every
    rule cites a clause. A plugin that declares rules must implement :func:`mra_decide`.
    """
    raise NotImplementedError


@hookspec
def mra_policy_settings() -> Sequence[PolicySetting]:
    """Return the policy settings this jurisdiction reads, each with its default and why it is a setting.

    A setting is where the source is silent: mra does not invent an answer, it names the question. Called
    once at load. Keys are unique and namespaced by the jurisdiction's prefix (``tj.``); a default must
    be one of the ``choices`` where choices are given.
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
    of ``context`` and ``settings`` (no clock, no I/O), so that a replay decides the same: ``decided_at``
    is ``context.at``. Return one decision for every rule, ``ineligible`` ones included (with a reason),
    so that the read model explains what was not granted; each decision cites its rule's clause and
    version, the context's entry, edition and ``caused_by``, and only non-personal ``inputs``.
    ``settings`` holds every setting of the jurisdiction: defaults, then the deployment's overrides.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def mra_issuer_connector(entry: CatalogueEntry, settings: Mapping[str, object]) -> IssuerConnector | None:
    """Return the connector that checks certificates of ``entry`` with its issuer, or None to pass.

    Called by the verification platform for each request. The first plugin that returns a connector
    serves the request; mra's file-backed register is the fallback.
    """
    raise NotImplementedError
