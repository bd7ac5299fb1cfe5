"""The activity of a running deployment, one line per thing a person waits for: requests accepted, verified,
rejected; decisions made for a holder; dead letters.

It reads the log itself (verification, benefits and dead-letter topics, from their ends when it starts), so it
says what was published, not what a service meant to do, and it needs nothing from the services it watches.
Bodies are read as plain JSON (nothing personal is shown: holder ids are pseudonymous).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from mra.events.bus import Reader, Transport
from mra.events.envelope import Record
from mra.events.topics import Topics

__all__ = ["Activity", "activity_lines"]

_REQUEST = {
    "cn.jjj.verification.accepted": "request_accepted",
    "cn.jjj.verification.refused": "request_refused",
    "cn.jjj.verification.certificate_verified": "request_verified",
    "cn.jjj.verification.rejected": "request_rejected",
    "cn.jjj.verification.deferred": "request_deferred",
    "cn.jjj.verification.certificate_revoked": "certificate_revoked",
}
_DECIDED = "cn.jjj.benefits.benefit_decided"
_WITHDRAWN = "cn.jjj.benefits.benefit_withdrawn"
_DECISION_SET = "cn.jjj.benefits.decision_set_changed"


def _headers(record: Record) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in record.headers:
        try:
            out[name] = bytes(value or b"").decode()
        except UnicodeDecodeError:
            out[name] = ""
    return out


def _body(record: Record) -> dict[str, Any]:
    try:
        body = json.loads(record.value or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _time(headers: dict[str, str], record: Record) -> datetime:
    try:
        return datetime.fromisoformat(headers["ce_time"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)


def _base_type(ce_type: str) -> str:
    """``cn.jjj.x.y.v2`` → ``cn.jjj.x.y``: the activity is the same in every version."""
    head, _, last = ce_type.rpartition(".")
    return head if last[:1] == "v" and last[1:].isdigit() else ce_type


def activity_lines(records: Sequence[Record], topics: Topics) -> list[dict[str, Any]]:
    """The activity in ``records``: one entry per verification outcome, per dead letter and per decision set
    (``decision_set_changed``), with counts by outcome (per-decision events of older bureaus: one entry per
    jurisdiction and holder)."""
    out: list[dict[str, Any]] = []
    decisions: dict[tuple[str, str, str], dict[str, Any]] = {}
    outcomes: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    dead_topic, benefits_topic = topics.name("deadletter"), topics.name("benefits")
    for record in records:
        headers = _headers(record)
        at = _time(headers, record)
        if record.topic == dead_topic:
            out.append(
                {
                    "at": at,
                    "kind": "dead_letter",
                    "topic": headers.get("mra_dlq_topic", ""),
                    "partition": headers.get("mra_dlq_partition", ""),
                    "offset": headers.get("mra_dlq_offset", ""),
                    "consumer": headers.get("mra_dlq_consumer", ""),
                    "reason": headers.get("mra_dlq_reason", ""),
                }
            )
            continue
        ce_type = _base_type(headers.get("ce_type", ""))
        if ce_type in _REQUEST:
            body = _body(record)
            entry = {"at": at, "kind": _REQUEST[ce_type]}
            for key in ("request_id", "holder_id", "entry_id", "verification_code", "reason", "detail", "reasons"):
                if body.get(key) not in (None, "", []):
                    entry[key] = body[key]
            out.append(entry)
        elif record.topic == benefits_topic and ce_type in (_DECIDED, _WITHDRAWN, _DECISION_SET):
            body = _body(record)
            decision = body.get("decision") if isinstance(body.get("decision"), dict) else body
            holder = str(decision.get("holder_id", "")) if isinstance(decision, dict) else ""
            jurisdiction = str(decision.get("jurisdiction", "")) if isinstance(decision, dict) else ""
            # one line per decision set; older per-decision events are grouped per holder within what was read
            who = (jurisdiction, holder, headers.get("ce_id", "") if ce_type == _DECISION_SET else "")
            if who not in decisions:
                decisions[who] = {"at": at, "kind": "decisions", "jurisdiction": jurisdiction, "holder_id": holder}
                out.append(decisions[who])
            decisions[who]["at"] = max(decisions[who]["at"], at)
            if ce_type == _WITHDRAWN:
                outcomes[who]["withdrawn"] += 1
            elif ce_type == _DECIDED and isinstance(decision, dict):
                outcomes[who][str(decision.get("outcome", "decided"))] += 1
            else:
                for d in body.get("decisions") or []:
                    if isinstance(d, dict):
                        outcomes[who][str(d.get("outcome", "decided"))] += 1
                for _w in body.get("withdrawn") or []:
                    outcomes[who]["withdrawn"] += 1
    for who, entry in decisions.items():
        entry["outcomes"] = dict(sorted(outcomes[who].items()))
    return out


class Activity:
    """Follows the topics from their current ends and hands each activity entry to ``emit``."""

    def __init__(self, transport: Transport, topics: Topics, emit: Callable[[dict[str, Any]], None]) -> None:
        self.transport, self.topics, self.emit = transport, topics, emit
        self.stop_event = threading.Event()
        names = [topics.name(t) for t in ("verification", "benefits", "deadletter")]
        self._reader: Reader = transport.reader(names)
        tps = sorted(self._reader.assignment())
        for tp, end in self._reader.end_offsets(tps).items():
            self._reader.seek(tp, end)

    def poll_once(self, timeout_ms: int = 500) -> list[dict[str, Any]]:
        entries = activity_lines(self._reader.poll(timeout_ms, 500), self.topics)
        for entry in entries:
            self.emit(entry)
        return entries

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.poll_once()

    def close(self) -> None:
        self._reader.close()


