"""Clerks' reports: counting decisions by list, field, holder category and month, and the files written for people."""

from __future__ import annotations

import base64
import codecs
import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from openpyxl import load_workbook
from PIL import Image

from mra.core.errors import ValidationFailed
from mra.core.plugins import load_registry
from mra.services.report import DecisionRecord, aggregate, records_from_rows
from mra.services.report_files import chart_pngs, write_report

T = datetime(2025, 10, 9, 2, 0, tzinfo=UTC)
NOW = datetime(2026, 1, 5, 9, 30, 12, 345678, tzinfo=UTC)


def rec(n: int, outcome: str, *, holder: str = "h1", lst: str = "I", fields: tuple[str, ...] = ("金融",),
        category: str = "foreign", at: datetime = T, status: str = "active", jurisdiction: str = "beijing",
        ) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"d{n}", jurisdiction=jurisdiction, holder_id=holder, code=f"bj.rule{n}", outcome=outcome,
        status=status, entry_id=f"BJ2025-{lst}-001", decided_at=at, list=lst, list_name=f"清单{lst}",
        list_name_en=f"list {lst}", fields=fields, category=category,
    )


RECORDS = [
    rec(1, "eligible"),
    rec(2, "ineligible", status="withdrawn"),
    rec(3, "conditional", holder="h2", lst="U", fields=("会计", "金融"), category="mainland"),
    rec(4, "advisory", holder="h3", fields=(), category="", at=datetime(2025, 10, 31, 17, 0, tzinfo=UTC)),
    rec(5, "eligible", jurisdiction="tianjin"),
]


def test_decisions_are_counted_by_outcome_in_each_dimension_with_withdrawn_and_holders() -> None:
    r = aggregate(RECORDS, jurisdiction="beijing", jurisdiction_name="北京市")
    t = r.totals
    assert (t.total, t.withdrawn, t.holders) == (4, 1, 3)
    assert t.outcomes == {"eligible": 1, "conditional": 1, "advisory": 1, "ineligible": 1}
    by = {d: {row.key: row for row in rows} for d, rows in r.tables.items()}
    assert {k: v.total for k, v in by["list"].items()} == {"I": 3, "U": 1}
    assert by["list"]["I"].label == "I 清单I" and by["list"]["I"].withdrawn == 1
    # a decision counts under each field of its row; one without fields under 未注明
    assert {k: v.total for k, v in by["field"].items()} == {"会计": 1, "金融": 3, "": 1}
    assert by["field"][""].label == "未注明"
    assert {k: (v.label, v.total) for k, v in by["category"].items()} == {
        "foreign": ("外籍人员", 2), "mainland": ("内地居民", 1), "": ("未注明", 1)}
    # 2025-10-31 17:00 UTC is 1 November in China Standard Time
    assert {k: v.total for k, v in by["month"].items()} == {"2025-10": 3, "2025-11": 1}
    for d in ("list", "category", "month"):
        assert sum(row.total for row in r.tables[d]) == t.total
    assert [row.key for row in r.tables["field"]] == ["会计", "金融", ""]  # not stated last


def test_the_period_is_counted_in_china_standard_time_both_days_included() -> None:
    r = aggregate(RECORDS, jurisdiction="beijing", start=date(2025, 11, 1), until=date(2025, 11, 1))
    assert r.totals.total == 1 and r.records[0].decision_id == "d4"
    assert aggregate(RECORDS, jurisdiction="beijing", until=date(2025, 10, 31)).totals.total == 3
    assert aggregate(RECORDS, jurisdiction="hebei").totals.total == 0
    with pytest.raises(ValidationFailed, match="after"):
        aggregate(RECORDS, jurisdiction="beijing", start=date(2025, 11, 2), until=date(2025, 11, 1))


def test_english_labels() -> None:
    r = aggregate(RECORDS, jurisdiction="beijing", lang="en")
    assert r.tables["list"][0].label == "I list I" and r.totals.label == "total"
    assert {row.label for row in r.tables["category"]} == {"foreign national", "mainland resident", "not stated"}


def test_records_take_list_and_fields_from_the_catalogue_and_the_category_from_the_holder() -> None:
    registry = load_registry()
    rows = [
        {"decision_id": "a", "jurisdiction": "tianjin", "holder_id": "h1", "code": "tj.jjj_recognition",
         "outcome": "eligible", "status": "active", "entry_id": "BJ2025-I-139", "decided_at": "2025-11-03T01:00:00Z",
         "inputs": {"employer_region": "tianjin"}},
        {"decision_id": "b", "jurisdiction": "beijing", "holder_id": "h2", "code": "bj.work_permit",
         "outcome": "ineligible", "status": "withdrawn", "entry_id": "XX-Q-7", "decided_at": "2025-11-03T01:00:00Z",
         "inputs": {"holder_category": "hkmotw", "list": "Q"}},
    ]

    def find(entry_id: str):  # type: ignore[no-untyped-def]
        try:
            return registry.find_entry(entry_id)
        except Exception:
            return None

    a, b = records_from_rows(rows, find=find, categories={"h1": "foreign"})
    assert (a.list, a.list_name, a.category) == ("I", "国际职业资格清单", "foreign")
    assert a.fields == registry.find_entry("BJ2025-I-139")[1].fields and a.fields
    assert (b.list, b.fields, b.category, b.status) == ("Q", (), "hkmotw", "withdrawn")


