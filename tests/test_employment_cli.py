"""``mra employment start|end|move`` publish the facts bureaus decide on; bad input writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.signed import provisioned, signed

from mra.core.models import EmployerType
from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.schemas import EmploymentEnded, EmploymentStarted
from mra.events.topics import Topics
from tests.support.facts import publish, verified

pytestmark = pytest.mark.broker


def test_start_move_and_refusals(tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str) -> None:
    provisioned(tmp_path)
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions), LANG="C")
    publish(signed(kafka, topics, "verification-platform"), [verified("h1"), verified("h-abcdef01")])

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
        "--employer-type",
        "public-institution",
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
        (("start", "--holder", "h1", "-j", "bejing", "--employer", "X"), "did you mean beijing?"),
        (("start", "--holder", "h1", "-j", "beijing", "--employer", "X", "--region", "tianjn"), "mean tianjin?"),
        (("start", "--holder", "h-bogus", "-j", "beijing", "--employer", "X"), "not known to the verification"),
        (("start", "--holder", "h-abcdef02", "-j", "beijing", "--employer", "X"), "Did you mean h-abcdef01?"),
        (("end", "--holder", "h1", "-j", "beijing"), "no employment in beijing to end (employed now in: hebei)"),
        (("move", "--holder", "h1", "--from", "tianjin", "--to", "beijing", "--employer", "X"), "no employment in"),
        (("start", "--holder", "h1", "-j", "beijing", "--employer", "X", "--employer-type", "ngo"), "--employer-type"),
    ]:
        refused = mra("employment", *bad)
        assert refused.returncode in (2, 3) and message in refused.stderr and "Traceback" not in refused.stderr, (
            bad,
            refused.stderr,
        )
    by_name = mra("employment", "end", "--holder", "h1", "-j", "冀", "--on", "2025-12-01")  # 冀 is hebei
    assert by_name.returncode == 0, by_name.stderr

    reader = kafka.reader([topics.name("holders")])
    events = []
    for _ in range(6):
        events += [decode(r).data for r in reader.poll(300, 100)]
    reader.close()
    assert [type(e).__name__ for e in events] == [
        "EmploymentStarted",
        "EmploymentEnded",
        "EmploymentStarted",
        "EmploymentEnded",
    ]
    first, ended, second, last = events
    assert isinstance(last, EmploymentEnded) and last.jurisdiction == "hebei"
    assert isinstance(first, EmploymentStarted) and first.high_tech and first.years_in_scope == 3
    assert first.employer_type is EmployerType.PUBLIC_INSTITUTION and second.employer_type is None
    assert isinstance(ended, EmploymentEnded) and ended.jurisdiction == "beijing"
    assert (
        isinstance(second, EmploymentStarted) and second.jurisdiction == "hebei" and second.employer.region == "hebei"
    )
