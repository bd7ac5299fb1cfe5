"""Audit from the log itself: a holder's trail, a jurisdiction's decisions, and the publishers' hash chains.

Everything here reads topics from their beginning to their end by direct assignment (no consumer group, no
committed offsets) and writes nothing to the cluster. The log is the source of truth; a read model is only
a cache of it, so an audit never relies on one.

Tamper evidence rests on the publisher stamp (:mod:`mra.events.envelope`): each running publisher (one
epoch) numbers its events 0, 1, 2, … (``mraseq``), names the previous one's content hash (``mraprev``) and
states its own (``mrahash``). :func:`verify` recomputes every content hash and walks every epoch's chain in
``mraseq`` order — an epoch may write to several topics and partitions, so offsets only locate and order
within a partition. What it can and cannot show:

- an event whose body or attributes changed after publication (its hash no longer matches its stamp);
- an event dropped from the middle of a chain (a gap), unless the same content was published again, as an
  outbox re-publishes what a crashed publisher could not send: that is a re-send, not a loss;
- events reordered within a partition, a chain link that names another predecessor, two events claiming
  one place in a chain, and events with no stamp at all;
- an event redelivered (same id, same content) is reported as a redelivery, not as tampering; an id used again
  for other content (another type, body or time, by the same publisher or another) is tampering: readers key
  idempotency by (publisher, id) and dead-letter the second, so nobody can pre-empt an id, but publishing under an
  id already taken is no accident (ids are random or derived from what they name).

The hashes are not keyed: someone who can write to the topics and recompute a whole consistent chain, or
drop an epoch's last events, is not caught by the chain alone; signatures and signed checkpoints are what
close that, and are verified where the envelope provides them.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.events.benefits import (
    BenefitsView,
    decided_in,
    holder_of,
    is_benefit_event,
    jurisdiction_of,
    withdrawn_in,
)
from mra.events.bus import TopicPartition, Transport
from mra.events.envelope import KEY_ATTR, DecodeError, Envelope, Record, content_hash, decode
from mra.events.schemas import (
    CatalogueEditionPublished,
    CatalogueEntryWithdrawn,
    CertificateRevoked,
    CertificateVerified,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderErased,
    HolderRegistered,
    VerificationAccepted,
    VerificationDeferred,
    VerificationRefused,
    VerificationRejected,
    VerificationRequested,
)
from mra.events.signing import TrustStore
from mra.events.topics import LOGICAL_TOPICS, Topics
from mra.services.labels import LIST_SEPARATOR, export_header

__all__ = [
    "AUDITED_TOPICS",
    "EXPORT_FIELDS",
    "Finding",
    "TrailEvent",
    "Verification",
    "complete_view",
    "export_columns",
    "export_decisions",
    "log_ends",
    "read_log",
    "resolve_topics",
    "trail",
    "verify",
    "write_export",
]

AUDITED_TOPICS = tuple(t for t in LOGICAL_TOPICS if t != "deadletter")
"""The event topics. The dead-letter topic holds copies of records set aside, not events of its own."""


# --- reading --------------------------------------------------------------------------------------------------


def resolve_topics(transport: Transport, topics: Topics, names: Sequence[str]) -> list[str]:
    """Physical names for logical (``holders``) or physical (``mra.holders``) ones; each must exist."""
    out: list[str] = []
    for name in names or AUDITED_TOPICS:
        if name == "deadletter" or name == topics.name("deadletter"):
            raise ValidationFailed("the dead-letter topic holds copies of records: verify the topics they came from")
        physical = topics.name(name) if name in LOGICAL_TOPICS else name
        if not transport.partitions(physical):
            raise NotFound(f"no topic {physical!r} on the cluster")
        if physical not in out:
            out.append(physical)
    return out


def complete_view(names: Iterable[str]) -> bool:
    """Whether the topics are every event topic of one deployment (one prefix), as a publisher may write to any."""
    chosen = set(names)
    prefixes = {n[: -len(t)] for n in chosen for t in AUDITED_TOPICS if n.endswith(t)}
    return any(all(p + t in chosen for t in AUDITED_TOPICS) for p in prefixes)


def read_log(transport: Transport, names: Sequence[str], *, timeout: float | None = 600) -> Iterator[Record]:
    """Every record of the topics, from the beginning to the end: the reported end reached and a poll past it
    empty (a broker may under-report its log end, so the empty poll is what decides)."""
    reader = transport.reader(list(names))
    try:
        assigned = reader.assignment()
        if not assigned:
            return
        reader.seek_to_beginning(assigned)
        started = time.monotonic()
        while True:
            batch = reader.poll(200, 5000)
            if batch:
                yield from batch
                continue
            ends = reader.end_offsets(assigned)
            if all(reader.position(tp) >= ends.get(tp, 0) for tp in assigned):
                return
            if timeout is not None and time.monotonic() - started > timeout:
                raise MraError(f"did not reach the end of {', '.join(names)} within {timeout:.0f}s")
    finally:
        reader.close()


def log_ends(transport: Transport, names: Sequence[str], *, timeout: float = 60) -> dict[str, int]:
    """The next offset of every partition of ``names`` (``"topic:partition"``), found by reading past the end the
    broker reports until a poll returns nothing (a broker may under-report its log end)."""
    reader = transport.reader(list(names))
    try:
        assigned = reader.assignment()
        if not assigned:
            return {}
        ends = reader.end_offsets(assigned)
        for tp in assigned:
            reader.seek(tp, max(0, ends.get(tp, 0) - 1))
        started = time.monotonic()
        while True:
            if not reader.poll(200, 5000):
                reported = reader.end_offsets(assigned)
                if all(reader.position(tp) >= reported.get(tp, 0) for tp in assigned):
                    break
            if time.monotonic() - started > timeout:
                raise MraError(f"did not reach the end of {', '.join(names)} within {timeout:.0f}s")
        return {f"{t}:{p}": reader.position((t, p)) for t, p in sorted(assigned)}
    finally:
        reader.close()


def _where(topic: str, partition: int, offset: int) -> str:
    return f"{topic}[{partition}]@{offset}"


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- a holder's trail -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailEvent:
    """One event about a holder, where it stands in the log, and what it says (no personal data)."""

    time: str
    topic: str
    partition: int
    offset: int
    id: str
    type: str
    source: str
    summary: str
    decisions: tuple[dict[str, Any], ...] = ()
    copies: tuple[str, ...] = ()


def _summary(data: Event, entries: set[str]) -> str:
    """What an event says, in a line, leaving out the personal fields some events carry sealed."""
    if isinstance(data, HolderRegistered):
        return f"holder registered as {data.category.value}"
    if isinstance(data, VerificationRequested):
        return f"{data.employer.name} ({data.employer.region}) asked to verify {data.entry_id} issued by {data.issuer}"
    if isinstance(data, VerificationRefused):
        return "request refused: " + "; ".join(data.reasons)
    if isinstance(data, VerificationAccepted):
        return f"request accepted, expected by {_iso(data.expected_by)} ({data.turnaround_source})"
    if isinstance(data, VerificationDeferred):
        return f"issuer not reached (attempt {data.attempt}): {data.detail}; asked again at {_iso(data.retry_at)}"
    if isinstance(data, CertificateVerified):
        return f"{data.entry_id} verified by {data.verified_by}, verification code {data.verification_code}"
    if isinstance(data, VerificationRejected):
        return f"certificate rejected: {data.reason}" + (f" ({data.detail})" if data.detail else "")
    if isinstance(data, CertificateRevoked):
        return f"certificate {data.verification_code} revoked: {data.reason}"
    if isinstance(data, HolderErased):
        return f"holder's personal data erased: {data.reason}; {len(data.decisions)} recorded decision(s) stand"
    if isinstance(data, EmploymentStarted):
        who = data.employer
        return f"employed in {data.jurisdiction} by {who.name} ({who.region}) from {data.started}"
    if isinstance(data, EmploymentEnded):
        return f"employment in {data.jurisdiction} ended on {data.ended}"
    if is_benefit_event(data):
        said = [f"decided {d.code} on {d.entry_id}: {d.outcome.value}, under {d.clause}" for d in decided_in(data)]
        said += [f"withdrew {w.code}: {w.reason}" for w in withdrawn_in(data)]
        return f"{jurisdiction_of(data)} " + "; ".join(said)
    if isinstance(data, CatalogueEditionPublished):
        ed = data.edition
        held = sorted(entries & {x.id for x in ed.entries})
        return f"{ed.catalogue} edition {ed.edition} published, effective {ed.effective}, with {', '.join(held)}"
    if isinstance(data, CatalogueEntryWithdrawn):
        return f"{data.entry_id} withdrawn from {data.catalogue} {data.edition} from {data.effective}: {data.reason}"
    return type(data).__name__


def _holder_of(data: Event) -> str | None:
    if is_benefit_event(data):
        return holder_of(data)
    holder = getattr(data, "holder_id", None)
    return holder if isinstance(holder, str) else None


def _touches(data: Event, entries: set[str]) -> bool:
    if isinstance(data, CatalogueEditionPublished):
        return any(x.id in entries for x in data.edition.entries)
    if isinstance(data, CatalogueEntryWithdrawn):
        return data.entry_id in entries
    return False


def trail(transport: Transport, topics: Topics, holder_id: str, *, timeout: float | None = 600) -> dict[str, Any]:
    """Every event about ``holder_id`` in event-time order, catalogue events only where they touch the rows the
    holder's certificates are of, and the decisions standing at the end with the clause each rests on."""
    names = resolve_topics(transport, topics, AUDITED_TOPICS)
    catalogue = topics.name("catalogue")
    key = holder_id.encode()
    found: dict[str, tuple[Record, Envelope, list[str]]] = {}
    editions: list[tuple[Record, Envelope]] = []
    entries: set[str] = set()
    benefits: list[tuple[Record, Envelope]] = []
    for r in read_log(transport, names, timeout=timeout):
        if r.topic != catalogue and r.key != key:
            continue  # holder events are keyed by holder id
        try:
            env = decode(r)
        except DecodeError:
            continue
        if r.topic == catalogue:
            editions.append((r, env))
            continue
        if _holder_of(env.data) != holder_id:
            continue
        if isinstance(env.data, CertificateVerified | VerificationRequested):
            entries.add(env.data.entry_id)
        if is_benefit_event(env.data):
            benefits.append((r, env))
        if env.id in found:
            found[env.id][2].append(_where(r.topic, r.partition, r.offset))
        else:
            found[env.id] = (r, env, [])
    if not found:
        raise NotFound(f"no event about holder {holder_id!r} in {', '.join(names)}")
    for r, env in editions:
        if _touches(env.data, entries) and env.id not in found:
            found[env.id] = (r, env, [])
    events: list[TrailEvent] = []
    rank = {topics.name(t): i for i, t in enumerate(("catalogue", "holders", "verification", "benefits"))}
    order = sorted(found.values(), key=lambda x: (x[1].time, rank.get(x[0].topic, 9), x[0].partition, x[0].offset))
    for r, env, copies in order:  # at one time: facts before what was decided on them
        decisions = tuple(
            {
                "decision_id": d.decision_id,
                "jurisdiction": d.jurisdiction,
                "code": d.code,
                "outcome": d.outcome.value,
                "clause": d.clause,
                "reasons": list(d.reasons),
                "conditions": list(d.conditions),
                "entry_id": d.entry_id,
                "edition": d.edition,
                "rule_version": d.rule_version,
            }
            for d in decided_in(env.data)
        )
        events.append(
            TrailEvent(
                time=_iso(env.time),
                topic=topics.logical(r.topic),
                partition=r.partition,
                offset=r.offset,
                id=env.id,
                type=env.type,
                source=env.source,
                summary=_summary(env.data, entries),
                decisions=decisions,
                copies=tuple(copies),
            )
        )
    shown = {d["decision_id"]: d for e in events for d in e.decisions}
    view = BenefitsView().extend(env for _, env in sorted(benefits, key=lambda x: (x[0].partition, x[0].offset)))
    standing = {p.decision.decision_id: shown[p.decision.decision_id] for p in view.select(holder_id=holder_id)}
    return {
        "holder_id": holder_id,
        "entries": sorted(entries),
        "events": [asdict(e) for e in events],
        "standing": sorted(standing.values(), key=lambda d: (d["jurisdiction"], d["code"], d["entry_id"])),
    }


