"""A local Apache Kafka cluster (KRaft, combined broker+controller nodes) run from the official jars, on loopback.

The jars come from Maven Central through ``scripts/kafka-jars`` into a per-machine cache (never the state
directory, never the repository). Each node keeps its log under ``<state>/kafka/node-<id>``, so one node is a
durable single-machine deployment: stop and start keep every topic. Three nodes make a local cluster with
replication factor 3 and ``min.insync.replicas=2``. The layout (cluster id, node ports) is kept in
``<state>/kafka/cluster.json`` so a restart reuses the same ports the quorum and the log were formatted with.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mra.core.errors import MraError

__all__ = [
    "KAFKA_VERSION",
    "KafkaCluster",
    "KafkaNode",
    "cluster_layout",
    "jars_dir",
    "kill_node",
    "start_cluster",
    "start_node",
    "stop_cluster",
]

KAFKA_VERSION = os.environ.get("MRA_KAFKA_VERSION", "4.1.1")
CLUSTER_DIR = "kafka"
LAYOUT_FILE = "cluster.json"


class KafkaClusterError(MraError):
    """The local Apache Kafka cluster could not be started or stopped."""


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    controller_port: int

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class KafkaCluster:
    cluster_id: str
    nodes: tuple[KafkaNode, ...]
    version: str

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)


def _cache_root() -> Path:
    env = os.environ.get("MRA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mra"


def _script() -> Path | None:
    """``scripts/kafka-jars`` of a source checkout, if this is one."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "kafka-jars"
    return path if path.is_file() else None


def jars_dir(fetch: bool = True) -> Path:
    """The directory of Apache Kafka's jars, resolved from Maven Central once per machine (``scripts/kafka-jars``)."""
    cached = _cache_root() / f"kafka-{KAFKA_VERSION}"
    if (cached / ".complete").is_file():
        return cached
    script = _script()
    if not fetch or script is None:
        raise KafkaClusterError(
            f"Apache Kafka {KAFKA_VERSION}'s jars are not in {cached}; fetch them with scripts/kafka-jars "
            "(needs Maven and Java 17)"
        )
    env = dict(os.environ, MRA_KAFKA_VERSION=KAFKA_VERSION, MRA_CACHE=str(_cache_root()))
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not (cached / ".complete").is_file():
        raise KafkaClusterError(f"fetching Apache Kafka's jars failed: {done.stderr.strip()[-800:]}")
    return cached


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaClusterError("Apache Kafka needs Java 17 or later on PATH (java)")
    return java


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (what ``random-uuid`` prints).

    Like Kafka's own ``Uuid.randomUuid``, never one starting with ``-``: the storage tool would read it as an option.
    """
    while True:
        ident = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not ident.startswith("-"):
            return ident


def cluster_layout(state_dir: Path) -> KafkaCluster | None:
    """The cluster formatted in ``state_dir``, if any."""
    try:
        data = json.loads((state_dir / CLUSTER_DIR / LAYOUT_FILE).read_text())
        nodes = tuple(KafkaNode(int(n["node_id"]), int(n["port"]), int(n["controller_port"])) for n in data["nodes"])
        return KafkaCluster(str(data["cluster_id"]), nodes, str(data.get("version", KAFKA_VERSION)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def node_dir(state_dir: Path, node_id: int) -> Path:
    return state_dir / CLUSTER_DIR / f"node-{node_id}"


def node_log(state_dir: Path, node_id: int) -> Path:
    return node_dir(state_dir, node_id) / "server.log"


_LOG4J = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
"""


def _properties(state_dir: Path, cluster: KafkaCluster, node: KafkaNode) -> str:
    n = len(cluster.nodes)
    replication = min(3, n)
    min_isr = min(2, replication)
    voters = ",".join(f"{x.node_id}@127.0.0.1:{x.controller_port}" for x in cluster.nodes)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": node_dir(state_dir, node.node_id) / "data",
        "num.partitions": 4,
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": 10,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": 10,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        "log.retention.hours": -1,
        "log.segment.bytes": 64 * 1024 * 1024,
        # records up to 8 MiB are accepted, as many clusters are configured: mra's readers enforce their own limit
        # (1,000,000 bytes) and dead-letter what exceeds it, which can be shown only if the broker lets it in
        "message.max.bytes": 8 * 1024 * 1024,
        "replica.fetch.max.bytes": 8 * 1024 * 1024,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
        "background.threads": 4,
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def _jvm(jars: Path, config_dir: Path, main: str, *args: str) -> list[str]:
    return [
        _java(),
        "-Xms64m",
        "-Xmx512m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={config_dir / 'log4j2.properties'}",
        "-cp",
        f"{jars}/*",
        main,
        *args,
    ]


