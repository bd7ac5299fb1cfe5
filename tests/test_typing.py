"""mypy --strict over the domain and the events layer, as installed under the ``mra`` package name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_and_events_pass_mypy_strict(tmp_path: Path) -> None:
    (tmp_path / "mra").symlink_to(ROOT, target_is_directory=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "-p",
            "mra.core",
            "-p",
            "mra.events",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
