"""Latency: from a fact published to the bureau's decision read back, beside a raw produce -> consume round trip.

A Beijing bureau runs in a thread of this process (``Bureau.run`` with no idle stop), publishing its
decisions. Each sample publishes one fact for a holder whose other facts the bureau already holds, then
reads the benefits topic until the holder's ``DecisionSetChanged`` arrives. The raw round trip sends one
message of the CertificateVerified's size with mra's producer settings and reads it back with mra's
consumer settings, so both sides pay the same client and broker waits.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import timedelta

from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTP

from benchmarks.harness import Bench, Figure, percentile, signing_module, unverified
from benchmarks.throughput import SIGNED_PENDING
from benchmarks.workload import T0, certificate_verified, employment_started, holder_facts, holder_id
from mra.core.ids import stable_id
from mra.events.kafka import CONSUMER_SETTINGS, PRODUCER_SETTINGS
from mra.events.publisher import Publisher
from mra.events.schemas import DecisionSetChanged, Event
from mra.services.bureaus import open_bureau
from mra.services.runtime import Runtime

__all__ = ["latency_figure"]

DECIDED = DecisionSetChanged.ce_type().encode()
WAIT_S = 30.0
GAP_S = (0.05, 0.25)


def _reader(bootstrap: str, topic: str) -> KafkaConsumer:
    """A consumer at the current end of ``topic`` (past anything already there)."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, client_id="bench-latency", **CONSUMER_SETTINGS)
    parts = [KTP(topic, p) for p in sorted(c.partitions_for_topic(topic) or ())]
    c.assign(parts)
    c.seek_to_end(*parts)
    for tp in parts:
        c.position(tp)
    return c


def _wait_for(reader: KafkaConsumer, key: bytes, ce_type: bytes | None) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for records in reader.poll(timeout_ms=50, max_records=1000).values():
            for r in records:
                if r.key == key and (ce_type is None or (dict(r.headers).get("ce_type") == ce_type)):
                    return
    raise TimeoutError(f"nothing for {key!r} within {WAIT_S:.0f}s")


def _idle(reader: KafkaConsumer, rng: random.Random) -> None:
    """Keep polling for a random while, as a live reader does between events: a fact then arrives at an
    arbitrary moment of the consumers' fetch cycle, for mra and the raw round trip alike."""
    until = time.monotonic() + rng.uniform(*GAP_S)
    while time.monotonic() < until:
        reader.poll(timeout_ms=20, max_records=1000)


def _mra_samples(b: Bench, samples: int) -> tuple[list[float], list[float]]:
    """(certificate verified -> decision, employment start -> decision) in seconds, one sample each per holder."""
    topics = b.topics("latency")
    runtime = Runtime(unverified(b.workdir("latency")), b.bootstrap, topics)
    transport = runtime.connect(client_id="mra-bench-intake")
    intake = Publisher(transport, topics, "bench-intake")
    employed = [holder_id("lat-employed", i) for i in range(samples)]
    certified = [holder_id("lat-certified", i) for i in range(samples)]
    for i, h in enumerate(employed):  # registered and employed in Beijing; the certificate comes later
        facts = holder_facts(h, i)
        for e in (facts[0], facts[2]):
            intake.publish(e, time=T0)
    for i, h in enumerate(certified):  # registered with a verified certificate; the employment comes later
        facts = holder_facts(h, i)
        for e in (facts[0], facts[1]):
            intake.publish(e, time=T0)
    intake.flush()
    expect = 4 * samples
    bureau_transport = runtime.connect(client_id="mra-bench-bureau")
    bureau = open_bureau(runtime, "beijing", registry=b.registry, transport=bureau_transport, group=False, publish=True)
    thread = threading.Thread(target=bureau.run, name="bench-bureau", daemon=True)
    thread.start()
    reader = None
    try:
        deadline = time.monotonic() + 120
        while bureau.store.applied_count() < expect:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the bureau did not catch up with the latency benchmark's setup")
            time.sleep(0.05)
        reader = _reader(b.bootstrap, topics.name("benefits"))
        cert_times: list[float] = []
        emp_times: list[float] = []
        rng = random.Random(7)
        for i in range(samples):
            for h, event, out in (
                (employed[i], certificate_verified(employed[i], i), cert_times),
                (certified[i], employment_started(certified[i], i), emp_times),
            ):
                _idle(reader, rng)
                start = time.perf_counter()
                _publish_one(intake, event, i)
                _wait_for(reader, h.encode(), DECIDED)
                out.append(time.perf_counter() - start)
        return cert_times, emp_times
    finally:
        bureau.processor.stop_event.set()
        thread.join(10)
        if reader is not None:
            reader.close(autocommit=False)
        bureau.close()
        bureau_transport.close()
        transport.close()