def _format(state_dir: Path, jars: Path, cluster: KafkaCluster) -> None:
    """Format every node's storage once (static quorum: ``controller.quorum.voters``), in parallel."""
    procs = []
    for node in cluster.nodes:
        config = node_dir(state_dir, node.node_id)
        procs.append(
            (
                node,
                subprocess.Popen(
                    _jvm(
                        jars,
                        config,
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        cluster.cluster_id,
                        "-c",
                        str(config / "server.properties"),
                        "--ignore-formatted",
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                ),
            )
        )
    for node, proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise KafkaClusterError(f"formatting Kafka node {node.node_id} failed: {out.strip()[-800:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def _pid_file(state_dir: Path, node_id: int) -> Path:
    return node_dir(state_dir, node_id) / "pid"


def node_pid(state_dir: Path, node_id: int) -> int | None:
    """The pid of a running node, or None."""
    try:
        pid = int(_pid_file(state_dir, node_id).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _alive(pid) else None


def start_node(state_dir: Path, node_id: int) -> int:
    """Start one formatted node (again); return its pid. It is up once its port answers (see :func:`wait_ready`)."""
    running = node_pid(state_dir, node_id)
    if running is not None:
        return running
    jars = jars_dir()
    config = node_dir(state_dir, node_id)
    with open(node_log(state_dir, node_id), "ab") as log:
        proc = subprocess.Popen(
            _jvm(jars, config, "kafka.Kafka", str(config / "server.properties")),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _pid_file(state_dir, node_id).write_text(str(proc.pid))
    return proc.pid


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kill_node(state_dir: Path, node_id: int, sig: int = signal.SIGKILL, timeout: float = 30.0) -> bool:
    """Send ``sig`` to one node and wait until it is gone (SIGKILL after ``timeout``); True if it was running."""
    pid = node_pid(state_dir, node_id)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            _reap(pid)
            time.sleep(0.05)
    _pid_file(state_dir, node_id).unlink(missing_ok=True)
    return True


def _free_ports(count: int) -> list[int]:
    from mra.events.broker import free_port

    ports: list[int] = []
    while len(ports) < count:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


def _layout(state_dir: Path, brokers: int, port: int | None) -> KafkaCluster:
    existing = cluster_layout(state_dir)
    if existing is not None:
        if len(existing.nodes) != brokers:
            raise KafkaClusterError(
                f"the Kafka cluster in {state_dir} has {len(existing.nodes)} broker(s), not {brokers}; "
                "use another state directory for a cluster of another size"
            )
        return existing
    ports = _free_ports(2 * brokers)
    if port is not None:
        ports[0] = port
    nodes = tuple(KafkaNode(i + 1, ports[2 * i], ports[2 * i + 1]) for i in range(brokers))
    cluster = KafkaCluster(_cluster_id(), nodes, KAFKA_VERSION)
    for node in nodes:
        d = node_dir(state_dir, node.node_id)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        (d / "server.properties").write_text(_properties(state_dir, cluster, node))
        (d / "log4j2.properties").write_text(_LOG4J)
    _format(state_dir, jars_dir(), cluster)
    record = {
        "cluster_id": cluster.cluster_id,
        "version": cluster.version,
        "nodes": [{"node_id": n.node_id, "port": n.port, "controller_port": n.controller_port} for n in nodes],
    }
    (state_dir / CLUSTER_DIR / LAYOUT_FILE).write_text(json.dumps(record, indent=2))
    return cluster


def wait_ready(state_dir: Path, cluster: KafkaCluster, timeout: float) -> None:
    """Wait until every node is alive and the cluster's metadata lists all of them as brokers."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from mra.events.broker import port_answers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in cluster.nodes:
            if node_pid(state_dir, node.node_id) is None:
                raise KafkaClusterError(
                    f"Kafka node {node.node_id} exited while starting; see {node_log(state_dir, node.node_id)}"
                )
        if all(port_answers("127.0.0.1", n.port) for n in cluster.nodes):
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=cluster.bootstrap, request_timeout_ms=5000, bootstrap_timeout_ms=5000
                )
                try:
                    brokers = admin.describe_cluster().get("brokers", [])
                finally:
                    admin.close()
                if len(brokers) == len(cluster.nodes):
                    return
            except (KafkaError, OSError):
                pass
        time.sleep(0.25)
    raise KafkaClusterError(
        f"the Kafka cluster did not come up within {timeout:.0f}s; see {node_log(state_dir, cluster.nodes[0].node_id)}"
    )


def start_cluster(state_dir: Path, brokers: int = 1, port: int | None = None, timeout: float = 120.0) -> KafkaCluster:
    """Format (first time only) and start ``brokers`` combined nodes; return once all are registered brokers."""
    if brokers < 1:
        raise KafkaClusterError("--brokers must be at least 1")
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (state_dir / CLUSTER_DIR).mkdir(mode=0o700, exist_ok=True)
    cluster = _layout(state_dir, brokers, port)
    for node in cluster.nodes:
        start_node(state_dir, node.node_id)
    try:
        wait_ready(state_dir, cluster, timeout)
    except BaseException:
        stop_cluster(state_dir)
        raise
    return cluster


def stop_cluster(state_dir: Path, timeout: float = 30.0) -> bool:
    """Stop every node (SIGTERM: a controlled shutdown that flushes the log; SIGKILL if one lingers)."""
    cluster = cluster_layout(state_dir)
    if cluster is None:
        return False
    pids = [(n.node_id, node_pid(state_dir, n.node_id)) for n in cluster.nodes]
    running = [(i, p) for i, p in pids if p is not None]
    for _, pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(p) for _, p in running) and time.monotonic() < deadline:
        for _, p in running:
            _reap(p)
        time.sleep(0.1)
    for node_id, _ in running:
        kill_node(state_dir, node_id, signal.SIGKILL, timeout=5)
    for node in cluster.nodes:
        _pid_file(state_dir, node.node_id).unlink(missing_ok=True)
    return bool(running)
