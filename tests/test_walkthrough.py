"""The README's "Trying it by hand" runs exactly as written, on a broker it starts itself, in a fresh state dir.

Each line of the block is run as it stands; REQUEST_ID, CODE and HOLDER_ID are what the earlier commands printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def walkthrough() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Trying it by hand", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.strip().splitlines() if line.strip()]


def env_for(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    env |= {"MRA_STATE_DIR": str(state), "MRA_VENV": sys.prefix, "LANG": "C"}
    env.pop("LC_ALL", None)
    env.pop("LANGUAGE", None)
    return env


@pytest.mark.broker
@pytest.mark.timeout(600)
def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    lines = walkthrough()
    assert lines[0] == "./scripts/mra broker start" and lines[-1] == "./scripts/mra broker stop"
    assert any("HOLDER_ID" in line for line in lines)
    env = env_for(tmp_path / "state")
    found: dict[str, str] = {}
    outputs: list[str] = []
    try:
        for line in lines:
            for name, value in found.items():
                line = line.replace(name, value)
            assert not re.search(r"\b(REQUEST_ID|CODE|HOLDER_ID)\b", line), f"nothing printed {line!r} yet"
            run = subprocess.run(
                ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
            )
            assert run.returncode == 0, f"{line}\n{run.stdout}\n{run.stderr}"
            outputs.append(run.stdout)
            if m := re.search(r"^request (\S+): accepted", run.stdout, re.M):
                found["REQUEST_ID"] = m.group(1)
            if m := re.search(r"^\s+code\s+([0-9A-Z-]+)$", run.stdout, re.M):
                found["CODE"] = m.group(1)
            if m := re.search(r"^\s+holder id\s+(h-[0-9a-f]+)$", run.stdout, re.M):
                found["HOLDER_ID"] = m.group(1)
    finally:
        subprocess.run(["./scripts/mra", "broker", "stop"], cwd=ROOT, env=env, capture_output=True, timeout=120)
    by_line = dict(zip(lines, outputs, strict=True))
    check = next(out for line, out in by_line.items() if line.startswith("./scripts/mra verify check"))
    assert ": valid" in check and found["HOLDER_ID"] not in check  # the public check never names the holder
    shown = [out for line, out in by_line.items() if "holder show" in line]
    assert re.search(r"^eligible\s.*\sbj\.work_permit\s", shown[0], re.M)
    assert re.search(r"^eligible\s.*\stj\.jjj_recognition\s", shown[1], re.M)
    assert "no differences" in outputs[-2]


def test_the_walkthrough_names_only_what_earlier_commands_print() -> None:
    lines = walkthrough()
    first_use = {name: next(i for i, line in enumerate(lines) if name in line) for name in ("REQUEST_ID", "HOLDER_ID")}
    submit = next(i for i, line in enumerate(lines) if "verify submit" in line)
    status = next(i for i, line in enumerate(lines) if "verify status REQUEST_ID" in line)
    assert submit < first_use["REQUEST_ID"] and status < first_use["HOLDER_ID"]
