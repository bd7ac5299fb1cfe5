"""Publishing events: CloudEvents attributes, the publisher stamp, and the instance's hash chain.

With a :class:`~mra.events.signing.Signer`, a publisher proves its events: each one signed (``mrasig``), or, with a
:class:`~mra.events.signing.CheckpointPolicy`, signed checkpoints over its chain every N events or T ms and at
every flush (one copy on each topic the covered events went to).
"""

from __future__ import annotations

import threading
import time as _time
import uuid
from datetime import UTC, datetime

from mra.events.bus import Transport
from mra.events.envelope import Envelope, Stamp, body_bytes, content_hash, encode, time_text
from mra.events.schemas import Checkpoint, Event
from mra.events.signing import CheckpointPolicy, Signer, make_checkpoint
from mra.events.topics import Topics

__all__ = ["Publisher"]


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
        self.epoch = uuid.uuid4().hex
        self._seq = 0
        self._prev = ""
        self._lock = threading.Lock()
        # checkpoint mode: (seq, hash, logical topic, is a checkpoint) of events not yet covered
        self._pending: list[tuple[int, str, str, bool]] = []
        self._covered_prev = ""
        self._pending_since = 0.0

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
            if self.checkpoints is not None:
                is_checkpoint = isinstance(data, Checkpoint)
                if not is_checkpoint and not any(not p[3] for p in self._pending):
                    self._pending_since = _time.monotonic()
                self._pending.append((stamp.seq, digest, data.TOPIC, is_checkpoint))
        env = Envelope(ident, self.source, ce_type, when, subject, data.partition_key(), data, stamp, {}, digest)
        if self.signer is not None and self.checkpoints is None:
            env = self.signer.sign_event(env)
        return env

    def publish(self, data: Event, *, id: str | None = None, time: datetime | None = None) -> Envelope:
        """Queue ``data`` on its topic; call :meth:`flush` before reporting it published."""
        env = self.envelope(data, id=id, time=time)
        self.send(env)
        if self.checkpoints is not None and not isinstance(data, Checkpoint):
            self._maybe_checkpoint()
        return env

    def send(self, env: Envelope) -> None:
        key, value, headers = encode(env)
        self.transport.send(self.topics.name(env.data.TOPIC), key, value, headers)

    def _maybe_checkpoint(self) -> None:
        policy = self.checkpoints
        assert policy is not None
        with self._lock:
            real = sum(1 for p in self._pending if not p[3])
            due = real >= policy.every or (real and (_time.monotonic() - self._pending_since) * 1000 >= policy.ms)
        if due:
            self.checkpoint()

    def checkpoint(self) -> int:
        """Sign and send a checkpoint over every event not yet covered; return how many copies were sent.

        Nothing is sent when only earlier checkpoints are uncovered (each proves itself).
        """
        if self.checkpoints is None or self.signer is None:
            return 0
        with self._lock:
            pending = self._pending
            if not any(not p[3] for p in pending):
                return 0
            self._pending = []
            prev = self._covered_prev
            self._covered_prev = pending[-1][1]
        hashes = [p[1] for p in pending]
        topics = list(dict.fromkeys(p[2] for p in pending if not p[3]))
        sent = 0
        for topic in topics:
            cp = make_checkpoint(self.signer, self.epoch, pending[0][0], prev, hashes, topic)
            if cp is not None:
                self.send(self.envelope(cp))
                sent += 1
        return sent

    def flush(self, timeout: float | None = 30.0) -> None:
        self.checkpoint()
        self.transport.flush(timeout)
