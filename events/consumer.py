"""At-least-once consumption with effectively-once application.

The :class:`Processor` polls, decodes, sends what it cannot read to the dead-letter topic, and hands the
rest to a batch handler. The handler applies the batch *and* records the tracking positions in one
local transaction; only then are offsets committed to the cluster. On start and on every partition
assignment the reader seeks to the positions the local store recorded, so a consumer killed at any
moment resumes exactly after the last event it applied, and an event id applied before is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mra.events.bus import Reader, TopicPartition, Transport
from mra.events.envelope import DecodeError, Envelope, Record, decode
from mra.events.topics import Topics

__all__ = ["DeadLetter", "Delivery", "Handler", "Processor", "RunStats", "dead_letter_headers"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """A decoded event and where it was read."""

    record: Record
    envelope: Envelope


@dataclass(frozen=True)
class DeadLetter:
    """A record that could not be applied, and why. Its position is recorded like any other."""

    record: Record
    reason: str


class Handler(Protocol):
    """Applies a batch in one local transaction, recording every record's position (dead letters too)."""

    def positions(self) -> Mapping[TopicPartition, int]:
        """The next offset to read per partition, as the local store recorded it."""
        ...

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None: ...


@dataclass
class RunStats:
    polled: int = 0
    applied: int = 0
    dead_lettered: int = 0
    batches: int = 0
    idle: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def dead_letter_headers(record: Record, reason: str) -> list[tuple[str, bytes]]:
    """The original headers plus where the record came from and why it was set aside."""
    return [
        *record.headers,
        ("mra_dlq_reason", reason.encode()),
        ("mra_dlq_topic", record.topic.encode()),
        ("mra_dlq_partition", str(record.partition).encode()),
        ("mra_dlq_offset", str(record.offset).encode()),
    ]


class Processor:
    """Runs one handler over some topics until stopped or, with ``until_idle``, until caught up."""

    def __init__(
        self,
        transport: Transport,
        topics: Topics,
        logical_topics: Sequence[str],
        handler: Handler,
        group: str | None,
        *,
        max_records: int = 1000,
        poll_ms: int = 200,
        retries: int = 2,
        validate: Callable[[Envelope], str | None] | None = None,
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self.transport = transport
        self.topics = topics
        self.names = [topics.name(t) for t in logical_topics]
        self.handler = handler
        self.group = group
        self.max_records = max_records
        self.poll_ms = poll_ms
        self.retries = retries
        self.validate = validate
        self.after_batch = after_batch
        self.stop_event = threading.Event()
        self._reader: Reader | None = None

    def _on_assign(self, assigned: set[TopicPartition]) -> None:
        """Resume each assigned partition where the local store says, else from its beginning."""
        reader = self._reader
        if reader is None:
            return
        stored = self.handler.positions()
        fresh = [tp for tp in assigned if tp not in stored]
        for tp in assigned:
            if tp in stored:
                reader.seek(tp, stored[tp])
        if fresh:
            reader.seek_to_beginning(fresh)

    def open(self) -> Reader:
        if self._reader is None:
            holder: list[Reader] = []

            def on_assign(assigned: set[TopicPartition]) -> None:
                if holder:
                    self._reader = holder[0]
                    self._on_assign(assigned)

            reader = self.transport.reader(self.names, group=self.group, on_assign=on_assign)
            holder.append(reader)
            self._reader = reader
            if self.group is None:  # direct assignment happened in the constructor, before we could seek
                self._on_assign(reader.assignment())
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _decode(self, records: list[Record]) -> tuple[list[Delivery], list[DeadLetter]]:
        good: list[Delivery] = []
        dead: list[DeadLetter] = []
        for r in records:
            try:
                env = decode(r)
            except DecodeError as e:
                dead.append(DeadLetter(r, str(e)))
                continue
            problem = self.validate(env) if self.validate else None
            if problem:
                dead.append(DeadLetter(r, problem))
            else:
                good.append(Delivery(r, env))
        return good, dead

    def _send_dead(self, dead: Sequence[DeadLetter]) -> None:
        if not dead:
            return
        target = self.topics.name("deadletter")
        for d in dead:
            log.warning("dead-lettering %s[%d]@%d: %s", d.record.topic, d.record.partition, d.record.offset, d.reason)
            self.transport.send(target, d.record.key, d.record.value or b"", dead_letter_headers(d.record, d.reason))
        self.transport.flush(30)

    def _apply(self, good: list[Delivery], dead: list[DeadLetter]) -> tuple[int, list[DeadLetter]]:
        """Apply the batch; if it fails, apply one by one and set aside what keeps failing."""
        try:
            self._send_dead(dead)
            self.handler.apply(good, dead)
            return len(good), dead
        except Exception as batch_error:  # a poison event must not stop the consumer
            log.warning("batch failed (%s); applying one by one", batch_error)
        applied = 0
        all_dead = list(dead)
        for d in good:
            error: Exception | None = None
            for _ in range(self.retries + 1):
                try:
                    self.handler.apply([d], [])
                    applied += 1
                    error = None
                    break
                except Exception as e:
                    error = e
            if error is not None:
                letter = DeadLetter(d.record, f"handler failed: {type(error).__name__}: {error}")
                self._send_dead([letter])
                self.handler.apply([], [letter])
                all_dead.append(letter)
        return applied, all_dead

    def caught_up(self, reader: Reader) -> bool:
        """At or past the reported end of every assigned partition (the caller has just polled nothing)."""
        assigned = reader.assignment()
        if not assigned:
            return False
        ends = reader.end_offsets(assigned)
        return all(reader.position(tp) >= ends.get(tp, 0) for tp in assigned)

    def run(self, until_idle: bool = False, timeout: float | None = None) -> RunStats:
        stats = RunStats()
        started = time.monotonic()
        reader = self.open()
        try:
            while not self.stop_event.is_set():
                if timeout is not None and time.monotonic() - started > timeout:
                    stats.errors.append(f"stopped after {timeout:.0f}s without becoming idle")
                    break
                records = reader.poll(self.poll_ms, self.max_records)
                if not records:
                    if until_idle and self.caught_up(reader):
                        stats.idle = True
                        break
                    continue
                stats.polled += len(records)
                good, dead = self._decode(records)
                applied, all_dead = self._apply(good, dead)
                stats.applied += applied
                stats.dead_lettered += len(all_dead)
                stats.batches += 1
                last: dict[TopicPartition, int] = {}
                for r in records:
                    tp = (r.topic, r.partition)
                    last[tp] = max(last.get(tp, -1), r.offset + 1)
                try:
                    if self.group is not None:
                        reader.commit(last)
                except Exception as e:  # the local store is the source of truth; a failed commit only costs a re-read
                    log.warning("offset commit failed: %s", e)
                if self.after_batch is not None:
                    self.after_batch()
        finally:
            stats.seconds = time.monotonic() - started
        return stats
