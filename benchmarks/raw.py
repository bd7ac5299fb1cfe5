"""The baselines: the plainest correct producer and consumer loops, in kafka-python and in confluent-kafka.

The kafka-python loops use mra's own client settings (``PRODUCER_SETTINGS``; ``CONSUMER_SETTINGS`` with the
Processor's 1000 records a poll), so the difference between them and mra is mra's own work. confluent-kafka
(librdkafka, C) moves the same messages with equivalent settings: the ceiling this broker allows here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTP

from mra.events.kafka import CONSUMER_SETTINGS, PRODUCER_SETTINGS

__all__ = [
    "MAX_RECORDS",
    "POLL_MS",
    "Wire",
    "confluent_consume",
    "confluent_produce",
    "kafka_python_consume",
    "kafka_python_produce",
    "warm_producer",
]

MAX_RECORDS = 1000
"""The Processor's default ``max_records`` per poll."""
POLL_MS = 200
"""The Processor's default poll timeout."""

Wire = tuple[str, bytes, bytes, list[tuple[str, bytes]]]
"""A message on the wire: physical topic, key, value, headers."""


def warm_producer(producer: KafkaProducer, topics: Iterable[str]) -> None:
    """Fetch the topics' metadata before the clock starts (both mra and the baseline get this)."""
    for t in topics:
        producer.partitions_for(t)


def kafka_python_produce(bootstrap: str, messages: Sequence[Wire]) -> float:
    """Seconds to send every message and have it acknowledged, with mra's producer settings."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="bench-raw", **PRODUCER_SETTINGS)
    try:
        warm_producer(producer, {m[0] for m in messages})
        start = time.perf_counter()
        for topic, key, value, headers in messages:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
        return time.perf_counter() - start
    finally:
        producer.close()


def _confluent_producer(bootstrap: str) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "bench-confluent",
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": PRODUCER_SETTINGS["linger_ms"],
            "batch.size": PRODUCER_SETTINGS["batch_size"],
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )


def confluent_produce(bootstrap: str, messages: Iterable[Wire], producer: Any = None) -> tuple[int, float]:
    """(messages, seconds) to send every message through librdkafka and have it acknowledged."""
    p = producer or _confluent_producer(bootstrap)
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    start = time.perf_counter()
    n = 0
    for topic, key, value, headers in messages:
        while True:
            try:
                p.produce(topic, value=value, key=key, headers=headers, on_delivery=delivered)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    seconds = time.perf_counter() - start
    if errors or left:
        raise RuntimeError(f"confluent-kafka: {len(errors)} failed, {left} unacknowledged ({errors[:1]})")
    return n, seconds


def _kafka_python_consumer(bootstrap: str, topics: Sequence[str]) -> tuple[KafkaConsumer, list[KTP]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-raw", **CONSUMER_SETTINGS)
    parts = [KTP(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    return consumer, parts


def kafka_python_consume(bootstrap: str, topics: Sequence[str], expect: int) -> tuple[int, float, int]:
    """(records, seconds, value bytes) to read the topics from the beginning until caught up.

    Caught up means what the Processor means: a poll returned nothing and every partition's position is at
    or past its reported end. The consumer's construction is inside the clock, as it is for mra.
    """
    start = time.perf_counter()
    consumer, parts = _kafka_python_consumer(bootstrap, topics)
    n = size = 0
    try:
        while True:
            batches = consumer.poll(timeout_ms=POLL_MS, max_records=MAX_RECORDS)
            if not batches:
                if n >= expect:
                    ends = consumer.end_offsets(parts)
                    if all(consumer.position(tp) >= ends[tp] for tp in parts):
                        break
                continue
            for records in batches.values():
                for r in records:
                    n += 1
                    size += len(r.value or b"")
        return n, time.perf_counter() - start, size
    finally:
        consumer.close(autocommit=False)


def confluent_consume(bootstrap: str, topics: Sequence[str], expect: int) -> tuple[int, float, int]:
    """(records, seconds, value bytes) to read the topics from the beginning through librdkafka."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer
    from confluent_kafka import TopicPartition as CTP

    start = time.perf_counter()
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "bench-confluent",
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": CONSUMER_SETTINGS["fetch_max_wait_ms"],
        }
    )
    n = size = 0
    try:
        meta = c.list_topics(timeout=10)
        c.assign([CTP(t, p, OFFSET_BEGINNING) for t in topics for p in sorted(meta.topics[t].partitions)])
        while True:
            msgs = c.consume(num_messages=MAX_RECORDS, timeout=POLL_MS / 1000)
            if not msgs and n >= expect:
                break
            for m in msgs:
                if m.error() is None:
                    n += 1
                    size += len(m.value() or b"")
        return n, time.perf_counter() - start, size
    finally:
        c.close()
