"""Dead letters: what consumers set aside, and re-driving it once the cause is fixed.

A consumer that cannot read or apply a record copies it to the dead-letter topic with the original key, value
and headers, plus ``mra_dlq_*`` headers saying why, from where and by whom (see
:func:`mra.events.consumer.dead_letter_headers`). Re-driving publishes the original record again (same key,
value and headers, without the ``mra_dlq_*`` ones) to its original topic. Consumers dedupe by event id, so a
consumer that applied the event before skips it, and the one that set it aside applies it now.

What was re-driven is recorded in ``dlq/redriven.db`` under the state directory, by the dead letter's place and
by the original record's place (two consumers may set the same record aside): neither is re-driven twice. A
crash between publishing and recording re-drives once more at worst, which the consumers' dedupe absorbs.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.events.bus import TopicPartition, Transport
from mra.events.consumer import DLQ_HEADER_PREFIX
from mra.events.envelope import Record
from mra.events.topics import LOGICAL_TOPICS, Topics
from mra.services.files import private_sqlite

__all__ = [
    "DeadLetterEntry",
    "Redrive",
    "RedriveLog",
    "find",
    "parse_ref",
    "read_dead_letters",
    "redrive",
]

_MAX_TEXT = 20_000


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", errors="replace")


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class DeadLetterEntry:
    """One record of the dead-letter topic, with what its headers say."""

    record: Record

    @property
    def ref(self) -> str:
        """How an operator names it: ``PARTITION:OFFSET`` in the dead-letter topic."""
        return f"{self.record.partition}:{self.record.offset}"

    def header(self, name: str) -> str | None:
        found = None
        for k, v in self.record.headers:
            if k == name:
                found = _text(v)
        return found

    @property
    def reason(self) -> str:
        return self.header("mra_dlq_reason") or ""

    @property
    def consumer(self) -> str:
        return self.header("mra_dlq_consumer") or ""

    @property
    def original_topic(self) -> str | None:
        return self.header("mra_dlq_topic")

    @property
    def original_partition(self) -> int | None:
        raw = self.header("mra_dlq_partition")
        return None if raw is None else _int(raw)

    @property
    def original_offset(self) -> int | None:
        raw = self.header("mra_dlq_offset")
        return None if raw is None else _int(raw)

    @property
    def original(self) -> str:
        """Where the record was read: ``topic[partition]@offset``."""
        return f"{self.original_topic or '?'}[{self.original_partition}]@{self.original_offset}"

    @property
    def truncated(self) -> int | None:
        """The original value's length when the dead letter holds only its start (too large to copy whole)."""
        raw = self.header("mra_dlq_truncated")
        return None if raw is None else _int(raw)

    @property
    def type(self) -> str | None:
        return self.header("ce_type")

    @property
    def id(self) -> str | None:
        return self.header("ce_id")

    @property
    def event_time(self) -> str | None:
        return self.header("ce_time")

    @property
    def dead_lettered_at(self) -> str:
        ms = self.record.timestamp_ms
        if ms <= 0:
            return ""
        try:
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
        except (OverflowError, OSError, ValueError):
            return ""

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The headers the record had before it was set aside."""
        return [(k, v) for k, v in self.record.headers if not k.startswith(DLQ_HEADER_PREFIX)]

    def body_text(self) -> str:
        """The value, pretty-printed if it is JSON, else as text, else a hex preview."""
        value = self.record.value or b""
        try:
            return json.dumps(json.loads(value), ensure_ascii=False, indent=2)[:_MAX_TEXT]
        except (ValueError, RecursionError):
            pass
        try:
            return value.decode("utf-8")[:_MAX_TEXT]
        except UnicodeDecodeError:
            return f"<{len(value)} bytes, not UTF-8> {value[:256].hex()}"

    def summary(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "dead_lettered_at": self.dead_lettered_at,
            "reason": self.reason,
            "consumer": self.consumer,
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": self.original_offset,
            "type": self.type,
            "id": self.id,
            "event_time": self.event_time,
            "size": self.truncated if self.truncated is not None else len(self.record.value or b""),
            "truncated": self.truncated is not None,
        }

    def details(self) -> dict[str, Any]:
        return self.summary() | {
            "key": _text(self.record.key) if self.record.key is not None else None,
            "headers": [[k, _text(v)] for k, v in self.record.headers],
            "body": self.body_text(),
        }


def parse_ref(ref: str) -> tuple[int, int]:
    """``PARTITION:OFFSET`` as two numbers, or a clear refusal."""
    text = ref.strip()
    left, sep, right = text.partition(":")
    if not sep or not left.isdigit() or not right.isdigit():
        raise ValidationFailed(f"{ref!r} is not a dead letter: name one as PARTITION:OFFSET (see `mra dlq list`)")
    return int(left), int(right)


def read_dead_letters(transport: Transport, topics: Topics, timeout: float = 60.0) -> list[DeadLetterEntry]:
    """Every record of the dead-letter topic, read from the beginning until an empty poll at the end."""
    name = topics.name("deadletter")
    reader = transport.reader([name])
    out: list[Record] = []
    try:
        assigned: list[TopicPartition] = sorted(reader.assignment())
        if not assigned:
            return []
        reader.seek_to_beginning(assigned)
        deadline = time.monotonic() + timeout
        while True:
            batch = reader.poll(200, 5000)
            if batch:
                out.extend(batch)
                continue
            ends = reader.end_offsets(assigned)
            if all(reader.position(tp) >= ends.get(tp, 0) for tp in assigned):
                break
            if time.monotonic() > deadline:
                raise MraError(f"could not read {name} to its end within {timeout:g}s")
    finally:
        reader.close()
    out.sort(key=lambda r: (r.partition, r.offset))
    return [DeadLetterEntry(r) for r in out]


def find(entries: Sequence[DeadLetterEntry], ref: str) -> DeadLetterEntry:
    partition, offset = parse_ref(ref)
    for e in entries:
        if e.record.partition == partition and e.record.offset == offset:
            return e
    raise NotFound(f"no dead letter {partition}:{offset} (see `mra dlq list`)")


class RedriveLog:
    """What was re-driven, by the dead letter's place and the original record's place."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS redriven (
        dlq_topic TEXT NOT NULL, dlq_partition INTEGER NOT NULL, dlq_offset INTEGER NOT NULL,
        original_topic TEXT NOT NULL, original_partition INTEGER NOT NULL, original_offset INTEGER NOT NULL,
        event_id TEXT, redriven_at TEXT NOT NULL,
        PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
    );
    CREATE INDEX IF NOT EXISTS redriven_original ON redriven (original_topic, original_partition, original_offset);
    """

    def __init__(self, path: Path) -> None:
        private_sqlite(path)
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(self.SCHEMA)

    @classmethod
    def at(cls, state_dir: Path, topics: Topics) -> RedriveLog:
        return cls(state_dir / "dlq" / topics.prefix.rstrip(".") / "redriven.db")

    def close(self) -> None:
        self.db.close()

    def when(self, e: DeadLetterEntry) -> str | None:
        """When this dead letter, or another of the same original record, was re-driven (None: never)."""
        row = self.db.execute(
            "SELECT redriven_at FROM redriven WHERE (dlq_topic = ? AND dlq_partition = ? AND dlq_offset = ?) "
            "OR (original_topic = ? AND original_partition = ? AND original_offset = ?) "
            "ORDER BY redriven_at LIMIT 1",
            (
                e.record.topic,
                e.record.partition,
                e.record.offset,
                e.original_topic or "",
                e.original_partition if e.original_partition is not None else -1,
                e.original_offset if e.original_offset is not None else -1,
            ),
        ).fetchone()
        return None if row is None else str(row[0])

    def record(self, entries: Iterable[DeadLetterEntry], at: datetime) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for e in entries:
                self.db.execute(
                    "INSERT OR IGNORE INTO redriven VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        e.record.topic,
                        e.record.partition,
                        e.record.offset,
                        e.original_topic or "",
                        e.original_partition if e.original_partition is not None else -1,
                        e.original_offset if e.original_offset is not None else -1,
                        e.id,
                        at.isoformat(),
                    ),
                )


@dataclass(frozen=True)
class Redrive:
    """What happened to one dead letter: ``redriven``, ``would-redrive`` (dry run), ``skipped`` or ``refused``."""

    entry: DeadLetterEntry
    status: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        e = self.entry
        return {
            "ref": e.ref,
            "status": self.status,
            "detail": self.detail,
            "id": e.id,
            "type": e.type,
            "target": e.original_topic,
        }


def _problem(e: DeadLetterEntry, topics: Topics) -> str | None:
    """Why ``e`` cannot be re-driven, or None."""
    target = e.original_topic
    if not target:
        return "no mra_dlq_topic header: not a dead letter mra wrote"
    if not target.startswith(topics.prefix) or topics.logical(target) not in LOGICAL_TOPICS:
        return f"its original topic {target!r} is not one of this deployment's topics (prefix {topics.prefix!r})"
    if topics.logical(target) == "deadletter":
        return "its original topic is the dead-letter topic itself"
    if e.truncated is not None:
        return (
            f"it holds only the start of a {e.truncated}-byte record; the record itself is at {e.original} "
            "(a consumer reading it again sets it aside again: it is over the size limit)"
        )
    return None


def redrive(
    transport: Transport,
    topics: Topics,
    entries: Sequence[DeadLetterEntry],
    log: RedriveLog,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> list[Redrive]:
    """Publish each dead letter's original record to its original topic, once; flush before recording it."""
    out: list[Redrive] = []
    chosen: list[DeadLetterEntry] = []
    originals: set[tuple[str | None, int | None, int | None]] = set()
    for e in entries:
        problem = _problem(e, topics)
        if problem:
            out.append(Redrive(e, "refused", problem))
            continue
        when = log.when(e)
        if when is not None:
            out.append(Redrive(e, "skipped", f"already re-driven at {when}"))
            continue
        place = (e.original_topic, e.original_partition, e.original_offset)
        if place in originals:
            out.append(Redrive(e, "skipped", f"the same original record {e.original} is re-driven in this run"))
            continue
        originals.add(place)
        chosen.append(e)
        out.append(Redrive(e, "would-redrive" if dry_run else "redriven", f"to {e.original_topic}"))
    if dry_run or not chosen:
        return out
    for e in chosen:
        assert e.original_topic is not None
        transport.send(e.original_topic, e.record.key, e.record.value or b"", e.original_headers())
    transport.flush(30)  # raises PublishError: nothing recorded, so a retry re-drives them
    log.record(chosen, now or datetime.now(UTC))
    return out
