"""``python -m benchmarks [--quick] [--only NAME] [--repeat N] [--out FILE]`` from the repository root.

Starts its own broker (Tansu, into a temporary directory, stopped at the end) unless
``MRA_BOOTSTRAP_SERVERS`` names a cluster; runs each benchmark ``--repeat`` times; prints medians and
ratios; writes every figure with all its runs, and the machine, Python, broker and library versions, as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, Figure, environment
from benchmarks.workload import message_sizes
from mra.core.plugins import load_registry

__all__ = ["FIGURES", "main"]

FIGURES = ("publish", "bureau", "replay", "clients", "latency", "growth")


def _runners(growth_budget: float) -> list[tuple[tuple[str, ...], Callable[[Bench], list[Figure]]]]:
    from benchmarks.growth import growth_figure
    from benchmarks.latency import latency_figure
    from benchmarks.throughput import consume_figures, publish_figure

    return [
        (("publish",), lambda b: [publish_figure(b)]),
        (("bureau", "replay", "clients"), consume_figures),
        (("latency",), lambda b: [latency_figure(b)]),
        (("growth",), lambda b: [growth_figure(b, growth_budget)]),
    ]


def _broker(state: Path) -> tuple[str, dict[str, Any], Callable[[], None]]:
    env = os.environ.get("MRA_BOOTSTRAP_SERVERS")
    if env:
        return env, {"kind": "external", "bootstrap": env}, lambda: None
    from mra.events.broker import start_broker, stop_broker

    info = start_broker(state)
    assert info.bootstrap and info.binary
    version = Path(info.binary).name.removeprefix("tansu-").split("-")[0]
    return (
        info.bootstrap,
        {"kind": "tansu", "version": version, "storage": "memory", "binary": info.binary, "started_by": "benchmarks"},
        lambda: stop_broker(state),
    )


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _print_figure(fig: Figure) -> None:
    print(f"\n== {fig.name}: {fig.description}")
    for key, s in fig.series.items():
        print(f"  {key:<28} median {_fmt(s.median):>10} {s.unit:<9} runs {', '.join(_fmt(r) for r in s.runs)}")
    for key, value in fig.ratios.items():
        target = fig.targets.get(key)
        verdict = "" if target is None else (f"  target {target}: " + ("met" if fig.met.get(key) else "NOT met"))
        print(f"  ratio {key:<22} {value:.3f}{verdict}")
    for key, why in fig.not_measured.items():
        print(f"  {key}: {why}")
    for key, value in fig.extra.items():
        print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0] if __doc__ else "")
    p.add_argument("--quick", action="store_true", help="very small sizes: a smoke run, not a measurement")
    p.add_argument("--only", action="append", choices=FIGURES, metavar="NAME", help=f"one of {', '.join(FIGURES)}")
    p.add_argument("--repeat", type=int, default=None, help="runs per figure (default 3; 2 with --quick)")
    p.add_argument("--out", type=Path, default=Path("benchmarks-result.json"), help="where the JSON result goes")
    p.add_argument("--growth-budget", type=float, default=900.0, help="seconds the large growth replay may take")
    p.add_argument("--profile", type=Path, default=None, help="also write pyinstrument profiles to this directory")
    a = p.parse_args(args)
    repeat = a.repeat if a.repeat is not None else (2 if a.quick else 3)
    if repeat < 1:
        p.error("--repeat must be at least 1")
    wanted = set(a.only or FIGURES)
    scratch = Path(tempfile.mkdtemp(prefix="mra-bench-"))
    started = time.time()
    bootstrap, broker, stop = _broker(scratch / "broker")
    try:
        registry = load_registry()
        bench = Bench(bootstrap, registry, scratch / "work", a.quick, repeat, lambda s: print(s, flush=True))
        result: dict[str, Any] = environment(broker, args)
        result.update({"quick": a.quick, "repeat": repeat, "started_at": started})
        result["message_sizes"] = message_sizes(registry)
        figures: dict[str, Any] = {}
        for names, run in _runners(a.growth_budget):
            if not wanted & set(names):
                continue
            t0, load0 = time.perf_counter(), os.getloadavg()
            for fig in run(bench):
                if fig.name in wanted:
                    fig.extra["wall_s"] = round(time.perf_counter() - t0, 1)
                    fig.extra["load_average_1m_before_after"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
                    figures[fig.name] = fig.as_json()
                    _print_figure(fig)
        result["figures"] = figures
        if a.profile is not None:
            from benchmarks.profiles import profile_all

            print(f"\nprofiling into {a.profile}", flush=True)
            result["profile"] = profile_all(bench, a.profile)
        result["wall_s"] = round(time.time() - started, 1)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        print(f"\nmessage sizes (bytes): {json.dumps(result['message_sizes'])}")
        print(f"wrote {a.out} in {result['wall_s']:.0f}s")
        return 0
    finally:
        stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
