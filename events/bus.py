"""The transport interface, and an in-memory transport behind it for fast unit tests.

Everything above this layer (publishers, consumers, services) sees only :class:`Transport` and
:class:`Reader`, so the same code runs on Kafka and in memory.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from mra.events.envelope import Record

__all__ = [
    "Fenced",
    "InMemoryTransport",
    "PublishError",
    "Reader",
    "TopicPartition",
    "Transaction",
    "Transport",
    "partition_for",
]

TopicPartition = tuple[str, int]
AssignCallback = Callable[[set[TopicPartition]], None]


class PublishError(RuntimeError):
    """An event was not written. Retryable: nothing was reported as published."""


class Fenced(PublishError):
    """Another producer took this transactional id over: this one's open transaction is aborted and it may write
    nothing more under the id until it takes the id back (:meth:`Transport.fence`)."""


@dataclass
class Transaction:
    """A transaction of one transactional id. ``written``, filled when it commits, is the next offset after the
    last record it wrote, per partition it wrote to."""

    transactional_id: str
    written: dict[TopicPartition, int] = field(default_factory=dict)


class Reader(Protocol):
    """Reads records from topics, as a member of a consumer group or by direct assignment."""

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]: ...

    def assignment(self) -> set[TopicPartition]: ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def seek_to_beginning(self, tps: Iterable[TopicPartition]) -> None: ...

    def position(self, tp: TopicPartition) -> int: ...

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]: ...

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]: ...

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    """Topics, a producer and readers, over one cluster."""

    def ensure_topics(self, topics: Mapping[str, int]) -> None: ...

    def partitions(self, topic: str) -> list[int]: ...

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...

    def transaction(self, transactional_id: str) -> AbstractContextManager[Transaction]:
        """A transactional publishing scope: what this thread sends inside it is written atomically when the block
        ends (committed, then ``written`` is set), or not at all when it raises (aborted; read_committed readers never
        see it). Commit failures raise :class:`PublishError`, :class:`Fenced` when another producer took the id over.
        The first scope of an id takes it over as :meth:`fence` does; once fenced, scopes raise :class:`Fenced` until
        :meth:`fence` takes the id back."""
        ...

    def fence(self, transactional_id: str) -> None:
        """Take ``transactional_id`` over with a new producer session: a transaction a previous holder left open is
        aborted (one it was committing is completed first), and the previous holder's later writes are refused. Once
        this returns, a read_committed reader sees everything the previous holders committed."""
        ...

    def reader(
        self,
        topics: Sequence[str],
        group: str | None = None,
        on_assign: AssignCallback | None = None,
    ) -> Reader: ...

    def close(self) -> None: ...


def partition_for(key: bytes | None, partitions: int, counter: int = 0) -> int:
    """Same key, same partition; keyless messages spread round-robin."""
    if key is None or not key:
        return counter % partitions
    return zlib.crc32(key) % partitions


class _Log:
    def __init__(self, partitions: int) -> None:
        self.parts: list[list[Record]] = [[] for _ in range(partitions)]


class InMemoryTransport:
    """A process-local transport with Kafka's shape: partitions, offsets, group commits."""

    def __init__(self, default_partitions: int = 4) -> None:
        self._logs: dict[str, _Log] = {}
        self._committed: dict[str, dict[TopicPartition, int]] = {}
        self._lock = threading.Condition()
        self._default = default_partitions
        self._rr = 0
        self._epochs: dict[str, int] = {}  # transactional id: the epoch of its latest holder (shared by clients)
        self._mine: dict[str, int] = {}  # transactional id: the epoch this client holds it at
        self._open: tuple[int, Transaction, list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]]] | None
        self._open = None

    def client(self) -> InMemoryTransport:
        """Another client of the same logs, groups and transactional ids (as a second process on one cluster)."""
        other = InMemoryTransport(self._default)
        other._logs, other._committed, other._lock = self._logs, self._committed, self._lock
        other._epochs = self._epochs
        return other

    def ensure_topics(self, topics: Mapping[str, int]) -> None:
        with self._lock:
            for name, n in topics.items():
                self._logs.setdefault(name, _Log(n))

    def partitions(self, topic: str) -> list[int]:
        with self._lock:
            log = self._logs.get(topic)
            return list(range(len(log.parts))) if log else []

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        with self._lock:
            if topic not in self._logs:
                raise PublishError(f"topic {topic!r} does not exist (topics are created explicitly)")
            scope = self._open
            if scope is not None and scope[0] == threading.get_ident():
                scope[2].append((topic, key, value, tuple(headers)))  # written when the transaction commits
                return
            self._append(topic, key, value, tuple(headers))
            self._lock.notify_all()

    def _append(self, topic: str, key: bytes | None, value: bytes, headers: tuple[tuple[str, bytes], ...]) -> int:
        log = self._logs[topic]
        self._rr += 1
        p = partition_for(key, len(log.parts), self._rr)
        part = log.parts[p]
        part.append(Record(topic, p, len(part), key, value, headers, int(time.time() * 1000)))
        return p

    def flush(self, timeout: float | None = None) -> None:
        return None

    def fence(self, transactional_id: str) -> None:
        with self._lock:
            self._epochs[transactional_id] = self._mine[transactional_id] = self._epochs.get(transactional_id, 0) + 1

    @contextmanager
    def transaction(self, transactional_id: str) -> Iterator[Transaction]:
        if self._open is not None:
            raise RuntimeError("a transaction is already open on this transport")
        if transactional_id not in self._mine:
            self.fence(transactional_id)
        elif self._epochs.get(transactional_id) != self._mine[transactional_id]:
            raise Fenced(f"transactional id {transactional_id!r} was taken over; take it back before writing")
        tx = Transaction(transactional_id)
        buffered: list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]] = []
        self._open = (threading.get_ident(), tx, buffered)
        try:
            yield tx
        except BaseException:
            self._open = None  # aborted: nothing buffered is written
            raise
        self._open = None
        with self._lock:
            if self._epochs.get(transactional_id) != self._mine.get(transactional_id):
                raise Fenced(f"transactional id {transactional_id!r} was taken over; the transaction is aborted")
            for topic, key, value, headers in buffered:
                p = self._append(topic, key, value, headers)
                tx.written[(topic, p)] = len(self._logs[topic].parts[p])
            self._lock.notify_all()

    def records(self, topic: str) -> list[Record]:
        """Every record of a topic, partition by partition (for tests and tools)."""
        with self._lock:
            return [r for part in self._logs[topic].parts for r in part]

    def reader(
        self,
        topics: Sequence[str],
        group: str | None = None,
        on_assign: AssignCallback | None = None,
    ) -> InMemoryReader:
        return InMemoryReader(self, list(topics), group, on_assign)

    def close(self) -> None:
        return None


