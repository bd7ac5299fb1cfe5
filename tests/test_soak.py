"""The soak with faults, short: bureaus and the platform SIGKILLed and restarted under load lose and duplicate
nothing, and decide what the rules predict. The full run is ``python -m benchmarks.soak`` (docs/reliability.md)."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mra.core.plugins import load_registry

ROOT = Path(__file__).resolve().parents[1]


def _soak() -> ModuleType:
    """``benchmarks/soak.py``, loaded from its file (``benchmarks`` is run from the repository root, not installed)."""
    spec = importlib.util.spec_from_file_location("mra_soak_harness", ROOT / "benchmarks" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


soak = _soak()
REGISTRY = load_registry()


def test_the_population_and_the_faults_follow_the_seed() -> None:
    a, b, other = (soak.generate(300, s, REGISTRY) for s in (7, 7, 8))
    assert [vars(h) for h in a.holders] == [vars(h) for h in b.holders]
    assert [vars(h) for h in a.holders] != [vars(h) for h in other.holders]
    config = soak.SoakConfig(seed=7)
    first = list(itertools.islice(soak.fault_schedule(config), 20))
    assert first == list(itertools.islice(soak.fault_schedule(config), 20))
    assert {victim for _, victim, _ in first} == {"beijing", "tianjin", "hebei", "platform"}
    assert all(4.0 <= wait <= 12.0 and 0.0 <= down <= 2.0 for wait, _, down in first)


def test_the_prediction_counts_each_rule_of_the_final_jurisdiction_for_a_standing_certificate() -> None:
    population = soak.generate(400, 3, REGISTRY)
    counts = population.counts()
    assert counts["relocated"] and counts["left_the_region"] and counts["revoked"] and counts["via_platform"]
    predicted = soak.predict(population, REGISTRY)
    by_hand = dict.fromkeys(soak.JURISDICTIONS, 0)
    for h in population.holders:
        if h.leaves is None and not h.revoked and not h.void:
            by_hand[h.moves[-1][0]] += len(REGISTRY.rules(h.moves[-1][0]))
    assert predicted == by_hand and all(predicted.values())
    assert predicted["beijing"] % 19 == 0 and len(REGISTRY.rules("beijing")) == 19


@pytest.mark.broker
def test_a_short_soak_with_faults_loses_and_duplicates_no_decision(bootstrap: str, tmp_path: Path) -> None:
    config = soak.SoakConfig(
        holders=120,
        seed=11,
        kill_every=(1.0, 2.5),
        down_for=(0.0, 0.5),
        chaos_min_s=10.0,  # three kills fit: each waits at most 2.5 s and stays down at most 0.5 s
        chaos_max_s=18.0,
        partitions=3,
        bootstrap=bootstrap,
        workdir=tmp_path / "soak",
        keep=True,
        final_timeout_s=120.0,
    )
    report = soak.run_soak(config, "test", say=lambda _: None)
    assert report.ok, report.text()
    assert sum(report.kills.values()) >= 3 and report.restarts == sum(report.kills.values())
    assert report.crashes == []
    assert report.decisions_lost == 0 and report.decisions_duplicated == 0 and report.decisions_unknown == 0
    assert report.predicted_active == report.live_active == report.replay_active
    assert sum(report.predicted_active.values()) > 0
    assert report.decided_distinct == report.decisions_in_read_models > 0
    assert all(n >= report.events_published for n in report.events_applied.values())
    assert report.platform["requests"].get("verified", 0) > 0 and report.platform["unpublished"] == 0
