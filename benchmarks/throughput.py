"""Throughput: mra's Publisher, a bureau and a replay, each beside raw clients moving the same messages.

Every measured run gets fresh topics (publishing) or a fresh read model (consuming). Within one repeat the
variants run back to back, so drift on the machine touches all of them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from benchmarks import raw
from benchmarks.harness import Bench, Figure, signing_module, unverified
from benchmarks.workload import fact_messages, publish_mix
from mra.events.bus import InMemoryTransport
from mra.events.envelope import encode
from mra.events.publisher import Publisher
from mra.events.schemas import Event
from mra.events.topics import Topics
from mra.services.bureau import BUREAU_TOPICS
from mra.services.bureaus import open_bureau
from mra.services.replay import replay
from mra.services.runtime import Runtime

__all__ = ["consume_figures", "fill_log", "publish_figure"]

SIGNED_PENDING = "not yet measured: mra.events.signing does not exist in this tree"


def _publish_events(b: Bench) -> int:
    return 1_000 if b.quick else 30_000


def _wire(events: list[Event], topics: Topics) -> list[raw.Wire]:
    """The exact messages mra writes for ``events``, for the raw producers to send."""
    pub = Publisher(InMemoryTransport(), topics, "bench-publisher")
    out: list[raw.Wire] = []
    for e in events:
        key, value, headers = encode(pub.envelope(e))
        out.append((topics.name(e.TOPIC), key, value, headers))
    return out


def _mra_publish(b: Bench, events: list[Event], make: Callable[..., Publisher]) -> float:
    """Seconds to publish ``events`` through a Publisher on fresh topics, flush included."""
    topics = b.topics("pub")
    transport = b.transport(topics)
    try:
        pub = make(transport, topics)
        raw.warm_producer(transport.producer, {topics.name(e.TOPIC) for e in events[:3]})
        start = time.perf_counter()
        for e in events:
            pub.publish(e)
        pub.flush()
        return time.perf_counter() - start
    finally:
        transport.close()


def publish_figure(b: Bench) -> Figure:
    n = _publish_events(b)
    events = publish_mix(b.registry, n, "publish")
    kinds = sorted({type(e).__name__ for e in events})
    fig = Figure(
        "publish",
        "events/s through mra's Publisher (models, CloudEvents headers, publisher stamp, flush) vs the same "
        "messages through a raw kafka-python producer with mra's PRODUCER_SETTINGS, and through confluent-kafka",
        params={"events": n, "mix": kinds, "partitions": b.topics("x").partitions},
    )
    makers: dict[str, Callable[..., Publisher]] = {
        "mra_unsigned": lambda t, tp: Publisher(t, tp, "bench-publisher"),
    }
    signing = signing_module()
    if signing is not None:
        from benchmarks.signed import publisher_makers

        makers.update(publisher_makers())
    def raw_kafka_python() -> None:
        topics = b.topics("pub-raw")
        b.transport(topics).close()
        fig.add("raw_kafka_python", "events/s", n / raw.kafka_python_produce(b.bootstrap, _wire(events, topics)))

    for r in range(b.repeat):
        b.say(f"publish: repeat {r + 1}/{b.repeat}")
        if r % 2:  # alternate who goes first, so neither always meets the broker fresher
            raw_kafka_python()
        for key, make in makers.items():
            fig.add(key, "events/s", n / _mra_publish(b, events, make))
        if not r % 2:
            raw_kafka_python()
        topics = b.topics("pub-ck")
        b.transport(topics).close()
        sent, seconds = raw.confluent_produce(b.bootstrap, _wire(events, topics))
        fig.add("confluent_kafka", "events/s", sent / seconds)
    fig.extra["mra_cpu_us_per_event_without_broker"] = _envelope_cost(events, makers)
    fig.ratio("unsigned", "mra_unsigned", "raw_kafka_python", ">= 0.8")
    for key, target in (("mra_signed", None), ("mra_signed_checkpoints", ">= 0.6")):
        label = key.removeprefix("mra_")
        if key in fig.series:
            fig.ratio(label, key, "raw_kafka_python", target)
        else:
            if target is not None:
                fig.targets[label] = target
            fig.not_measured[label] = SIGNED_PENDING
    fig.ratio("kafka_python_vs_confluent", "raw_kafka_python", "confluent_kafka")
    return fig


def _envelope_cost(events: list[Event], makers: dict[str, Callable[..., Publisher]]) -> dict[str, float]:
    """Microseconds per event of mra's own publishing work (stamp, hash, signature, encode) with a transport that
    drops what it is given: the part of the publish figure that does not depend on the client or the broker."""

    class Drop:
        def send(self, *_: object) -> None:
            return None

        def flush(self, timeout: float | None = None) -> None:
            return None

    topics = Topics()
    out: dict[str, float] = {}
    for key, make in makers.items():
        pub = make(Drop(), topics)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for e in events:
                pub.publish(e)
            pub.flush()
            best = min(best, time.perf_counter() - start)
        out[key] = round(best / len(events) * 1e6, 1)
    return out


def fill_log(b: Bench, topics: Topics, holders: int, seed: str) -> int:
    """Write ``holders`` holders' facts (three events each) to ``topics``; return how many events."""
    b.transport(topics).close()
    wire = ((topics.name(t), k, v, h) for t, k, v, h in fact_messages(seed, holders))
    sent, _ = raw.confluent_produce(b.bootstrap, wire)
    return sent


