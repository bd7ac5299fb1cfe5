"""CloudEvents 1.0 in Kafka binary content mode, with mra's publisher stamp.

Attributes travel as ``ce_*`` headers and the pydantic-serialised body as the value, so any CloudEvents
reader (the SDK's Kafka binding, kcat, confluent-kafka) reads an mra message without mra's code.

The publisher stamp (extension attributes ``mrapublisher``, ``mraepoch``, ``mraseq``, ``mraprev``,
``mrahash``) chains each publisher instance's events: ``mrahash`` is the hash of this event's content,
``mraprev`` the hash of the same instance's previous event. A content hash covers id, source, type,
time, subject and body but not the stamp, so an event re-published after a crash keeps its hash.

Every event names the JSON Schema of its body in the CloudEvents attribute ``dataschema``
(``ce_dataschema``): ``urn:mra:schema:<type>``, the ``$id`` of ``docs/contracts/schemas/<type>.json``. It follows
from the type, so it is neither hashed nor signed; a reader accepts any ``ce_dataschema`` (an outside producer may
name its own copy) and validates the body against the model of ``ce_type``, which is what the schema describes.

A signed event adds two more extension attributes (see :mod:`mra.events.signing`): ``mrasig``, the base64
Ed25519 signature over the event's canonical form, and ``mrakey``, the id of the key that made it. They travel
as ordinary ``ce_*`` headers, so every CloudEvents reader still reads a signed message.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from mra.events.schemas import Event, UnknownEventType, event_class, upcast

__all__ = [
    "CONTENT_TYPE",
    "KEY_ATTR",
    "MAX_ATTRIBUTE_CHARS",
    "SIGNATURE_ATTR",
    "DecodeError",
    "Envelope",
    "Record",
    "Stamp",
    "body_bytes",
    "content_hash",
    "dataschema",
    "decode",
    "encode",
    "hash_parts",
    "length_prefixed",
    "message_headers",
    "new_envelope",
    "sha256_hex",
    "time_text",
]

CONTENT_TYPE = "application/json"
SPECVERSION = "1.0"
MAX_MESSAGE_BYTES = 1_000_000
MAX_ATTRIBUTE_CHARS = 4096
"""The longest ``ce_*`` attribute value read (ids, types, sources, signatures are far shorter)."""
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")

_REQUIRED = ("ce_specversion", "ce_id", "ce_source", "ce_type")
DATASCHEMA_PREFIX = "urn:mra:schema:"
"""``ce_dataschema`` of an mra event: this prefix, then its CloudEvents type."""
_STAMP = ("mrapublisher", "mraepoch", "mraseq", "mraprev", "mrahash")
SIGNATURE_ATTR = "mrasig"
"""Extension attribute holding the base64 Ed25519 signature of a signed event."""
KEY_ATTR = "mrakey"
"""Extension attribute naming the signing key (a key id from the trust store)."""

# headers every message carries with the same value: one tuple each, shared by all messages
SPECVERSION_HEADER = ("ce_specversion", SPECVERSION.encode())
CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
# the ce_* headers that are not extension attributes
_NOT_EXTENSIONS = frozenset(
    (*_REQUIRED, "ce_time", "ce_subject", "ce_dataschema", *(f"ce_{s}" for s in _STAMP))
)


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
    """An event with its CloudEvents attributes.

    ``serialised`` keeps the body bytes ``data`` was serialised to (by the publisher) or read from (by
    :func:`decode`), paired with that ``data``, so an event is serialised once however often its body is
    needed (hash, signature, message). It counts only while it belongs to this envelope's ``data``: an
    envelope copied with other data (``dataclasses.replace(env, data=...)``) serialises the new data.
    """

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
    serialised: tuple[Event, bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> bytes:
        """The body as it travels: the bytes ``data`` was serialised to or read from."""
        s = self.serialised
        if s is not None and s[0] is self.data:
            return s[1]
        return body_bytes(self.data)


_new = object.__new__


def new_envelope(
    id: str,
    source: str,
    type: str,
    time: datetime,
    subject: str,
    key: str,
    data: Event,
    stamp: Stamp | None,
    extensions: dict[str, str],
    hash: str,
    serialised: tuple[Event, bytes] | None,
) -> Envelope:
    """``Envelope(...)`` with every field given, in half the time of the frozen dataclass's ``__init__``: the
    publisher and the decoder make one per event."""
    env: Envelope = _new(Envelope)
    env.__dict__.update(
        id=id,
        source=source,
        type=type,
        time=time,
        subject=subject,
        key=key,
        data=data,
        stamp=stamp,
        extensions=extensions,
        hash=hash,
        serialised=serialised,
    )
    return env


def body_bytes(data: Event) -> bytes:
    """``data``'s JSON body, by alias: the same bytes as ``data.model_dump_json(by_alias=True).encode()``."""
    return type(data).__pydantic_serializer__.to_json(data, by_alias=True)


def dataschema(ce_type: str) -> str:
    """The URI naming the JSON Schema of ``ce_type``'s body (its ``$id``; the file is ``<type>.json``)."""
    return DATASCHEMA_PREFIX + ce_type


