"""On the session's broker: consumer-group members that poll briefly, with gaps between polls, get their partitions
and keep them past the session timeout.

On Apache Kafka a join completes in milliseconds, often before the member has the topics' metadata: the leader
assigns nothing, sees the partitions a moment later and rebalances at once. kafka-python 3.0 drops that second join
when a poll times out while it is in flight; the member then never takes its partitions, never heartbeats, and polls
for ever with nothing assigned (``KafkaReader`` guards against both).
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from mra.events.kafka import CONSUMER_SETTINGS, KafkaReader, KafkaTransport
from mra.events.topics import Topics

pytestmark = pytest.mark.broker


def _member(reader: KafkaReader, everything: set[tuple[str, int]], until: float, joined: list[float]) -> None:
    """Poll as a consumer does between batches (a short poll, then work), until ``until``; note when it joined and,
    after that, how long it held every partition."""
    stay = CONSUMER_SETTINGS["session_timeout_ms"] / 1000 + 2
    while time.monotonic() < until:
        reader.poll(200, 100)
        time.sleep(0.3)
        if not joined and reader.assignment() == everything:
            joined.append(time.monotonic())
        if joined and time.monotonic() - joined[0] > stay:
            joined.append(time.monotonic() if reader.assignment() == everything else -1.0)
            return


def test_members_polling_briefly_join_and_stay_in_their_groups(kafka: KafkaTransport, topics: Topics) -> None:
    name = topics.name("holders")
    everything = {(name, p) for p in range(topics.partitions)}
    members = [kafka.reader([name], group=f"g-{uuid.uuid4().hex[:10]}") for _ in range(6)]
    seen: list[list[float]] = [[] for _ in members]
    until = time.monotonic() + 90
    threads = [
        threading.Thread(target=_member, args=(m, everything, until, s)) for m, s in zip(members, seen, strict=True)
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for m in members:
            m.close()
    assert [len(s) >= 1 for s in seen] == [True] * len(members), "a member never got its partitions"
    # past the session timeout: a member that stopped heartbeating would have been removed by then
    assert [len(s) == 2 and s[1] > 0 for s in seen] == [True] * len(members), "a member lost its partitions"
