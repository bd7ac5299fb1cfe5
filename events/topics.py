"""Topic names. Every topic is created explicitly with a configured partition count."""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["LOGICAL_TOPICS", "Topics"]

LOGICAL_TOPICS = ("catalogue", "verification", "holders", "benefits", "deadletter")


@dataclass(frozen=True)
class Topics:
    """Physical topic names: ``prefix`` lets two deployments share a cluster."""

    prefix: str = "mra."
    partitions: int = 4

    @classmethod
    def from_env(cls) -> Topics:
        prefix = os.environ.get("MRA_TOPIC_PREFIX", "mra.")
        partitions = int(os.environ.get("MRA_PARTITIONS", "4"))
        return cls(prefix, partitions)

    def name(self, logical: str) -> str:
        if logical not in LOGICAL_TOPICS:
            raise ValueError(f"unknown topic {logical!r}; topics are {', '.join(LOGICAL_TOPICS)}")
        return self.prefix + logical

    def logical(self, physical: str) -> str:
        return physical.removeprefix(self.prefix)

    def all(self) -> dict[str, int]:
        return {self.name(t): self.partitions for t in LOGICAL_TOPICS}
