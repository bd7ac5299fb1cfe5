"""A service that loses its broker says so on stderr within 10 s and keeps trying; a run that was to stop once idle
and never got there exits non-zero."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support.signed import provisioned

from mra.events.broker import start_broker, stop_broker

pytestmark = pytest.mark.broker


def _env(prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    return env | {"MRA_TOPIC_PREFIX": prefix, "MRA_PARTITIONS": "1", "PYTHONUNBUFFERED": "1"}


def test_a_bureau_that_loses_its_broker_says_so_within_10_s_and_keeps_trying(tmp_path: Path) -> None:
    broker_dir = Path(tempfile.mkdtemp(prefix="mra-lost-broker-"))
    info = start_broker(broker_dir)
    state = provisioned(tmp_path / "state")
    base = [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", str(info.bootstrap)]
    err = (tmp_path / "stderr").open("w+")
    bureau = subprocess.Popen([*base, "bureau", "run", "-j", "beijing"], stderr=err, stdout=subprocess.DEVNULL,
                              env=_env("lost."))  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "running" not in (tmp_path / "stderr").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # joined its group and polling an idle log
        before = (tmp_path / "stderr").read_text()
        assert "did not answer" not in before
        stop_broker(broker_dir)
        lost = time.monotonic()
        said = None
        while time.monotonic() - lost < 15 and said is None:
            if "did not answer" in (tmp_path / "stderr").read_text():
                said = time.monotonic() - lost
            time.sleep(0.2)
        assert said is not None and said <= 10, (tmp_path / "stderr").read_text()[-2000:]
        assert bureau.poll() is None, "it keeps trying"
    finally:
        bureau.send_signal(signal.SIGINT)
        try:
            bureau.wait(20)
        except subprocess.TimeoutExpired:
            bureau.kill()
        stop_broker(broker_dir)
    text = (tmp_path / "stderr").read_text()
    assert "Traceback" not in text and "trying again in" in text

    never = subprocess.run([*base, "bureau", "run", "-j", "beijing", "--until-idle", "--timeout", "8"],
                           capture_output=True, text=True, timeout=120, env=_env("lost."))  # fmt: skip
    assert never.returncode != 0 and "Traceback" not in never.stderr