# --- files ----------------------------------------------------------------------------------------------------------


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(int)


def non_blank(png: bytes) -> float:
    """The share of pixels that are not the background colour (the most common one)."""
    px = pixels(png)
    colours, counts = np.unique(px, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float((px != background).any(axis=1).mean())


def coloured(png: bytes) -> int:
    """Pixels of a saturated colour (the bars), not grey text or axes."""
    px = pixels(png)
    return int(((px.max(axis=1) - px.min(axis=1)) > 60).sum())


def test_files_in_every_format_carry_the_same_totals(tmp_path: Path) -> None:
    r = aggregate(RECORDS, jurisdiction="beijing", jurisdiction_name="北京市")
    src = "t.benefits, t.holders"
    assert write_report(r, tmp_path / "r.csv", generated=NOW, source=src) == "csv"
    raw = (tmp_path / "r.csv").read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == ["维度", "项目", "符合", "有条件符合", "仅供参考", "不符合", "合计", "其中已撤回", "持证人数"]
    assert table[1] == ["合计", "合计", "1", "1", "1", "1", "4", "1", "3"]
    assert ["月份", "2025-11", "0", "0", "1", "0", "1", "0", "1"] in table

    write_report(r, tmp_path / "r.xlsx", generated=NOW, source=src)
    wb = load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["总览", "清单", "领域", "持证人类别", "月份", "决定明细"]
    ws = wb["清单"]
    header = ["清单", "符合", "有条件符合", "仅供参考", "不符合", "合计", "其中已撤回", "持证人数"]
    assert [c.value for c in ws[1]] == header
    assert [c.value for c in ws[ws.max_row]] == ["合计", 1, 1, 1, 1, 4, 1, 3]
    assert len(ws._charts) == 1
    assert wb["决定明细"].max_row == 5 and wb["决定明细"]["J2"].value == "2025-10-09T10:00:00+08:00"
    summary = {row[0].value: row[1].value for row in wb["总览"].iter_rows(min_row=2, max_row=7)}
    assert summary["决定数"] == 4 and summary["生成时间"] == "2026-01-05T17:30:12+08:00"

    with pytest.raises(ValidationFailed, match=r"\.xlsx"):
        write_report(r, tmp_path / "r.docx", generated=NOW, source=src)


def test_charts_are_drawn_in_chinese_and_not_blank() -> None:
    r = aggregate(RECORDS, jurisdiction="beijing")
    pngs = chart_pngs(r)
    assert set(pngs) == {"list", "field", "category", "month"}
    assert "CJK" in matplotlib.rcParams["font.family"][0]  # a font with Chinese glyphs, not boxes
    for png in pngs.values():
        assert png.startswith(b"\x89PNG") and non_blank(png) > 0.02 and coloured(png) > 500
    empty = chart_pngs(aggregate([], jurisdiction="beijing"))["list"]
    assert coloured(empty) < coloured(pngs["list"])


def test_pdf_and_html_say_what_the_tables_say(tmp_path: Path) -> None:
    r = aggregate(RECORDS, jurisdiction="beijing", jurisdiction_name="北京市")
    write_report(r, tmp_path / "r.pdf", generated=NOW, source="src")
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "北京市职业资格认可待遇决定统计" in text and "持证人类别" in text and "港澳台" not in text
    assert "决定数: 4" in text and "外籍人员" in text and "2025-11" in text
    write_report(r, tmp_path / "r.html", generated=NOW, source="src")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and page.count("data:image/png;base64,") == 4
    assert "<td>外籍人员</td>" in page and '<th class="n">4</th>' in page


def test_english_files(tmp_path: Path) -> None:
    r = aggregate(RECORDS, jurisdiction="beijing", jurisdiction_name="Beijing", lang="en")
    write_report(r, tmp_path / "r.csv", lang="en", generated=NOW, source="src")
    head = (tmp_path / "r.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert head == "counted by,item,eligible,conditional,advisory,ineligible,total,of which withdrawn,holders"


@pytest.mark.broker
def test_a_report_of_the_demos_log(tmp_path: Path, bootstrap: str) -> None:
    from mra.core.models import BenefitDecision
    from mra.events.benefits import decided_in
    from mra.events.envelope import decode
    from mra.events.kafka import KafkaTransport
    from mra.events.topics import Topics
    from mra.services.audit import read_log

    state = tmp_path / "state"
    base = [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap]
    demo = subprocess.run([*base, "demo", "--json"], capture_output=True, text=True, timeout=180)
    assert demo.returncode == 0, demo.stderr
    prefix = json.loads(demo.stdout)["topic_prefix"]

    # what the log says, counted here from the events themselves
    transport = KafkaTransport(bootstrap, client_id="mra-test")
    decided: dict[str, BenefitDecision] = {}
    try:
        for record in read_log(transport, [Topics(prefix).name("benefits")], timeout=60):
            data = decode(record).data
            for d in decided_in(data):
                if d.jurisdiction == "beijing":
                    decided[d.decision_id] = d
    finally:
        transport.close()
    outcomes = [d.outcome.value for d in decided.values()]
    expected = [outcomes.count(o) for o in ("eligible", "conditional", "advisory", "ineligible")]
    holders = len({d.holder_id for d in decided.values()})
    assert len(decided) > 10 and holders == 3

    env = dict(os.environ, MRA_TOPIC_PREFIX=prefix)

    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, "report", "-j", "beijing", *args], capture_output=True, text=True, env=env,
                              timeout=180)

    out = report("--to", str(tmp_path / "r.xlsx"), "--json")
    assert out.returncode == 0, out.stderr
    totals = json.loads(out.stdout)["totals"]
    assert [totals[o] for o in ("eligible", "conditional", "advisory", "ineligible")] == expected

    wb = load_workbook(tmp_path / "r.xlsx")
    summary = {row[0].value: row[1].value for row in wb["总览"].iter_rows(min_row=2, max_row=7)}
    assert summary["决定数"] == len(decided) and summary["持证人数"] == holders
    for sheet in ("清单", "持证人类别", "月份"):
        ws = wb[sheet]
        body = list(ws.iter_rows(min_row=2, max_row=ws.max_row - 1, values_only=True))
        assert [c.value for c in ws[ws.max_row]] == ["合计", *expected, len(decided), totals["withdrawn"], holders]
        assert sum(row[5] for row in body) == len(decided)  # each decision once in these dimensions
    categories = {row[0] for row in wb["持证人类别"].iter_rows(min_row=2, values_only=True)}
    assert {"外籍人员", "港澳台居民", "内地居民"} <= categories
    assert wb["决定明细"].max_row == len(decided) + 1

    assert report("--to", str(tmp_path / "r.html")).returncode == 0
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "北京市职业资格认可待遇决定统计" in page and f'<th class="n">{len(decided)}</th>' in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    for b64 in images:
        png = base64.b64decode(b64)
        assert non_blank(png) > 0.02 and coloured(png) > 500

    assert report("--to", str(tmp_path / "r.pdf")).returncode == 0
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert f"决定数: {len(decided)}" in text and f"持证人数: {holders}" in text
    line = next(x for x in text.splitlines() if x.split()[:1] == ["合计"])
    assert line.split()[1:] == [str(n) for n in [*expected, len(decided), totals["withdrawn"], holders]]

    assert report("--to", str(tmp_path / "r.csv")).returncode == 0
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8-sig"))))
    assert rows[1][2:7] == [str(n) for n in [*expected, len(decided)]]

    english = report("--to", str(tmp_path / "en.csv"), "--lang", "en")
    assert english.returncode == 0 and f"{len(decided)} decisions" in english.stdout
    en_rows = list(csv.reader(io.StringIO((tmp_path / "en.csv").read_text(encoding="utf-8-sig"))))
    assert en_rows[0][:3] == ["counted by", "item", "eligible"] and en_rows[1][2:7] == rows[1][2:7]
    for lang, said, header in (("en", f"{len(decided)} decisions", "counted by"), ("zh_CN", "已将", "维度")):
        out = subprocess.run([*base, "--lang", lang, "report", "-j", "beijing", "--to", str(tmp_path / "g.csv")],
                             capture_output=True, text=True, env=env, timeout=180)
        assert out.returncode == 0 and said in out.stdout, out.stderr
        assert (tmp_path / "g.csv").read_text(encoding="utf-8-sig").startswith(header)

    later = report("--from", "2026-01-01", "--to", str(tmp_path / "none.csv"), "--json")
    assert later.returncode == 0 and json.loads(later.stdout)["totals"]["total"] == 0
    bad = report("--to", str(tmp_path / "r.docx"))
    assert bad.returncode == 2 and ".xlsx" in bad.stderr and "Traceback" not in bad.stderr
    unknown = report("--to", str(tmp_path / "r.csv"), "-j", "shanghai")
    assert unknown.returncode == 3 and "Traceback" not in unknown.stderr


def test_without_the_report_extra_the_message_says_what_to_install(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from mra.core.errors import MraError

    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as if not installed
    r = aggregate(RECORDS, jurisdiction="beijing")
    with pytest.raises(MraError, match=r"mra\[report\]"):
        write_report(r, tmp_path / "r.xlsx", generated=NOW, source="src")
    assert not (tmp_path / "r.xlsx").exists()
