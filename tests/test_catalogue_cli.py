"""``mra catalogue``: list, show and search, in JSON and text, and the errors a user sees."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mra.cli import cli
from mra.core.errors import NotFound

MRA = str(Path(sys.executable).with_name("mra"))
ENTRY_KEYS = {
    "id", "list", "seq", "name", "issuer_text", "issuers", "aliases", "country", "fields", "remark", "experience",
    "title_level", "title_words", "title_conditions", "provisions", "designates", "normalised", "source",
}


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def run_json(*args: str) -> Any:
    return json.loads(run(*args, "--json"))


def test_list_json_has_163_qualifications_and_7_designations() -> None:
    rows = run_json("catalogue", "list")
    assert len(rows) == 170
    assert Counter(r["list"] for r in rows) == {"I": 143, "U": 9, "O": 11, "M": 7}
    assert sum(1 for r in rows if r["designates"] is None) == 163
    assert all(r["designates"].startswith("BJ2025-I-") for r in rows if r["list"] == "M")
    assert all(r.keys() >= ENTRY_KEYS and r["jurisdiction"] == "beijing" for r in rows)
    assert len({r["id"] for r in rows}) == 170
    assert run_json("catalogue", "list", "-j", "beijing") == rows


def test_list_filters() -> None:
    urgent = run_json("catalogue", "list", "--list", "u")
    assert len(urgent) == 9 and {r["title_level"] for r in urgent} == {"deputy_senior"}
    finance_uk = run_json("catalogue", "list", "--field", "金融", "--country", "英国")
    assert finance_uk and all("金融" in r["fields"] and r["country"] == "英国" for r in finance_uk)
    assert "BJ2025-I-009" in {r["id"] for r in finance_uk}
    assert run_json("catalogue", "list", "--country", "巴西") == []  # a country with no row
    refused = CliRunner().invoke(cli, ["catalogue", "list", "--country", "火星"])
    assert "unknown country '火星'" in str(refused.exception)  # not a country: refused, not an empty list


def test_list_text_is_a_table() -> None:
    out = run("catalogue", "list")
    assert out.splitlines()[0].startswith("ID")
    assert "BJ2025-I-001  ACM 高级会员" in out
    assert out.rstrip().endswith("163 qualifications, 7 designations (→ the row designated).")
    assert "No catalogue rows match." in run("catalogue", "list", "--country", "巴西")


def test_search_acca_finds_exactly_the_rows_that_mention_it() -> None:
    found = {r["id"] for r in run_json("catalogue", "search", "ACCA")}
    assert {"BJ2025-I-139", "BJ2025-U-08", "BJ2025-M-03"} <= found
    mention = {
        r["id"]
        for r in run_json("catalogue", "list")
        if "acca" in " ".join([r["name"], r["issuer_text"], r["remark"], *r["aliases"]]).lower()
    }
    assert found == mention


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pmp", "BJ2025-I-047"),
        ("Society of Actuaries", "BJ2025-I-007"),
        ("北美精算师", "BJ2025-I-008"),
        ("RICS", "BJ2025-I-124"),
        ("ipa", "BJ2025-M-05"),
    ],
)
def test_search_by_name_issuer_or_abbreviation(text: str, expected: str) -> None:
    assert expected in {r["id"] for r in run_json("catalogue", "search", text)}


@pytest.mark.parametrize("ref", ["I-1", "I-001", "i1", "BJ2025-I-001"])
def test_show_accepts_short_forms(ref: str) -> None:
    row = run_json("catalogue", "show", ref)
    assert row["id"] == "BJ2025-I-001" and row["name"] == "ACM 高级会员"
    assert row["title_level"] == "intermediate"


def test_show_designation_and_text() -> None:
    row = run_json("catalogue", "show", "M-03")
    assert row["designates"] == "BJ2025-I-139"
    assert {p["code"] for p in row["provisions"]} >= {"mutual_recognition", "cn_cpa_course_exemption"}
    out = run("catalogue", "show", "M-03")
    assert "designates     BJ2025-I-139 ACCA 会计师证书" in out
    assert "京人社事业发〔2025〕11号 附件1 (四) 序号 3" in out
    assert "designated by  BJ2025-M-03" in run("catalogue", "show", "I-139")
    assert "1–4 years" in run("catalogue", "show", "I-137")


def test_unknown_id_is_a_clear_error() -> None:
    result = CliRunner().invoke(cli, ["catalogue", "show", "I-999"])
    assert isinstance(result.exception, NotFound) and "I-999" in str(result.exception)


def test_errors_through_the_installed_command() -> None:
    done = subprocess.run([MRA, "catalogue", "show", "Q-7"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == NotFound.exit_code
    assert done.stdout == ""
    assert done.stderr.startswith("Error: no catalogue entry 'Q-7'") and len(done.stderr.splitlines()) == 1
    assert "Traceback" not in done.stderr
    done = subprocess.run(
        [MRA, "catalogue", "list", "-j", "atlantis"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0 and "atlantis" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([MRA, "catalogue", "search", " "], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "empty" in done.stderr
    done = subprocess.run(
        [MRA, "catalogue", "list", "--list", "X"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and "--list" in done.stderr
