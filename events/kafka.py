"""The Kafka transport, over kafka-python.

Consumer settings keep group joins short (a join takes about ``session_timeout_ms / 2`` on the broker
used for development); they are equally valid on Apache Kafka. Nothing here relies on a broker quirk:
"caught up" is decided by the caller from an empty poll past the reported end, which is right on both.

Every call that waits on the cluster is bounded (``MRA_KAFKA_TIMEOUT_S``, default 10 s). A cluster that
cannot be reached is an expected failure with a message, not a traceback: writing raises
:class:`KafkaPublishError` (a :class:`PublishError`: nothing was reported written), reading raises
:class:`KafkaReadError` (a :class:`ConnectionError`, which a consumer waits out). Both are :class:`MraError`, so
the CLI prints one line and exits with status 75 (``EX_TEMPFAIL``: try again later) where trying again can help.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KTP
from kafka.admin import NewTopic
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError, UnknownTopicOrPartitionError

from mra.core.errors import MraError
from mra.events.bus import AssignCallback, Fenced, PublishError, TopicPartition, Transaction
from mra.events.envelope import Record

__all__ = [
    "CONSUMER_SETTINGS",
    "PRODUCER_SETTINGS",
    "KafkaFenced",
    "KafkaPublishError",
    "KafkaReadError",
    "KafkaReader",
    "KafkaTransport",
    "group_stall_s",
    "replication_settings",
    "timeout_s",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


def timeout_s() -> float:
    """How long one call may wait on the cluster: ``MRA_KAFKA_TIMEOUT_S`` (default 10 s)."""
    try:
        value = float(os.environ.get("MRA_KAFKA_TIMEOUT_S", "10"))
    except ValueError:
        value = 10.0
    return value if value > 0 else 10.0


def _ms() -> int:
    return int(timeout_s() * 1000)


def _int_setting(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw or raw == "auto":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise MraError(f"{name} must be a whole number or 'auto', not {raw!r}") from None
    if value < 1:
        raise MraError(f"{name} must be at least 1, not {value}")
    return value


def replication_settings(brokers: int) -> tuple[int, int]:
    """Replication factor and ``min.insync.replicas`` for new topics.

    ``MRA_REPLICATION_FACTOR`` (default ``auto``: 3, or the number of brokers if fewer) and
    ``MRA_MIN_INSYNC_REPLICAS`` (default ``auto``: 2, or the replication factor if lower). With producers on
    ``acks=all``, a write is acknowledged once that many replicas hold it.
    """
    factor = _int_setting("MRA_REPLICATION_FACTOR") or min(3, max(1, brokers))
    min_isr = _int_setting("MRA_MIN_INSYNC_REPLICAS") or min(2, factor)
    if min_isr > factor:
        raise MraError(f"MRA_MIN_INSYNC_REPLICAS ({min_isr}) cannot exceed the replication factor ({factor})")
    return factor, min_isr


def group_stall_s() -> float:
    """How long a group member may hold nothing without a stable group before it warns: ``MRA_GROUP_STALL_S``
    (default 90 s, above the 60 s a rebalance may take)."""
    try:
        value = float(os.environ.get("MRA_GROUP_STALL_S", "90"))
    except ValueError:
        value = 90.0
    return value if value > 0 else 90.0


class KafkaPublishError(PublishError, MraError):
    """An event was not written to the cluster. Nothing was reported published.

    ``retriable`` says whether trying again can help (the cluster did not answer) or not (the cluster refused
    the message, say for its size); only the first is an ``EX_TEMPFAIL``.
    """

    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message + ("; try again" if retriable else ""))
        self.retriable = retriable
        self.exit_code = 75 if retriable else 1


class KafkaFenced(KafkaPublishError, Fenced):
    """Another producer took the transactional id over (:class:`Fenced`). Retriable: the caller may take the id back
    and try again once it has checked what its predecessors committed."""


class KafkaReadError(MraError, ConnectionError):
    """The cluster did not answer a read in time; a consumer waits and tries again."""

    exit_code = 75


def _transient(e: BaseException | None) -> bool:
    """A failure the cluster coming back would cure (no connection, a timeout, a leader moving)."""
    return isinstance(e, KafkaError) and (
        bool(getattr(e, "retriable", False)) or type(e).__name__ in ("NoBrokersAvailable", "KafkaConnectionError")
    )


def _reading(what: str, bootstrap: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except KafkaError as e:
        if _transient(e):
            raise KafkaReadError(f"{what}: the Kafka cluster at {bootstrap} did not answer: {e}") from None
        raise


CONSUMER_SETTINGS: dict[str, Any] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "max_poll_interval_ms": 60000,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "isolation_level": "read_committed",
    "fetch_max_wait_ms": 100,
    "reconnect_backoff_max_ms": 2000,
}
"""Consumer settings; ``bootstrap_timeout_ms`` and ``request_timeout_ms`` are added from :func:`timeout_s`. Readers
read committed: a transaction's records once it commits, never those of an aborted one."""