# --- a jurisdiction's decisions -------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "decision_id",
    "status",
    "jurisdiction",
    "holder_id",
    "code",
    "outcome",
    "clause",
    "reasons",
    "conditions",
    "readings",
    "entry_id",
    "certificate_key",
    "verification_code",
    "edition",
    "rule_version",
    "plugin",
    "inputs",
    "caused_by",
    "decided_at",
    "withdrawn_at",
    "withdrawn_reason",
    "event_id",
    "position",
)


def export_decisions(
    transport: Transport, topics: Topics, jurisdiction: str, *, timeout: float | None = 600
) -> list[dict[str, Any]]:
    """Every decision ``jurisdiction`` published, active or withdrawn, with its reasons, clause, inputs,
    edition and rule version, read from the benefits topic (a decision re-published keeps its first place)."""
    view = BenefitsView()
    names = resolve_topics(transport, topics, ["benefits"])
    for r in read_log(transport, names, timeout=timeout):
        try:
            env = decode(r)
        except DecodeError:
            continue
        if jurisdiction_of(env.data) == jurisdiction:
            view.apply(env, _where(r.topic, r.partition, r.offset))
    out = []
    for p in view.select(jurisdiction=jurisdiction, active=None):
        w = p.withdrawn
        row = {
            **json.loads(p.decision.model_dump_json()),
            "event_id": p.event_id,
            "position": p.position,
            "status": "active" if w is None else "withdrawn",
            "withdrawn_at": None if w is None else _iso(w.withdrawn_at),
            "withdrawn_reason": None if w is None else w.reason,
        }
        out.append({k: row.get(k) for k in EXPORT_FIELDS})
    return sorted(out, key=lambda x: (str(x["decided_at"]), str(x["holder_id"]), str(x["code"]), str(x["decision_id"])))


