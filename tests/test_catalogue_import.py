"""``mra catalogue import``: a bureau's own catalogue from a spreadsheet export, validated, published as an event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from support.signed import provisioned

from mra.core.errors import MraError
from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.schemas import CatalogueEditionPublished
from mra.events.topics import Topics
from mra.services.catalogues import canonical_id, edition_from_csv, imported_editions, read_csv_text, save_imported

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
        "encoding": "utf-8",
        "entries": 2,
        "lists": {"A": 2},
        "first": "TJ20-A-001",
        "last": "TJ20-A-002",
        "published": False,
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (HEADER + ROWS.replace("TJ20-A-02,A,2", "TJ20-A-03,A,2"), "id should be TJ20-A-002"),
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
            str(provisioned(tmp_path / "s")),
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
    assert [e.id for e in data.edition.entries] == ["TJ20-A-001", "TJ20-A-002"]
    assert data.edition.entries[0].experience[0].years == 2
    assert data.edition.entries[1].fields == ("工程", "建筑")


# --- ids, encodings --------------------------------------------------------------------------------------------


def rows(n: int, width: int) -> str:
    return HEADER + "".join(
        f"TJ24-B-{i:0{width}d},B,{i},资格{i},协会{i},英国,金融,,协会{i}|,,\n" for i in range(1, n + 1)
    )


@pytest.mark.parametrize(("n", "width"), [(2, 1), (2, 2), (2, 3), (120, 2), (120, 3)])
def test_ids_have_three_digits_whatever_the_row_count_and_the_files_padding(tmp_path: Path, n: int, width: int) -> None:
    f = tmp_path / "tj.csv"
    f.write_text(rows(n, width), encoding="utf-8")
    result = _mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["first"], out["last"]) == ("TJ24-B-001", f"TJ24-B-{n:03d}")


def test_the_id_rule() -> None:
    assert canonical_id("TJ2024-A-1") == canonical_id("TJ2024-A-0001") == "TJ2024-A-001"
    assert canonical_id("TJ2024-A-1000") == "TJ2024-A-1000" and canonical_id("oops") == "oops"
    designating = rows(2, 1) + "TJ24-M-1,M,1,互认,协会1,英国,金融,,协会1|,,TJ24-B-2\n"
    edition = edition_from_csv(designating, "tianjin", "1", date(2024, 1, 1), "doc")
    assert [e.id for e in edition.entries] == ["TJ24-B-001", "TJ24-B-002", "TJ24-M-001"]
    assert edition.entries[2].designates == "TJ24-B-002"  # references are read by the same rule


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8-sig", "utf-8"])
def test_excel_encodings_are_read(tmp_path: Path, encoding: str) -> None:
    text = HEADER + ROWS
    if encoding == "gb18030":
        text = text.replace("示例资格乙", "示例资格乙𠀀")  # outside GBK: four bytes in GB18030
    f = tmp_path / "tj.csv"
    f.write_bytes(text.encode(encoding))
    read, used = read_csv_text(f)
    assert read == text and used == ("utf-8" if encoding.startswith("utf-8") else "gb18030")
    result = _mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["encoding"] == used
    names = [e.name for e in edition_from_csv(read, "tianjin", "2.0", date(2024, 8, 1), "doc").entries]
    assert names[0] == "示例资格甲" and names[1].startswith("示例资格乙")


@pytest.mark.parametrize(
    "content",
    [(HEADER + ROWS).encode("utf-16"), b"id,list\n\xff\xfe\xfd,\x80\n"],
)
def test_other_encodings_are_refused_with_save_as_utf8(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "tj.csv"
    f.write_bytes(content)
    result = _mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--dry-run")
    assert result.returncode == 2 and "save it as UTF-8" in result.stderr and "Traceback" not in result.stderr


# --- the imported rows are known -------------------------------------------------------------------------------


def test_the_latest_imported_edition_of_a_catalogue_is_read(tmp_path: Path) -> None:
    old = edition_from_csv(HEADER + ROWS, "tianjin", "1.0", date(2023, 1, 1), "doc")
    new = edition_from_csv(HEADER + ROWS.split("\n")[0] + "\n", "tianjin", "2.0", date(2024, 8, 1), "doc")
    other = edition_from_csv(HEADER + ROWS, "hebei", "1.0", date(2023, 1, 1), "doc")
    for e in (new, old, other):
        save_imported(tmp_path, e)
    assert [e.edition for e in imported_editions(tmp_path, "tianjin")] == ["2.0"]
    assert {e.jurisdiction for e in imported_editions(tmp_path)} == {"tianjin", "hebei"}
    assert imported_editions(tmp_path / "nothing") == []
    (tmp_path / "catalogues" / "hebei" / "hebei-own@1.0.json").write_text("{", encoding="utf-8")
    with pytest.raises(MraError, match="import it again"):
        imported_editions(tmp_path)


@pytest.mark.broker
def test_imported_rows_are_known_to_every_catalogue_command_and_to_benefits_check(
    tmp_path: Path, topics: Topics, bootstrap: str
) -> None:
    f = tmp_path / "tj.csv"
    f.write_bytes((HEADER + ROWS.replace("TJ20-A-01", "TJ20-A-1")).encode("gbk"))
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))
    state = ["--state-dir", str(provisioned(tmp_path / "s")), "--bootstrap", bootstrap]

    def mra(*args: str) -> subprocess.CompletedProcess[str]:
        return _mra(*state, *args, env=env)

    before = mra("catalogue", "list", "-j", "tianjin")
    assert before.returncode == 3 and "no catalogue" in before.stderr
    assert mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--dry-run").returncode == 0
    assert mra("catalogue", "list", "-j", "tianjin").returncode == 3  # a dry run keeps nothing
    imported = mra("catalogue", "import", str(f), "-j", "tianjin", *ARGS, "--json")
    assert imported.returncode == 0, imported.stderr

    listed = mra("catalogue", "list", "-j", "tianjin", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["id"], r["name"], r["edition"]) for r in json.loads(listed.stdout)] == [
        ("TJ20-A-001", "示例资格甲", "2.0"), ("TJ20-A-002", "示例资格乙", "2.0")]
    assert "TJ20-A-001" in mra("catalogue", "list", "--field", "金融").stdout  # every jurisdiction's rows
    for ref in ("TJ20-A-001", "TJ20-A-1", "A-1"):
        shown = mra("catalogue", "show", ref, "-j", "tianjin", "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == "TJ20-A-001", shown.stderr
    found = mra("catalogue", "search", "Example Society", "--json")
    assert [r["id"] for r in json.loads(found.stdout)] == ["TJ20-A-001"]
    checked = mra("benefits", "check", "-j", "tianjin", "--entry", "TJ20-A-002", "--nationality", "GB",
                  "--birth-date", "1980-01-01", "--employer-region", "tianjin", "--json")
    assert checked.returncode == 0, checked.stderr
    decisions = json.loads(checked.stdout)
    assert decisions and {d["entry_id"] for d in decisions} == {"TJ20-A-002"}
    assert {d["code"] for d in decisions} == {"tj.jjj_recognition"}
    elsewhere = mra("benefits", "check", "-j", "hebei", "--entry", "TJ20-A-002", "--nationality", "GB",
                    "--birth-date", "1980-01-01", "--employer-region", "hebei")
    assert elsewhere.returncode == 3 and "unknown catalogue entry" in elsewhere.stderr  # Tianjin's own, not Hebei's
