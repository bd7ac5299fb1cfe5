"""The Kafka transport, over kafka-python.

Consumer settings keep group joins short (a join takes about ``session_timeout_ms / 2`` on the broker
used for development); they are equally valid on Apache Kafka. Nothing here relies on a broker quirk:
"caught up" is decided by the caller from an empty poll past the reported end, which is right on both.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTP
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, TopicAlreadyExistsError

from mra.events.bus import AssignCallback, PublishError, TopicPartition
from mra.events.envelope import Record

__all__ = ["CONSUMER_SETTINGS", "PRODUCER_SETTINGS", "KafkaReader", "KafkaTransport"]

log = logging.getLogger(__name__)

CONSUMER_SETTINGS: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "max_poll_interval_ms": 60000,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "fetch_max_wait_ms": 100,
}

PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "max_block_ms": 10000,
    "delivery_timeout_ms": 30000,
    "request_timeout_ms": 10000,
}


class KafkaTransport:
    """Topics, one shared producer, and readers on a Kafka-protocol cluster."""

    def __init__(self, bootstrap: str, client_id: str = "mra") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: KafkaProducer | None = None
        self._pending: list[Any] = []
        self._partitions: dict[str, list[int]] = {}

    # topics ------------------------------------------------------------------------------------------------------
    def _admin(self) -> KafkaAdminClient:
        try:
            return KafkaAdminClient(
                bootstrap_servers=self.bootstrap, client_id=self.client_id, request_timeout_ms=10000
            )
        except KafkaError as e:
            raise PublishError(f"cannot reach the Kafka cluster at {self.bootstrap}: {e}") from None

    def ensure_topics(self, topics: Mapping[str, int]) -> None:
        """Create the topics that do not exist yet, with their partition counts (never rely on auto-creation)."""
        admin = self._admin()
        try:
            existing = set(admin.list_topics())
            new = [NewTopic(name, n, 1) for name, n in topics.items() if name not in existing]
            if new:
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics(new, timeout_ms=10000)
        finally:
            admin.close()

    def delete_topics(self, names: Sequence[str]) -> None:
        admin = self._admin()
        try:
            existing = set(admin.list_topics())
            doomed = [n for n in names if n in existing]
            if doomed:
                admin.delete_topics(doomed, timeout_ms=10000)
        finally:
            admin.close()

    def list_topics(self) -> list[str]:
        admin = self._admin()
        try:
            return sorted(admin.list_topics())
        finally:
            admin.close()

    def partitions(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id)
            try:
                parts = consumer.partitions_for_topic(topic)
            finally:
                consumer.close()
            if not parts:
                return []
            self._partitions[topic] = sorted(parts)
        return self._partitions[topic]

    # producing ---------------------------------------------------------------------------------------------------
    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap, client_id=self.client_id, **PRODUCER_SETTINGS
                )
            except KafkaError as e:
                raise PublishError(f"cannot reach the Kafka cluster at {self.bootstrap}: {e}") from None
        return self._producer

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        try:
            self._pending.append(self.producer.send(topic, key=key, value=value, headers=list(headers)))
        except KafkaError as e:
            raise PublishError(f"could not queue a message for {topic}: {e}") from None

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued message is acknowledged; raise :class:`PublishError` if any was not."""
        if self._producer is None:
            return
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as e:
            raise PublishError(f"messages not acknowledged by the cluster: {e}") from None
        failed = [f for f in pending if f.failed()]
        if failed:
            raise PublishError(f"{len(failed)} message(s) not written: {failed[0].exception}")
        unfinished = [f for f in pending if not f.is_done]
        if unfinished:
            raise PublishError(f"{len(unfinished)} message(s) not acknowledged within the timeout")

    # reading -----------------------------------------------------------------------------------------------------
    def reader(
        self,
        topics: Sequence[str],
        group: str | None = None,
        on_assign: AssignCallback | None = None,
        **overrides: Any,
    ) -> KafkaReader:
        return KafkaReader(self, list(topics), group, on_assign, overrides)

    def close(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                self._producer.flush(timeout=5)
            with contextlib.suppress(Exception):
                self._producer.close(timeout=5)
            self._producer = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, callback: AssignCallback | None) -> None:
        self.callback = callback

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.callback is not None:
            self.callback({(tp.topic, tp.partition) for tp in assigned})


class KafkaReader:
    """A kafka-python consumer: a group member (``group`` set) or directly assigned every partition."""

    def __init__(
        self,
        transport: KafkaTransport,
        topics: list[str],
        group: str | None,
        on_assign: AssignCallback | None,
        overrides: Mapping[str, Any],
    ) -> None:
        settings = dict(CONSUMER_SETTINGS, **overrides)
        self._c = KafkaConsumer(
            bootstrap_servers=transport.bootstrap, client_id=transport.client_id, group_id=group, **settings
        )
        if group is not None:
            self._c.subscribe(topics, listener=_Listener(on_assign))
        else:
            parts = [KTP(t, p) for t in topics for p in transport.partitions(t)]
            self._c.assign(parts)
            if on_assign is not None:
                on_assign({(tp.topic, tp.partition) for tp in parts})

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        batches = self._c.poll(timeout_ms=timeout_ms, max_records=max_records)
        out: list[Record] = []
        for tp, records in batches.items():
            for r in records:
                out.append(
                    Record(tp.topic, tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()), r.timestamp)
                )
        return out

    def assignment(self) -> set[TopicPartition]:
        return {(tp.topic, tp.partition) for tp in self._c.assignment()}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._c.seek(KTP(*tp), offset)

    def seek_to_beginning(self, tps: Iterable[TopicPartition]) -> None:
        self._c.seek_to_beginning(*[KTP(*tp) for tp in tps])

    def position(self, tp: TopicPartition) -> int:
        pos: int = self._c.position(KTP(*tp))
        return pos

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        ends = self._c.end_offsets([KTP(*tp) for tp in tps])
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        starts = self._c.beginning_offsets([KTP(*tp) for tp in tps])
        return {(tp.topic, tp.partition): off for tp, off in starts.items()}

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        from kafka.structs import OffsetAndMetadata

        if offsets:
            self._c.commit({KTP(*tp): OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._c.close(autocommit=False)
