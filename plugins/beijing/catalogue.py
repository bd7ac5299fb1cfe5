"""The 2025 catalogue as data (placeholder until the data file lands)."""

from __future__ import annotations

from collections.abc import Sequence

from mra.core import CatalogueEdition, hookimpl


@hookimpl
def mra_catalogues() -> Sequence[CatalogueEdition]:
    return ()
