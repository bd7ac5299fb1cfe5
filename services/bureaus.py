"""Running bureaus: one consumer per jurisdiction over the fact topics, deciding into its own read model."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from mra.core.plugins import Registry, load_registry
from mra.events.bus import TopicPartition, Transport
from mra.events.consumer import Processor, RunStats
from mra.services.bureau import BUREAU_TOPICS, BureauStore
from mra.services.privacy import PersonalData
from mra.services.runtime import Runtime

__all__ = ["Bureau", "bureau_db", "group_id", "open_bureau", "partition_lag"]


def group_id(runtime: Runtime, jurisdiction: str) -> str:
    """The consumer group every instance of the jurisdiction's bureau joins."""
    return f"{runtime.topics.prefix}bureau-{jurisdiction}"


def bureau_db(runtime: Runtime, jurisdiction: str) -> Path:
    return runtime.path("bureaus", runtime.topics.prefix.rstrip("."), f"{jurisdiction}.db")


@dataclass
class Bureau:
    jurisdiction: str
    store: BureauStore
    processor: Processor
    transport: Transport

    def run(self, until_idle: bool = False, timeout: float | None = None) -> RunStats:
        self.store.relay()  # what a previous run decided but could not publish
        return self.processor.run(until_idle=until_idle, timeout=timeout)

    def close(self) -> None:
        self.processor.close()
        self.store.close()


def open_bureau(
    runtime: Runtime,
    jurisdiction: str,
    *,
    registry: Registry | None = None,
    transport: Transport | None = None,
    group: bool = True,
    db: Path | None = None,
    publish: bool = True,
    store_url: str | None = None,
) -> Bureau:
    """A bureau for ``jurisdiction``: in a consumer group (``group``) or reading every partition itself.
    ``store_url`` (else ``MRA_STORE``) names a shared read model (:mod:`mra.services.stores`); the default is
    one SQLite file in the state directory."""
    from mra.services.stores import open_store
    from mra.services.stores import store_url as resolve_url

    registry = registry or load_registry()
    registry.jurisdiction(jurisdiction)
    # the client id names the instance (host and process), so `bureau status` can say who owns which partition
    instance = f"{socket.gethostname()}-{os.getpid()}"
    transport = transport or runtime.connect(client_id=f"mra-bureau-{jurisdiction}-{instance}")
    publisher = runtime.publisher(transport, f"bureau-{jurisdiction}") if publish else None
    path = db or bureau_db(runtime, jurisdiction)
    personal = PersonalData.at(runtime.state_dir)
    url = resolve_url(store_url) if db is None else None
    kept = open_store(runtime, jurisdiction, url) if url is not None else path
    store = BureauStore(kept, jurisdiction, registry, publisher, personal=personal)
    group_name = group_id(runtime, jurisdiction) if group else None
    guard = runtime.guard(transport, path.with_name(f"{path.stem}.checkpoints.db"))
    processor = Processor(
        transport,
        runtime.topics,
        BUREAU_TOPICS,
        guard.wrap(store),
        group_name,
        validate=guard.validate,
        name=group_name or f"bureau-{jurisdiction}",  # who set a dead letter aside, with or without a group
    )
    return Bureau(jurisdiction, store, processor, transport)


def partition_lag(transport: Transport, runtime: Runtime, store: BureauStore) -> list[dict[str, object]]:
    """Per partition: the stored position, the broker's reported end, and the lag between them."""
    names = [runtime.topics.name(t) for t in BUREAU_TOPICS]
    reader = transport.reader(names)
    try:
        tps: list[TopicPartition] = sorted(reader.assignment())
        ends = reader.end_offsets(tps)
    finally:
        reader.close()
    stored = store.positions()
    return [
        {
            "topic": tp[0],
            "partition": tp[1],
            "position": stored.get(tp, 0),
            "end": ends.get(tp, 0),
            "lag": max(0, ends.get(tp, 0) - stored.get(tp, 0)),
        }
        for tp in tps
    ]
