"""``mra benefits``: checking a prospective hire's benefits, and listing the rules and settings.

Happy paths run in-process through click's runner; error paths run the installed ``mra`` so that the exit
code and the one-line message on stderr are what a person sees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mra.cli import cli

MRA = shutil.which("mra") or str(Path(sys.executable).parent / "mra")
BASE = ["benefits", "check", "-j", "beijing", "--employer-region", "beijing", "--on", "2025-10-01"]


def run_json(*args: str) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, [*BASE, *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert isinstance(rows, list)
    return {row["code"]: row for row in rows}


def run_mra(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MRA, *args], capture_output=True, text=True, timeout=60, check=False)


def test_json_has_every_benefit_with_its_clause_and_reasons() -> None:
    rows = run_json("--entry", "I-139", "--nationality", "GB", "--birth-date", "1985-05-05")
    assert len(rows) == 19
    for row in rows.values():
        assert {"code", "outcome", "clause", "reasons", "conditions", "readings", "inputs"} <= row.keys()
        assert row["clause"].startswith("京人社事业发〔2025〕11号")
        assert row["entry_id"] == "BJ2025-I-139" and row["edition"] == "2025"
        assert row["inputs"]["age"] == 40 and row["inputs"]["holder_category"] == "foreign"
        assert "1985" not in json.dumps(row["inputs"])
    assert rows["bj.work_permit"]["outcome"] == "eligible"
    assert rows["bj.practice"]["outcome"] == "conditional"
    assert any("中国注册会计师考试" in c for c in rows["bj.practice"]["conditions"])
    assert rows["bj.mutual_recognition"]["outcome"] == "advisory"
    assert rows["bj.notarization_waiver"]["outcome"] == "ineligible"
    assert rows["bj.work_residence_permit"]["outcome"] == "ineligible"


def test_platform_verified_waives_notarisation() -> None:
    rows = run_json("--entry", "I-139", "--nationality", "GB", "--birth-date", "1985-05-05", "--platform-verified")
    assert rows["bj.notarization_waiver"]["outcome"] == "eligible"
    assert rows["bj.notarization_waiver"]["inputs"]["platform_verified"] is True


@pytest.mark.parametrize(("born", "high_tech", "age", "outcome"), [
    ("1960-10-01", False, 65, "eligible"),
    ("1960-09-30", False, 65, "eligible"),
    ("1959-10-01", False, 66, "ineligible"),
    ("1959-10-01", True, 66, "eligible"),
    ("1955-09-30", True, 70, "eligible"),
    ("1954-10-01", True, 71, "ineligible"),
])
def test_age_in_full_years_on_the_date(born: str, high_tech: bool, age: int, outcome: str) -> None:
    extra = ["--high-tech-employer"] if high_tech else []
    rows = run_json("--entry", "I-14", "--nationality", "DE", "--birth-date", born, "--years", "2", *extra)
    assert rows["bj.work_permit"]["inputs"]["age"] == age
    assert rows["bj.work_permit"]["outcome"] == outcome


@pytest.mark.parametrize(("nationality", "category", "permit", "visa"), [
    ("CN", "mainland", "eligible", "ineligible"),
    ("hk", "hkmotw", "eligible", "ineligible"),
    ("TW", "hkmotw", "eligible", "ineligible"),
    ("US", "foreign", "ineligible", "eligible"),
])
def test_nationality_decides_the_holder_category(nationality: str, category: str, permit: str, visa: str) -> None:
    rows = run_json("--entry", "I-1", "--nationality", nationality, "--birth-date", "1990-01-01")
    assert rows["bj.work_residence_permit"]["inputs"]["holder_category"] == category
    assert rows["bj.work_residence_permit"]["outcome"] == permit
    assert rows["bj.visa_residence"]["outcome"] == visa


def test_no_beijing_employer_means_nothing() -> None:
    result = CliRunner().invoke(cli, [
        "benefits", "check", "-j", "beijing", "--employer-region", "hebei", "--on", "2025-10-01",
        "--entry", "I-14", "--nationality", "GB", "--birth-date", "1990-01-01", "--years", "5", "--json",
    ])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 19 and {r["outcome"] for r in rows} == {"ineligible"}


def test_years_and_scope() -> None:
    common = ["--entry", "I-32", "--nationality", "GB", "--birth-date", "1990-01-01"]
    assert run_json(*common, "--years", "2")["bj.work_permit"]["outcome"] == "ineligible"
    assert run_json(*common, "--years", "3")["bj.work_permit"]["outcome"] == "eligible"
    assert run_json(*common)["bj.work_permit"]["outcome"] == "conditional"
    assert run_json(*common, "--years", "9", "--not-in-scope")["bj.work_permit"]["outcome"] == "ineligible"


def test_universal_studios_project_lifts_age_and_experience() -> None:
    common = ["--entry", "I-93", "--nationality", "US", "--birth-date", "1945-01-01", "--years", "0"]
    assert run_json(*common)["bj.work_permit"]["outcome"] == "ineligible"
    assert run_json(*common, "--universal-studios-project")["bj.work_permit"]["outcome"] == "eligible"


def test_urgent_list_holder_gets_list_one_services_as_a_reading() -> None:
    rows = run_json("--entry", "BJ2025-U-03", "--nationality", "CN", "--birth-date", "1980-01-01")
    assert rows["bj.hkmo_talent_endorsement"]["outcome"] == "eligible"
    assert rows["bj.title.deputy_senior"]["outcome"] == "conditional"
    assert rows["bj.work_residence_permit"]["outcome"] == "eligible"
    assert any("还可享受" in r for r in rows["bj.work_residence_permit"]["readings"])


def test_a_setting_can_be_overridden() -> None:
    common = ["--entry", "I-137", "--nationality", "GB", "--birth-date", "1990-01-01", "--years", "6"]
    assert run_json(*common)["bj.work_permit"]["outcome"] == "eligible"
    bound = run_json(*common, "--setting", "bj.experience.range_upper_bound=true")
    assert bound["bj.work_permit"]["outcome"] == "ineligible"


def test_text_is_grouped_by_outcome() -> None:
    result = CliRunner().invoke(
        cli, [*BASE, "--entry", "I-139", "--nationality", "GB", "--birth-date", "1985-05-05"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    out = result.output
    heads = [out.index(h) for h in ("ELIGIBLE (", "CONDITIONAL (", "ADVISORY (", "INELIGIBLE (")]
    assert heads == sorted(heads)
    assert out.index("bj.work_permit") < heads[1] < out.index("bj.practice") < heads[2]
    assert heads[2] < out.index("bj.mutual_recognition") < heads[3] < out.index("bj.notarization_waiver")
    assert "to show:" in out and "because:" in out and "19 benefits" in out


def test_default_date_is_today() -> None:
    before = date.today().isoformat()
    result = CliRunner().invoke(cli, ["benefits", "check", "-j", "beijing", "--employer-region", "beijing",
                                      "--entry", "I-1", "--nationality", "CN", "--birth-date", "1990-01-01", "--json"])
    after = date.today().isoformat()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["inputs"]["decision_date"] in {before, after}


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--entry", "I-999", "--nationality", "GB", "--birth-date", "1990-01-01"], 3, "unknown catalogue entry"),
    (["--entry", "I-1", "--nationality", "GB", "--birth-date", "01/02/1990"], 2, "YYYY-MM-DD"),
    (["--entry", "I-1", "--nationality", "GB", "--birth-date", "1990-02-30"], 2, "not a valid date"),
    (["--entry", "I-1", "--nationality", "Britain", "--birth-date", "1990-01-01"], 2, "--nationality"),
    (["--entry", "I-1", "--nationality", "G1", "--birth-date", "1990-01-01"], 2, "--nationality"),
    (["--entry", "M-3", "--nationality", "GB", "--birth-date", "1990-01-01"], 2, "BJ2025-I-139"),
    (["--entry", "BJ2025-M-07", "--nationality", "GB", "--birth-date", "1990-01-01"], 2, "BJ2025-I-141"),
    (["--entry", "I-1", "--nationality", "GB", "--birth-date", "2030-01-01"], 2, "after the decision date"),
    (["--entry", "I-1", "--nationality", "GB", "--birth-date", "1990-01-01", "--setting", "bj.nope=1"], 2,
     "unknown policy setting"),
    (["--entry", "I-1", "--nationality", "GB", "--birth-date", "1990-01-01", "--setting",
      "bj.hkmotw.where_unclear=maybe"], 2, "bj.hkmotw.where_unclear"),
    (["--entry", "I-1", "--nationality", "GB", "--birth-date", "1990-01-01", "--years", "-1"], 2, "--years"),
])
def test_bad_input_is_one_clear_error(args: list[str], code: int, words: str) -> None:
    proc = run_mra(*BASE, *args)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert words in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_jurisdiction_is_refused() -> None:
    proc = run_mra("benefits", "check", "-j", "atlantis", "--employer-region", "beijing", "--entry", "I-1",
                   "--nationality", "GB", "--birth-date", "1990-01-01")
    assert proc.returncode == 3 and "atlantis" in proc.stderr and "Traceback" not in proc.stderr


def test_rules_lists_every_rule_with_its_clause() -> None:
    result = CliRunner().invoke(cli, ["benefits", "rules", "-j", "beijing", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rules = json.loads(result.output)
    assert len(rules) == 19
    assert all(r["jurisdiction"] == "beijing" and r["clause"].startswith("京人社事业发〔2025〕11号") for r in rules)
    by_code = {r["code"]: r for r in rules}
    assert by_code["bj.practice"]["clause"].endswith("三")
    text = CliRunner().invoke(cli, ["benefits", "rules", "-j", "beijing"], catch_exceptions=False).output
    assert all(code in text for code in by_code) and "一(二)4" in text


def test_settings_lists_the_open_questions() -> None:
    result = CliRunner().invoke(cli, ["benefits", "settings", "-j", "beijing", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    keys = {s["key"] for s in json.loads(result.output)}
    assert "bj.experience.range_upper_bound" in keys and "bj.before_effective" in keys
    text = CliRunner().invoke(cli, ["benefits", "settings"], catch_exceptions=False).output
    assert "why:" in text
