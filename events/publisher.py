"""Publishing events: CloudEvents attributes, the publisher stamp, and the instance's hash chain.

With a :class:`~mra.events.signing.Signer`, a publisher proves its events: each one signed (``mrasig``), or, with a
:class:`~mra.events.signing.CheckpointPolicy`, signed checkpoints over its chain every N events or T ms and at
every flush (one copy on each topic the covered events went to).

Each event is serialised once: the body bytes that are hashed are the bytes that are signed and sent (they ride
on the :class:`~mra.events.envelope.Envelope`). Headers that are the same for every event of a publisher
instance (specversion, content type, source, publisher, epoch) are encoded once, when the instance starts.
"""

from __future__ import annotations

import os
import threading
import time as _time
from datetime import UTC, datetime

from mra.events.bus import Transport
from mra.events.envelope import (
    KEY_ATTR,
    SIGNATURE_ATTR,
    Envelope,
    Stamp,
    body_bytes,
    dataschema,
    encode,
    hash_parts,
    length_prefixed,
    message_headers,
    new_envelope,
)
from mra.events.schemas import Checkpoint, Event, checkpoint_class
from mra.events.signing import CheckpointPolicy, Signer, canonical_event, make_checkpoint
from mra.events.topics import Topics

__all__ = ["Publisher"]

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _fresh_ids() -> list[str]:
    """1024 random (version 4) UUIDs in canonical text form, as ``str(uuid.uuid4())`` gives, from one draw of
    16 KiB of OS randomness (reading it releases the GIL: once per 1024 events, not once per event)."""
    h = os.urandom(16384).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32768, 32)
    ]


