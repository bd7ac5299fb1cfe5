"""CloudEvents binary mode, the publisher stamp and upcasting, without a broker."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest

from mra.events.bus import InMemoryTransport
from mra.events.envelope import DecodeError, Record, decode, encode
from mra.events.publisher import Publisher
from mra.events.schemas import EmployerRef, EmploymentEnded, EmploymentStarted, registered_types
from mra.events.topics import Topics

T0 = datetime(2025, 10, 1, 9, 30, tzinfo=UTC)


def _record(key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Record:
    return Record("mra.holders", 0, 0, key, value, tuple(headers), 0)


def _started(**kw: object) -> EmploymentStarted:
    base: dict[str, object] = dict(
        holder_id="h1",
        jurisdiction="beijing",
        employer=EmployerRef(name="ACME", credit_code="91110000MA01", region="beijing"),
        started=date(2025, 9, 10),
    )
    base.update(kw)
    return EmploymentStarted.model_validate(base)


def test_round_trip_keeps_attributes_body_and_stamp() -> None:
    pub = Publisher(InMemoryTransport(), Topics(), "beijing-intake")
    env = pub.envelope(_started(years_in_scope=3.5), time=T0)
    key, value, headers = encode(env)
    h = dict(headers)
    assert key == b"h1"
    assert h["ce_specversion"] == b"1.0"
    assert h["ce_type"] == b"cn.jjj.holders.employment_started.v3"
    assert h["ce_time"] == b"2025-10-01T09:30:00Z"
    assert h["ce_subject"] == b"h1"
    assert h["content-type"] == b"application/json"
    assert h["ce_mrapublisher"] == b"beijing-intake" and h["ce_mraseq"] == b"0" and h["ce_mraprev"] == b""
    back = decode(_record(key, value, headers))
    assert back.data == env.data
    assert back.id == env.id and back.time == T0 and back.stamp == env.stamp
    assert back.hash == env.hash


def test_chain_links_each_event_to_the_previous_hash() -> None:
    pub = Publisher(InMemoryTransport(), Topics(), "x")
    a = pub.envelope(EmploymentEnded(holder_id="h", jurisdiction="beijing", ended=date(2025, 1, 1)), time=T0)
    b = pub.envelope(EmploymentEnded(holder_id="h", jurisdiction="tianjin", ended=date(2025, 1, 2)), time=T0)
    assert b.stamp is not None and a.stamp is not None
    assert (a.stamp.seq, b.stamp.seq) == (0, 1)
    assert b.stamp.prev == a.hash != b.hash
    assert a.stamp.epoch == b.stamp.epoch != Publisher(InMemoryTransport(), Topics(), "x").epoch


def test_v1_employment_started_is_upcast_to_v2() -> None:
    body = {
        "holder_id": "h9",
        "jurisdiction": "tianjin",
        "employer": {"name": "E", "credit_code": "C", "region": "tianjin"},
        "started": "2025-09-10",
        "years": 4,
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_source", b"/legacy"),
        ("ce_type", b"cn.jjj.holders.employment_started.v1"),
        ("ce_time", b"2025-09-10T00:00:00Z"),
        ("content-type", b"application/json"),
    ]
    env = decode(_record(b"h9", json.dumps(body).encode(), headers))
    assert isinstance(env.data, EmploymentStarted)
    assert env.data.years_in_scope == 4.0 and env.data.in_scope is True and env.data.high_tech is False


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, v: ([x for x in h if x[0] != "ce_type"], v), "missing header(s) ce_type"),
        (lambda h, v: (h, b"{not json"), "body is not JSON"),
        (lambda h, v: (h, b"[1, 2]"), "not a JSON object"),
        (lambda h, v: ([*h, ("content-type", b"text/plain")], v), "unsupported content-type"),
        (
            lambda h, v: ([(k, b"cn.jjj.holders.nope.v1" if k == "ce_type" else x) for k, x in h], v),
            "unknown event type",
        ),
        (
            lambda h, v: ([(k, b"cn.jjj.holders.employment_ended.v9" if k == "ce_type" else x) for k, x in h], v),
            "newer",
        ),
        (lambda h, v: (h, b'{"holder_id": "h"}'), "invalid cn.jjj.holders.employment_ended.v1 body"),
        (lambda h, v: ([(k, b"yesterday" if k == "ce_time" else x) for k, x in h], v), "not an RFC 3339 time"),
        (lambda h, v: (h, b" " * 1_000_001), "exceeds"),
    ],
)
def test_bad_messages_are_rejected_with_a_reason(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    pub = Publisher(InMemoryTransport(), Topics(), "x")
    env = pub.envelope(EmploymentEnded(holder_id="h", jurisdiction="beijing", ended=date(2025, 1, 1)), time=T0)
    key, value, headers = encode(env)
    headers, value = mutate(headers, value)
    with pytest.raises(DecodeError, match=re.escape(reason)):
        decode(_record(key, value, headers))


def test_every_event_type_is_versioned_and_named_for_its_topic() -> None:
    types = registered_types()
    assert len(types) >= 14
    for name, cls in types.items():
        assert name.startswith(f"cn.jjj.{cls.TOPIC}."), name
        assert cls.ce_type() == f"{name}.v{cls.VERSION}"