class InMemoryReader:
    def __init__(
        self, bus: InMemoryTransport, topics: list[str], group: str | None, on_assign: AssignCallback | None
    ) -> None:
        self._bus = bus
        self._group = group
        with bus._lock:
            self._assigned = {(t, p) for t in topics if t in bus._logs for p in range(len(bus._logs[t].parts))}
            committed = bus._committed.get(group or "", {}) if group else {}
            self._pos = {tp: committed.get(tp, 0) for tp in self._assigned}
        if on_assign is not None:
            on_assign(set(self._assigned))

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        deadline = time.monotonic() + timeout_ms / 1000
        with self._bus._lock:
            while True:
                out: list[Record] = []
                for tp in sorted(self._assigned):
                    part = self._bus._logs[tp[0]].parts[tp[1]]
                    start = self._pos[tp]
                    take = part[start : start + max_records - len(out)]
                    out.extend(take)
                    self._pos[tp] = start + len(take)
                    if len(out) >= max_records:
                        break
                if out:
                    return out
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._bus._lock.wait(left)

    def assignment(self) -> set[TopicPartition]:
        return set(self._assigned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._pos[tp] = offset

    def seek_to_beginning(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._pos[tp] = 0

    def position(self, tp: TopicPartition) -> int:
        return self._pos[tp]

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        with self._bus._lock:
            return {tp: len(self._bus._logs[tp[0]].parts[tp[1]]) for tp in tps}

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 0 for tp in tps}

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self._group:
            with self._bus._lock:
                self._bus._committed.setdefault(self._group, {}).update(offsets)

    def close(self) -> None:
        return None
