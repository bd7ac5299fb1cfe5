"""Replay: rebuild a bureau's read model from the log into a fresh store, and compare it with the live one.

A replay runs the bureau's own handler (:class:`~mra.services.bureau.BureauStore`) over the catalogue,
verification and holder topics, into a new read model that has no publisher: nothing is queued, nothing
published, and a record that would be dead-lettered is counted rather than sent. It never touches the live
read model.

It is wired as a live bureau is (:func:`~mra.services.bureaus.open_bureau`): the same handler, the same
event verification (the state dir's trust store: signatures or checkpoints), the same key store for sealed
birth dates. Only the publisher is missing, and the transport is read-only.

A replay may be limited to a window of the log. Offsets (``verification:0:12``) are where reading starts in
a partition. Times are the records' own timestamps: a record is applied if it is at or after ``from_time``,
and a partition stops being applied at its first record after ``to_time``. The broker's offsets-for-times
answer is not used — some brokers answer 0 for every time — so a time window reads each partition from its
beginning and filters; records outside the window still advance the replay's positions, which is how
"reached the end" stays true.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mra.core.errors import MraError, ValidationFailed
from mra.core.facts import HolderFile, StoredDecision
from mra.core.plugins import Registry, load_registry
from mra.events.bus import AssignCallback, Reader, TopicPartition, Transaction, Transport
from mra.events.consumer import DeadLetter, Delivery, Processor, RunStats
from mra.events.envelope import Record
from mra.events.topics import Topics
from mra.services.bureau import BUREAU_TOPICS, BureauStore
from mra.services.files import private_dir
from mra.services.privacy import PersonalData
from mra.services.runtime import Runtime
from mra.services.whatif import Scenario, what_if_registry

__all__ = [
    "Difference",
    "PartitionRange",
    "ReadOnlyTransport",
    "ReplayCounts",
    "ReplayResult",
    "Window",
    "behind",
    "compare",
    "parse_position",
    "parse_time",
    "replay",
    "untrustworthy",
]

Progress = Callable[[int, int], None]
"""Called after each batch with the records read so far and the records the log was reported to hold."""


@dataclass(frozen=True)
class Difference:
    holder_id: str
    code: str
    field: str
    live: object
    replayed: object


# --- the window -----------------------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (``2025-10-01T08:00:00+08:00`` or ``…Z``); a time without one is
    refused rather than read in a zone the reader did not mean."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"not an ISO 8601 time: {text!r} (e.g. 2025-10-01T08:00:00+08:00)") from None
    if when.tzinfo is None:
        raise ValidationFailed(f"give the time's offset: {text!r} (e.g. {raw}+08:00 or {raw}Z)")
    return when


def parse_position(text: str, topics: Topics, readable: Sequence[str] = BUREAU_TOPICS) -> tuple[TopicPartition, int]:
    """``TOPIC:PARTITION:OFFSET`` with a logical (``verification``) or physical (``mra.verification``) topic."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) != 3:
        raise ValidationFailed(f"expected TOPIC:PARTITION:OFFSET, e.g. verification:0:12; got {text!r}")
    topic, partition, offset = parts
    names = {t: topics.name(t) for t in readable}
    physical = names.get(topic, topic)
    if physical not in names.values():
        raise ValidationFailed(
            f"{topic!r} is not a topic a replay reads "
            f"({', '.join(readable)}, or their names {', '.join(names.values())})"
        )
    try:
        p, o = int(partition), int(offset)
    except ValueError:
        raise ValidationFailed(f"partition and offset must be whole numbers: {text!r}") from None
    if p < 0 or o < 0:
        raise ValidationFailed(f"partition and offset must not be negative: {text!r}")
    return (physical, p), o


def _ms(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1000)


@dataclass(frozen=True)
class Window:
    """Which records a replay applies: from offsets per partition, and between two record times."""

    start: Mapping[TopicPartition, int] = field(default_factory=dict)
    from_time: datetime | None = None
    to_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.from_time and self.to_time and self.to_time < self.from_time:
            raise ValidationFailed(f"--to-time {self.to_time.isoformat()} is before --from-time")

    @property
    def whole(self) -> bool:
        return not self.start and self.from_time is None and self.to_time is None

    def describe(self) -> dict[str, object]:
        return {
            "from_offsets": {f"{t}:{p}": o for (t, p), o in sorted(self.start.items())},
            "from_time": self.from_time.astimezone(UTC).isoformat() if self.from_time else None,
            "to_time": self.to_time.astimezone(UTC).isoformat() if self.to_time else None,
        }


# --- a transport that only reads ------------------------------------------------------------------------------


