"""Where mra's time goes: pyinstrument profiles of the mra side of publish, bureau apply and replay.

Optional: needs ``pip install pyinstrument``. Each profile runs once on its own fresh topics and writes a
text report (and an HTML one) to the chosen directory; the top entries by own time go into the JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import throughput
from benchmarks.harness import Bench, unverified
from benchmarks.workload import publish_mix
from mra.events.publisher import Publisher
from mra.services.runtime import Runtime

__all__ = ["profile_all"]


def _top(session: Any, limit: int = 15) -> list[dict[str, Any]]:
    """The functions with the most own time (self time summed over every call site)."""
    own: dict[tuple[str, str, int], float] = {}

    def walk(frame: Any) -> None:
        real = [c for c in frame.children if not c.is_synthetic]
        key = (frame.function, frame.file_path_short or "", frame.line_no or 0)
        own[key] = own.get(key, 0.0) + frame.time - sum(c.time for c in real)  # includes its "[self]" child
        for child in real:
            walk(child)

    root = session.root_frame()
    if root is not None:
        walk(root)
    total = session.duration or 1.0
    ranked = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    return [
        {"function": f, "file": path, "line": line, "own_s": round(t, 3), "share": round(t / total, 3)}
        for (f, path, line), t in ranked
    ]


def _profile(out_dir: Path, name: str, fn: Callable[[], object]) -> dict[str, Any]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    start = time.perf_counter()
    profiler.start()
    fn()
    profiler.stop()
    seconds = time.perf_counter() - start
    (out_dir / f"{name}.txt").write_text(profiler.output_text(unicode=False, color=False))
    (out_dir / f"{name}.html").write_text(profiler.output_html())
    return {"seconds": round(seconds, 3), "top_own_time": _top(profiler.last_session), "report": f"{name}.txt"}


def profile_all(b: Bench, out_dir: Path) -> dict[str, Any]:
    """Profile the mra side of publish, bureau apply and replay; return each one's top entries."""
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return {"skipped": "pyinstrument is not installed: pip install pyinstrument"}
    out_dir.mkdir(parents=True, exist_ok=True)
    n = 3_000 if b.quick else 10_000
    events = publish_mix(b.registry, n, "profile")
    result: dict[str, Any] = {"publish": {"events": n}}
    result["publish"].update(
        _profile(
            out_dir,
            "publish",
            lambda: throughput._mra_publish(b, events, lambda t, tp: Publisher(t, tp, "bench-publisher")),
        )
    )
    holders = 300 if b.quick else 2_000
    topics = b.topics("profile")
    n_log = throughput.fill_log(b, topics, holders, "profile")
    runtime = Runtime(unverified(b.workdir("profile")), b.bootstrap, topics)
    result["bureau"] = {"events": n_log}
    result["bureau"].update(_profile(out_dir, "bureau", lambda: throughput._bureau_run(b, runtime, n_log)))
    result["replay"] = {"events": n_log}
    result["replay"].update(_profile(out_dir, "replay", lambda: throughput._replay_run(b, runtime, n_log)))
    return result
