"""``mra demo`` end to end on the real broker: verified once, honoured across 京津冀, revoked, replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.broker


def test_the_demo_verifies_once_and_is_honoured_in_tianjin_and_hebei(tmp_path: Path, bootstrap: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(tmp_path), "--bootstrap", bootstrap, "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    holders = {h["who"]: h for h in report["holders"]}

    jane = holders["Jane Smith"]  # verified while in Beijing, then moved to Tianjin
    assert jane["public_check"] == "valid"
    assert jane["beijing"] == [] and {w["code"] for w in jane["beijing_withdrawn"]} >= {"bj.work_permit"}
    (tj,) = jane["tianjin"]
    assert tj["code"] == "tj.jjj_recognition" and "四.3" in tj["clause"]
    assert tj["verification_code"] == jane["verification_code"]

    wang = holders["王立新"]  # moved to Hebei
    (hb,) = wang["hebei"]
    assert hb["code"] == "hb.jjj_recognition" and hb["verification_code"] == wang["verification_code"]

    chen = holders["陈嘉欣"]  # certificate revoked
    assert chen["public_check"] == "revoked" and chen["beijing"] == []
    assert all("revoked" in w["reason"] for w in chen["beijing_withdrawn"])

    (forged,) = report["rejected"]
    assert forged["status"] == "rejected" and forged["reason"] == "not_found"
    assert report["verification_requests"] == 4  # moving asked for no new verification
    assert all(r["differences"] == 0 and r["events"] > 0 for r in report["replay"].values())
