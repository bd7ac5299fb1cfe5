# Sourced by scripts/mra and scripts/test: make or reuse the project's virtual environment.
# MRA_VENV chooses where it lives (default: .venv in the repository).
set -euo pipefail
MRA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MRA_VENV="${MRA_VENV:-$MRA_ROOT/.venv}"
if [ -x "$MRA_VENV/bin/python" ] && [ ! -f "$MRA_VENV/pyvenv.cfg" ]; then
  echo "mra: MRA_VENV=$MRA_VENV is not a virtual environment (no pyvenv.cfg); refusing to install into it" >&2
  exit 2
fi
if [ ! -x "$MRA_VENV/bin/python" ]; then
  echo "mra: creating a virtual environment in $MRA_VENV" >&2
  python3 -m venv "$MRA_VENV"
fi
if [ ! -f "$MRA_VENV/.mra-installed" ] || [ "$MRA_ROOT/pyproject.toml" -nt "$MRA_VENV/.mra-installed" ]; then
  echo "mra: installing mra and its dependencies (first run only)" >&2
  "$MRA_VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel >&2
  "$MRA_VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$MRA_ROOT[test]" >&2
  touch "$MRA_VENV/.mra-installed"
fi
