"""``mra plugins new`` prints next steps that work as written: run literally, in a fresh virtual environment that
sees this one's packages (so installing the scaffold touches nothing the other tests load), they install the
package, list it, and pass its tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest


@pytest.mark.timeout(600)
def test_the_printed_next_steps_work_as_written(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    outer = sysconfig.get_paths()["purelib"]  # with its own .pth files (mra's editable install is one)
    (Path(site) / "outer.pth").write_text(f"import site; site.addsitedir({outer!r})\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MRA_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"PATH": "/usr/bin:/bin", "LANG": "C", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}  # no mra, pip, pytest

    made = subprocess.run(
        [str(python), "-m", "mra.cli", "plugins", "new", "shanxi", "--path", str(tmp_path / "pkg"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    steps = json.loads(made.stdout)["next"]
    assert len(steps) == 3 and all(str(python) in step for step in steps)
    outputs = []
    for step in steps:
        done = subprocess.run(["bash", "-c", step], capture_output=True, text=True, env=env, timeout=400)
        assert done.returncode == 0, f"{step}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    assert "shanxi" in outputs[1]
    assert " passed" in outputs[2] and " failed" not in outputs[2]
