"""Growth: replay speed and the bureau's peak memory at a small and a large log, each in a fresh process.

Each measurement runs ``python -m benchmarks.growth`` in a subprocess, which rebuilds Beijing's read model
with :func:`mra.services.replay.replay` (the bureau's own store and processor, without publishing) and
reports its rate, the highest resident memory sampled while it reads (``VmRSS`` every 20 ms: the figure the
memory target is judged on), the resident memory it had before reading (interpreter, plugins and catalogue
loaded), and ``ru_maxrss``. The last is reported only: on Linux it carries over the forked parent's resident
size across ``exec``, so it shows the benchmark process's size as much as the replay's.

The large size is 1M events unless the small size's rate says it would not fit in the time budget; then
the largest round size that fits is used, and the figure says so.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure
from benchmarks.throughput import fill_log
from mra.events.topics import Topics

__all__ = ["growth_figure"]

ROUND_SIZES = (1_000_000, 750_000, 500_000, 400_000, 300_000, 250_000, 200_000, 150_000)


def _rss_kib() -> int:
    """The process's peak resident memory so far (KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _current_kib() -> int:
    """The process's resident memory now (KiB), from /proc."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class _Sampler(threading.Thread):
    """The highest resident memory seen while the replay runs, sampled every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _current_kib()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, _current_kib())


def _child(bootstrap: str, prefix: str, partitions: int, events: int) -> dict[str, Any]:
    from mra.core.plugins import load_registry
    from mra.services.replay import replay
    from mra.services.runtime import Runtime

    registry = load_registry()
    registry.find_entry("BJ2025-I-139")
    with tempfile.TemporaryDirectory(prefix="mra-bench-growth-") as tmp:
        from benchmarks.harness import unverified

        runtime = Runtime(unverified(Path(tmp) / "state"), bootstrap, Topics(prefix, partitions))
        transport = runtime.connect(client_id="mra-bench-growth")
        before = _current_kib()
        sampler = _Sampler()
        sampler.start()
        start = time.perf_counter()
        result = replay(
            runtime, "beijing", registry=registry, transport=transport, into=Path(tmp) / "replay", timeout=None
        )
        seconds = time.perf_counter() - start
        sampler.done.set()
        sampler.join()
        during = max(sampler.peak, _current_kib())
        peak = _rss_kib()
        applied = result.stats.applied
        disk = getattr(result.store.store, "disk_bytes", None)  # after a checkpoint: the file and its WAL
        db_bytes = disk() if disk is not None else result.path.stat().st_size
        result.store.close()
        transport.close()
    if applied != events:
        raise SystemExit(f"replay applied {applied} of {events} events")
    return {
        "events": applied,
        "seconds": seconds,
        "events_per_s": applied / seconds,
        "rss_before_mib": before / 1024,
        "rss_peak_during_mib": during / 1024,
        "rss_peak_mib": peak / 1024,
        "db_mib": db_bytes / 1024 / 1024,
        "db_bytes_per_fact": db_bytes / max(1, applied),
    }


def _measure(b: Bench, topics: Topics, events: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.growth",
        "--bootstrap",
        b.bootstrap,
        "--prefix",
        topics.prefix,
        "--partitions",
        str(topics.partitions),
        "--events",
        str(events),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise RuntimeError(f"growth child failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _large_size(target: int, rate: float, budget_s: float, repeats: int) -> tuple[int, str]:
    """The large log size: ``target`` if ``repeats`` replays of it fit the budget at ``rate``, else smaller."""
    fits = rate * budget_s / max(1, repeats)
    if target <= fits:
        return target, ""
    for size in ROUND_SIZES:
        if size < target and size <= fits:
            return size, (
                f"{target:,} events would take ~{target / rate / 60:.0f} min per replay at {rate:,.0f} events/s; "
                f"ran {size:,}, the largest round size that fits the {budget_s / 60:.0f}-minute budget"
            )
    return 0, f"not even {ROUND_SIZES[-1]:,} events fit the {budget_s / 60:.0f}-minute budget at {rate:,.0f} events/s"


def growth_figure(b: Bench, budget_s: float = 900.0) -> Figure:
    small, target = (1_000, 10_000) if b.quick else (100_000, 1_000_000)
    fig = Figure(
        "growth",
        "replay events/s and peak resident memory of the bureau's read-model build, at a small and a large log "
        "(each run in a fresh subprocess; memory is the highest VmRSS sampled during the replay)",
        params={"small_events": small, "target_large_events": target, "budget_s": budget_s},
    )
    topics = b.topics("growth-small")
    n_small = fill_log(b, topics, -(-small // 3), "growth")
    fig.params["small_events"] = n_small
    runs_small = []
    small_repeats = b.repeat if b.quick else min(b.repeat, 2)
    fig.params["small_repeats"] = small_repeats
    for r in range(small_repeats):
        b.say(f"growth: small log ({n_small:,} events), repeat {r + 1}/{small_repeats}")
        runs_small.append(_measure(b, topics, n_small))
    rate = min(x["events_per_s"] for x in runs_small)
    large_repeats = b.repeat if b.quick else 1
    large, why = _large_size(target, rate, budget_s, large_repeats)
    fig.params["large_repeats"] = large_repeats
    if why:
        fig.extra["large_size_note"] = why
    runs_large: list[dict[str, Any]] = []
    if large:
        topics = b.topics("growth-large")
        b.say(f"growth: writing the large log ({large:,} events)")
        n_large = fill_log(b, topics, -(-large // 3), "growth")
        fig.params["large_events"] = n_large
        for r in range(large_repeats):
            b.say(f"growth: large log ({n_large:,} events), repeat {r + 1}/{large_repeats}")
            runs_large.append(_measure(b, topics, n_large))
    for label, runs in (("small", runs_small), ("large", runs_large)):
        for x in runs:
            fig.add(f"replay_{label}", "events/s", x["events_per_s"])
            fig.add(f"rss_peak_{label}", "MiB", x["rss_peak_mib"])
            fig.add(f"rss_during_replay_{label}", "MiB", x["rss_peak_during_mib"])
            fig.add(f"rss_growth_{label}", "MiB", x["rss_peak_during_mib"] - x["rss_before_mib"])
            fig.add(f"db_{label}", "MiB", x["db_mib"])
            fig.add(f"db_bytes_per_fact_{label}", "bytes", x["db_bytes_per_fact"])
    if runs_large:
        fig.ratio("replay_rate_large_vs_small", "replay_large", "replay_small", ">= 0.8")
        fig.ratio("memory_large_vs_small", "rss_during_replay_large", "rss_during_replay_small", "<= 1.5")
        fig.ratio("ru_maxrss_large_vs_small", "rss_peak_large", "rss_peak_small")
    else:
        fig.not_measured["large"] = why
    return fig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one growth measurement (run by the growth benchmark)")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--events", type=int, required=True)
    a = p.parse_args(argv)
    print(json.dumps(_child(a.bootstrap, a.prefix, a.partitions, a.events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
