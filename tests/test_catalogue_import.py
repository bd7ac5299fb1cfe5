"""``mra catalogue import``: a bureau's own catalogue from a spreadsheet export, validated, published as an event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.schemas import CatalogueEditionPublished
from mra.events.topics import Topics

HEADER = "id,list,seq,name,issuer_text,country,fields,remark,issuers,aliases,designates\n"
ROWS = (
    "TJ20-A-01,A,1,示例资格甲,示例协会 Example Society,英国,金融,从事2年以上金融相关工作。,"
    "示例协会|Example Society,EXS,\n"
    "TJ20-A-02,A,2,示例资格乙,示例学会,美国,工程、建筑,从事工程相关工作。,示例学会|,,\n"
)
ARGS = ["--edition", "2.0", "--effective", "2024-08-01", "--document", "天津市境外职业资格认可目录(2.0版)"]


def _mra(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mra.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def test_a_valid_file_validates_with_its_rows_and_derived_fields(tmp_path: Path) -> None:
    f = tmp_path / "tj.csv"
    f.write_text(HEADER + ROWS, encoding="utf-8")
    result = _mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {
        "jurisdiction": "tianjin",
        "catalogue": "tianjin-own",
        "edition": "2.0",
        "entries": 2,
        "lists": {"A": 2},
        "published": False,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + ROWS.replace("TJ20-A-02,A,2", "TJ20-A-03,A,2"), "id should be TJ20-A-02"),
        ("name,remark\nx,y\n", "no id and list columns"),
        (HEADER + ROWS.replace(",1,示例资格甲", ",one,示例资格甲"), "seq must be a positive number"),
        (HEADER, "no rows"),
        (HEADER + ROWS + "short\n", "line 4: no list"),
        (HEADER + ROWS + ",A\n", "line 4: no id"),
    ],
)
def test_a_broken_file_is_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content, encoding="utf-8")
    result = _mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--dry-run")
    assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_jurisdiction_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "tj.csv"
    f.write_text(HEADER + ROWS, encoding="utf-8")
    result = _mra("catalogue", "import", str(f), "-j", "shanghai", *ARGS, "--dry-run")
    assert result.returncode != 0 and "unknown jurisdiction 'shanghai'" in result.stderr


@pytest.mark.broker
def test_the_edition_is_published_once_on_the_catalogue_topic(
    tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str
) -> None:
    f = tmp_path / "tj.csv"
    f.write_text(HEADER + ROWS, encoding="utf-8")
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))
    for _ in range(2):  # importing the same file again is the same event
        result = _mra(
            "--state-dir",
            str(tmp_path / "s"),
            "--bootstrap",
            bootstrap,
            "catalogue",
            "import",
            str(f),
            "-j",
            "tianjin",
            *ARGS,
            "--json",
            env=env,
        )
        assert result.returncode == 0, result.stderr
    reader = kafka.reader([topics.name("catalogue")])
    records = []
    for _ in range(6):
        records += reader.poll(300, 100)
    reader.close()
    events = [decode(r) for r in records]
    assert len({e.id for e in events}) == 1 and len(events) == 2
    data = events[0].data
    assert isinstance(data, CatalogueEditionPublished)
    assert [e.id for e in data.edition.entries] == ["TJ20-A-01", "TJ20-A-02"]
    assert data.edition.entries[0].experience[0].years == 2
    assert data.edition.entries[1].fields == ("工程", "建筑")
