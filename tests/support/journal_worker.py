"""A journal consumer in its own process, slowed down so a test can kill it mid-stream.

Usage: python -m tests.support.journal_worker BOOTSTRAP PREFIX DB GROUP DELAY_S
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from mra.events.consumer import DeadLetter, Delivery, Processor
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics
from mra.services.journal import Journal


class SlowJournal(Journal):
    delay = 0.0

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        time.sleep(self.delay)
        super().apply(deliveries, dead)


def main() -> None:
    bootstrap, prefix, db, group, delay = sys.argv[1:6]
    journal = SlowJournal(db)
    journal.delay = float(delay)
    transport = KafkaTransport(bootstrap)
    stats = Processor(transport, Topics(prefix, 3), ["holders"], journal, group, max_records=10).run(
        until_idle=True, timeout=120
    )
    print(f"applied={stats.applied} idle={stats.idle}", flush=True)


if __name__ == "__main__":
    main()
