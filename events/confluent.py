"""The transport over confluent-kafka (librdkafka), beside the kafka-python one, chosen by configuration.

kafka-python stays the default (the design names it); this one is for deployments where the client's own cost
matters: librdkafka produces and consumes several times faster here. It keeps the same promises as
:class:`~mra.events.kafka.KafkaTransport` and passes the same transport test cases: topics created explicitly,
a flush that raises :class:`~mra.events.kafka.KafkaPublishError` unless every message was acknowledged, readers in a
group or directly assigned, positions and offsets as the consumer loop needs them. ``confluent-kafka`` is an
optional dependency (``pip install 'mra[confluent]'``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from mra.core.errors import MraError
from mra.events.bus import AssignCallback, TopicPartition, Transaction
from mra.events.envelope import Record
from mra.events.kafka import (
    TRANSACTION_TIMEOUT_MS,
    KafkaFenced,
    KafkaPublishError,
    KafkaReadError,
    replication_settings,
    timeout_s,
)

__all__ = ["ConfluentReader", "ConfluentTransport", "available"]


def _ck() -> Any:
    try:
        import confluent_kafka
        import confluent_kafka.admin
    except ImportError:
        raise MraError(
            "the confluent transport needs confluent-kafka: pip install 'mra[confluent]' "
            "(or choose MRA_TRANSPORT=kafka-python, the default)"
        ) from None
    return confluent_kafka


def available() -> bool:
    try:
        _ck()
    except MraError:
        return False
    return True


PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
    "batch.size": 256 * 1024,
    "compression.type": "none",
}


_GROUP_STATES = {
    "STABLE": "Stable",
    "EMPTY": "Empty",
    "DEAD": "Dead",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
}


class ConfluentTransport:
    """Topics, one shared producer, and readers on a Kafka-protocol cluster, through librdkafka."""

    def __init__(self, bootstrap: str, client_id: str = "mra") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: Any = None
        self._errors: list[Any] = []
        self._partitions: dict[str, list[int]] = {}
        self._transactional: dict[str, Any] = {}  # transactional id: its producer (fenced on creation)
        self._fenced: set[str] = set()  # ids another producer took over: refused until fence() takes them back
        self._open: tuple[int, Any, list[Any], list[Any]] | None = None  # thread, producer, delivered, errors

    def _base(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "client.id": self.client_id}

    def _admin(self) -> Any:
        return _ck().admin.AdminClient(self._base())

    def _unreachable(self, e: object) -> KafkaPublishError:
        return KafkaPublishError(
            f"cannot reach the Kafka cluster at {self.bootstrap} within {timeout_s():g}s ({e}); nothing was written"
        )

    # topics ------------------------------------------------------------------------------------------------------
    def _metadata(self, topic: str | None = None) -> Any:
        try:
            return self._admin().list_topics(topic=topic, timeout=timeout_s())
        except _ck().KafkaException as e:
            raise self._unreachable(e) from None

    def ensure_topics(self, topics: Mapping[str, int]) -> None:
        meta = self._metadata()
        missing = [name for name in topics if name not in meta.topics]
        if not missing:
            return
        factor, min_isr = replication_settings(len(meta.brokers) or 1)
        configs = {"min.insync.replicas": str(min_isr)} if min_isr > 1 else {}
        new = [_ck().admin.NewTopic(n, topics[n], factor, config=configs) for n in missing]
        admin = self._admin()  # kept until every future is answered: a collected client cancels them
        for name, future in admin.create_topics(new, operation_timeout=timeout_s()).items():
            try:
                future.result(timeout=timeout_s())
            except _ck().KafkaException as e:
                if e.args and e.args[0].code() == _ck().KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise KafkaPublishError(f"could not create topic {name}: {e}") from None

    def describe_group(self, group_id: str) -> dict[str, Any] | None:
        """A consumer group's state and members with the partitions each owns, in the shape
        :meth:`mra.events.kafka.KafkaTransport.describe_group` gives; None for an unknown group or no answer."""
        admin = self._admin()
        try:
            found = admin.describe_consumer_groups([group_id], request_timeout=timeout_s())[group_id].result(
                timeout=timeout_s()
            )
        except Exception:  # a broker that cannot describe groups: say nothing rather than fail status
            return None
        members = [
            {
                "member_id": m.member_id,
                "client_id": m.client_id,
                "host": str(m.host or "").lstrip("/"),
                "partitions": sorted((tp.topic, int(tp.partition)) for tp in m.assignment.topic_partitions),
            }
            for m in found.members
        ]
        state = getattr(found.state, "name", str(found.state))  # STABLE, EMPTY, ...: named as the protocol does
        return {"group_id": group_id, "state": _GROUP_STATES.get(state, state), "members": members}

    def partitions(self, topic: str) -> list[int]:
        if topic not in self._partitions:
            meta = self._metadata(topic).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                return []
            self._partitions[topic] = sorted(meta.partitions)
        return self._partitions[topic]

    # producing ---------------------------------------------------------------------------------------------------
    @property
    def producer(self) -> Any:
        if self._producer is None:
            settings = {**self._base(), **PRODUCER_SETTINGS, "delivery.timeout.ms": int(timeout_s() * 1000) * 4}
            self._producer = _ck().Producer(settings)
        return self._producer

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(err)

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        scope = self._open
        inside = scope is not None and scope[0] == threading.get_ident()
        p = scope[1] if scope is not None and inside else self.producer
        report = self._in_transaction if inside else self._delivered
        while True:
            try:
                p.produce(topic, value=value, key=key, headers=list(headers), on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)  # the local queue is full: serve delivery reports, then queue again
            except _ck().KafkaException as e:
                raise KafkaPublishError(
                    f"could not queue a message for {topic}: {e}; nothing was reported published"
                ) from None
        p.poll(0)

    def _in_transaction(self, err: Any, msg: Any) -> None:
        scope = self._open
        if scope is not None:
            (scope[3] if err is not None else scope[2]).append(err if err is not None else msg)

    # transactions ------------------------------------------------------------------------------------------------
    def fence(self, transactional_id: str) -> None:
        self._fenced.discard(transactional_id)
        self._transactional.pop(transactional_id, None)
        settings = {
            **self._base(),
            **PRODUCER_SETTINGS,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "delivery.timeout.ms": int(timeout_s() * 1000) * 3,
        }
        producer = _ck().Producer(settings)
        try:
            producer.init_transactions(timeout_s() * 3)
        except _ck().KafkaException as e:
            raise KafkaPublishError(
                f"cannot take transactional id {transactional_id!r} over at {self.bootstrap}: {e}; nothing was written"
            ) from None
        self._transactional[transactional_id] = producer

    def _failed(self, transactional_id: str, e: Any, what: str) -> KafkaPublishError:
        """The error to raise; drops the id's producer unless the failure left it usable (abortable)."""
        ck = _ck()
        err = e.args[0] if isinstance(e, ck.KafkaException) and e.args else e
        code = err.code() if hasattr(err, "code") else None
        fenced = code in (ck.KafkaError._FENCED, ck.KafkaError.PRODUCER_FENCED, ck.KafkaError.INVALID_PRODUCER_EPOCH)
        if fenced or not (hasattr(err, "txn_requires_abort") and err.txn_requires_abort()):
            self._transactional.pop(transactional_id, None)
        text = err.str() if hasattr(err, "str") else str(err)
        if fenced:
            self._fenced.add(transactional_id)
            return KafkaFenced(
                f"transactional id {transactional_id!r} was taken over by another producer ({text}); {what}"
            )
        return KafkaPublishError(f"{what}: {text}; the transaction is not reported committed")

    def _abort(self, transactional_id: str, producer: Any) -> None:
        try:
            producer.abort_transaction(timeout_s() * 3)
        except Exception:  # a producer that cannot abort is dropped: its transaction times out or is fenced
            self._transactional.pop(transactional_id, None)

    @contextlib.contextmanager
    def transaction(self, transactional_id: str) -> Iterator[Transaction]:
        if self._open is not None:
            raise RuntimeError("a transaction is already open on this transport")
        if transactional_id in self._fenced:
            raise KafkaFenced(f"transactional id {transactional_id!r} was taken over; take it back before writing")
        if transactional_id not in self._transactional:
            self.fence(transactional_id)
        producer = self._transactional[transactional_id]
        ck = _ck()
        try:
            producer.begin_transaction()
        except ck.KafkaException as e:
            raise self._failed(transactional_id, e, "nothing was written") from None
        tx = Transaction(transactional_id)
        delivered: list[Any] = []
        errors: list[Any] = []
        self._open = (threading.get_ident(), producer, delivered, errors)
        try:
            yield tx
        except BaseException:
            self._open = None
            self._abort(transactional_id, producer)
            raise
        try:
            left = producer.flush(timeout_s() * 3)
            if errors or left:
                self._open = None
                self._abort(transactional_id, producer)
                raise self._failed(
                    transactional_id, errors[0] if errors else "not acknowledged in time", "nothing was written"
                )
            producer.commit_transaction(timeout_s() * 3)
        except ck.KafkaException as e:  # the outcome is not known unless the error says to abort
            err = e.args[0] if e.args else None
            if err is not None and err.txn_requires_abort():
                self._abort(transactional_id, producer)
            raise self._failed(transactional_id, e, "committing the transaction failed") from None
        finally:
            self._open = None
        for m in delivered:
            tp = (m.topic(), m.partition())
            tx.written[tp] = max(tx.written.get(tp, 0), m.offset() + 1)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued message is acknowledged; raise :class:`KafkaPublishError` if any was not."""
        scope = self._open
        if scope is not None and scope[0] == threading.get_ident():
            scope[1].flush(timeout if timeout is not None else timeout_s() * 3)  # failures are reported on commit
            return
        if self._producer is None:
            return
        left = self._producer.flush(timeout if timeout is not None else timeout_s() * 4)
        errors, self._errors = self._errors, []
        if errors or left:
            self._producer = None  # a new producer (a new idempotence session) for whoever retries
        if errors:
            fatal = [e for e in errors if not e.retriable()]
            raise KafkaPublishError(
                f"{len(errors)} message(s) not written to the cluster at {self.bootstrap}: "
                f"{(fatal or errors)[0].str()}; they are not reported published",
                retriable=not fatal,
            )
        if left:
            raise KafkaPublishError(
                f"{left} message(s) not acknowledged in time by the cluster at {self.bootstrap}; "
                "they are not reported published"
            )

    # reading -----------------------------------------------------------------------------------------------------
    def reader(
        self,
        topics: Sequence[str],
        group: str | None = None,
        on_assign: AssignCallback | None = None,
        **overrides: Any,
    ) -> ConfluentReader:
        return ConfluentReader(self, list(topics), group, on_assign, overrides)

    def close(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                self._producer.flush(5)
            self._producer = None
        self._transactional.clear()


class ConfluentReader:
    """A librdkafka consumer: a group member (``group`` set) or directly assigned every partition."""

    def __init__(
        self,
        transport: ConfluentTransport,
        topics: list[str],
        group: str | None,
        on_assign: AssignCallback | None,
        overrides: Mapping[str, Any],
    ) -> None:
        ck = _ck()
        self._ck = ck
        self._bootstrap = transport.bootstrap
        settings: dict[str, Any] = {
            **transport._base(),
            "group.id": group or f"{transport.client_id}-direct",  # librdkafka wants one; a direct reader never commits
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "isolation.level": "read_committed",  # librdkafka's default, said once: aborted records are never read
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 300000,
        }
        settings.update({k.replace("_", "."): v for k, v in overrides.items()})
        self._c = ck.Consumer(settings)
        self._group = group
        self._wanted: dict[TopicPartition, int] = {}  # seeks asked for before the partition was fetched
        if group is not None:

            def assigned(_consumer: Any, parts: list[Any]) -> None:
                if on_assign is not None:
                    on_assign({(p.topic, p.partition) for p in parts})

            self._c.subscribe(topics, on_assign=assigned)
        else:
            tps = [(t, p) for t in topics for p in transport.partitions(t)]
            self._c.assign([ck.TopicPartition(t, p, ck.OFFSET_BEGINNING) for t, p in tps])
            if on_assign is not None:
                on_assign(set(tps))

    def _read(self, what: str, call: Any) -> Any:
        try:
            return call()
        except self._ck.KafkaException as e:
            raise KafkaReadError(f"{what} at {self._bootstrap} failed: {e}") from None

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        msgs = self._read("polling", lambda: self._c.consume(num_messages=max_records, timeout=timeout_ms / 1000))
        out: list[Record] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == self._ck.KafkaError._PARTITION_EOF:
                    continue
                raise KafkaReadError(f"polling at {self._bootstrap} failed: {err.str()}")
            ts = m.timestamp()
            out.append(
                Record(m.topic(), m.partition(), m.offset(), m.key(), m.value(), tuple(m.headers() or ()), ts[1])
            )
            self._wanted.pop((m.topic(), m.partition()), None)
        if self._wanted:  # a partition that delivered nothing (only aborted or control records) moves on too
            wanted = [self._ck.TopicPartition(t, p) for t, p in self._wanted]
            for p in self._read("reading a position", lambda: self._c.position(wanted)):
                if p.offset >= 0 and p.offset >= self._wanted.get((p.topic, p.partition), p.offset):
                    self._wanted.pop((p.topic, p.partition), None)
        return out

    def assignment(self) -> set[TopicPartition]:
        return {(p.topic, p.partition) for p in self._c.assignment()}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._wanted[tp] = offset
        try:
            self._c.seek(self._ck.TopicPartition(tp[0], tp[1], offset))
        except self._ck.KafkaException:  # not fetched yet: start it there
            parts = [
                self._ck.TopicPartition(p.topic, p.partition, self._wanted.get((p.topic, p.partition), p.offset))
                for p in self._c.position(self._c.assignment())
            ]
            if self._group is None:
                self._c.assign(parts)
            else:
                self._c.incremental_assign([self._ck.TopicPartition(tp[0], tp[1], offset)])

    def seek_to_beginning(self, tps: Iterable[TopicPartition]) -> None:
        for tp in list(tps):
            low, _ = self._read("asking for beginning offsets", lambda tp=tp: self._watermarks(tp))
            self.seek(tp, low)

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        low, high = self._c.get_watermark_offsets(self._ck.TopicPartition(*tp), timeout=timeout_s())
        return int(low), int(high)

    def position(self, tp: TopicPartition) -> int:
        if tp in self._wanted:
            return self._wanted[tp]
        (p,) = self._read("reading a position", lambda: self._c.position([self._ck.TopicPartition(*tp)]))
        if p.offset >= 0:
            return int(p.offset)
        committed = self._read("reading a position", lambda: self._c.committed([self._ck.TopicPartition(*tp)]))
        if committed and committed[0].offset >= 0:
            return int(committed[0].offset)
        return int(self._read("asking for beginning offsets", lambda: self._watermarks(tp))[0])

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._read("asking for end offsets", lambda tp=tp: self._watermarks(tp))[1] for tp in tps}

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self._read("asking for beginning offsets", lambda tp=tp: self._watermarks(tp))[0] for tp in tps}

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets and self._group is not None:
            marks = [self._ck.TopicPartition(t, p, off) for (t, p), off in offsets.items()]
            self._read("committing offsets", lambda: self._c.commit(offsets=marks, asynchronous=False))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._c.close()
