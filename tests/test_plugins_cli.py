"""``mra plugins list`` and ``mra plugins new``, through the real command line."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from mra.cli import cli
from mra.core.plugins import PLUGINS_ENV, load_registry

MRA = str(Path(sys.executable).with_name("mra"))


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != PLUGINS_ENV}
    return {**base, **extra}


def run(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MRA, *args], capture_output=True, text=True, env=env(**(extra_env or {})), timeout=120)


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PLUGINS_ENV, raising=False)


def test_list_json_describes_every_loaded_plugin() -> None:
    result = CliRunner().invoke(cli, ["plugins", "list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    registry = load_registry()
    by_name = {p["name"]: p for p in data["plugins"]}
    assert set(by_name) == set(registry.jurisdictions)
    for name, p in by_name.items():
        assert p["distribution"] == registry.distributions[name][0]
        assert p["version"] == registry.distributions[name][1]
        assert p["hooks"] == list(registry.hooks(name))
        assert p["benefit_codes"] == [r.code for r in registry.rules(name)]
        assert p["jurisdiction"]["prefix"] == registry.jurisdiction(name).prefix
        assert p["catalogues"] == [
            {"catalogue": e.catalogue, "edition": e.edition, "document": e.document, "entries": len(e.entries)}
            for e in registry.catalogues(name)
        ]
    assert by_name["tianjin"]["honours"] == [{"catalogue": "beijing-international", "jurisdiction": "beijing",
                                              "basis": "京人社事业发〔2025〕11号 四.3", "loaded": True}]
    assert by_name["beijing"]["catalogues"][0]["entries"] > 0
    assert data["refused"] == [{"name": f.name, "reasons": list(f.reasons)} for f in registry.failures]


def test_mra_plugins_env_lists_beijing_alone() -> None:
    result = run("plugins", "list", "--json", extra_env={PLUGINS_ENV: "beijing"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [p["name"] for p in data["plugins"]] == ["beijing"]
    assert data["refused"] == []


def test_text_mode_puts_refused_plugins_on_stderr() -> None:
    result = run("plugins", "list", extra_env={PLUGINS_ENV: "tianjin,nosuch"})
    assert result.returncode == 0, result.stderr
    assert "tianjin" in result.stdout and "tj.jjj_recognition" in result.stdout
    assert "beijing-international of beijing on 京人社事业发〔2025〕11号 四.3 (not loaded)" in result.stdout
    assert "nosuch" not in result.stdout
    assert "plugin 'nosuch' refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_entry_point_is_refused_by_name_and_the_rest_work(tmp_path: Path) -> None:
    """Two third-party distributions on the path: one cannot import, one publishes an invalid catalogue."""
    site = tmp_path / "site"
    info = site / "mra_broken_demo-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mra-broken-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[mra.jurisdictions]\nghost = mra_ghost_module_missing\nbadcat = mra_badcat_plugin\n"
    )
    (site / "mra_badcat_plugin.py").write_text(
        "from datetime import date\n"
        "from mra.core.hookspecs import hookimpl\n"
        "from mra.core.models import CatalogueEdition, CatalogueEntry, CatalogueList, Jurisdiction\n\n"
        "@hookimpl\n"
        "def mra_jurisdiction():\n"
        "    return Jurisdiction(code='badcat', prefix='bc', name_zh='坏', name_en='Bad', regions=('badcat',))\n\n"
        "@hookimpl\n"
        "def mra_catalogues():\n"
        "    row = CatalogueEntry(id='BC-I-01', list='I', seq=1, name='n', issuer_text='i', source='s')\n"
        "    lst = CatalogueList(code='I', name_zh='l', name_en='l', count=4, source='s')\n"
        "    return (CatalogueEdition(jurisdiction='badcat', catalogue='bad', edition='1', title='t',\n"
        "            document='d', effective=date(2025, 1, 1), lists=(lst,), entries=(row, row)),)\n"
    )
    result = run("plugins", "list", "--json", extra_env={"PYTHONPATH": str(site)})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    refused = {r["name"]: " ".join(r["reasons"]) for r in data["refused"]}
    assert "ModuleNotFoundError" in refused["ghost"]
    assert "row BC-I-01 appears more than once" in refused["badcat"]
    assert "declares 4 rows but has 2" in refused["badcat"]
    assert {"beijing", "tianjin", "hebei"} <= {p["name"] for p in data["plugins"]}
    text = run("plugins", "list", extra_env={"PYTHONPATH": str(site)})
    assert "plugin 'ghost' refused" in text.stderr and "plugin 'badcat' refused" in text.stderr


# --- new ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["Bad-Name"], "lower-case Python identifier"),
        (["class"], "lower-case Python identifier"),
        (["beijing"], "a plugin named 'beijing' is already installed"),
        (["shanxi", "--prefix", "tj"], "the prefix 'tj' is used by 'tianjin'"),
        (["shanxi", "--prefix", "s1"], "2-4 lower-case letters"),
        (["x_1"], "2-4 lower-case letters"),
    ],
)
def test_new_refuses_names_that_would_not_load(tmp_path: Path, args: list[str], expected: str) -> None:
    result = run("plugins", "new", *args, "--path", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_new_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = run("plugins", "new", "shanxi", "--path", str(tmp_path))
    assert result.returncode != 0 and "not empty" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_new_writes_a_complete_package(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    result = CliRunner().invoke(cli, ["plugins", "new", "shanxi", "--path", str(target), "--prefix", "sx",
                                      "--name-zh", "山西省", "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    for rel in files:
        assert "{{" not in (target / rel).read_text(encoding="utf-8"), rel
    pyproject = tomllib.loads((target / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["entry-points"]["mra.jurisdictions"] == {"shanxi": "mra_shanxi.plugin"}
    policy = tomllib.loads((target / "mra_shanxi/data/policy.toml").read_text(encoding="utf-8"))
    assert policy["jurisdiction"]["code"] == "shanxi" and policy["jurisdiction"]["name_zh"] == "山西省"
    assert all(r["code"].startswith("sx.") for r in policy["rule"])
    with (target / "mra_shanxi/data/catalogue.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["id", "list", "seq", "name", "issuer_text", "country", "fields", "remark", "issuers",
                             "aliases", "designates"]
    assert len(rows) == policy["catalogue"]["lists"][0]["count"]
    assert all("EXAMPLE" in r["name"] for r in rows)
    assert "JurisdictionConformance" in (target / "tests/test_conformance.py").read_text(encoding="utf-8")