PRODUCER_SETTINGS: dict[str, Any] = {
    "acks": "all",
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "max_block_ms": 10000,
    "delivery_timeout_ms": 30000,
    "request_timeout_ms": 10000,
    "reconnect_backoff_max_ms": 2000,
}
"""Producer settings. A record not acknowledged within ``delivery_timeout_ms`` fails its future, which
:meth:`KafkaTransport.flush` reports: a publisher never reports success for an event that was not written."""

TRANSACTION_TIMEOUT_MS = 30000
"""How long the cluster keeps a transaction open before aborting it (a holder that died with one open and was not
fenced by a successor): read_committed readers of its partitions wait at most that long."""

_FENCED = ("ProducerFencedError", "InvalidProducerEpochError", "TransactionalIdAuthorizationFailedError")


def _fenced(e: BaseException | None) -> bool:
    return e is not None and type(e).__name__ in _FENCED


def _wait(result: Any, what: str) -> None:
    """Wait for a transactional request at most ``delivery_timeout_ms``: kafka-python's own calls wait forever."""
    if not result.wait(timeout_ms=PRODUCER_SETTINGS["delivery_timeout_ms"]):
        raise KafkaTimeoutError(f"{what} not answered within {PRODUCER_SETTINGS['delivery_timeout_ms']} ms")