def export_columns(rows: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """The CSV's columns as (code, header): each field of :data:`EXPORT_FIELDS` under its Chinese header, with
    ``inputs`` flattened into one ``输入:KEY`` column per input key any row has (sorted)."""
    keys = sorted({k for row in rows for k in (row.get("inputs") or {})})
    out: list[tuple[str, str]] = []
    for name in EXPORT_FIELDS:
        codes = [f"inputs.{k}" for k in keys] if name == "inputs" else [name]
        out += [(code, export_header(code)) for code in codes]
    return out


def _cell(value: Any) -> str | int | float:
    """One CSV cell: lists joined with the full-width semicolon, booleans as true/false, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(str(_cell(v)) for v in value)
    if isinstance(value, dict):
        return LIST_SEPARATOR.join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, int | float):
        return value
    return str(value)


def write_export(rows: Iterable[dict[str, Any]], path: Path) -> str:
    """Write rows as JSON Lines (``.jsonl``, ``.ndjson``, English field codes) or CSV (``.csv``: UTF-8 with a
    byte-order mark so that Excel reads the Chinese, Chinese headers, inputs one column each, no JSON in cells)."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".csv"):
        raise ValidationFailed(f"--to {path}: give a .jsonl (JSON Lines) or .csv file")
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        columns = export_columns(rows)
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([header for _, header in columns])
            for row in rows:
                inputs = row.get("inputs") or {}
                values = [inputs.get(c[7:]) if c.startswith("inputs.") else row.get(c) for c, _ in columns]
                writer.writerow([_cell(v) for v in values])
        return "csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return "jsonl"


# --- tamper evidence ------------------------------------------------------------------------------------------

TAMPERING = frozenset(
    {
        "altered",
        "missing",
        "broken_chain",
        "reordered",
        "conflict",
        "unstamped",
        "malformed",
        "id_reused",
        "past_key_point",
    }
)
"""Finding kinds that are evidence of tampering; the others (redelivery, resent, gap_unverified) are reported for
the record."""


@dataclass(frozen=True)
class Finding:
    """Something the log shows about its publishers' chains, where it is, and what it means."""

    kind: str
    topic: str
    partition: int
    offset: int
    detail: str
    publisher: str = ""
    epoch: str = ""
    seq: int | None = None
    related: tuple[str, ...] = ()

    @property
    def tampering(self) -> bool:
        return self.kind in TAMPERING

    @property
    def where(self) -> str:
        return _where(self.topic, self.partition, self.offset)


@dataclass(frozen=True)
class _Stamped:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    id: str
    publisher: str
    epoch: str
    seq: int
    prev: str
    claimed: str
    actual: str
    type: str = ""

    @property
    def where(self) -> str:
        return _where(self.topic, self.partition, self.offset)

    @property
    def sort_key(self) -> tuple[int, str, int, int]:
        return (self.timestamp_ms, self.topic, self.partition, self.offset)


@dataclass
class Verification:
    """What :func:`verify` read and found."""

    topics: list[str]
    complete: bool
    records: int = 0
    stamped: int = 0
    epochs: int = 0
    publishers: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def tampering(self) -> list[Finding]:
        return [f for f in self.findings if f.tampering]

    def as_dict(self) -> dict[str, Any]:
        return {
            "topics": self.topics,
            "complete": self.complete,
            "records": self.records,
            "stamped": self.stamped,
            "publishers": self.publishers,
            "epochs": self.epochs,
            "tampering": len(self.tampering),
            "findings": [{**asdict(f), "tampering": f.tampering, "where": f.where} for f in self.findings],
        }


def _header_text(headers: dict[str, bytes], name: str) -> str:
    return headers[name].decode("utf-8", errors="replace")


def _recomputed(r: Record, headers: dict[str, bytes]) -> str:
    """The record's content hash as decoding computes it; from the raw attributes where the body does not decode."""
    try:
        return decode(r).hash
    except DecodeError:
        raw = {k: _header_text(headers, k) if k in headers else "" for k in ("ce_id", "ce_source", "ce_type")}
        return content_hash(
            raw["ce_id"],
            raw["ce_source"],
            raw["ce_type"],
            _header_text(headers, "ce_time") if "ce_time" in headers else "",
            _header_text(headers, "ce_subject") if "ce_subject" in headers else "",
            r.value or b"",
        )


def _read_stamp(r: Record) -> _Stamped | Finding | None:
    headers = {k: bytes(v or b"") for k, v in r.headers}
    here = (r.topic, r.partition, r.offset)
    missing = [h for h in ("ce_id", "ce_source", "ce_type") if h not in headers]
    if missing:
        return Finding("malformed", *here, f"not a CloudEvent: no {', '.join(missing)} header")
    if "ce_mrapublisher" not in headers:
        return Finding("unstamped", *here, f"event {_header_text(headers, 'ce_id')} carries no publisher stamp")
    try:
        stamp = _Stamped(
            r.topic,
            r.partition,
            r.offset,
            r.timestamp_ms,
            _header_text(headers, "ce_id"),
            _header_text(headers, "ce_mrapublisher"),
            _header_text(headers, "ce_mraepoch"),
            int(_header_text(headers, "ce_mraseq")),
            _header_text(headers, "ce_mraprev"),
            _header_text(headers, "ce_mrahash"),
            _recomputed(r, headers),
            _header_text(headers, "ce_type"),
        )
    except (KeyError, ValueError):
        return Finding("malformed", *here, "incomplete or malformed publisher stamp")
    return stamp


def _reuse(first: _Stamped, other: _Stamped) -> str:
    return f"type {first.type} then {other.type}" if first.type != other.type else "same type, other content"


def _seqs(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}–{b}"


def _chain(
    publisher: str,
    epoch: str,
    members: list[_Stamped],
    by_hash: dict[str, _Stamped],
    complete: bool,
) -> list[Finding]:
    """Walk one epoch's chain in seq order: gaps, links, places claimed twice, and order within partitions."""
    out: list[Finding] = []
    label = f"{publisher} epoch {epoch[:12]}"

    def finding(kind: str, s: _Stamped, detail: str, related: Sequence[str] = ()) -> Finding:
        return Finding(kind, s.topic, s.partition, s.offset, detail, publisher, epoch, s.seq, tuple(related))

    by_seq: dict[int, list[_Stamped]] = defaultdict(list)
    for s in sorted(members, key=lambda m: m.sort_key):
        by_seq[s.seq].append(s)
    reps: dict[int, _Stamped] = {}
    for seq, group in sorted(by_seq.items()):
        first = reps[seq] = group[0]
        for other in group[1:]:
            if other.claimed != first.claimed or other.actual != first.actual:
                out.append(
                    finding(
                        "conflict",
                        other,
                        f"seq {seq} of {label} is claimed by two different events: this one ({other.id}) and "
                        f"{first.id} at {first.where}",
                        [first.where],
                    )
                )
    expected, previous = 0, None
    for seq in sorted(reps):
        s = reps[seq]
        if seq > expected:
            h, resent = s.prev, []
            for _ in range(seq - expected):
                again = by_hash.get(h)
                if again is None:
                    break
                resent.append(again)
                h = again.prev
            gap = _seqs(expected, seq - 1)
            after = f"after seq {previous.seq} at {previous.where} and " if previous else "at the start of the epoch, "
            if len(resent) == seq - expected:
                out.append(
                    finding(
                        "resent",
                        s,
                        f"seq {gap} of {label} were not written in this epoch; the same events were published "
                        f"again at {', '.join(r.where for r in resent)}",
                        [r.where for r in resent],
                    )
                )
            elif complete:
                out.append(
                    finding(
                        "missing",
                        s,
                        f"seq {gap} of {label} are missing from the log ({after}before seq {seq} here): "
                        "dropped or deleted",
                        [previous.where] if previous else [],
                    )
                )
            else:
                out.append(
                    finding(
                        "gap_unverified",
                        s,
                        f"seq {gap} of {label} are not in the topics read ({after}before seq {seq} here): "
                        "they may be on other topics; verify every event topic to tell",
                        [previous.where] if previous else [],
                    )
                )
        elif seq == 0 and s.prev:
            out.append(finding("broken_chain", s, f"the first event of {label} names a predecessor"))
        elif previous is not None and s.prev != previous.claimed:
            out.append(
                finding(
                    "broken_chain",
                    s,
                    f"seq {seq} of {label} names a predecessor other than seq {previous.seq} at {previous.where}: "
                    "that event was replaced, or this one inserted",
                    [previous.where],
                )
            )
        previous, expected = s, seq + 1
    lanes: dict[TopicPartition, list[_Stamped]] = defaultdict(list)
    for seq in sorted(reps):
        lanes[(reps[seq].topic, reps[seq].partition)].append(reps[seq])
    for lane in lanes.values():
        for a, b in pairwise(lane):
            if b.offset < a.offset:
                out.append(
                    finding(
                        "reordered",
                        b,
                        f"seq {b.seq} of {label} stands before seq {a.seq} (at {a.where}) in its partition",
                        [a.where],
                    )
                )
    return out


def _past_point(r: Record, trust: TrustStore) -> Finding | None:
    """An event signed by a retired or revoked key at a position past the key's point."""
    kid = next((bytes(v or b"").decode(errors="replace") for k, v in r.headers if k == f"ce_{KEY_ATTR}"), None)
    found = trust.key(kid) if kid else None
    if found is None:
        return None
    owner, key = found
    if not key.past_point(r.topic, r.partition, r.offset):
        return None
    state = f"revoked on {key.revoked:%Y-%m-%d} ({key.reason})" if key.revoked else f"retired on {key.retired:%Y-%m-%d}"
    return Finding(
        "past_key_point",
        r.topic,
        r.partition,
        r.offset,
        f"signed by {owner}'s key {kid}, {state}, at a position past its point: readers refuse it",
        owner,
    )


def verify(
    transport: Transport,
    names: Sequence[str],
    *,
    complete: bool,
    timeout: float | None = 600,
    trust: TrustStore | None = None,
) -> Verification:
    """Check every record's content hash against its stamp and every epoch's chain across ``names``.

    ``complete`` says the topics read are every topic the publishers write to: only then is a gap proof of a
    missing event; otherwise it may be an event on a topic not read, and is reported as unverified. With ``trust``,
    events signed by retired or revoked keys past their point are reported too."""
    result = Verification(topics=list(names), complete=complete)
    stamped: list[_Stamped] = []
    for r in read_log(transport, names, timeout=timeout):
        result.records += 1
        past = _past_point(r, trust) if trust is not None else None
        if past is not None:
            result.findings.append(past)
        read = _read_stamp(r)
        if read is None:
            continue
        if isinstance(read, Finding):
            result.findings.append(read)
            continue
        stamped.append(read)
        if read.claimed != read.actual:
            result.findings.append(
                Finding(
                    "altered",
                    read.topic,
                    read.partition,
                    read.offset,
                    f"event {read.id}: its content no longer has the hash its publisher stamped "
                    f"({read.claimed[:16]}…, now {read.actual[:16]}…): changed after publication",
                    read.publisher,
                    read.epoch,
                    read.seq,
                )
            )
    result.stamped = len(stamped)
    by_hash: dict[str, _Stamped] = {}
    by_id: dict[str, list[_Stamped]] = defaultdict(list)
    chains: dict[tuple[str, str], list[_Stamped]] = defaultdict(list)
    for s in sorted(stamped, key=lambda m: m.sort_key):
        by_hash.setdefault(s.actual, s)
        by_id[s.id].append(s)
        chains[(s.publisher, s.epoch)].append(s)
    for group in by_id.values():
        first = group[0]
        for other in group[1:]:
            if other.claimed != other.actual or first.claimed != first.actual:
                continue  # reported as altered
            same = other.actual == first.actual
            again = f", published again by {other.publisher} in another epoch" if other.epoch != first.epoch else ""
            result.findings.append(
                Finding(
                    "redelivery" if same else "id_reused",
                    other.topic,
                    other.partition,
                    other.offset,
                    (
                        f"a redelivery of event {other.id} first at {first.where} (same id and content)"
                        if same
                        else f"event id {other.id} of the event at {first.where} (published by {first.publisher}) "
                        f"used again by {other.publisher} for other content ({_reuse(first, other)})"
                        + (
                            ": readers dead-letter it"
                            if other.publisher == first.publisher
                            else ": readers keep the two apart by publisher"
                        )
                    )
                    + (again if same else ""),
                    other.publisher,
                    other.epoch,
                    other.seq,
                    (first.where,),
                )
            )
    for (publisher, epoch), members in sorted(chains.items()):
        result.findings += _chain(publisher, epoch, members, by_hash, complete)
    result.epochs = len(chains)
    result.publishers = sorted({p for p, _ in chains})
    result.findings.sort(key=lambda f: (f.topic, f.partition, f.offset, f.kind))
    return result