def time_text(t: datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


_GIL_FREE_BYTES = 2047
"""The most bytes hashlib hashes in one call without releasing the GIL (it releases it from 2048 on)."""


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data`` in hex, computed without releasing the GIL.

    A publisher shares its process with the Kafka client's I/O thread: a call that releases the GIL for the few
    microseconds of a hash can wait hundreds of microseconds to get it back, so large inputs are fed to the hash
    in pieces small enough to keep it.
    """
    if len(data) <= _GIL_FREE_BYTES:
        return hashlib.sha256(data).hexdigest()
    h = hashlib.sha256()
    view = memoryview(data)
    for at in range(0, len(data), _GIL_FREE_BYTES):
        h.update(view[at : at + _GIL_FREE_BYTES])
    return h.hexdigest()


def length_prefixed(b: bytes) -> bytes:
    """``b`` as one part of a content hash's input: its 4-byte big-endian length, then itself."""
    return len(b).to_bytes(4, "big") + b


def hash_parts(id: bytes, source: bytes, type: bytes, time: bytes, subject: bytes, body: bytes) -> str:
    """:func:`content_hash` over parts already :func:`length_prefixed` (a publisher prefixes its constant ones
    once)."""
    return sha256_hex(b"".join((id, source, type, time, subject, body)))


def content_hash(id: str, source: str, type: str, time: str, subject: str, body: bytes) -> str:
    """SHA-256 over the event's identity and content, in a fixed, unambiguous layout: each of id, source,
    type, time and subject as a 4-byte big-endian length and its UTF-8 bytes, then the body."""
    i, s, t, w, j = (length_prefixed(part.encode()) for part in (id, source, type, time, subject))
    return hash_parts(i, s, t, w, j, body)


Header = tuple[str, bytes]


def message_headers(
    id: str,
    source: Header,
    type: Header,
    schema: Header,
    time: str,
    subject: str,
    stamp: tuple[Header, Header, Stamp] | None,
    digest: str,
    extensions: dict[str, str],
) -> list[Header]:
    """The headers of a message, in their order. ``source``, ``type``, ``schema`` (``ce_dataschema``) and the
    stamp's publisher and epoch headers come encoded, so a publisher encodes those once rather than once per
    event."""
    headers: list[Header] = [
        SPECVERSION_HEADER,
        ("ce_id", id.encode()),
        source,
        type,
        schema,
        ("ce_time", time.encode()),
        CONTENT_TYPE_HEADER,
    ]
    if subject:
        headers.append(("ce_subject", subject.encode()))
    if stamp is not None:
        publisher, epoch, s = stamp
        headers += [
            publisher,
            epoch,
            ("ce_mraseq", str(s.seq).encode()),
            ("ce_mraprev", s.prev.encode()),
            ("ce_mrahash", digest.encode()),
        ]
    for name, value in extensions.items():
        headers.append((f"ce_{name}", value.encode()))
    return headers


def encode(env: Envelope) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka message for ``env``."""
    body = env.body
    time = time_text(env.time)
    digest = env.hash or content_hash(env.id, env.source, env.type, time, env.subject, body)
    stamp = env.stamp
    headers = message_headers(
        env.id,
        ("ce_source", env.source.encode()),
        ("ce_type", env.type.encode()),
        ("ce_dataschema", dataschema(env.type).encode()),
        time,
        env.subject,
        None
        if stamp is None
        else (("ce_mrapublisher", stamp.publisher.encode()), ("ce_mraepoch", stamp.epoch.encode()), stamp),
        digest,
        env.extensions,
    )
    return env.key.encode(), body, headers


_CURRENT: dict[str, type[Event]] = {}
"""Event classes by the CloudEvents type of their current version: these bodies need no upcaster."""


def _current_class(ce_type: str) -> type[Event] | None:
    """The model for ``ce_type`` if it is a current version, None for an older one; raise for an unknown type."""
    cls = _CURRENT.get(ce_type)
    if cls is None:
        cls = event_class(ce_type)
        if cls.ce_type() != ce_type:
            return None
        _CURRENT[ce_type] = cls
    return cls


def _invalid(ce_type: str, e: ValidationError) -> DecodeError:
    first = e.errors(include_url=False, include_context=False, include_input=False)[0]
    kind, loc = first["type"], first["loc"]
    if kind == "json_invalid":
        if "recursion limit" in first["msg"]:
            return DecodeError("body is nested too deeply to read as JSON")
        return DecodeError(f"body is not JSON: {first['msg'].removeprefix('Invalid JSON: ')}")
    if kind == "model_type" and not loc:
        return DecodeError("body is not a JSON object")
    where = ".".join(str(p) for p in loc) or "body"
    return DecodeError(f"invalid {ce_type} body: {where}: {first['msg']} ({e.error_count()} error(s))")


def _upcast_body(ce_type: str, value: bytes) -> Event:
    """The body of an older version, read as JSON, brought up to date by the upcasters and validated."""
    try:
        raw: Any = json.loads(value)
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise DecodeError(f"body is not JSON: {e}") from None
    except RecursionError:
        raise DecodeError("body is nested too deeply to read as JSON") from None
    if not isinstance(raw, dict):
        raise DecodeError("body is not a JSON object")
    try:
        cls, body = upcast(ce_type, raw)
    except UnknownEventType as e:
        raise DecodeError(str(e)) from None
    except Exception as e:  # an upcaster given a body it cannot read: the record is bad, the reader goes on
        target = event_class(ce_type).VERSION
        raise DecodeError(
            f"cannot decode: {type(e).__name__} upcasting {ce_type} to v{target}: {str(e)[:300]}"
        ) from None
    try:
        return cls.model_validate(body)
    except ValidationError as e:
        raise _invalid(ce_type, e) from None


def decode(record: Record) -> Envelope:
    """Read an mra event from a record, upcasting old versions; raise :class:`DecodeError` with the reason.

    A body of the type's current version is parsed and validated in one step (``model_validate_json``);
    an older one is read as JSON, upcast, then validated.
    """
    text: dict[str, str] = {}
    extensions: dict[str, str] = {}
    ctype_raw: bytes | None = None
    for name, value in record.headers:
        if type(value) is not bytes:
            value = bytes(value or b"")
        if name.startswith("ce_"):
            if name in text:  # readers disagree on which copy counts: the record means two things
                raise DecodeError(f"header {name} appears more than once")
            try:
                text[name] = s = value.decode()
            except UnicodeDecodeError:
                raise DecodeError(f"header {name} is not UTF-8") from None
            if not s and name != "ce_mraprev":  # the first event of a chain names no predecessor
                raise DecodeError(f"header {name} is empty (a CloudEvents attribute has a value or is absent)")
            if len(s) > MAX_ATTRIBUTE_CHARS:
                raise DecodeError(f"header {name} is longer than {MAX_ATTRIBUTE_CHARS} characters")
            if name not in _NOT_EXTENSIONS:
                if not _EXTENSION_NAME.match(name[3:]):
                    raise DecodeError(f"header {name} is not a CloudEvents attribute name (a-z, 0-9, at most 20)")
                extensions[name[3:]] = s
        elif name == "content-type":
            ctype_raw = value
    for name in _REQUIRED:
        if name not in text:
            missing = [h for h in _REQUIRED if h not in text]
            raise DecodeError(f"not a CloudEvent in binary mode: missing header(s) {', '.join(missing)}")
    if text["ce_specversion"] != SPECVERSION:
        raise DecodeError(f"unsupported CloudEvents specversion {text['ce_specversion'].encode()!r}")
    if ctype_raw is not None and ctype_raw != CONTENT_TYPE_HEADER[1]:
        try:
            ctype = ctype_raw.decode()
        except UnicodeDecodeError:
            raise DecodeError("header content-type is not UTF-8") from None
        if ctype.split(";")[0].strip() != CONTENT_TYPE:
            raise DecodeError(f"unsupported content-type {ctype!r} (expected {CONTENT_TYPE})")
    value = record.value or b""
    if len(value) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message of {len(value)} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")
    ce_type = text["ce_type"]
    try:
        cls = _current_class(ce_type)
    except UnknownEventType as e:
        raise DecodeError(str(e)) from None
    serialised: tuple[Event, bytes] | None = None
    if cls is not None:
        try:
            data = cls.model_validate_json(value)
        except ValidationError as e:
            raise _invalid(ce_type, e) from None
        serialised = (data, value)
    else:
        data = _upcast_body(ce_type, value)
    raw_time = text.get("ce_time", "")
    try:
        time = (
            datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
            if raw_time
            else datetime.fromtimestamp(record.timestamp_ms / 1000, UTC)
        )
    except (ValueError, OverflowError, OSError):
        if raw_time:
            raise DecodeError(f"ce_time {raw_time!r} is not an RFC 3339 time") from None
        raise DecodeError(f"no ce_time, and the record's timestamp {record.timestamp_ms} is not a time") from None
    stamp = None
    if "ce_mrapublisher" in text:
        try:
            stamp = Stamp(text["ce_mrapublisher"], text["ce_mraepoch"], int(text["ce_mraseq"]), text["ce_mraprev"])
        except (KeyError, ValueError):
            raise DecodeError("incomplete or malformed publisher stamp") from None
        if stamp.seq < 0:
            raise DecodeError("malformed publisher stamp: a negative mraseq")
    subject = text.get("ce_subject", "")
    ident, source = text["ce_id"], text["ce_source"]
    if not ident.strip() or not source.strip():  # CloudEvents 1.0: both non-empty
        raise DecodeError("ce_id and ce_source must not be empty")
    digest = content_hash(ident, source, ce_type, raw_time, subject, value)
    return new_envelope(
        ident,
        source,
        ce_type,
        time,
        subject,
        (record.key or b"").decode(errors="replace"),
        data,
        stamp,
        extensions,
        digest,
        serialised,
    )
