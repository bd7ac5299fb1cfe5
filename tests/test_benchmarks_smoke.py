"""The benchmark entry point, run tiny: every figure lands in the JSON with sane values (not the targets)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from mra.core.ids import stable_id

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("publish", "bureau", "replay", "clients", "latency", "growth")


def test_stable_id_is_uuid5_of_kind_and_parts() -> None:
    """The hand-rolled id is exactly uuid5 (ids are stored and compared across runs and versions)."""
    ns = uuid.UUID("6f1d7c3e-8a43-5b8e-9d55-2a4f6f0c9e11")
    for parts in [("decision", "beijing", "h-1", 3, "x" * 900), ("decided", "é中", 0.5), ("k",)]:
        assert stable_id(*parts) == str(uuid.uuid5(ns, "\x1f".join(str(p) for p in parts)))


@pytest.mark.broker
def test_quick_run_writes_every_figure(bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    env = dict(os.environ, MRA_BOOTSTRAP_SERVERS=bootstrap)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--repeat", "1", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["repeat"] == 1
    assert result["command"].endswith("-m benchmarks --quick --repeat 1 --out " + str(out))
    assert result["broker"] == {"kind": "external", "bootstrap": bootstrap}
    assert result["libraries"]["kafka-python"] and result["python"]["version"]
    sizes = result["message_sizes"]
    assert {"CertificateVerified", "EmploymentStarted", "DecisionSetChanged"} <= sizes.keys()
    assert all(0 < s["value"] < s["total"] < 100_000 for s in sizes.values())

    figures = result["figures"]
    assert sorted(figures) == sorted(FIGURES)
    for name, fig in figures.items():
        assert fig["series"], name
        for key, series in fig["series"].items():
            assert len(series["runs"]) >= 1, (name, key)
            assert all(math.isfinite(v) and v >= 0 for v in series["runs"]), (name, key, series)
        for key, ratio in fig["ratios"].items():
            assert math.isfinite(ratio) and ratio > 0, (name, key)
        assert set(fig["met"]) <= set(fig["targets"]), name

    publish = figures["publish"]["series"]
    for key in ("mra_unsigned", "raw_kafka_python", "confluent_kafka"):
        assert publish[key]["median"] > 0
    assert figures["publish"]["ratios"]["unsigned"] > 0
    for name in ("bureau", "replay"):
        s = figures[name]["series"]
        assert s["mra_unsigned"]["median"] > 0 and s["raw_kafka_python"]["median"] > 0
    assert figures["bureau"]["extra"]["decisions_published_per_run"] > 0
    assert figures["clients"]["series"]["confluent_kafka"]["median"] > 0
    lat = figures["latency"]["series"]
    for key in ("raw", "mra_cert", "mra_employment"):
        assert 0 < lat[f"{key}_p50_ms"]["median"] <= lat[f"{key}_p99_ms"]["median"] < 30_000
    growth = figures["growth"]
    assert growth["params"]["small_events"] < growth["params"]["large_events"]
    for size in ("small", "large"):
        assert growth["series"][f"replay_{size}"]["median"] > 0
        assert 10 < growth["series"][f"rss_during_replay_{size}"]["median"] < 24 * 1024