class ReadOnlyTransport:
    """Another transport's readers, with writing withheld: a replay publishes nothing, not even dead letters."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.withheld = 0

    def ensure_topics(self, topics: Mapping[str, int]) -> None:
        raise MraError("a replay creates no topics")

    def partitions(self, topic: str) -> list[int]:
        return self.inner.partitions(topic)

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        self.withheld += 1

    def flush(self, timeout: float | None = None) -> None:
        return None

    @contextmanager
    def transaction(self, transactional_id: str) -> Iterator[Transaction]:
        yield Transaction(transactional_id)  # what is sent inside is withheld like the rest

    def fence(self, transactional_id: str) -> None:
        return None

    def reader(
        self, topics: Sequence[str], group: str | None = None, on_assign: AssignCallback | None = None
    ) -> Reader:
        return self.inner.reader(topics, group=group, on_assign=on_assign)

    def close(self) -> None:
        return None


# --- applying a window to one or more fresh read models -------------------------------------------------------


@dataclass
class ReplayCounts:
    """What a replay did with the records it read."""

    read: int = 0
    applied: int = 0
    before: int = 0
    after: int = 0
    dead_lettered: int = 0
    withheld: int = 0


class _Applier:
    """The replay's handler: each batch's in-window records go to every store; the others only move positions."""

    def __init__(self, stores: Sequence[BureauStore], window: Window, progress: Progress | None) -> None:
        self.stores = list(stores)
        self.window = window
        self.progress = progress
        self.expected = 0
        self.counts = ReplayCounts()
        self._from, self._to = _ms(window.from_time), _ms(window.to_time)
        self._stop: dict[TopicPartition, int] = {}  # per partition: the first offset after to_time

    def positions(self) -> Mapping[TopicPartition, int]:
        return {**self.window.start, **self.stores[0].positions()}

    def _place(self, r: Record) -> str:
        tp = (r.topic, r.partition)
        if r.offset < self.window.start.get(tp, 0):
            return "before"
        if self._to is not None and r.timestamp_ms > self._to:
            self._stop[tp] = min(self._stop.get(tp, r.offset), r.offset)
        if r.offset >= self._stop.get(tp, r.offset + 1):
            return "after"
        if self._from is not None and r.timestamp_ms < self._from:
            return "before"
        return "in"

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        kept: list[Delivery] = []
        kept_dead: list[DeadLetter] = []
        outside: list[Record] = []
        placed: list[tuple[Record, str, bool]] = []
        for d in deliveries:
            place = self._place(d.record)
            placed.append((d.record, place, False))
            if place == "in":
                kept.append(d)
            else:
                outside.append(d.record)
        for letter in dead:
            place = self._place(letter.record)
            placed.append((letter.record, place, True))
            if place == "in":
                kept_dead.append(letter)
            else:
                outside.append(letter.record)
        for store in self.stores:
            store.apply(kept, kept_dead)
            if outside:
                store.track(outside)  # positions only: the records are read, not applied
        c = self.counts  # counted once every store has it: a batch that failed is offered again
        for _, place, is_dead in placed:
            c.read += 1
            if place == "before":
                c.before += 1
            elif place == "after":
                c.after += 1
            elif is_dead:
                c.dead_lettered += 1
            else:
                c.applied += 1
        if self.progress is not None and placed:
            self.progress(c.read, self.expected)


@dataclass(frozen=True)
class PartitionRange:
    topic: str
    partition: int
    start: int
    end: int

    def label(self, topics: Topics) -> str:
        return f"{topics.logical(self.topic)}:{self.partition}"


@dataclass
class ReplayResult:
    store: BureauStore
    stats: RunStats
    path: Path
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    window: Window = field(default_factory=Window)
    partitions: list[PartitionRange] = field(default_factory=list)
    what_if: BureauStore | None = None
    what_if_path: Path | None = None

    def close(self) -> None:
        self.store.close()
        if self.what_if is not None:
            self.what_if.close()


def _fresh(path: Path) -> Path:
    if path.exists():
        raise FileExistsError(f"{path} exists: a replay goes into a fresh read model")
    return path


def replay(
    runtime: Runtime,
    jurisdiction: str,
    *,
    registry: Registry | None = None,
    transport: Transport | None = None,
    into: Path | None = None,
    timeout: float | None = 600,
    window: Window | None = None,
    what_if: Scenario | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    """Read the fact topics into a fresh read model (and, with ``what_if``, a second one decided under the
    scenario), applying the records in ``window`` (default: all); nothing is published."""
    registry = registry or load_registry()
    registry.jurisdiction(jurisdiction)
    window = window or Window()
    scenario_registry = what_if_registry(registry, what_if, jurisdiction) if what_if is not None else None
    target = into or Path(tempfile.mkdtemp(prefix=f"mra-replay-{jurisdiction}-"))
    private_dir(target)
    db = _fresh(target / f"{jurisdiction}.db")
    what_if_db = _fresh(target / "what-if" / f"{jurisdiction}.db") if scenario_registry is not None else None
    own = transport is None
    inner = transport or runtime.connect(client_id=f"mra-replay-{jurisdiction}")
    readonly = ReadOnlyTransport(inner)
    stores: list[BureauStore] = []
    processor: Processor | None = None
    try:
        # sealed birth dates open through the key store, as they do for the live bureau
        stores.append(BureauStore(db, jurisdiction, registry, personal=PersonalData.at(runtime.state_dir)))
        if scenario_registry is not None and what_if_db is not None:
            personal = PersonalData.at(runtime.state_dir)
            stores.append(BureauStore(what_if_db, jurisdiction, scenario_registry, personal=personal))
        applier = _Applier(stores, window, progress)
        guard = runtime.guard(readonly, db.with_name(f"{db.stem}.checkpoints.db"))  # events verified as live
        processor = Processor(
            readonly, runtime.topics, BUREAU_TOPICS, guard.wrap(applier), None, validate=guard.validate
        )
        reader = processor.open()
        assigned = reader.assignment()
        unknown = sorted(tp for tp in window.start if tp not in assigned)
        if unknown:
            have = ", ".join(f"{t}:{p}" for t, p in sorted(assigned)) or "none"
            raise ValidationFailed(
                "no such partition: " + ", ".join(f"{t}:{p}" for t, p in unknown) + f" (partitions: {have})"
            )
        begins, ends = reader.beginning_offsets(assigned), reader.end_offsets(assigned)
        ranges = [
            PartitionRange(t, p, max(begins.get((t, p), 0), window.start.get((t, p), 0)), ends.get((t, p), 0))
            for t, p in sorted(assigned)
        ]
        beyond = [f"{t}:{p} at {o} (its end: {ends.get((t, p), 0)})" for (t, p), o in sorted(window.start.items())
                  if o > ends.get((t, p), 0)]
        if beyond:
            raise ValidationFailed("--from-offset beyond the end of the partition: " + "; ".join(beyond))
        applier.expected = sum(max(0, r.end - r.start) for r in ranges)
        stats = processor.run(until_idle=True, timeout=timeout)
    except BaseException:
        for s in stores:
            s.close()
        raise
    finally:
        if processor is not None:
            processor.close()
        if own:
            inner.close()
    applier.counts.withheld = readonly.withheld
    return ReplayResult(
        store=stores[0],
        stats=stats,
        path=db,
        counts=applier.counts,
        window=window,
        partitions=ranges,
        what_if=stores[1] if len(stores) > 1 else None,
        what_if_path=what_if_db,
    )


# --- comparing ------------------------------------------------------------------------------------------------


def behind(live: BureauStore, replayed: BureauStore) -> list[str]:
    """Partitions where the live read model has not yet read as far as the replay: its differences are lag."""
    mine = live.positions()
    return [
        f"{topic}[{partition}]: live at {mine.get((topic, partition), 0)}, log read to {offset}"
        for (topic, partition), offset in sorted(replayed.positions().items())
        if mine.get((topic, partition), 0) < offset
    ]


def _state(s: StoredDecision) -> str:
    return "active" if s.active else f"withdrawn: {s.withdrawn_reason or ''}"


def _facts(f: HolderFile | None) -> dict[str, str]:
    """A holder's facts as comparable text, one entry per kind (the birth date stays as it rests: sealed)."""
    if f is None:
        return {}
    data = dataclasses.asdict(f)
    data.pop("born", None)
    data.pop("holder_id", None)
    return {k: json.dumps(v, sort_keys=True, default=str, ensure_ascii=False) for k, v in data.items()}


