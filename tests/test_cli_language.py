"""The command line in Chinese and in English: LANG (LC_ALL, LC_MESSAGES, LANGUAGE as gettext reads them) picks
the language, --lang overrides it, --json keeps English codes; and holder show in both languages on the real
broker, with withdrawn decisions (when and why), history, Chinese benefit names, sorted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.facts import ended, holder_facts, publish
from support.signed import provisioned, signed

from mra.cli import cli
from mra.core.plugins import load_registry
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics

CHECK = ["benefits", "check", "-j", "beijing", "--entry", "I-139", "--nationality", "GB", "--birth-date",
         "1988-04-12", "--employer-region", "beijing", "--on", "2025-10-01"]  # fmt: skip


def run(*args: str, **env: str) -> tuple[int, str]:
    base = {"LANG": "", "LC_ALL": "", "LC_MESSAGES": "", "LANGUAGE": ""}
    result = CliRunner().invoke(cli, list(args), env=base | env)
    return result.exit_code, result.output


def test_lang_zh_cn_gives_chinese_help_and_c_gives_english() -> None:
    code, out = run("--help", LANG="zh_CN.UTF-8")
    assert code == 0 and "用法：" in out and "选项" in out and "命令" in out and "显示此帮助并退出。" in out
    code, out = run("verify", "--help", LANG="zh_CN.UTF-8")
    assert code == 0 and "核验" in out
    for env in ({"LANG": "C"}, {}, {"LANG": "zh_CN.UTF-8", "LC_ALL": "C"}, {"LANG": "zh_CN.UTF-8", "LANGUAGE": "en"}):
        code, out = run("--help", **env)
        assert code == 0 and "Usage:" in out and "Show this message and exit." in out, env
    code, out = run("--help", LANG="C", LC_MESSAGES="zh_CN.UTF-8")
    assert "用法：" in out


def test_lang_option_overrides_the_environment() -> None:
    assert "Usage:" in run("--lang", "en", "--help", LANG="zh_CN.UTF-8")[1]
    assert "用法：" in run("--lang", "zh_CN", "--help", LANG="C")[1]
    assert "用法：" in run("--lang=zh_CN", "verify", "--help")[1]
    code, out = run("--lang", "fr", "--help")
    assert code == 2 and "zh_CN" in out


def test_benefits_check_in_chinese_and_english_with_json_in_english_codes() -> None:
    code, zh = run(*CHECK, LANG="zh_CN.UTF-8")
    assert code == 0, zh
    assert "外籍人员" in zh and "符合 (" in zh and "有条件符合 (" in zh and "不符合 (" in zh and "仅供参考 (" in zh
    assert re.search(r"共 \d+ 项待遇", zh)
    code, en = run("--lang", "en", *CHECK, LANG="zh_CN.UTF-8")
    assert code == 0 and "ELIGIBLE (" in en and "foreign national" in en and re.search(r"\d+ benefits: ", en)
    code, raw = run(*CHECK, "--json", LANG="zh_CN.UTF-8")
    rows = json.loads(raw)
    assert {r["outcome"] for r in rows} <= {"eligible", "conditional", "advisory", "ineligible"}
    assert rows[0]["inputs"]["holder_category"] == "foreign"


def test_errors_in_chinese() -> None:
    env = dict(os.environ, LANG="zh_CN.UTF-8", LC_ALL="", LANGUAGE="")
    done = subprocess.run(
        [sys.executable, "-m", "mra.cli", "benefits", "check", "-j", "bejing"], capture_output=True, text=True, env=env,
        timeout=60,
    )
    assert done.returncode == 3 and done.stderr.startswith("错误：无法识别的辖区 'bejing'：您是否要找 beijing？")


@pytest.mark.broker
def test_holder_show_in_both_languages_with_withdrawals_and_history(
    tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str
) -> None:
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions), LANG="C")
    env.pop("LC_ALL", None)
    env.pop("LANGUAGE", None)

    state = provisioned(tmp_path)

    def mra(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, *args],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    intake = signed(kafka, topics, "test-intake")
    publish(intake, holder_facts("h-show1"))
    mra("bureau", "run", "-j", "beijing", "--until-idle")
    shown = json.loads(mra("holder", "show", "h-show1", "-j", "beijing", "--json"))
    order = {"eligible": 0, "conditional": 1, "advisory": 2, "ineligible": 3}
    keys = [(order[d["outcome"]], d["code"]) for d in shown["decisions"]]
    rules = len(load_registry().rules("beijing"))
    assert keys == sorted(keys) and len(keys) == rules
    permit = next(d for d in shown["decisions"] if d["code"] == "bj.work_permit")
    assert permit["name_zh"] == "外籍人员工作许可便利"

    publish(intake, [ended("h-show1", "beijing", on=date(2025, 11, 3))])
    mra("bureau", "run", "-j", "beijing", "--until-idle")
    after = json.loads(mra("holder", "show", "h-show1", "-j", "beijing", "--json"))
    assert after["decisions"] == [] and len(after["withdrawn"]) == rules
    assert {w["withdrawn_on"] for w in after["withdrawn"]} == {"2025-11-03"}
    assert [h["what"] for h in after["history"]] == ["certificate_verified", "employment_started", "employment_ended"]

    en = mra("holder", "show", "h-show1", "-j", "beijing")
    assert "(foreign national)" in en and f"withdrawn: {rules}" in en
    assert "bj.work_permit  Work permit" in en and "withdrawn on 2025-11-03 because" in en
    assert "history" in en and "employment ended  beijing (2025-11-03)" in en
    zh = mra("--lang", "zh_CN", "holder", "show", "h-show1", "-j", "beijing")
    assert "（外籍人员）" in zh and f"已撤回：{rules} 项" in zh
    assert "bj.work_permit  外籍人员工作许可便利  于 2025-11-03 撤回，原因：" in zh
    assert "历史" in zh and "就业结束  beijing (2025-11-03)" in zh
