"""One output layer: times in the user's zone as ISO 8601 without fractions, aligned tables, JSON errors on
stdout with the documented exit code, and the exit status 75 when the cluster does not answer."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.signed import provisioned

from mra.commands._output import shown_time, table, text_width, working
from mra.events.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
CST = timezone(timedelta(hours=8))


def test_times_are_iso_8601_in_the_users_zone_without_fractions() -> None:
    at = datetime(2025, 10, 1, 2, 3, 4, 567890, tzinfo=UTC)
    assert shown_time(at, CST) == "2025-10-01T10:03:04+08:00"
    assert shown_time("2025-10-01T02:03:04.567890+00:00", CST) == "2025-10-01T10:03:04+08:00"
    assert shown_time("2025-10-01T02:03:04Z", UTC) == "2025-10-01T02:03:04+00:00"
    assert shown_time(datetime(2025, 10, 1, 2, 3, 4), UTC) == "2025-10-01T02:03:04+00:00"  # naive: UTC
    assert shown_time(date(2025, 10, 1)) == "2025-10-01" and shown_time("2025-10-01") == "2025-10-01"
    assert shown_time(None) == "" and shown_time("not a time") == "not a time"


def test_tables_align_chinese_text_and_numbers() -> None:
    rows = [{"name": "北京市", "n": 7}, {"name": "hebei", "n": 12}, {"name": "天津", "n": 3}]
    out = table(rows, [("name", "名称"), ("n", "count")], sort=lambda r: r["name"], total="total: 22").splitlines()
    assert out[0].startswith("名称") and out[-1] == "total: 22"
    body = out[2:-1]
    assert [line.split()[0] for line in body] == ["hebei", "北京市", "天津"]
    assert len({text_width(line) for line in [out[0], *body]}) == 1  # every row as wide as the heading
    assert all(re.search(r"\s\d+$", line) for line in body)  # numbers right-aligned
    assert text_width("北京a") == 5


def _mra(*args: str, env: dict[str, str] | None = None, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = ["--state-dir", str(state)] if state else []
    full = dict(os.environ, LANG="C", **(env or {}))
    full.pop("LC_ALL", None)
    full.pop("LANGUAGE", None)
    return subprocess.run(
        [sys.executable, "-m", "mra.cli", *base, *args], capture_output=True, text=True, env=full, timeout=120
    )


def test_errors_under_json_are_json_on_stdout_with_the_exit_code(tmp_path: Path) -> None:
    missing = _mra("verify", "status", "nope", "--json", state=tmp_path)
    assert missing.returncode == 3 and missing.stderr == ""
    assert json.loads(missing.stdout) == {"error": "no verification request 'nope' is known here", "exit_code": 3}
    usage = _mra("benefits", "check", "-j", "beijing", "--json", state=tmp_path)
    assert usage.returncode == 2 and "Missing option" in json.loads(usage.stdout)["error"]
    bad = _mra("verify", "check", "XX", "--json", state=tmp_path)
    assert bad.returncode == 2 and "not a verification code" in json.loads(bad.stdout)["error"]
    plain = _mra("verify", "status", "nope", state=tmp_path)
    assert plain.returncode == 3 and plain.stdout == "" and plain.stderr.startswith("Error: no verification request")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_verify_submit_exits_75_when_the_cluster_does_not_answer(tmp_path: Path) -> None:
    done = _mra(
        "--bootstrap",
        f"127.0.0.1:{_free_port()}",
        "verify",
        "submit",
        "--file",
        str(ROOT / "examples" / "request.json"),
        env={"MRA_KAFKA_TIMEOUT_S": "1"},
        state=tmp_path,
    )
    assert done.returncode == 75, done.stderr
    assert "accepted and kept here, but could not be published" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.broker
def test_bureau_run_and_status_speak_in_tables(tmp_path: Path, bootstrap: str, topics: Topics) -> None:
    env = {"MRA_TOPIC_PREFIX": topics.prefix, "MRA_PARTITIONS": str(topics.partitions)}
    base = ("--bootstrap", bootstrap)
    provisioned(tmp_path)
    assert _mra(*base, "catalogue", "publish", "-j", "beijing", env=env, state=tmp_path).returncode == 0
    run = _mra(*base, "bureau", "run", "-j", "beijing", "--until-idle", env=env, state=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "{'" not in run.stdout and "1 new event(s) applied to the read model this run" in run.stdout
    assert re.search(r"events applied \(all runs\)\s+1$", run.stdout, re.M)
    data = json.loads(_mra(*base, "bureau", "run", "-j", "beijing", "--until-idle", "--json", env=env,
                           state=tmp_path).stdout)
    assert data["new_events"] == 0 and data["counts"]["events_applied"] == 1
    status = _mra(*base, "bureau", "status", "-j", "beijing", env=env, state=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "{'" not in status.stdout and "total lag: 0 record(s)" in status.stdout
    rows = [line.split() for line in status.stdout.splitlines() if line.startswith(topics.prefix)]
    assert rows == sorted(rows, key=lambda r: (r[0], int(r[1]))) and len(rows) == 3 * topics.partitions
    assert all(int(r[2]) <= int(r[3].rstrip("*")) for r in rows)  # no position past the end
    as_json = json.loads(_mra(*base, "bureau", "status", "-j", "beijing", "--json", env=env, state=tmp_path).stdout)
    assert all(p["position"] <= p["end"] for p in as_json["partitions"])


def test_broker_status_json_gives_an_iso_time(tmp_path: Path) -> None:
    started = _mra("broker", "start", "--json", state=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        status = json.loads(_mra("broker", "status", "--json", state=tmp_path).stdout)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", status["started_at"]), status
        assert " since " in _mra("broker", "status", state=tmp_path).stdout
    finally:
        _mra("broker", "stop", state=tmp_path)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_long_work_shows_progress_on_a_terminal_only() -> None:
    import threading

    screen = _Terminal()
    seen = threading.Event()
    with working("reading the log", stream=screen, every=0.01):
        while not seen.wait(0.01):
            if "reading the log… " in screen.getvalue():
                seen.set()
    assert screen.getvalue().endswith("\r")  # the line is erased when the work is done
    piped = io.StringIO()
    with working("reading the log", stream=piped, every=0.01):
        pass
    assert piped.getvalue() == ""
    quiet = _Terminal()
    with working("x", stream=quiet, quiet=True, every=0.01):
        pass
    assert quiet.getvalue() == ""


def test_the_readme_exit_code_table_is_what_the_errors_exit_with() -> None:
    from mra.core.errors import MraError, NotFound, ValidationFailed
    from mra.events.kafka import KafkaPublishError, KafkaReadError

    text = (ROOT / "README.md").read_text(encoding="utf-8").split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    codes = {int(m) for m in re.findall(r"^\| (\d+) \|", text, re.M)}
    assert codes == {0, 1, 2, 3, 4, 5, 75, 130}
    assert (MraError.exit_code, ValidationFailed.exit_code, NotFound.exit_code) == (1, 2, 3)
    assert KafkaPublishError("x").exit_code == 75 and KafkaReadError.exit_code == 75
    assert KafkaPublishError("x", retriable=False).exit_code == 1