def compare(
    live: BureauStore, replayed: BureauStore, transient: list[Difference] | None = None
) -> list[Difference]:
    """Every difference between the two read models: decisions active *and* withdrawn (state, withdrawal reason
    and every field), the facts of every holder either one decided on, the catalogue withdrawals read, and the
    number of holders and certificates.

    One thing is not a difference: a decision *withdrawn* in one read model that the other never made, for a
    holder whose facts are the same in both. Which decisions a bureau makes on the way to a holder's facts
    depends on how the records were batched (a certificate and its revocation read in one batch decide nothing;
    read in two, they decide and withdraw), so such a decision is collected in ``transient`` instead. A
    withdrawn decision missing on one side for a holder whose facts differ is a difference.
    """
    a = {s.decision_id: s for s in live.store.decisions(active=None)}
    b = {s.decision_id: s for s in replayed.store.decisions(active=None)}
    facts_of: dict[str, tuple[dict[str, str], dict[str, str]]] = {}

    def facts(holder: str) -> tuple[dict[str, str], dict[str, str]]:
        if holder not in facts_of:
            facts_of[holder] = (_facts(live.store.holder_file(holder)), _facts(replayed.store.holder_file(holder)))
        return facts_of[holder]

    out: list[Difference] = []
    for ident in sorted(a.keys() | b.keys()):
        x, y = a.get(ident), b.get(ident)
        d = (x or y).decision  # type: ignore[union-attr]
        if x is None or y is None:
            diff = Difference(d.holder_id, d.code, "decision", x and _state(x), y and _state(y))
            only = x or y
            assert only is not None
            same_facts = facts(d.holder_id)[0] == facts(d.holder_id)[1]
            if not only.active and same_facts:
                if transient is not None:
                    transient.append(diff)
            else:
                out.append(diff)
            continue
        if _state(x) != _state(y):
            out.append(Difference(d.holder_id, d.code, "state", _state(x), _state(y)))
        left, right = json.loads(x.decision.model_dump_json()), json.loads(y.decision.model_dump_json())
        for name in sorted(left.keys() | right.keys()):
            if left.get(name) != right.get(name):
                out.append(Difference(d.holder_id, d.code, name, left.get(name), right.get(name)))
    holders = {s.decision.holder_id for s in (*a.values(), *b.values())}
    for holder in sorted(holders):
        fa, fb = facts(holder)
        for name in sorted(fa.keys() | fb.keys()):
            if fa.get(name) != fb.get(name):
                out.append(Difference(holder, "-", f"facts.{name}", fa.get(name), fb.get(name)))
    wa, wb = live.store.withdrawn_entries(), replayed.store.withdrawn_entries()
    for entry in sorted(wa.keys() | wb.keys()):
        left_w = wa.get(entry) and dataclasses.asdict(wa[entry])
        right_w = wb.get(entry) and dataclasses.asdict(wb[entry])
        if json.dumps(left_w, default=str) != json.dumps(right_w, default=str):
            out.append(Difference("-", entry, "catalogue_withdrawal", left_w, right_w))
    ca, cb = live.store.counts(), replayed.store.counts()
    for name in ("holders", "certificates"):
        if getattr(ca, name) != getattr(cb, name):
            out.append(Difference("-", "-", name, getattr(ca, name), getattr(cb, name)))
    return out