class _Ids:
    """Event ids made 1024 at a time; each is handed out once (``list.pop`` is atomic), never to a forked child."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def reset(self) -> None:
        self.ids = []

    def next(self) -> str:
        try:
            return self.ids.pop()
        except IndexError:
            self.ids = fresh = _fresh_ids()
            return fresh.pop()


_IDS = _Ids()
os.register_at_fork(after_in_child=_IDS.reset)  # a child process must not repeat its parent's ids


class _Kind:
    """What a publisher needs of one event class, worked out once: its type, topic and their encodings."""

    __slots__ = ("ce_type", "is_checkpoint", "schema_header", "topic", "topic_name", "type_header", "type_part")

    def __init__(self, cls: type[Event], topics: Topics) -> None:
        self.ce_type = cls.ce_type()
        self.topic = cls.TOPIC
        self.topic_name = topics.name(cls.TOPIC)
        self.type_header = ("ce_type", self.ce_type.encode())
        self.schema_header = ("ce_dataschema", dataschema(self.ce_type).encode())
        self.type_part = length_prefixed(self.type_header[1])
        self.is_checkpoint = issubclass(cls, Checkpoint)


class Publisher:
    """One publisher identity's running instance. A new instance starts a new epoch of its chain."""

    def __init__(
        self,
        transport: Transport,
        topics: Topics,
        identity: str,
        source: str | None = None,
        *,
        signer: Signer | None = None,
        checkpoints: CheckpointPolicy | None = None,
    ) -> None:
        if checkpoints is not None and signer is None:
            raise ValueError("checkpoints need a signer")
        if signer is not None and signer.identity != identity:
            raise ValueError(f"the signer's key belongs to {signer.identity}, not to {identity}")
        self.transport = transport
        self.topics = topics
        self.identity = identity
        self.source = source or f"/mra/{identity}"
        self.signer = signer
        self.checkpoints = checkpoints
        self.epoch = _IDS.next().replace("-", "")
        self._seq = 0
        self._prev = ""
        self._lock = threading.Lock()
        # checkpoint mode: (seq, hash, logical topic, is a checkpoint) of events not yet covered, and how many
        # of them are not checkpoints
        self._pending: list[tuple[int, str, str, bool]] = []
        self._pending_events = 0
        self._covered_prev = ""
        self._pending_since = 0.0
        # encoded once for every event of this instance
        self._source_header = ("ce_source", self.source.encode())
        self._source_part = length_prefixed(self._source_header[1])
        self._publisher_header = ("ce_mrapublisher", identity.encode())
        self._epoch_header = ("ce_mraepoch", self.epoch.encode())
        self._kinds: dict[type[Event], _Kind] = {}

    def new_epoch(self) -> None:
        """Start a new epoch of this instance's chain, after events it stamped were not written (a transaction that
        was aborted): the chain read back then ends where the written events end, with no hole in its middle."""
        with self._lock:
            self.epoch = _IDS.next().replace("-", "")
            self._seq = 0
            self._prev = ""
            self._pending = []
            self._pending_events = 0
            self._covered_prev = ""
            self._epoch_header = ("ce_mraepoch", self.epoch.encode())

    def _kind(self, cls: type[Event]) -> _Kind:
        kind = self._kinds.get(cls)
        if kind is None:
            kind = self._kinds[cls] = _Kind(cls, self.topics)
        return kind

    # publishing --------------------------------------------------------------------------------------------------
    def envelope(
        self, data: Event, *, id: str | None = None, time: datetime | None = None, body: bytes | None = None
    ) -> Envelope:
        """Stamp ``data`` as this instance's next event (the stamp is taken whether or not it is sent).

        ``body``: as for :meth:`publish`.
        """
        return self._stamp(data, id, time, body)[0]

    def _stamp(
        self, data: Event, id: str | None, time: datetime | None, body: bytes | None
    ) -> tuple[Envelope, _Kind, str, bool]:
        """The stamped envelope, what its class needs, its ``ce_time`` text, and whether a checkpoint is due."""
        when = datetime.now(UTC) if time is None else time.astimezone(UTC)
        when_text = when.isoformat().replace("+00:00", "Z")
        ident = id or _IDS.next()
        kind = self._kind(type(data))
        subject = data.subject()
        if body is None:
            body = body_bytes(data)
        digest = hash_parts(
            length_prefixed(ident.encode()),
            self._source_part,
            kind.type_part,
            length_prefixed(when_text.encode()),
            length_prefixed(subject.encode()),
            body,
        )
        due = False
        policy = self.checkpoints
        with self._lock:
            stamp = Stamp(self.identity, self.epoch, self._seq, self._prev)
            self._seq += 1
            self._prev = digest
            if policy is not None:
                self._pending.append((stamp.seq, digest, kind.topic, kind.is_checkpoint))
                if not kind.is_checkpoint:
                    if self._pending_events == 0:
                        self._pending_since = _time.monotonic()
                    self._pending_events += 1
                    due = (
                        self._pending_events >= policy.every
                        or (_time.monotonic() - self._pending_since) * 1000 >= policy.ms
                    )
        extensions: dict[str, str] = {}
        env = new_envelope(
            ident,
            self.source,
            kind.ce_type,
            when,
            subject,
            data.partition_key(),
            data,
            stamp,
            extensions,
            digest,
            (data, body),
        )
        signer = self.signer
        if signer is not None and policy is None:  # as Signer.sign_event, without copying the envelope
            extensions[SIGNATURE_ATTR] = signer.sign(canonical_event(env, signer.key_id))
            extensions[KEY_ATTR] = signer.key_id
        return env, kind, when_text, due

    def publish(
        self, data: Event, *, id: str | None = None, time: datetime | None = None, body: bytes | None = None
    ) -> Envelope:
        """Queue ``data`` on its topic; call :meth:`flush` before reporting it published.

        ``body``, if given, must be ``data``'s serialised form, ``data.model_dump_json(by_alias=True).encode()``,
        say as an outbox stored it: ``publish(event, id=..., time=..., body=stored)`` hashes, signs and sends those
        bytes as they are instead of serialising ``event`` again. Nothing checks that they match ``event``.
        """
        env, kind, when_text, due = self._stamp(data, id, time, body)
        stamp = env.stamp
        assert stamp is not None and env.serialised is not None
        headers = message_headers(
            env.id,
            self._source_header,
            kind.type_header,
            kind.schema_header,
            when_text,
            env.subject,
            (self._publisher_header, self._epoch_header, stamp),
            env.hash,
            env.extensions,
        )
        self.transport.send(kind.topic_name, env.key.encode(), env.serialised[1], headers)
        if due:
            self.checkpoint()
        return env

    def send(self, env: Envelope) -> None:
        """Send an envelope made earlier (by :meth:`envelope`, or read and re-published) as it is."""
        key, value, headers = encode(env)
        self.transport.send(self.topics.name(env.data.TOPIC), key, value, headers)

    def checkpoint(self) -> int:
        """Sign and send a checkpoint over every event not yet covered; return how many copies were sent.

        Nothing is sent when only earlier checkpoints are uncovered (each proves itself).
        """
        if self.checkpoints is None or self.signer is None:
            return 0
        with self._lock:
            pending = self._pending
            if not self._pending_events:
                return 0
            self._pending = []
            self._pending_events = 0
            prev = self._covered_prev
            self._covered_prev = pending[-1][1]
        hashes = [p[1] for p in pending]
        topics = list(dict.fromkeys(p[2] for p in pending if not p[3]))
        first: Checkpoint | None = None
        body = b""
        sent = 0
        for topic in topics:
            cls = checkpoint_class(topic)
            if cls is None:
                continue
            if first is None:
                first = make_checkpoint(self.signer, self.epoch, pending[0][0], prev, hashes, topic)
                if first is None:
                    return 0
                cp: Checkpoint = first
                body = body_bytes(first)
            else:  # the signature does not cover the topic: every copy carries the same fields and body
                cp = cls.model_construct(**dict(first))
            self.send(self.envelope(cp, body=body))
            sent += 1
        return sent

    def flush(self, timeout: float | None = 30.0) -> None:
        self.checkpoint()
        self.transport.flush(timeout)
