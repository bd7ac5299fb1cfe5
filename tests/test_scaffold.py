"""A jurisdiction added from another package: scaffolded, installed, listed and conformant, with mra untouched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import distribution
from pathlib import Path

import pytest
from support.signed import provisioned, signed

from mra.core.plugins import ENTRY_POINT_GROUP, PLUGINS_ENV
from mra.core.testing import JurisdictionConformance

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
MRA = str(Path(sys.executable).with_name("mra"))
NAME = f"scaffold{os.getpid()}"
PREFIX = "zq"
DISTRIBUTION = f"mra-{NAME}"
# what decides which plugins mra finds: none of it may change for a new jurisdiction to appear
DISCOVERY_FILES = ["pyproject.toml", "core/plugins.py", "core/hookspecs.py", "plugins/__init__.py"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}


def run(args: list[str], cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=env(), cwd=cwd, timeout=timeout)


def fingerprint() -> dict[str, str]:
    files = {rel: hashlib.sha256((ROOT / rel).read_bytes()).hexdigest() for rel in DISCOVERY_FILES}
    mra_eps = sorted(e.name for e in distribution("mra").entry_points if e.group == ENTRY_POINT_GROUP)
    return {**files, "mra entry points": ",".join(mra_eps)}


@pytest.fixture(scope="module")
def before() -> dict[str, str]:
    return fingerprint()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, before: dict[str, str]) -> Iterator[Path]:
    target = tmp_path_factory.mktemp("scaffold") / DISTRIBUTION
    made = run([MRA, "plugins", "new", NAME, "--path", str(target), "--prefix", PREFIX, "--name-zh", "脚手架"])
    assert made.returncode == 0, made.stderr
    install = run([PYTHON, "-m", "pip", "install", "-e", str(target), "--no-deps", "--no-build-isolation", "-q"])
    try:
        assert install.returncode == 0, install.stdout + install.stderr
        yield target
    finally:
        run([PYTHON, "-m", "pip", "uninstall", "-y", "-q", DISTRIBUTION])


def test_the_scaffold_lives_outside_mra(installed: Path) -> None:
    assert ROOT not in installed.parents


def test_the_installed_plugin_is_listed(installed: Path) -> None:
    result = run([MRA, "plugins", "list", "--json"])
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert NAME not in {r["name"] for r in data["refused"]}, data["refused"]
    (plugin,) = [p for p in data["plugins"] if p["name"] == NAME]
    assert plugin["distribution"] == DISTRIBUTION and plugin["version"] == "0.1.0"
    assert plugin["jurisdiction"]["prefix"] == PREFIX and plugin["jurisdiction"]["name_zh"] == "脚手架"
    assert plugin["benefit_codes"] and all(c.startswith(f"{PREFIX}.") for c in plugin["benefit_codes"])
    assert [c["catalogue"] for c in plugin["catalogues"]] == [f"{NAME}-catalogue"]
    assert plugin["catalogues"][0]["entries"] > 0
    assert {"mra_configure", "mra_jurisdiction", "mra_decide"} <= set(plugin["hooks"])
    assert {"beijing", "tianjin", "hebei"} <= {p["name"] for p in data["plugins"]}


def test_the_scaffold_passes_its_own_tests_with_the_conformance_kit(installed: Path) -> None:
    result = run([PYTHON, "-m", "pytest", "-v"], cwd=installed)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = [line for line in result.stdout.splitlines() if line.endswith("PASSED") or " PASSED " in line]
    kit = [name for name in dir(JurisdictionConformance) if name.startswith("test_")]
    for name in kit:
        assert any(f"TestConformance::{name}" in line for line in passed), f"{name} did not pass:\n{result.stdout}"
    assert any("test_rules.py" in line for line in passed)


def test_mra_itself_did_not_change(before: dict[str, str], installed: Path) -> None:
    assert fingerprint() == before


@pytest.mark.broker
def test_the_scaffolded_jurisdiction_runs_as_a_bureau_on_the_broker(installed: Path, kafka, topics, bootstrap) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, date, datetime

    from mra.events.benefits import decided_in
    from mra.events.envelope import decode
    from mra.events.schemas import (
        CertificateVerified,
        EmployerRef,
        EmploymentStarted,
        HolderRegistered,
    )

    listed = json.loads(run([MRA, "plugins", "list", "--json"]).stdout)
    (plugin,) = [p for p in listed["plugins"] if p["name"] == NAME]
    region = plugin["jurisdiction"]["regions"][0]
    rows = json.loads(run([MRA, "catalogue", "list", "-j", NAME, "--json"]).stdout)
    entry = rows[0]["id"]
    at = datetime(2025, 10, 1, tzinfo=UTC)
    pub = signed(kafka, topics, "test-intake")
    pub.publish(HolderRegistered(holder_id="h-s", category="foreign", birth_date=date(1980, 1, 1)), time=at)  # type: ignore[arg-type]
    pub.publish(CertificateVerified(request_id="r", holder_id="h-s", certificate_key="k-s", entry_id=entry,
                                    issuer="x", verification_code="CODE-S", verified_at=at, verified_by=NAME,
                                    disclaimer="authenticity only"), time=at)
    pub.publish(EmploymentStarted(holder_id="h-s", jurisdiction=NAME, started=date(2025, 9, 1), years_in_scope=3,
                                  employer=EmployerRef(name="E", credit_code="C", region=region)), time=at)
    pub.flush()
    bureau_env = dict(env(), MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))
    state = provisioned(installed.parent / "bureau-state", f"bureau-{NAME}")
    result = subprocess.run(
        [MRA, "--state-dir", str(state), "--bootstrap", bootstrap, "bureau", "run", "-j", NAME, "--until-idle",
         "--json"], capture_output=True, text=True, env=bureau_env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["counts"]["decisions_active"] > 0
    reader = kafka.reader([topics.name("benefits")])
    decided = []
    for _ in range(10):
        decided += [decode(r).data for r in reader.poll(500, 1000)]
        if decided:
            break
    reader.close()
    decisions = [d for e in decided for d in decided_in(e)]
    assert decisions and all(d.jurisdiction == NAME for d in decisions)
    assert {d.code.split(".")[0] for d in decisions} == {PREFIX}
    assert fingerprint()["core/plugins.py"] == hashlib.sha256((ROOT / "core/plugins.py").read_bytes()).hexdigest()
