"""``mra up``: the platform and the bureaus together, an activity line per thing a person waits for, the
issuer register kept, and a clean stop on SIGTERM and Ctrl-C (SIGINT)."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.signed import provisioned

from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[1]


class Up:
    """``mra up`` in a child process, its stdout read line by line."""

    def __init__(self, env: dict[str, str], args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mra.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if re.search(pattern, line):
                return line
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                assert self.proc.poll() is None, f"mra up ended: {self.proc.stderr.read() if self.proc.stderr else ''}"
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} in {self.seen}")

    def stop(self, signum: int) -> tuple[int, str]:
        self.proc.send_signal(signum)
        try:
            _out, err = self.proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        return self.proc.returncode, err


def test_up_logs_activity_keeps_the_register_and_stops_cleanly(
    tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str
) -> None:
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions), LANG="C")
    env.pop("LC_ALL", None)
    env.pop("LANGUAGE", None)
    base = ["--state-dir", str(provisioned(tmp_path)), "--bootstrap", bootstrap]

    def mra(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mra.cli", *base, *args], capture_output=True, text=True, env=env, timeout=120
        )

    assert mra("catalogue", "publish", "-j", "beijing").returncode == 0
    up = Up(env, [*base, "up", "--no-web", "--register", str(ROOT / "examples" / "issuer-register.json")])
    try:
        time.sleep(3)  # the activity reader starts from the log's end
        submitted = mra("verify", "submit", "--file", str(ROOT / "examples" / "request.json"), "--json")
        assert submitted.returncode == 0, submitted.stderr
        request_id = json.loads(submitted.stdout)["request_id"]
        line = up.wait_for(rf"request {request_id} verified")
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d  ", line), line  # ISO 8601, no fraction
        up.wait_for(rf"request {request_id} accepted")
        holder = re.search(r"holder (h-[0-9a-f]+)", line)
        assert holder is not None
        started = mra("employment", "start", "--holder", holder.group(1), "-j", "beijing", "--employer", "ACME")
        assert started.returncode == 0, started.stderr
        decided = up.wait_for(rf"beijing decided for holder {holder.group(1)}: .*\d+ eligible")
        assert "ineligible" in decided
        kafka.send(topics.name("holders"), b"k", b"not an event", [])
        kafka.flush()
        up.wait_for(r"dead letter from .*holders\[\d+\]@\d+")
    finally:
        code, err = up.stop(signal.SIGTERM)
    assert code == 0, err
    assert "stopping…" in err and "Traceback" not in err, err
    settings = json.loads(mra("platform", "settings", "--json").stdout)
    assert settings["register"] == str((ROOT / "examples" / "issuer-register.json").resolve())
    assert settings["register_exists"] is True

    again = Up(env, [*base, "up", "--jurisdictions", "beijing", "--port", "0"])
    time.sleep(8)
    code, err = again.stop(signal.SIGINT)
    assert code == 0, err
    assert "stopping…" in err and "Traceback" not in err, err