def _publish_one(intake: Publisher, event: Event, i: int) -> None:
    intake.publish(event, id=stable_id("latency", i, type(event).__name__, uuid.uuid4().hex), time=T0 + timedelta(1))
    intake.flush()


def _raw_samples(b: Bench, samples: int, size: int) -> list[float]:
    """Raw produce -> consume round trips of one ``size``-byte message, same client settings as mra's."""
    topics = b.topics("latency-raw")
    b.transport(topics).close()
    topic = topics.name("verification")
    producer = KafkaProducer(bootstrap_servers=b.bootstrap, client_id="bench-raw", **PRODUCER_SETTINGS)
    reader = _reader(b.bootstrap, topic)
    value = b"x" * size
    out: list[float] = []
    rng = random.Random(7)
    try:
        producer.partitions_for(topic)
        for i in range(samples):
            key = f"raw-{i}".encode()
            _idle(reader, rng)
            start = time.perf_counter()
            producer.send(topic, key=key, value=value)
            producer.flush()
            _wait_for(reader, key, None)
            out.append(time.perf_counter() - start)
        return out
    finally:
        reader.close(autocommit=False)
        producer.close()


def latency_figure(b: Bench) -> Figure:
    samples = 5 if b.quick else 100
    size = len(certificate_verified(holder_id("size", 0), 0).model_dump_json().encode())
    fig = Figure(
        "latency",
        "certificate verified -> decision, and employment start -> decision, in a running Beijing bureau thread "
        "(publish the fact, read the DecisionSetChanged back), vs a raw kafka-python produce -> consume round trip",
        params={"samples_per_repeat": samples, "raw_message_bytes": size, "reader_poll_ms": 50},
    )
    pooled: dict[str, list[float]] = {"mra_cert": [], "mra_employment": [], "raw": []}
    for r in range(b.repeat):
        b.say(f"latency: repeat {r + 1}/{b.repeat}")
        raw_times = _raw_samples(b, samples, size)
        cert, emp = _mra_samples(b, samples)
        for key, values in (("raw", raw_times), ("mra_cert", cert), ("mra_employment", emp)):
            pooled[key] += values
            fig.add(f"{key}_p50_ms", "ms", 1000 * percentile(values, 50))
            fig.add(f"{key}_p99_ms", "ms", 1000 * percentile(values, 99))
    for key, values in pooled.items():
        fig.extra[f"{key}_pooled_ms"] = {
            "p50": round(1000 * percentile(values, 50), 2),
            "p99": round(1000 * percentile(values, 99), 2),
            "max": round(1000 * max(values), 2),
            "samples": len(values),
        }
    fig.ratio("cert_p99", "mra_cert_p99_ms", "raw_p99_ms", "<= 2")
    fig.ratio("employment_p99", "mra_employment_p99_ms", "raw_p99_ms", "<= 2")
    fig.ratio("cert_p50", "mra_cert_p50_ms", "raw_p50_ms")
    fig.ratio("employment_p50", "mra_employment_p50_ms", "raw_p50_ms")
    if signing_module() is None:
        fig.not_measured["signed"] = SIGNED_PENDING
    return fig
