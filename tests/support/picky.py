"""A journal that fails on chosen events, for dead-letter tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mra.events.consumer import DeadLetter, Delivery
from mra.services.journal import Journal

__all__ = ["Picky"]


class Picky(Journal):
    """Fails on the event ids in ``poison`` until they are taken out (the fix)."""

    def __init__(self, path: Path, poison: set[str]) -> None:
        super().__init__(path)
        self.poison = poison

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        if any(d.envelope.id in self.poison for d in deliveries):
            raise LookupError("no such employment")
        super().apply(deliveries, dead)
