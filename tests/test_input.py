"""Names people type: jurisdictions and regions by code, Chinese name or abbreviation; nationalities by ISO code
or country name; anything else refused with the closest names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mra.cli import cli
from mra.commands._input import resolve_jurisdiction, resolve_nationality, resolve_region
from mra.core.errors import NotFound, ValidationFailed
from mra.i18n.places import country_name
from mra.services.platform.request import RequestIn

ROOT = Path(__file__).resolve().parents[1]
CHECK = ["benefits", "check", "--entry", "I-139", "--birth-date", "1988-04-12", "--on", "2025-10-01"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("beijing", "beijing"),
        ("Beijing", "beijing"),
        ("北京", "beijing"),
        ("北京市", "beijing"),
        ("京", "beijing"),
        ("peking", "beijing"),
        ("津", "tianjin"),
        ("天津市", "tianjin"),
        ("冀", "hebei"),
        ("河北", "hebei"),
        (" hebei ", "hebei"),
    ],
)
def test_jurisdictions_by_code_chinese_name_or_abbreviation(text: str, code: str) -> None:
    assert resolve_jurisdiction(text) == code
    assert resolve_region(text) == code


def test_an_unknown_jurisdiction_names_the_closest() -> None:
    with pytest.raises(NotFound, match=r"unknown jurisdiction 'bejing': did you mean beijing\?"):
        resolve_jurisdiction("bejing")
    with pytest.raises(NotFound, match=r"unknown jurisdiction 'shanghai' \(known: beijing \(北京市, 京\)"):
        resolve_jurisdiction("shanghai")
    with pytest.raises(ValidationFailed, match="did you mean tianjin"):
        resolve_region("tianjn")


@pytest.mark.parametrize(
    ("text", "code"),
    [("GB", "GB"), ("gb", "GB"), ("GBR", "GB"), ("英国", "GB"), ("United Kingdom", "GB"), ("香港", "HK"),
     ("中国香港特别行政区", "HK"), ("澳门", "MO"), ("台湾", "TW"), ("中国", "CN"), ("CHN", "CN"), ("日本", "JP"),
     ("DE", "DE")],
)
def test_nationalities_by_iso_code_or_country_name(text: str, code: str) -> None:
    assert resolve_nationality(text) == code


@pytest.mark.parametrize(
    ("text", "hint"),
    [("UK", "did you mean GB (英国, United Kingdom)?"), ("XX", "ISO 3166"), ("Frnace", "did you mean FR"),
     ("EU", "ISO 3166"), ("ZZ", "ISO 3166")],
)
def test_unknown_nationalities_are_refused(text: str, hint: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        resolve_nationality(text)
    assert hint in str(e.value)


def test_country_names_in_both_languages() -> None:
    assert (country_name("GB", "zh_CN"), country_name("GB", "en")) == ("英国", "United Kingdom")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"LANG": "C", "LC_ALL": "", "LANGUAGE": ""})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_benefits_check_reads_chinese_names_as_codes() -> None:
    code, out = run(*CHECK, "-j", "北京", "--nationality", "英国", "--employer-region", "京", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert rows[0]["inputs"]["holder_category"] == "foreign"
    assert {r["jurisdiction"] for r in rows} == {"beijing"}
    assert sum(r["outcome"] == "eligible" for r in rows) >= 1  # beijing the region: not 18 × ineligible


@pytest.mark.parametrize(
    ("args", "exit_code", "words"),
    [
        (["-j", "beijing", "--nationality", "GB", "--employer-region", "peking"], 0, ""),
        (["-j", "beijing", "--nationality", "GB", "--employer-region", "bejing"], 2, "did you mean beijing"),
        (["-j", "beijing", "--nationality", "UK", "--employer-region", "beijing"], 2, "did you mean GB"),
        (["-j", "beijing", "--nationality", "XX", "--employer-region", "beijing"], 2, "unknown nationality 'XX'"),
        (["-j", "bejing", "--nationality", "GB", "--employer-region", "beijing"], 3, "did you mean beijing"),
    ],
)
def test_benefits_check_refuses_typos_with_a_suggestion(args: list[str], exit_code: int, words: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mra.cli", *CHECK, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
    )
    assert proc.returncode == exit_code, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_a_request_names_nationality_and_region_in_chinese() -> None:
    raw = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))
    raw["holder"]["nationality"] = "英国"
    raw["employer"]["region"] = "北京"
    request = RequestIn.model_validate(raw)
    assert (request.holder.nationality, request.employer.region) == ("GB", "beijing")
    raw["holder"]["nationality"] = "UK"
    assert RequestIn.model_validate(raw).holder.nationality == "UK"  # kept for the review to refuse


def _catalogue(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["catalogue", "list", "-j", "beijing", *args], env={"LANG": "C"})
    if isinstance(result.exception, ValidationFailed):  # mra.cli.main prints it and exits with its code
        return result.exception.exit_code, str(result.exception)
    return result.exit_code, result.output


def test_catalogue_list_reads_fields_and_countries_in_english_or_chinese() -> None:
    def ids(*args: str) -> set[str]:
        code, out = _catalogue(*args, "--json")
        assert code == 0, out
        return {row["id"] for row in json.loads(out)}

    assert ids("--field", "finance") == ids("--field", "金融") != set()
    assert ids("--country", "GB") == ids("--country", "United Kingdom") == ids("--country", "英国") != set()
    assert ids("--country", "HK") == ids("--country", "中国香港") != set()
    assert ids("--country", "BR") == set()  # a country with no row: nothing listed, not an error
    code, out = _catalogue("--country", "UK")
    assert code == 2 and "did you mean 英国?" in out
    code, out = _catalogue("--field", "financ")
    assert code == 2 and "did you mean 金融?" in out
