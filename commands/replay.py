"""``mra replay``: rebuild a bureau's read model from the log, compare it with the live one, or ask what-if."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, jurisdiction_option, pass_ctx, store_option
from mra.core.errors import MraError, ValidationFailed
from mra.core.plugins import load_registry
from mra.events.topics import Topics
from mra.services.bureau import BureauStore
from mra.services.bureaus import bureau_db
from mra.services.replay import (
    Difference,
    ReplayResult,
    Window,
    behind,
    compare,
    parse_position,
    parse_time,
    replay,
    untrustworthy,
)
from mra.services.stores import open_store
from mra.services.stores import store_url as store_url_of
from mra.services.whatif import Change, changes, load_scenario, summary

__all__ = ["COMMANDS"]

DIFFERENCES_EXIT = 4
"""Exit status when --compare finds a difference."""

NOT_COMPARABLE_EXIT = 5
"""Exit status when --compare cannot compare: an empty log, a log reset, a log that cannot be read from its
start or to its end, or a window replay."""


class _Bar:
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.stack = contextlib.ExitStack()
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, expected: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            self.bar = self.stack.enter_context(
                click.progressbar(length=max(expected, 1), label=self.label, file=sys.stderr, show_pos=True)
            )
        step = min(done, self.bar.length) - self.done  # a broker may under-report its log end
        if step > 0:
            self.bar.update(step)
            self.done += step

    def close(self) -> None:
        self.stack.close()


def _change_line(c: Change) -> str:
    why = "; ".join(c.reasons_after) if c.after == "ineligible" else ""
    return f"  {c.holder_id} {c.code} ({c.entry_id}): {c.before or 'none'} → {c.after or 'none'}" + (
        f" — {why}" if why else ""
    )


@click.command("replay")
@jurisdiction_option()
@click.option("--from-beginning", is_flag=True, help="Read every partition from its beginning (the default).")
@click.option(
    "--from-offset",
    "from_offsets",
    multiple=True,
    metavar="TOPIC:PARTITION:OFFSET",
    help="Start that partition at OFFSET (e.g. verification:0:12; repeatable); other partitions from the beginning.",
)
@click.option("--from-time", metavar="ISO", help="Apply each partition's records from its first one at or after ISO.")
@click.option("--to-time", metavar="ISO", help="Stop applying each partition's records after ISO (record time).")
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the rebuilt read model (default: a new temporary one). Never the live one.",
)
@click.option("--compare", "do_compare", is_flag=True, help="Diff the rebuilt read model against the live one.")
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A what-if file (TOML): replay the same history under changed settings, rows or rules too, "
    "and list the decisions that would change.",
)
@click.option("--timeout", type=float, default=600, show_default=True, help="Give up after this many seconds.")
@store_option
@json_option
@pass_ctx
def replay_cmd(
    ctx: Ctx,
    jurisdiction: str,
    from_beginning: bool,
    from_offsets: tuple[str, ...],
    from_time: str | None,
    to_time: str | None,
    into: Path | None,
    do_compare: bool,
    rules_file: Path | None,
    timeout: float,
    store_url: str | None,
    as_json: bool,
) -> None:
    """Read the catalogue, verification and holder topics into a fresh read model, running the same rules
    with nothing published. Record times (--from-time, --to-time) are the records' own timestamps; a time
    needs its offset (2025-10-01T08:00:00+08:00 or …Z). Exit status 4 when --compare finds a difference."""
    if from_beginning and (from_offsets or from_time):
        raise ValidationFailed("--from-beginning cannot be combined with --from-offset or --from-time")
    runtime = ctx.runtime()
    registry = load_registry()
    registry.jurisdiction(jurisdiction)
    starts = dict(parse_position(p, runtime.topics) for p in from_offsets)
    if len(starts) != len(from_offsets):
        raise ValidationFailed("--from-offset names the same partition twice")
    window = Window(
        start=starts,
        from_time=parse_time(from_time) if from_time else None,
        to_time=parse_time(to_time) if to_time else None,
    )
    scenario = load_scenario(rules_file) if rules_file is not None else None
    live_path = bureau_db(runtime, jurisdiction)
    if into is not None and (into / f"{jurisdiction}.db").resolve() == live_path.resolve():
        raise MraError("--into must not be the live read model's directory")
    url = store_url_of(store_url)
    if do_compare and url is None and not live_path.exists():
        raise MraError(f"no live read model for {jurisdiction} at {live_path}: run `mra bureau run -j {jurisdiction}`")
    bar = _Bar(f"replaying {jurisdiction}")
    try:
        result = replay(
            runtime,
            jurisdiction,
            registry=registry,
            into=into,
            timeout=timeout,
            window=window,
            what_if=scenario,
            progress=bar,
        )
    except FileExistsError as e:
        raise MraError(str(e)) from None
    finally:
        bar.close()
    try:
        data = _report(runtime.topics, jurisdiction, result)
        differences = None
        problems: list[str] = []
        if do_compare:
            live = BureauStore(open_store(runtime, jurisdiction, url), jurisdiction, registry)
            try:
                problems = untrustworthy(live, result)
                transient: list[Difference] = []
                differences = compare(live, result.store, transient)
                data["live_behind"] = behind(live, result.store)
            finally:
                live.close()
            data["comparable"] = not problems
            data["problems"] = problems
            data["differences"] = [asdict(d) for d in differences]
            data["transient_withdrawn"] = len(transient)
        if result.what_if is not None and scenario is not None:
            found, reworded = changes(result.store, result.what_if)
            data["what_if"] = {
                "file": str(rules_file),
                "title": scenario.title,
                "into": str(result.what_if_path),
                "changed": len(found),
                "by_outcome": summary(found),
                "reworded": reworded,
                "changes": [asdict(c) for c in found],
            }
    finally:
        result.close()
    emit(data, as_json, _text)
    if problems:
        raise SystemExit(NOT_COMPARABLE_EXIT)
    if differences:
        raise SystemExit(DIFFERENCES_EXIT)


def _report(topics: Topics, jurisdiction: str, result: ReplayResult) -> dict[str, Any]:
    c, stats = result.counts, result.stats
    positions = result.store.positions()
    return {
        "jurisdiction": jurisdiction,
        "into": str(result.path),
        "window": result.window.describe(),
        "events": stats.polled,
        "read": c.read,
        "applied": c.applied,
        "before_window": c.before,
        "after_window": c.after,
        "dead_lettered": c.dead_lettered,
        "withheld": c.withheld,
        "caught_up": stats.idle,
        "errors": stats.errors,
        "seconds": round(stats.seconds, 2),
        "partitions": [
            {
                "topic": topics.logical(r.topic),
                "partition": r.partition,
                "start": r.start,
                "reported_end": r.end,
                "read_to": positions.get((r.topic, r.partition), r.start),
            }
            for r in result.partitions
        ],
        "counts": result.store.counts(),
    }


def _text(d: dict[str, Any]) -> str:
    j = d["jurisdiction"]
    w = d["window"]
    lines = [f"replayed {d['read']} records for {j} into {d['into']} in {d['seconds']}s"]
    if w["from_offsets"] or w["from_time"] or w["to_time"]:
        parts = [f"from {k}@{v}" for k, v in w["from_offsets"].items()]
        parts += [f"from {w['from_time']}"] if w["from_time"] else []
        parts += [f"to {w['to_time']}"] if w["to_time"] else []
        lines.append(
            f"  window {', '.join(parts)}: {d['applied']} applied, {d['before_window']} before it, "
            f"{d['after_window']} after it"
        )
    else:
        lines.append(f"  {d['applied']} applied")
    if d["dead_lettered"]:
        lines.append(f"  {d['dead_lettered']} unreadable (kept as dead letters in the replay; none sent)")
    if not d["caught_up"]:
        lines.append("  did not reach the end of the log: " + "; ".join(d["errors"]))
    lines.append("  read model: " + ", ".join(f"{k} {v}" for k, v in d["counts"].items()))
    if d.get("problems"):
        lines.append("cannot compare with the live read model:")
        lines += [f"  {p}" for p in d["problems"]]
    if "differences" in d:
        diffs = d["differences"]
        if not diffs and not d.get("problems"):
            lines.append("no differences from the live read model")
        elif diffs:
            lines.append(f"{len(diffs)} difference(s) from the live read model:")
        lines += [f"  {x['holder_id']} {x['code']} {x['field']}: live={x['live']!r} replayed={x['replayed']!r}"
                  for x in diffs]
        if d.get("live_behind"):
            lines.append(
                f"the live read model is behind the log (run `mra bureau run -j {j} --until-idle`): "
                + "; ".join(d["live_behind"])
            )
    if "what_if" in d:
        wi = d["what_if"]
        title = f" ({wi['title']})" if wi["title"] else ""
        lines.append(f"what-if {wi['file']}{title}: {wi['changed']} decision(s) would change")
        lines += [f"  {k}: {v}" for k, v in wi["by_outcome"].items()]
        lines += [_change_line(Change(**{**c, "reasons_before": tuple(c["reasons_before"]),
                                         "reasons_after": tuple(c["reasons_after"])})) for c in wi["changes"]]
        if wi["reworded"]:
            lines.append(f"  {wi['reworded']} other decision(s) keep their outcome with other reasons or conditions")
    return "\n".join(lines)


COMMANDS: list[click.Command] = [replay_cmd]