def _views(admin: KafkaAdminClient, names: Sequence[str]) -> list[dict[str, Any]]:
    """What each broker says of the topics ``names`` (name to its metadata; a topic the broker does not know is left
    out). Brokers learn of a created or deleted topic in the background, each in its own time, so one broker's word
    is not the cluster's. Where the client cannot ask each broker, one broker's answer."""

    def known(topics: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        return {t["name"]: t for t in topics if not t.get("error_code")}

    try:
        from kafka.protocol.metadata import MetadataRequest

        manager = admin._manager
        request = MetadataRequest(
            topics=[MetadataRequest.MetadataRequestTopic(name=n) for n in names], allow_auto_topic_creation=False
        )

        async def ask(node: int) -> Any:
            return await manager.send(request, node_id=node)

        brokers = [int(b["broker_id"]) for b in admin.describe_cluster().get("brokers") or ()]
        views = [known(manager.run(ask, node).to_dict()["topics"]) for node in brokers]
        if views:
            return views
    except (ImportError, AttributeError, TypeError, KeyError):  # an internal of kafka-python changed
        pass
    return [known(admin.describe_topics(list(names)))]


def _led(topic: Mapping[str, Any] | None) -> bool:
    """A topic every partition of which has a leader."""
    parts = (topic or {}).get("partitions") or ()
    return bool(parts) and all(p.get("leader_id", -1) >= 0 for p in parts)


class KafkaTransport:
    """Topics, one shared producer, and readers on a Kafka-protocol cluster."""

    def __init__(self, bootstrap: str, client_id: str = "mra") -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self._producer: KafkaProducer | None = None
        self._pending: list[Any] = []
        self._partitions: dict[str, list[int]] = {}
        self._transactional: dict[str, KafkaProducer] = {}  # transactional id: its producer (fenced on creation)
        self._fenced: set[str] = set()  # ids another producer took over: refused until fence() takes them back
        self._open: tuple[int, KafkaProducer, list[Any]] | None = None  # the thread, producer, futures of a scope

    # topics ------------------------------------------------------------------------------------------------------
    def _unreachable(self, e: Exception) -> KafkaPublishError:
        return KafkaPublishError(
            f"cannot reach the Kafka cluster at {self.bootstrap} within {timeout_s():g}s ({e}); nothing was written"
        )

    def _admin_call(self, call: Callable[[KafkaAdminClient], T]) -> T:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                request_timeout_ms=_ms(),
                bootstrap_timeout_ms=_ms(),
            )
        except KafkaError as e:
            raise self._unreachable(e) from None
        try:
            return call(admin)
        except KafkaError as e:
            if _transient(e):
                raise self._unreachable(e) from None
            raise
        finally:
            admin.close()

    def ensure_topics(self, topics: Mapping[str, int]) -> None:
        """Create the topics that do not exist yet, with their partition counts (never rely on auto-creation),
        replication factor and ``min.insync.replicas`` from :func:`replication_settings`."""

        def create(admin: KafkaAdminClient) -> None:
            names = list(topics)
            deadline = time.monotonic() + 3 * timeout_s()
            while True:
                views = _views(admin, names)
                waiting = [
                    n
                    for n in names
                    if not all(_led(v.get(n)) for v in views) or len({v[n].get("topic_id") for v in views}) > 1
                ]
                if not waiting:
                    return
                unknown = [n for n in waiting if any(n not in v for v in views)]
                if unknown:
                    factor, min_isr = replication_settings(len(views))
                    configs = {"min.insync.replicas": str(min_isr)} if min_isr > 1 else {}
                    with contextlib.suppress(TopicAlreadyExistsError):  # being created, or deleted: asked again
                        admin.create_topics(
                            [NewTopic(n, topics[n], factor, topic_configs=configs) for n in unknown], timeout_ms=_ms()
                        )
                if time.monotonic() > deadline:
                    raise KafkaPublishError(f"topics {sorted(waiting)} do not have a leader on every broker yet")
                time.sleep(0.1)

        self._admin_call(create)

    def delete_topics(self, names: Sequence[str]) -> None:
        """Delete the topics that exist, and return once the cluster no longer lists them (a deletion completes
        in the background on Kafka: a topic created again too soon would still be the old one)."""

        def delete(admin: KafkaAdminClient) -> None:
            doomed = [n for n in names if any(n in v for v in _views(admin, names))]
            if not doomed:
                return
            with contextlib.suppress(UnknownTopicOrPartitionError):  # already gone on the controller
                admin.delete_topics(doomed, timeout_ms=_ms())
            deadline = time.monotonic() + 3 * timeout_s()
            while any(n in v for v in _views(admin, doomed) for n in doomed):
                if time.monotonic() > deadline:
                    raise KafkaPublishError(f"a broker of {self.bootstrap} still lists deleted topics {doomed}")
                time.sleep(0.1)

        self._admin_call(delete)

    def describe_group(self, group_id: str) -> dict[str, Any] | None:
        """A consumer group's state and members, each with the partitions it owns; None where the cluster does not
        say (an unknown group, or a broker whose answer kafka-python cannot read)."""

        def ask(admin: KafkaAdminClient) -> dict[str, Any] | None:
            found = admin.describe_groups([group_id]).get(group_id)
            if not found or found.get("error"):
                return None
            members = []
            for m in found.get("members") or ():
                owned = [
                    (a["topic"], int(p))
                    for a in (m.get("member_assignment") or {}).get("assigned_partitions") or ()
                    for p in a["partitions"]
                ]
                members.append(
                    {
                        "member_id": m.get("member_id"),
                        "client_id": m.get("client_id"),
                        "host": str(m.get("client_host") or "").lstrip("/"),
                        "partitions": sorted(owned),
                    }
                )
            return {"group_id": group_id, "state": found.get("group_state"), "members": members}

        try:
            return self._admin_call(ask)
        except Exception:  # a broker whose answer kafka-python cannot read: say nothing rather than fail status
            return None

    def list_topics(self) -> list[str]:
        return self._admin_call(lambda admin: sorted(admin.list_topics()))

    def partitions(self, topic: str) -> list[int]:
        if topic not in self._partitions:

            def ask() -> set[int] | None:
                consumer = KafkaConsumer(
                    bootstrap_servers=self.bootstrap, client_id=self.client_id, bootstrap_timeout_ms=_ms()
                )
                try:
                    found: set[int] | None = consumer.partitions_for_topic(topic)
                    return found
                finally:
                    consumer.close()

            parts = _reading(f"listing the partitions of {topic}", self.bootstrap, ask)
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
                    bootstrap_servers=self.bootstrap,
                    client_id=self.client_id,
                    bootstrap_timeout_ms=_ms(),
                    **PRODUCER_SETTINGS,
                )
            except KafkaError as e:
                raise self._unreachable(e) from None
        return self._producer

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]]) -> None:
        scope = self._open
        try:
            if scope is not None and scope[0] == threading.get_ident():
                scope[2].append(scope[1].send(topic, key=key, value=value, headers=list(headers)))
                return
            self._pending.append(self.producer.send(topic, key=key, value=value, headers=list(headers)))
        except KafkaError as e:
            raise KafkaPublishError(
                f"could not queue a message for {topic}: {e}; nothing was reported published", _transient(e)
            ) from None

    def _discard_producer(self) -> None:
        """Drop a producer that failed: a new one (a new idempotence session) is made on the next send."""
        producer, self._producer = self._producer, None
        _close_now(producer)

    # transactions ------------------------------------------------------------------------------------------------
    def fence(self, transactional_id: str) -> None:
        self._fenced.discard(transactional_id)
        _close_now(self._transactional.pop(transactional_id, None))
        try:
            producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                client_id=self.client_id,
                bootstrap_timeout_ms=_ms(),
                transactional_id=transactional_id,
                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                **PRODUCER_SETTINGS,
            )
        except KafkaError as e:
            raise self._unreachable(e) from None
        try:
            producer.init_transactions()
        except KafkaError as e:
            _close_now(producer)
            raise KafkaPublishError(
                f"cannot take transactional id {transactional_id!r} over at {self.bootstrap}: {e}; nothing was written",
                _transient(e) or isinstance(e, KafkaTimeoutError),
            ) from None
        self._transactional[transactional_id] = producer

    def _failed(self, transactional_id: str, e: BaseException | None, what: str) -> KafkaPublishError:
        """Drop the id's producer after a failure whose outcome it cannot repair; the error to raise."""
        _close_now(self._transactional.pop(transactional_id, None))
        if _fenced(e):
            self._fenced.add(transactional_id)
            return KafkaFenced(
                f"transactional id {transactional_id!r} was taken over by another producer ({e}); {what}"
            )
        return KafkaPublishError(f"{what}: {e}; the transaction is not reported committed")

    def _abort(self, transactional_id: str, producer: KafkaProducer) -> None:
        try:
            manager = getattr(producer, "_transaction_manager", None)
            if manager is None:
                producer.abort_transaction()
            else:
                result = manager.begin_abort()
                producer._sender.wakeup()
                _wait(result, "aborting the transaction")
        except Exception:  # a producer that cannot abort is dropped: its transaction times out or is fenced
            _close_now(self._transactional.pop(transactional_id, None))

    @contextlib.contextmanager
    def transaction(self, transactional_id: str) -> Iterator[Transaction]:
        if self._open is not None:
            raise RuntimeError("a transaction is already open on this transport")
        if transactional_id in self._fenced:
            raise KafkaFenced(f"transactional id {transactional_id!r} was taken over; take it back before writing")
        if transactional_id not in self._transactional:
            self.fence(transactional_id)
        producer = self._transactional[transactional_id]
        try:
            producer.begin_transaction()
        except KafkaError as e:
            raise self._failed(transactional_id, e, "nothing was written") from None
        tx = Transaction(transactional_id)
        futures: list[Any] = []
        self._open = (threading.get_ident(), producer, futures)
        try:
            yield tx
        except BaseException:
            self._open = None
            self._abort(transactional_id, producer)
            raise
        self._open = None
        try:
            producer.flush(timeout=PRODUCER_SETTINGS["delivery_timeout_ms"] / 1000)
        except KafkaError as e:
            self._abort(transactional_id, producer)
            raise self._failed(transactional_id, e, "nothing was written") from None
        failed = [f.exception for f in futures if not f.is_done or f.failed()]
        if failed:
            self._abort(transactional_id, producer)
            first = next((e for e in failed if e is not None), None)
            raise self._failed(transactional_id, first, f"{len(failed)} record(s) not written; nothing was") from None
        try:
            manager = getattr(producer, "_transaction_manager", None)
            if manager is None:
                producer.commit_transaction()
            else:  # as commit_transaction, with a bounded wait
                result = manager.begin_commit()
                producer._sender.wakeup()
                _wait(result, "committing the transaction")
        except KafkaError as e:  # the outcome is not known: a successor's fence settles it
            raise self._failed(transactional_id, e, "committing the transaction failed") from None
        for f in futures:
            meta = f.value
            tp = (meta.topic, meta.partition)
            tx.written[tp] = max(tx.written.get(tp, 0), meta.offset + 1)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every queued message is acknowledged; raise :class:`KafkaPublishError` if any was not.

        ``None`` waits at most the producer's ``delivery_timeout_ms``. After a failure the producer is discarded,
        so a publisher that retries starts afresh instead of inheriting a broken session.
        """
        scope = self._open
        if scope is not None and scope[0] == threading.get_ident():
            with contextlib.suppress(KafkaError):  # inside a transaction: failures are reported when it commits
                scope[1].flush(timeout=timeout)
            return
        if self._producer is None:
            return
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=timeout)
        except KafkaError as e:
            self._discard_producer()
            raise KafkaPublishError(
                f"{len(pending)} message(s) not acknowledged by the cluster at {self.bootstrap}: {e}; "
                "they are not reported published"
            ) from None
        failed = [f for f in pending if f.failed()]
        unfinished = [f for f in pending if not f.is_done]
        if failed or unfinished:
            self._discard_producer()
        if failed:
            refused = [f.exception for f in failed if not _transient(f.exception)]
            raise KafkaPublishError(
                f"{len(failed)} message(s) not written to the cluster at {self.bootstrap}: "
                f"{(refused or [failed[0].exception])[0]}; they are not reported published",
                retriable=not refused,
            )
        if unfinished:
            raise KafkaPublishError(
                f"{len(unfinished)} message(s) not acknowledged in time by the cluster at "
                f"{self.bootstrap}; they are not reported published"
            )

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
        for tid in list(self._transactional):
            _close_now(self._transactional.pop(tid))


def _close_now(producer: KafkaProducer | None) -> None:
    """Close a producer without sending what it still holds (those messages were reported as not written)."""
    if producer is None:
        return
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        with contextlib.suppress(Exception):
            sender.force_close()
            sender.join(2)
    with contextlib.suppress(Exception):
        producer.close(timeout=0)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, callback: AssignCallback | None) -> None:
        self.callback = callback

    def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        if self.callback is not None:
            self.callback({(tp.topic, tp.partition) for tp in assigned})


class KafkaReader:
    """A kafka-python consumer: a group member (``group`` set) or directly assigned every partition.

    Calls that wait on the cluster are bounded and raise :class:`KafkaReadError` when it does not answer.

    A group member that holds no partition and has no stable membership for :func:`group_stall_s` seconds
    (longer than a rebalance may take: ``max_poll_interval_ms``) says so in the log, once per period: the
    development broker can leave a group stuck in a rebalance for good (docs/reliability.md), and a consumer
    that silently reads nothing is the worst way to find out.
    """

    def __init__(
        self,
        transport: KafkaTransport,
        topics: list[str],
        group: str | None,
        on_assign: AssignCallback | None,
        overrides: Mapping[str, Any],
    ) -> None:
        settings = dict(CONSUMER_SETTINGS, bootstrap_timeout_ms=_ms(), request_timeout_ms=max(_ms(), 7000))
        settings.update(overrides)
        self._transport, self._topics, self._group, self._on_assign = transport, topics, group, on_assign
        self._settings = settings
        self._bootstrap = transport.bootstrap
        self._unhealthy_since: float | None = None
        self._c = self._connect()

    def _connect(self) -> KafkaConsumer:
        t = self._transport
        consumer = _reading(
            "connecting a consumer",
            t.bootstrap,
            lambda: KafkaConsumer(
                bootstrap_servers=t.bootstrap, client_id=t.client_id, group_id=self._group, **self._settings
            ),
        )
        if self._group is not None:
            consumer.subscribe(self._topics, listener=_Listener(self._on_assign))
            # the topics' metadata before the first join: a leader that assigns without it hands out nothing and
            # the group rebalances again at once (on Apache Kafka a join takes milliseconds, so it often does)
            _reading("reading the topics' metadata", t.bootstrap, consumer.topics)
        else:
            parts = [KTP(topic, p) for topic in self._topics for p in t.partitions(topic)]
            consumer.assign(parts)
            if self._on_assign is not None:
                self._on_assign({(tp.topic, tp.partition) for tp in parts})
        return consumer

    def _healthy(self) -> bool:
        """A direct reader, a member holding partitions, or a member of a stable group (idle members are fine)."""
        if self._group is None or self._c.assignment():
            return True
        coordinator = getattr(self._c, "_coordinator", None)
        try:
            return coordinator is None or (not coordinator.coordinator_unknown() and coordinator.stable())
        except Exception:  # an internal of kafka-python changed: do not second-guess it
            return True

    def _watch(self) -> None:
        if self._healthy():
            self._unhealthy_since = None
            return
        now = time.monotonic()
        if self._unhealthy_since is None:
            self._unhealthy_since = now
        elif now - self._unhealthy_since >= group_stall_s():
            log.warning(
                "consumer group %s: no partition and no stable membership for %.0fs; the group may be stuck in a "
                "rebalance (restart the members, or the broker if it persists)",
                self._group,
                now - self._unhealthy_since,
            )
            self._unhealthy_since = now

    def _resume_join(self) -> None:
        """Pick up a join that kafka-python (3.0) dropped, before the coordinator drops the member.

        A rebalance the client starts itself (the leader saw the topics' partitions change) is forgotten when a poll
        times out while the join is in flight and the leader's assignment lands before the next poll: the member
        then never takes its assignment, never heartbeats, is removed after ``session_timeout_ms`` and polls for
        ever with nothing assigned. Such a member is rebalancing with no rejoin wanted; asking for the rejoin makes
        the next poll finish the join in flight (or join again).
        """
        coordinator = getattr(self._c, "_coordinator", None)
        if self._group is None or coordinator is None:
            return
        try:
            if getattr(coordinator.state, "name", "") == "REBALANCING" and not coordinator.need_rejoin():
                coordinator.request_rejoin()
        except Exception:  # an internal of kafka-python changed: the stall warning still applies
            return

    def poll(self, timeout_ms: int, max_records: int) -> list[Record]:
        batches = _reading(
            "polling", self._bootstrap, lambda: self._c.poll(timeout_ms=timeout_ms, max_records=max_records)
        )
        self._resume_join()
        self._watch()
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
        pos: int = _reading("reading a position", self._bootstrap, lambda: self._c.position(KTP(*tp), timeout_ms=_ms()))
        return pos

    def highwater(self, tp: TopicPartition) -> int | None:
        """The log end the last fetch for ``tp`` reported (None before one): exact, unlike ``end_offsets`` on
        some brokers, so a position beyond it means the log is shorter than what was read. None too for a
        partition no longer assigned (a rebalance took it away since the caller last looked)."""
        part = KTP(*tp)
        if part not in self._c.assignment():
            return None
        hw: int | None = self._c.highwater(part)
        return hw

    def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        parts = [KTP(*tp) for tp in tps]
        ends = _reading("asking for end offsets", self._bootstrap, lambda: self._c.end_offsets(parts, timeout_ms=_ms()))
        return {(tp.topic, tp.partition): off for tp, off in ends.items()}

    def probe(self, tps: Iterable[TopicPartition], timeout_ms: int = 3000) -> None:
        """Ask the cluster for the log's end within ``timeout_ms``: raises when it does not answer (a poll of a dead
        broker returns nothing rather than fail)."""
        parts = [KTP(*tp) for tp in tps]
        if parts:
            _reading("checking the cluster", self._bootstrap, lambda: self._c.end_offsets(parts, timeout_ms=timeout_ms))
        else:
            _reading("checking the cluster", self._bootstrap, lambda: self._c.topics())

    def beginning_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        parts = [KTP(*tp) for tp in tps]
        starts = _reading(
            "asking for beginning offsets", self._bootstrap, lambda: self._c.beginning_offsets(parts, timeout_ms=_ms())
        )
        return {(tp.topic, tp.partition): off for tp, off in starts.items()}

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        from kafka.structs import OffsetAndMetadata

        if offsets:
            marks = {KTP(*tp): OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}
            _reading("committing offsets", self._bootstrap, lambda: self._c.commit(marks, timeout_ms=_ms()))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._c.close(autocommit=False)
