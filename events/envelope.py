"""CloudEvents 1.0 in Kafka binary content mode, with mra's publisher stamp.

Attributes travel as ``ce_*`` headers and the pydantic-serialised body as the value, so any CloudEvents
reader (the SDK's Kafka binding, kcat, confluent-kafka) reads an mra message without mra's code.

The publisher stamp (extension attributes ``mrapublisher``, ``mraepoch``, ``mraseq``, ``mraprev``,
``mrahash``) chains each publisher instance's events: ``mrahash`` is the hash of this event's content,
``mraprev`` the hash of the same instance's previous event. A content hash covers id, source, type,
time, subject and body but not the stamp, so an event re-published after a crash keeps its hash.

A signed event adds two more extension attributes (see :mod:`mra.events.signing`): ``mrasig``, the base64
Ed25519 signature over the event's canonical form, and ``mrakey``, the id of the key that made it. They travel
as ordinary ``ce_*`` headers, so every CloudEvents reader still reads a signed message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from mra.events.schemas import Event, UnknownEventType, upcast

__all__ = [
    "CONTENT_TYPE",
    "KEY_ATTR",
    "SIGNATURE_ATTR",
    "DecodeError",
    "Envelope",
    "Record",
    "Stamp",
    "content_hash",
    "decode",
    "encode",
    "time_text",
]

CONTENT_TYPE = "application/json"
SPECVERSION = "1.0"
MAX_MESSAGE_BYTES = 1_000_000

_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")
_STAMP = ("mrapublisher", "mraepoch", "mraseq", "mraprev", "mrahash")
SIGNATURE_ATTR = "mrasig"
"""Extension attribute holding the base64 Ed25519 signature of a signed event."""
KEY_ATTR = "mrakey"
"""Extension attribute naming the signing key (a key id from the trust store)."""


class DecodeError(ValueError):
    """A message that is not a valid mra event; ``reason`` is what the dead-letter topic records."""


@dataclass(frozen=True)
class Record:
    """One message as read from a topic, whatever the transport."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0


@dataclass(frozen=True)
class Stamp:
    """Who published an event, in which run of that publisher, and where it stands in the run's chain."""

    publisher: str
    epoch: str
    seq: int
    prev: str


@dataclass(frozen=True)
class Envelope:
    """An event with its CloudEvents attributes."""

    id: str
    source: str
    type: str
    time: datetime
    subject: str
    key: str
    data: Event
    stamp: Stamp | None = None
    extensions: dict[str, str] = field(default_factory=dict)
    hash: str = ""

    @property
    def body(self) -> bytes:
        return body_bytes(self.data)


def body_bytes(data: Event) -> bytes:
    return data.model_dump_json(by_alias=True).encode()


def time_text(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def content_hash(id: str, source: str, type: str, time: str, subject: str, body: bytes) -> str:
    """SHA-256 over the event's identity and content, in a fixed, unambiguous layout."""
    h = hashlib.sha256()
    for part in (id, source, type, time, subject):
        b = part.encode()
        h.update(len(b).to_bytes(4, "big"))
        h.update(b)
    h.update(body)
    return h.hexdigest()


def encode(env: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka message for ``env``."""
    body = body_bytes(env.data)
    time = time_text(env.time)
    headers: list[tuple[str, bytes]] = [
        ("ce_specversion", SPECVERSION.encode()),
        ("ce_id", env.id.encode()),
        ("ce_source", env.source.encode()),
        ("ce_type", env.type.encode()),
        ("ce_time", time.encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]
    if env.subject:
        headers.append(("ce_subject", env.subject.encode()))
    digest = env.hash or content_hash(env.id, env.source, env.type, time, env.subject, body)
    if env.stamp is not None:
        headers += [
            ("ce_mrapublisher", env.stamp.publisher.encode()),
            ("ce_mraepoch", env.stamp.epoch.encode()),
            ("ce_mraseq", str(env.stamp.seq).encode()),
            ("ce_mraprev", env.stamp.prev.encode()),
            ("ce_mrahash", digest.encode()),
        ]
    for name, value in env.extensions.items():
        headers.append((f"ce_{name}", value.encode()))
    return env.key.encode(), body, headers


def _text(headers: dict[str, bytes], name: str) -> str:
    try:
        return headers[name].decode()
    except UnicodeDecodeError:
        raise DecodeError(f"header {name} is not UTF-8") from None


def decode(record: Record) -> Envelope:
    """Read an mra event from a record, upcasting old versions; raise :class:`DecodeError` with the reason."""
    headers: dict[str, bytes] = {}
    for name, value in record.headers:
        headers[name] = value if isinstance(value, bytes) else bytes(value or b"")
    missing = [h for h in _REQUIRED if h not in headers]
    if missing:
        raise DecodeError(f"not a CloudEvent in binary mode: missing header(s) {', '.join(missing)}")
    if _text(headers, "ce_specversion") != SPECVERSION:
        raise DecodeError(f"unsupported CloudEvents specversion {headers['ce_specversion']!r}")
    ctype = _text(headers, "content-type") if "content-type" in headers else CONTENT_TYPE
    if ctype.split(";")[0].strip() != CONTENT_TYPE:
        raise DecodeError(f"unsupported content-type {ctype!r} (expected {CONTENT_TYPE})")
    value = record.value or b""
    if len(value) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message of {len(value)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    ce_type = _text(headers, "ce_type")
    try:
        raw: Any = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DecodeError(f"body is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise DecodeError("body is not a JSON object")
    try:
        cls, body = upcast(ce_type, raw)
        data = cls.model_validate(body)
    except UnknownEventType as e:
        raise DecodeError(str(e)) from None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise DecodeError(f"invalid {ce_type} body: {where}: {first['msg']} ({e.error_count()} error(s))") from None
    raw_time = _text(headers, "ce_time") if "ce_time" in headers else ""
    try:
        time = (
            datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
            if raw_time
            else datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        )
    except ValueError:
        raise DecodeError(f"ce_time {raw_time!r} is not an RFC 3339 time") from None
    stamp = None
    if "ce_mrapublisher" in headers:
        try:
            stamp = Stamp(
                publisher=_text(headers, "ce_mrapublisher"),
                epoch=_text(headers, "ce_mraepoch"),
                seq=int(_text(headers, "ce_mraseq")),
                prev=_text(headers, "ce_mraprev"),
            )
        except (KeyError, ValueError):
            raise DecodeError("incomplete or malformed publisher stamp") from None
    extensions = {
        k[3:]: _text(headers, k)
        for k in headers
        if k.startswith("ce_") and k not in _REQUIRED and k[3:] not in (*_STAMP, "time", "subject")
    }
    subject = _text(headers, "ce_subject") if "ce_subject" in headers else ""
    ident, source = _text(headers, "ce_id"), _text(headers, "ce_source")
    digest = content_hash(ident, source, ce_type, raw_time, subject, value)
    return Envelope(
        id=ident,
        source=source,
        type=ce_type,
        time=time,
        subject=subject,
        key=(record.key or b"").decode(errors="replace"),
        data=data,
        stamp=stamp,
        extensions=extensions,
        hash=digest,
    )
