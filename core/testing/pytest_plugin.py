"""pytest fixtures of the mra conformance kit, loaded through the ``pytest11`` entry point.

For plugin tests that want the pieces rather than the whole :class:`JurisdictionConformance` class:
``mra_registry`` (every installed plugin, loaded once per session) and ``mra_synthetic_cases`` (a
function from a jurisdiction code to its synthetic cases).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mra.core.plugins import Registry, load_registry
from mra.core.testing.synthetic import SyntheticCase, synthetic_cases

__all__ = ["mra_registry", "mra_synthetic_cases"]


@pytest.fixture(scope="session")
def mra_registry() -> Registry:
    """The installed jurisdiction plugins, as mra loads them (``MRA_PLUGINS`` applies)."""
    return load_registry()


@pytest.fixture(scope="session")
def mra_synthetic_cases(mra_registry: Registry) -> Callable[[str], list[SyntheticCase]]:
    """``mra_synthetic_cases("tianjin")``: synthetic cases built from that jurisdiction's catalogue rows."""

    def build(jurisdiction: str, max_entries: int = 16) -> list[SyntheticCase]:
        return synthetic_cases(mra_registry, jurisdiction, max_entries)

    return build
