"""``mra broker start|status|stop`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker


def _mra(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MRA_STATE_DIR=str(state))
    env.pop("MRA_BOOTSTRAP_SERVERS", None)
    return subprocess.run([sys.executable, "-m", "mra.cli", *args], env=env, capture_output=True, text=True, timeout=60)


def test_start_status_stop_leaves_no_process(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = _mra(state, "broker", "start", "--json")
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    try:
        status = json.loads(_mra(state, "broker", "status", "--json").stdout)
        assert status["running"] is True
        assert status["bootstrap"].startswith("127.0.0.1:")
        # a second start reuses the running broker
        assert json.loads(_mra(state, "broker", "start", "--json").stdout)["pid"] == pid
    finally:
        stopped = _mra(state, "broker", "stop", "--json")
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["stopped"] is True
    assert json.loads(_mra(state, "broker", "status", "--json").stdout)["running"] is False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the broker process is still there"


def test_commands_without_a_broker_say_how_to_start_one(tmp_path: Path) -> None:
    result = _mra(tmp_path / "empty", "broker", "status")
    assert result.returncode == 0 and "not running" in result.stdout
