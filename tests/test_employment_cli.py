"""``mra employment start|end|move`` publish the facts bureaus decide on; bad input writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.schemas import EmploymentEnded, EmploymentStarted
from mra.events.topics import Topics

pytestmark = pytest.mark.broker


def test_start_move_and_refusals(tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str) -> None:
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))

    def mra(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mra.cli", "--state-dir", str(tmp_path), "--bootstrap", bootstrap, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    ok = mra(
        "employment",
        "start",
        "--holder",
        "h1",
        "-j",
        "beijing",
        "--employer",
        "ACME",
        "--years",
        "3",
        "--high-tech",
        "--on",
        "2025-10-01",
    )
    assert ok.returncode == 0, ok.stderr
    moved = mra(
        "employment",
        "move",
        "--holder",
        "h1",
        "--from",
        "beijing",
        "--to",
        "hebei",
        "--employer",
        "HB Co",
        "--on",
        "2025-11-01",
    )
    assert moved.returncode == 0, moved.stderr
    for bad, message in [
        (("start", "--holder", "h1", "-j", "tianjin", "--employer", "X", "--region", "beijing"), "not covered by"),
        (("start", "--holder", "h1", "-j", "shanghai", "--employer", "X"), "unknown jurisdiction"),
        (("start", "--holder", "h1", "-j", "beijing", "--employer", "X", "--years", "-1"), "must not be negative"),
        (("move", "--holder", "h1", "--from", "hebei", "--to", "hebei", "--employer", "X"), "same jurisdiction"),
        (("start", "--holder", "h1", "-j", "beijing", "--employer", "X", "--on", "2025-13-01"), "Invalid value"),
    ]:
        refused = mra("employment", *bad)
        assert refused.returncode != 0 and message in refused.stderr and "Traceback" not in refused.stderr

    reader = kafka.reader([topics.name("holders")])
    events = []
    for _ in range(6):
        events += [decode(r).data for r in reader.poll(300, 100)]
    reader.close()
    assert [type(e).__name__ for e in events] == ["EmploymentStarted", "EmploymentEnded", "EmploymentStarted"]
    first, ended, second = events
    assert isinstance(first, EmploymentStarted) and first.high_tech and first.years_in_scope == 3
    assert isinstance(ended, EmploymentEnded) and ended.jurisdiction == "beijing"
    assert (
        isinstance(second, EmploymentStarted) and second.jurisdiction == "hebei" and second.employer.region == "hebei"
    )
