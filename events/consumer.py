"""At-least-once consumption with effectively-once application.

The :class:`Processor` polls, decodes, sends what it cannot read to the dead-letter topic, and hands the
rest to a batch handler. The handler applies the batch *and* records the tracking positions in one
local transaction; only then are offsets committed to the cluster. On start and on every partition
assignment the reader seeks to the positions the local store recorded, so a consumer killed at any
moment resumes exactly after the last event it applied, and an event id applied before is skipped.

Faults, and what the loop does about them:

- The cluster does not answer (a poll, an end-offset query, a commit, or a publish from the handler fails
  with a :class:`PublishError`, :class:`ConnectionError` or :class:`TimeoutError`): nothing is the event's
  fault, so nothing is dead-lettered. The loop logs one line and waits (0.5 s doubling to 10 s), then tries
  the same batch again; the handler is idempotent, so a batch applied before the failure is not applied twice.
- A handler fails on an event for another reason: the batch is applied one event at a time, each retried
  ``retries`` times, and the one that keeps failing is dead-lettered with the reason; the others go on.
- A handler refuses an event for good (:class:`EventRefused`, say an event id its publisher used before for
  other content): the batch is applied one event at a time and that event is dead-lettered at once, untried.
- A record that is not an mra event (or that the decoder chokes on in any way) is dead-lettered with the reason.
- A failure the cluster will not cure by waiting (it refused a message, say for its size) stops the consumer with
  that message: it is no event's fault, so no event is dead-lettered for it, and waiting would be forever.
- The log is shorter than what was already read (a broker that lost its log came back, or another cluster
  answers at the same address): the loop stops with :class:`LogTruncated` instead of skipping ahead. Signs,
  each exact on Kafka and on the development broker: a record below the position the reader was at; an empty
  poll with the position beyond the log end the fetch reported (confirmed by ``end_offsets``); an empty log
  (end offset 0) where the store had read something.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mra.core.errors import MraError
from mra.events.bus import PublishError, Reader, TopicPartition, Transport
from mra.events.envelope import DecodeError, Envelope, Record, decode
from mra.events.topics import Topics

__all__ = [
    "DLQ_HEADER_PREFIX",
    "DLQ_MAX_VALUE",
    "DLQ_PREVIEW",
    "TRANSIENT",
    "DeadLetter",
    "Delivery",
    "EventRefused",
    "Handler",
    "LogTruncated",
    "Processor",
    "RunStats",
    "dead_letter_headers",
    "is_transient",
]

log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (PublishError, ConnectionError, TimeoutError)
"""Failures of the cluster, not of an event: waited out, never dead-lettered."""


def is_transient(error: BaseException) -> bool:
    """A failure of the cluster that waiting can cure; a message the cluster refused (``retriable`` false) is not."""
    return isinstance(error, TRANSIENT) and getattr(error, "retriable", True) is not False


class EventRefused(MraError):
    """A handler's refusal of one event, for a reason trying again cannot cure: the consumer dead-letters the
    event with this message and goes on."""


class LogTruncated(MraError):
    """The log is shorter than what this consumer already read: stopping is safer than skipping ahead."""


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
    transient: int = 0
    """Failures of the cluster waited out (each followed by a pause and another try)."""


DLQ_HEADER_PREFIX = "mra_dlq_"
"""Headers a dead letter adds to the original record's; re-driving removes exactly these."""
DLQ_MAX_VALUE = 900_000
"""A record value larger than this is dead-lettered as its first :data:`DLQ_PREVIEW` bytes and its length (header
``mra_dlq_truncated``): a copy of it would be refused by a cluster's default 1 MiB limit, and the consumer would
wait forever. The original stays in its topic at the offset the dead letter names."""
DLQ_PREVIEW = 65_536


def dead_letter_headers(record: Record, reason: str, consumer: str = "") -> list[tuple[str, bytes]]:
    """The original headers plus where the record came from, why it was set aside, and by which consumer."""
    headers = [
        *record.headers,
        ("mra_dlq_reason", reason.encode()),
        ("mra_dlq_topic", record.topic.encode()),
        ("mra_dlq_partition", str(record.partition).encode()),
        ("mra_dlq_offset", str(record.offset).encode()),
    ]
    if consumer:
        headers.append(("mra_dlq_consumer", consumer.encode()))
    return headers


