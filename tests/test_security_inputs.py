"""Hostile input at the edges, with no broker: every one refused with a reason, none with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from mra.core.limits import json_too_large
from mra.events.bus import InMemoryTransport
from mra.events.envelope import DecodeError, Record, decode, encode
from mra.events.publisher import Publisher
from mra.events.schemas import EmploymentEnded
from mra.events.topics import Topics
from mra.services.platform.request import RequestIn

ROOT = Path(__file__).resolve().parents[1]
REQUEST = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))


def submit(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp / "request.json"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    return subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(tmp / "state"), "verify", "submit", "--file", str(path)],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def test_a_request_nested_100000_deep_is_refused_in_one_line(tmp_path: Path) -> None:
    done = submit(tmp_path, "[" * 100_000 + "]" * 100_000)
    assert done.returncode != 0 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "more than the 65536" in done.stderr
    small = submit(tmp_path, "[" * 30_000 + "]" * 30_000)  # under the size limit, still far too deep
    assert small.returncode != 0 and "Traceback" not in small.stderr and "nested more than 32 deep" in small.stderr


def test_a_request_with_a_5_mb_name_is_refused(tmp_path: Path) -> None:
    raw = json.loads(json.dumps(REQUEST))
    raw["holder"]["name"] = "X" * 5_000_000
    done = submit(tmp_path, json.dumps(raw))
    assert done.returncode != 0 and "Traceback" not in done.stderr and "more than the 65536" in done.stderr
    raw["holder"]["name"] = "X" * 201  # small enough to read, too long to be a name
    with pytest.raises(ValueError, match="at most 200 characters"):
        RequestIn.model_validate(raw)


def test_the_nesting_check_reads_brackets_in_strings_as_text() -> None:
    assert json_too_large(json.dumps({"a": "[" * 1000})) is None
    assert json_too_large('{"a": "\\"' + "[" * 40 + '"}') is None
    assert json_too_large("[" * 33 + "]" * 33) == "nested more than 32 deep"


def _message() -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    pub = Publisher(InMemoryTransport(), Topics("i.", 1), "intake")
    return encode(pub.envelope(EmploymentEnded(holder_id="h1", jurisdiction="beijing", ended=date(2025, 1, 1))))


@pytest.mark.parametrize("name", ["ce_id", "ce_type", "ce_source", "ce_mrapublisher", "ce_time"])
def test_a_repeated_ce_header_is_a_decode_error_whichever_copy_a_reader_would_take(name: str) -> None:
    key, value, headers = _message()
    original = dict(headers)[name]
    for extra in (original, original + b"-other"):
        with pytest.raises(DecodeError, match=f"header {name} appears more than once"):
            decode(Record("i.holders", 0, 0, key, value, (*headers, (name, extra))))


@pytest.mark.parametrize("name", ["ce_id", "ce_source", "ce_type", "ce_time", "ce_subject", "ce_mrapublisher"])
def test_an_empty_ce_attribute_is_a_decode_error(name: str) -> None:
    key, value, headers = _message()
    emptied = tuple((k, b"" if k == name else v) for k, v in headers)
    with pytest.raises(DecodeError, match=f"header {name} is empty"):
        decode(Record("i.holders", 0, 0, key, value, emptied))


def test_a_malformed_extension_name_or_a_negative_seq_is_a_decode_error() -> None:
    key, value, headers = _message()
    with pytest.raises(DecodeError, match="not a CloudEvents attribute name"):
        decode(Record("i.holders", 0, 0, key, value, (*headers, ("ce_Bad-Name", b"x"))))
    negative = tuple((k, b"-1" if k == "ce_mraseq" else v) for k, v in headers)
    with pytest.raises(DecodeError, match="negative mraseq"):
        decode(Record("i.holders", 0, 0, key, value, negative))
