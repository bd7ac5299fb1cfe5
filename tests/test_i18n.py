"""The message catalogue: language choice for the command line and the web, translation, completeness."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mra.i18n import cli_language, negotiate, normalize, translator
from mra.i18n.terms import category_label, outcome_label
from mra.i18n.tools import PACKAGE_ROOT, _source_messages, missing

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "en"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_TW.UTF-8"}, "zh_CN"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "en_US.UTF-8", "LC_ALL": "zh_CN.GB18030"}, "zh_CN"),
        ({"LC_ALL": "C", "LANG": "zh_CN.UTF-8"}, "en"),
        # LANGUAGE is a priority list that comes first, except when the locale is C (as GNU gettext does)
        ({"LANG": "en_US.UTF-8", "LANGUAGE": "zh_CN:en"}, "zh_CN"),
        ({"LANG": "zh_CN.UTF-8", "LANGUAGE": "en"}, "en"),
        ({"LANG": "en_US.UTF-8", "LANGUAGE": "fr:zh"}, "zh_CN"),
        ({"LANG": "C", "LANGUAGE": "zh_CN"}, "en"),
        ({"LANGUAGE": "zh_CN"}, "en"),
    ],
)
def test_the_command_line_language_comes_from_the_environment_as_gettext_reads_it(
    env: dict[str, str], expected: str
) -> None:
    assert cli_language(environ=env) == expected


def test_an_explicit_language_overrides_the_environment() -> None:
    assert cli_language("en", environ={"LC_ALL": "zh_CN.UTF-8"}) == "en"
    assert cli_language("zh_CN", environ={"LANG": "C"}) == "zh_CN"
    assert cli_language("zh-CN", environ={}) == "zh_CN"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,zh;q=0.5", "zh_CN"),
        ("en;q=0.4, zh-Hans;q=0.7", "zh_CN"),
        ("de, fr", "en"),
        ("zh;q=0, en", "en"),
        ("*", "en"),
        ("zh-TW", "zh_CN"),
        ("zh-CN;q=abc, en;q=0.1", "en"),
    ],
)
def test_the_web_language_is_negotiated_from_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_normalize_reads_locale_names_and_language_tags() -> None:
    assert normalize("zh_CN.UTF-8@pinyin") == "zh_CN"
    assert normalize("en_GB") == "en"
    assert normalize("C.UTF-8") is None
    assert normalize("ja_JP") is None


def test_outcomes_and_categories_read_in_chinese_and_english() -> None:
    assert [outcome_label(c, "zh_CN") for c in ("eligible", "conditional", "ineligible", "advisory")] == [
        "符合",
        "有条件符合",
        "不符合",
        "仅供参考",
    ]
    assert outcome_label("eligible", "en") == "eligible"
    assert category_label("foreign", "zh_CN") == "外籍人员"
    assert category_label("hkmotw", "zh_CN") == "港澳台居民"
    assert outcome_label("unheard-of", "zh_CN") == "unheard-of"


def test_a_message_missing_from_a_catalogue_prints_in_english() -> None:
    assert translator("zh_CN")("a sentence nobody translated") == "a sentence nobody translated"
    assert translator("xx")("eligible") == "eligible"


def test_the_catalogue_works_without_any_system_locale() -> None:
    """In a process with LANG=C and no locale data, --lang zh_CN still translates: nothing asks the OS."""
    code = "from mra.i18n import translator; print(translator('zh_CN')('eligible'))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"LANG": "C", "LC_ALL": "C", "PATH": "/usr/bin:/bin", "LOCPATH": "/nonexistent"},
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode("utf-8").strip() == "符合"


def test_every_message_marked_in_the_code_is_translated() -> None:
    """Strings marked with _() or N_() in the command line, the core and the services have a Chinese text."""
    marked = {
        m
        for m, where in _source_messages()
        if where.split("/", 1)[0] in ("commands", "core", "services", "i18n") or where.startswith("cli.py")
    }
    gaps = sorted(marked & set(missing("zh_CN")))
    assert gaps == [], f"untranslated (run python -m mra.i18n update, then translate): {gaps}"
    assert PACKAGE_ROOT == ROOT


@pytest.mark.timeout(600)
def test_the_catalogues_ship_in_the_wheel(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = tmp_path.glob("mra-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mra/i18n/__init__.py" in names
    assert "mra/i18n/locale/zh_CN/LC_MESSAGES/mra.po" in names
    assert "mra/i18n/locale/en/LC_MESSAGES/mra.po" in names