class _Stopped(Exception):
    """Asked to stop (or out of time) while waiting for the cluster."""


class _Backoff:
    """Exponential pauses between tries against a cluster that does not answer, reset by a success."""

    def __init__(self, first: float, most: float) -> None:
        self.first, self.most = first, most
        self.next = first

    def take(self) -> float:
        delay, self.next = self.next, min(self.next * 2, self.most)
        return delay

    def reset(self) -> None:
        self.next = self.first


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
        validate: Callable[[Envelope, Record | None], str | None] | None = None,
        after_batch: Callable[[], None] | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        name: str | None = None,
        group_settle_s: float = 10.0,
        probe_s: float = 2.0,
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
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.name = name or group or type(handler).__name__
        """Who set a dead letter aside (its ``mra_dlq_consumer`` header): the group id unless named."""
        self.group_settle_s = group_settle_s
        """With ``until_idle`` in a group holding only some of the partitions: how long the assignment must stand
        before those are taken as this member's share (longer than a dead member's session, whose partitions
        would otherwise be reassigned to this one)."""
        self.stop_event = threading.Event()
        self._reader: Reader | None = None
        self._assigned_at = time.monotonic()
        self._next: dict[TopicPartition, int | None] = {}
        self._unchecked: dict[TopicPartition, int] = {}
        self._sent: set[tuple[str, int, int]] = set()
        self._deadline: float | None = None
        self.probe_s = probe_s
        """While polls come back empty, how often to ask the cluster something (the log's end) to tell an idle log
        from a cluster that is gone: a client polling a dead broker gets empty polls, not errors."""
        self._contact = time.monotonic()

    # positions and the log's end ---------------------------------------------------------------------------------
    def _on_assign(self, assigned: set[TopicPartition]) -> None:
        """Resume each assigned partition where the local store says, else from its beginning."""
        reader = self._reader
        if reader is None:
            return
        stored = self.handler.positions()
        fresh = [tp for tp in assigned if tp not in stored]
        self._assigned_at = time.monotonic()
        self._next = {tp: stored.get(tp) for tp in assigned}
        for tp in assigned:
            if tp in stored:
                reader.seek(tp, stored[tp])
        if fresh:
            reader.seek_to_beginning(fresh)
        # checked by the loop, not here: a rebalance callback must not wait on the cluster or raise
        self._unchecked = {tp: stored[tp] for tp in assigned if stored.get(tp, 0) > 0}

    def _check_empty_logs(self, reader: Reader) -> None:
        """An end offset of 0 where something was read before: the log is gone (checked once per assignment)."""
        stored, self._unchecked = self._unchecked, {}
        if not stored:
            return
        try:
            ends = reader.end_offsets(stored)
        except Exception as e:  # the empty-poll check covers this partition too
            log.info("end offsets not available after assignment (%s); the empty-poll check still applies", e)
            return
        for tp, position in sorted(stored.items()):
            if ends.get(tp) == 0:
                raise self._truncated(tp, 0, position)

    @staticmethod
    def _truncated(tp: TopicPartition, end: int, position: int) -> LogTruncated:
        return LogTruncated(
            f"{tp[0]}[{tp[1]}]: the cluster says the log ends at offset {end}, but this consumer has read it up to "
            f"offset {position}. "
            "The cluster lost records (a broker with memory storage restarted?) or is not the one this read model "
            "was built from. Not skipping ahead: rebuild the read model from the log (mra replay, or a new state "
            "directory) or point at the cluster it was built from."
        )

    def _check_order(self, records: Sequence[Record]) -> None:
        """A record below the offset the reader was at means the cluster reset the log under it."""
        for r in records:
            tp = (r.topic, r.partition)
            expected = self._next.get(tp)
            if expected is not None and r.offset < expected:
                raise LogTruncated(
                    f"{r.topic}[{r.partition}]: expected offset {expected} or later, but the cluster returned offset "
                    f"{r.offset}: its log was reset or truncated. Not re-reading or skipping: rebuild the read "
                    "model from the log (mra replay, or a new state directory) or point at the cluster it was "
                    "built from."
                )
            self._next[tp] = r.offset + 1

    def _check_log_end(self, reader: Reader) -> None:
        """After an empty poll: a position beyond the log end the fetch reported, confirmed by ``end_offsets``."""
        highwater = getattr(reader, "highwater", None)
        if highwater is None:
            return
        suspects: dict[TopicPartition, int] = {}
        for tp, position in self._next.items():
            if position is None:
                continue
            hw = highwater(tp)
            if hw is not None and hw >= 0 and position > hw:
                suspects[tp] = position
        if not suspects:
            return
        ends = reader.end_offsets(suspects)  # a transient failure here is waited out by the caller
        for tp, position in sorted(suspects.items()):
            end = ends.get(tp)
            if end is not None and position > end:
                raise self._truncated(tp, end, position)

    # reading -----------------------------------------------------------------------------------------------------
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
            except Exception as e:  # whatever a hostile record does to the decoder, the consumer goes on
                dead.append(DeadLetter(r, f"cannot decode: {type(e).__name__}: {str(e)[:500]}"))
                continue
            try:
                problem = self.validate(env, r) if self.validate else None
            except Exception as e:
                problem = f"validation failed: {type(e).__name__}: {str(e)[:500]}"
            if problem:
                dead.append(DeadLetter(r, problem))
            else:
                good.append(Delivery(r, env))
        return good, dead

    def _send_dead(self, dead: Sequence[DeadLetter]) -> None:
        """Copy records to the dead-letter topic, each once per batch however often the batch is tried."""
        fresh = [d for d in dead if (d.record.topic, d.record.partition, d.record.offset) not in self._sent]
        if not fresh:
            return
        target = self.topics.name("deadletter")
        for d in fresh:
            log.warning("dead-lettering %s[%d]@%d: %s", d.record.topic, d.record.partition, d.record.offset, d.reason)
            headers = dead_letter_headers(d.record, d.reason, self.name)
            value = d.record.value or b""
            if len(value) > DLQ_MAX_VALUE:  # a copy the cluster would refuse: its start, and how long it was
                headers.append(("mra_dlq_truncated", str(len(value)).encode()))
                value = value[:DLQ_PREVIEW]
            self.transport.send(target, d.record.key, value, headers)
        self.transport.flush(30)
        self._sent.update((d.record.topic, d.record.partition, d.record.offset) for d in fresh)

    def _apply_once(self, good: list[Delivery], dead: list[DeadLetter]) -> tuple[int, list[DeadLetter]]:
        """Apply the batch; if it fails, apply one by one and set aside what keeps failing.

        A failure of the cluster is raised at once (the caller waits and tries the whole batch again): it says
        nothing about the event, so it must not count towards dead-lettering it.
        """
        self._send_dead(dead)
        try:
            self.handler.apply(good, dead)
            return len(good), dead
        except Exception as batch_error:  # a poison event must not stop the consumer
            if isinstance(batch_error, TRANSIENT):  # the cluster's doing, not the events'
                raise
            log.warning("batch failed (%s); applying one by one", batch_error)
        if dead:
            self.handler.apply([], dead)  # the undecodable ones: their positions, with the rest
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
                    if isinstance(e, TRANSIENT):
                        raise
                    error = e
                    if isinstance(e, EventRefused):
                        break
            if error is not None:
                refused = isinstance(error, EventRefused)
                reason = str(error) if refused else f"handler failed: {type(error).__name__}: {error}"
                letter = DeadLetter(d.record, reason)
                self._send_dead([letter])
                self.handler.apply([], [letter])
                all_dead.append(letter)
        return applied, all_dead

    def _apply(
        self, good: list[Delivery], dead: list[DeadLetter], stats: RunStats, backoff: _Backoff
    ) -> tuple[int, list[DeadLetter]]:
        self._sent = set()
        while True:
            try:
                result = self._apply_once(good, dead)
            except Exception as e:
                if not is_transient(e):
                    raise
                self._pause(stats, backoff, "applying a batch", e)
                continue
            backoff.reset()
            return result

    def _pause(self, stats: RunStats, backoff: _Backoff, what: str, error: BaseException) -> None:
        """Log the failure and wait before the next try; raise :class:`_Stopped` if stopped or out of time."""
        stats.transient += 1
        delay = backoff.take()
        if self._deadline is not None:
            delay = min(delay, max(0.0, self._deadline - time.monotonic()))
        log.warning("%s failed, the cluster did not answer (%s); trying again in %.1fs", what, error, delay)
        if self.stop_event.wait(delay) or (self._deadline is not None and time.monotonic() >= self._deadline):
            raise _Stopped

    def _probe(self, reader: Reader) -> None:
        """After an empty poll, at most every ``probe_s``: ask the cluster for the log's end (a short timeout where
        the reader offers one). A failure is raised, so the loop says on stderr that the cluster is gone and waits."""
        now = time.monotonic()
        if now - self._contact < self.probe_s:
            return
        assigned = reader.assignment()
        probe = getattr(reader, "probe", None)
        if probe is not None:
            probe(assigned)
        elif assigned:
            reader.end_offsets(assigned)
        self._contact = time.monotonic()

    def caught_up(self, reader: Reader) -> bool:
        """At or past the reported end of every assigned partition (the caller has just polled nothing)."""
        assigned = reader.assignment()
        if not assigned:
            return False
        ends = reader.end_offsets(assigned)
        return all(reader.position(tp) >= ends.get(tp, 0) for tp in assigned)

    def _whole_share(self, reader: Reader) -> bool:
        """Whether the assigned partitions are all this consumer is to read: all of them, or, in a group, a share
        that has stood long enough. A member that was killed keeps its partitions until its session expires; a
        consumer that called itself idle before then would stop with those partitions never read."""
        if self.group is None:
            return True
        everything = {(t, p) for t in self.names for p in self.transport.partitions(t)}
        if reader.assignment() >= everything:
            return True
        return time.monotonic() - self._assigned_at >= self.group_settle_s

    def _open(self, stats: RunStats, backoff: _Backoff) -> Reader:
        while True:
            try:
                return self.open()
            except Exception as e:
                if not is_transient(e):
                    raise
                self._pause(stats, backoff, "connecting the consumer", e)

    def run(self, until_idle: bool = False, timeout: float | None = None) -> RunStats:
        stats = RunStats()
        started = time.monotonic()
        self._deadline = None if timeout is None else started + timeout
        backoff = _Backoff(self.backoff_s, self.max_backoff_s)
        try:
            reader = self._open(stats, backoff)
            while not self.stop_event.is_set():
                self._check_empty_logs(reader)
                if timeout is not None and time.monotonic() - started > timeout:
                    break
                try:
                    records = reader.poll(self.poll_ms, self.max_records)
                    if not records:
                        self._probe(reader)
                        self._check_log_end(reader)
                        if until_idle and self.caught_up(reader) and self._whole_share(reader):
                            stats.idle = True
                            break
                        continue
                except Exception as e:
                    if not is_transient(e):
                        raise
                    self._pause(stats, backoff, "reading", e)
                    continue
                backoff.reset()
                self._contact = time.monotonic()
                self._check_order(records)
                stats.polled += len(records)
                good, dead = self._decode(records)
                applied, all_dead = self._apply(good, dead, stats, backoff)
                stats.applied += applied
                stats.dead_lettered += len(all_dead)
                stats.batches += 1
                self._commit(reader, records)
                if self.after_batch is not None:
                    self.after_batch()
        except _Stopped:
            pass
        finally:
            stats.seconds = time.monotonic() - started
            self._deadline = None
        if timeout is not None and not stats.idle and not self.stop_event.is_set() and stats.seconds >= timeout:
            stats.errors.append(f"stopped after {timeout:.0f}s without becoming idle")
        return stats

    def _commit(self, reader: Reader, records: Iterable[Record]) -> None:
        if self.group is None:
            return
        last: dict[TopicPartition, int] = {}
        for r in records:
            tp = (r.topic, r.partition)
            last[tp] = max(last.get(tp, -1), r.offset + 1)
        try:
            reader.commit(last)
        except Exception as e:  # the local store is the source of truth; a failed commit only costs a re-read
            log.warning("offset commit failed: %s", e)