def _bureau_run(b: Bench, runtime: Runtime, expect: int) -> tuple[float, int]:
    """Seconds for a fresh Beijing bureau (publishing its decisions) to apply the whole log; decisions sent."""
    transport = runtime.connect(client_id="mra-bench-bureau")
    bureau = open_bureau(
        runtime,
        "beijing",
        registry=b.registry,
        transport=transport,
        group=False,
        publish=True,
        db=b.workdir("bureau") / "beijing.db",
    )
    try:
        start = time.perf_counter()
        stats = bureau.run(until_idle=True, timeout=3600)
        seconds = time.perf_counter() - start
        if stats.applied != expect or not stats.idle:
            raise RuntimeError(f"bureau applied {stats.applied} of {expect} (idle={stats.idle}): {stats.errors}")
        return seconds, bureau.store.published
    finally:
        bureau.close()
        transport.close()


def _replay_run(b: Bench, runtime: Runtime, expect: int) -> tuple[float, int]:
    """Seconds for :func:`mra.services.replay.replay` to rebuild Beijing's read model; decisions held."""
    transport = runtime.connect(client_id="mra-bench-replay")
    try:
        start = time.perf_counter()
        result = replay(runtime, "beijing", registry=b.registry, transport=transport, into=b.workdir("replay"))
        seconds = time.perf_counter() - start
        try:
            if result.stats.applied != expect:
                raise RuntimeError(f"replay applied {result.stats.applied} of {expect}: {result.stats.errors}")
            return seconds, result.store.counts()["decisions_active"]
        finally:
            result.store.close()
    finally:
        transport.close()


def consume_figures(b: Bench) -> list[Figure]:
    """bureau apply, replay and client share, over one log of realistic facts."""
    holders = 200 if b.quick else 4_000
    topics = b.topics("consume")
    n = fill_log(b, topics, holders, "consume")
    names = [topics.name(t) for t in BUREAU_TOPICS]
    runtime = Runtime(unverified(b.workdir("runtime")), b.bootstrap, topics)
    params = {"events": n, "holders": holders, "topics": list(BUREAU_TOPICS), "partitions": topics.partitions}
    bureau = Figure(
        "bureau",
        "events/s a Beijing bureau consumes, decides and records (BureauStore read model + tracking, decisions "
        "published) from the beginning of its three fact topics, vs a raw kafka-python consumer of the same log",
        params=dict(params, max_records=raw.MAX_RECORDS),
    )
    rep = Figure(
        "replay",
        "events/s of mra.services.replay.replay into a fresh read model vs a raw kafka-python consumer",
        params=dict(params),
    )
    clients = Figure(
        "clients",
        "events/s of raw consumption of the same log: kafka-python (pure Python) vs confluent-kafka (librdkafka)",
        params=dict(params),
    )
    for r in range(b.repeat):
        b.say(f"bureau/replay/clients: repeat {r + 1}/{b.repeat}")
        got, seconds, size = raw.kafka_python_consume(b.bootstrap, names, n)
        for fig in (bureau, rep, clients):
            fig.add("raw_kafka_python", "events/s", got / seconds)
        got, seconds, _ = raw.confluent_consume(b.bootstrap, names, n)
        clients.add("confluent_kafka", "events/s", got / seconds)
        seconds, published = _bureau_run(b, runtime, n)
        bureau.add("mra_unsigned", "events/s", n / seconds)
        bureau.extra["decisions_published_per_run"] = published
        seconds, decisions = _replay_run(b, runtime, n)
        rep.add("mra_unsigned", "events/s", n / seconds)
        rep.extra["decisions_in_read_model"] = decisions
    bureau.extra["value_bytes_per_event"] = round(size / n, 1)
    bureau.ratio("unsigned", "mra_unsigned", "raw_kafka_python", ">= 0.5")
    rep.ratio("unsigned", "mra_unsigned", "raw_kafka_python", ">= 0.7")
    clients.ratio("kafka_python_vs_confluent", "raw_kafka_python", "confluent_kafka")
    if signing_module() is None:
        for fig in (bureau, rep):
            fig.not_measured["signed"] = SIGNED_PENDING
            fig.not_measured["signed_checkpoints"] = SIGNED_PENDING
    else:
        _signed_consume(b, holders, bureau, rep)
    return [bureau, rep, clients]


def _signed_consume(b: Bench, holders: int, bureau: Figure, rep: Figure) -> None:
    """Bureau apply and replay over a log the intake signed, verifying every event (both modes)."""
    from benchmarks.signed import MODES, guarded_run, signed_log

    for mode in MODES:
        label = "signed" if mode == "per-event" else "signed_checkpoints"
        topics = b.topics(f"consume-{label}")
        n, trust = signed_log(b, topics, holders, "consume", mode)
        names = [topics.name(t) for t in BUREAU_TOPICS]
        runtime = Runtime(b.workdir("runtime"), b.bootstrap, topics)
        try:
            for r in range(b.repeat):
                b.say(f"bureau/replay {label}: repeat {r + 1}/{b.repeat}")
                got, seconds, _ = raw.kafka_python_consume(b.bootstrap, names, n)
                for fig in (bureau, rep):
                    fig.add(f"raw_kafka_python_{label}_log", "events/s", got / seconds)
                seconds = guarded_run(b, runtime, trust, mode, True, b.workdir("bureau") / "beijing.db", n)
                bureau.add(f"mra_{label}", "events/s", n / seconds)
                seconds = guarded_run(b, runtime, trust, mode, False, b.workdir("replay") / "beijing.db", n)
                rep.add(f"mra_{label}", "events/s", n / seconds)
        except RuntimeError as e:  # a run that did not apply the whole log measures nothing: say why, go on
            for fig in (bureau, rep):
                fig.not_measured[label] = str(e)
            continue
        for fig, target in ((bureau, ">= 0.35"), (rep, ">= 0.5")):  # per-event verification is the default mode
            fig.params[f"{label}_log_messages"] = n
            fig.ratio(label, f"mra_{label}", f"raw_kafka_python_{label}_log", target if label == "signed" else None)
