"""Publishing events: CloudEvents attributes, the publisher stamp, and the instance's hash chain."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from mra.events.bus import Transport
from mra.events.envelope import Envelope, Stamp, body_bytes, content_hash, encode, time_text
from mra.events.schemas import Event
from mra.events.topics import Topics

__all__ = ["Publisher"]


class Publisher:
    """One publisher identity's running instance. A new instance starts a new epoch of its chain."""

    def __init__(self, transport: Transport, topics: Topics, identity: str, source: str | None = None) -> None:
        self.transport = transport
        self.topics = topics
        self.identity = identity
        self.source = source or f"/mra/{identity}"
        self.epoch = uuid.uuid4().hex
        self._seq = 0
        self._prev = ""
        self._lock = threading.Lock()

    def envelope(self, data: Event, *, id: str | None = None, time: datetime | None = None) -> Envelope:
        """Stamp ``data`` as this instance's next event (the stamp is taken whether or not it is sent)."""
        when = (time or datetime.now(UTC)).astimezone(UTC)
        ident = id or str(uuid.uuid4())
        ce_type = data.ce_type()
        subject = data.subject()
        digest = content_hash(ident, self.source, ce_type, time_text(when), subject, body_bytes(data))
        with self._lock:
            stamp = Stamp(self.identity, self.epoch, self._seq, self._prev)
            self._seq += 1
            self._prev = digest
        return Envelope(ident, self.source, ce_type, when, subject, data.partition_key(), data, stamp, {}, digest)

    def publish(self, data: Event, *, id: str | None = None, time: datetime | None = None) -> Envelope:
        """Queue ``data`` on its topic; call :meth:`flush` before reporting it published."""
        env = self.envelope(data, id=id, time=time)
        self.send(env)
        return env

    def send(self, env: Envelope) -> None:
        key, value, headers = encode(env)
        self.transport.send(self.topics.name(env.data.TOPIC), key, value, headers)

    def flush(self, timeout: float | None = 30.0) -> None:
        self.transport.flush(timeout)
