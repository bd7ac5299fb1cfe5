"""Wiring chosen by configuration: which cluster, which topics, where local state lives."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mra.core.errors import MraError
from mra.events.broker import broker_status
from mra.events.bus import Transport
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.signing import Guard
from mra.events.topics import Topics
from mra.services.files import private_dir

__all__ = ["Runtime"]


@dataclass
class Runtime:
    """One deployment's settings: ``bootstrap`` names a real cluster, else the local broker is used."""

    state_dir: Path
    bootstrap: str | None = None
    topics: Topics = field(default_factory=Topics.from_env)

    def resolve_bootstrap(self) -> str:
        if self.bootstrap:
            return self.bootstrap
        env = os.environ.get("MRA_BOOTSTRAP_SERVERS")
        if env:
            return env
        info = broker_status(self.state_dir)
        if info.running and info.bootstrap:
            return info.bootstrap
        raise MraError(
            f"no broker: start the local one with `mra broker start` (state dir {self.state_dir}), "
            "or point at a cluster with --bootstrap / MRA_BOOTSTRAP_SERVERS"
        )

    def transport(self, client_id: str = "mra") -> Transport:
        """The client chosen by ``MRA_TRANSPORT``: ``kafka-python`` (the default) or ``confluent`` (librdkafka,
        the ``confluent`` extra)."""
        kind = os.environ.get("MRA_TRANSPORT", "kafka-python").strip() or "kafka-python"
        if kind == "kafka-python":
            return KafkaTransport(self.resolve_bootstrap(), client_id=client_id)
        if kind == "confluent":
            from mra.events.confluent import ConfluentTransport, available

            if not available():
                raise MraError("MRA_TRANSPORT=confluent needs confluent-kafka: pip install 'mra[confluent]'")
            return ConfluentTransport(self.resolve_bootstrap(), client_id=client_id)
        raise MraError(f"MRA_TRANSPORT must be kafka-python or confluent, not {kind!r}")

    def connect(self, client_id: str = "mra") -> Transport:
        """A transport whose topics exist."""
        t = self.transport(client_id)
        t.ensure_topics(self.topics.all())
        return t

    def publisher(self, transport: Transport, identity: str) -> Publisher:
        """A publisher for ``identity`` that signs as the state dir's trust store says (plain when verification
        is off)."""
        from mra.services.keys import open_publisher

        return open_publisher(self.state_dir, transport, self.topics, identity)

    def guard(self, transport: Transport, book: Path | None = None) -> Guard:
        """The ``validate`` callback and handler wrapper that verify events as the trust store says."""
        from mra.services.keys import consumer_guard

        return consumer_guard(self.state_dir, transport, self.topics, book)

    def path(self, *parts: str) -> Path:
        p = self.state_dir.joinpath(*parts)
        private_dir(p.parent)
        return p