def untrustworthy(live: BureauStore, result: ReplayResult) -> list[str]:
    """Why comparing ``result`` with ``live`` would prove nothing (empty when it would).

    A comparison is only an audit when the replay read the whole log the live read model read: from the start of
    every partition (nothing deleted before it, no window), to the end, and at least as far as every position the
    live model recorded. A log shorter than those positions was reset or replaced; an empty log holds nothing
    to compare. Each is reported instead of "no differences".
    """
    problems: list[str] = []
    if not result.window.whole:
        problems.append(
            "the replay applied a window of the log (--from-offset/--from-time/--to-time): it rebuilds part of the "
            "history, so it cannot be compared with the whole live read model"
        )
    if not result.stats.idle:
        problems.append("the replay did not reach the end of the log: " + "; ".join(result.stats.errors))
    live_positions = {tp: off for tp, off in live.positions().items() if off > 0}
    if result.counts.read == 0:
        read = sum(live_positions.values())
        problems.append(
            "the log is empty: the replay read no record"
            + (f", while the live read model read {read} record(s)" if read else "")
        )
    ranges = {(r.topic, r.partition): r for r in result.partitions}
    replayed = result.store.positions()
    for tp, position in sorted(live_positions.items()):
        topic, partition = tp
        r = ranges.get(tp)
        if r is None:
            problems.append(f"{topic}:{partition} is not in the log, but the live read model read it to {position}")
            continue
        read_to = replayed.get(tp, r.start)
        if read_to < position:
            problems.append(
                f"log reset: {topic}:{partition} now ends at {read_to}, below the position {position} the live "
                "read model recorded"
            )
    if result.window.whole:
        for r in result.partitions:
            if r.start > 0:
                problems.append(
                    f"cannot reach the start: {r.topic}:{r.partition} begins at offset {r.start} (earlier records "
                    "were deleted)"
                )
    return problems
