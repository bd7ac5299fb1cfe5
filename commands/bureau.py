"""``mra bureau``, ``mra holder`` and ``mra employment``: the bureaus and the facts they decide on."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, jurisdiction_option, pass_ctx, store_option
from mra.commands._input import JURISDICTION, REGION
from mra.commands._output import _
from mra.core.errors import NotFound, ValidationFailed
from mra.core.models import parse_employer_type
from mra.core.plugins import load_registry
from mra.events.bus import Transport
from mra.events.publisher import Publisher
from mra.events.schemas import EmployerRef, EmploymentEnded, EmploymentStarted
from mra.events.topics import Topics
from mra.i18n.places import closest
from mra.services.bureau import BureauStore
from mra.services.bureaus import open_bureau, partition_lag
from mra.services.holder_facts import known_here, read_holder
from mra.services.stores import open_store

__all__ = ["COMMANDS"]


# --- bureau ---------------------------------------------------------------------------------------------------


@click.group()
def bureau() -> None:
    """Run a jurisdiction's bureau and inspect its read model."""


@bureau.command("run")
@jurisdiction_option()
@click.option("--until-idle", is_flag=True, help="Stop once caught up (reached the end and a poll past it is empty).")
@click.option("--timeout", type=float, help="Give up after this many seconds.")
@store_option
@json_option
@pass_ctx
def bureau_run(
    ctx: Ctx, jurisdiction: str, until_idle: bool, timeout: float | None, store_url: str | None, as_json: bool
) -> None:
    """Consume verification, holder and catalogue events; decide and publish benefits (a consumer group)."""
    b = open_bureau(ctx.runtime(), jurisdiction, store_url=store_url)
    try:
        if not until_idle and not as_json:
            click.echo(f"bureau {jurisdiction} running; Ctrl-C to stop", err=True)
        try:
            stats = b.run(until_idle=until_idle, timeout=timeout)
        except KeyboardInterrupt:
            b.processor.stop_event.set()
            stats = None
        counts = b.store.counts()
    finally:
        b.close()
    data = {"jurisdiction": jurisdiction, "counts": counts}
    if stats is not None:
        data.update(
            applied=stats.applied, dead_lettered=stats.dead_lettered, idle=stats.idle, seconds=round(stats.seconds, 2)
        )
    emit(data, as_json, lambda d: f"bureau {jurisdiction}: applied {d.get('applied', 0)} events; {counts}")


@bureau.command("status")
@jurisdiction_option()
@store_option
@json_option
@pass_ctx
def bureau_status(ctx: Ctx, jurisdiction: str, store_url: str | None, as_json: bool) -> None:
    """Positions and lag per partition, and the read model's counts."""
    runtime = ctx.runtime()
    registry = load_registry()
    store = BureauStore(open_store(runtime, jurisdiction, store_url), jurisdiction, registry)
    try:
        lag = partition_lag(runtime.connect(), runtime, store)
        data = {
            "jurisdiction": jurisdiction,
            "counts": store.counts(),
            "partitions": lag,
            "lag_total": sum(int(str(p["lag"])) for p in lag),
            "note": "lag is measured against the broker's reported end offsets; brokers that under-report the "
            "log end make it approximate. 'Caught up' is decided by `bureau run --until-idle` (an empty poll past "
            "the end).",
        }
    finally:
        store.close()

    def text(d: dict[str, object]) -> str:
        lines = [
            f"bureau {jurisdiction}: {d['counts']}",
            f"{'topic':40} {'part':>4} {'position':>9} {'end':>9} {'lag':>6}",
        ]
        lines += [f"{p['topic']:40} {p['partition']:>4} {p['position']:>9} {p['end']:>9} {p['lag']:>6}" for p in lag]
        return "\n".join(lines)

    emit(data, as_json, text)


# --- holder ---------------------------------------------------------------------------------------------------


@click.group()
def holder() -> None:
    """What a bureau knows and decided about a holder."""


@holder.command("show")
@click.argument("holder_id")
@jurisdiction_option()
@store_option
@json_option
@pass_ctx
def holder_show(ctx: Ctx, holder_id: str, jurisdiction: str, store_url: str | None, as_json: bool) -> None:
    """The holder's verified certificates and current decisions, with their reasons."""
    runtime = ctx.runtime()
    store = BureauStore(open_store(runtime, jurisdiction, store_url), jurisdiction, load_registry())
    try:
        data = store.holder(holder_id)
    finally:
        store.close()
    if data is None:
        raise NotFound(f"holder {holder_id} is not known to the {jurisdiction} bureau (has it run?)")

    def text(d: dict[str, object]) -> str:
        lines = [f"holder {holder_id} ({d['category']}) in {jurisdiction}"]
        for c in d["certificates"]:  # type: ignore[attr-defined]
            state = "REVOKED" if c["revoked"] else "verified"
            lines.append(f"  certificate {c['entry_id']} code {c['verification_code']} {state} by {c['verified_by']}")
        for dec in d["decisions"]:  # type: ignore[attr-defined]
            why = "; ".join(dec["reasons"] or dec["conditions"] or [])
            lines.append(f"  {dec['outcome']:<11} {dec['code']:<32} {dec['clause']}  {why}")
        return "\n".join(lines)

    emit(data, as_json, text)


# --- employment -----------------------------------------------------------------------------------------------


def _day(value: date | datetime | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    return value.date() if isinstance(value, datetime) else value


def _at(day: date) -> datetime:
    """Event time of a fact dated ``day``: that day at noon UTC (now, for today)."""
    now = datetime.now(UTC)
    return now if day == now.date() else datetime.combine(day, time(12), UTC)


def _intake(ctx: Ctx, jurisdiction: str, holder_id: str, ending: str | None = None) -> tuple[Publisher, list[str]]:
    """The intake's publisher, once the holder is known to the platform and, for ``ending``, employed there."""
    registry = load_registry()
    regions = list(registry.jurisdiction(jurisdiction).regions)
    runtime = ctx.runtime()
    transport = runtime.connect()
    _check_holder(ctx, transport, runtime.topics, holder_id, ending)
    return runtime.publisher(transport, f"{jurisdiction}-intake"), regions


def _check_holder(ctx: Ctx, transport: Transport, topics: Topics, holder_id: str, ending: str | None) -> None:
    """Refuse, before anything is published, a holder the platform does not know and the end of an employment
    the log does not have."""
    if ending is None and known_here(ctx.state_dir, holder_id):
        return
    facts = read_holder(transport, topics, holder_id)
    if not facts.known and not known_here(ctx.state_dir, holder_id):
        near = closest(holder_id, facts.holders, n=2)
        hint = (
            _("Did you mean {holders}?").format(holders=" / ".join(near))
            if near
            else _("The holder id is printed by `mra verify status REQUEST_ID` once the request is verified.")
        )
        raise NotFound(
            _("holder {holder_id} is not known to the verification platform; nothing was published. {hint}").format(
                holder_id=holder_id, hint=hint
            )
        )
    if ending is not None and ending not in facts.employed:
        where = ", ".join(sorted(facts.employed)) or _("nowhere")
        raise ValidationFailed(
            _(
                "holder {holder_id} has no employment in {jurisdiction} to end (employed now in: {where}); "
                "nothing was published"
            ).format(holder_id=holder_id, jurisdiction=ending, where=where)
        )


def _started(
    holder_id: str,
    jurisdiction: str,
    regions: list[str],
    on: date,
    *,
    employer: str,
    credit_code: str,
    region: str | None,
    field: str | None,
    years: float | None,
    in_scope: bool,
    high_tech: bool,
    universal_studios: bool,
    employer_type: str | None = None,
) -> EmploymentStarted:
    """The start event, validated before anything is written."""
    region = region or regions[0]
    if region not in regions:
        raise ValidationFailed(f"region {region!r} is not covered by {jurisdiction} (covered: {', '.join(regions)})")
    if years is not None and years < 0:
        raise ValidationFailed("--years must not be negative")
    try:
        kind = parse_employer_type(employer_type) if employer_type is not None else None
    except ValueError as e:
        raise ValidationFailed(f"--employer-type: {e}") from None
    return EmploymentStarted(
        holder_id=holder_id,
        jurisdiction=jurisdiction,
        employer=EmployerRef(name=employer, credit_code=credit_code, region=region),
        started=on,
        field=field,
        years_in_scope=years,
        in_scope=in_scope,
        high_tech=high_tech,
        universal_studios=universal_studios,
        employer_type=kind,
    )


def _start_options(f):  # type: ignore[no-untyped-def]
    for option in reversed(
        [
            click.option("--employer", required=True, help="Employer name."),
            click.option(
                "--employer-code",
                "credit_code",
                default="unspecified",
                help="The employer's unified social credit code.",
            ),
            click.option(
                "--region", type=REGION, help="Employer region (default: the jurisdiction's first region)."
            ),
            click.option("--field", help="Field of work (领域)."),
            click.option("--years", type=float, help="Years of work in the row's scope, as attested."),
            click.option("--in-scope/--not-in-scope", default=True, help="Whether the work is in the row's scope."),
            click.option("--high-tech", is_flag=True, help="The employer is in a 高精尖 industry."),
            click.option("--universal-studios", is_flag=True, help="The work is for the Universal Studios project."),
            click.option("--employer-type", metavar="public-institution|other",
                         help="Whether the employer is a public institution (事业单位). Omitted: not said."),
        ]
    ):
        f = option(f)
    return f


@click.group()
def employment() -> None:
    """Record the employment facts bureaus decide on."""


@employment.command("start")
@click.option("--holder", "holder_id", required=True, help="Pseudonymous holder id.")
@jurisdiction_option()
@_start_options
@click.option("--on", type=click.DateTime(["%Y-%m-%d"]), help="Start date (default: today).")
@json_option
@pass_ctx
def employment_start(
    ctx: Ctx, holder_id: str, jurisdiction: str, on: datetime | None, as_json: bool, **start: Any
) -> None:
    """A holder starts working for an employer in a jurisdiction."""
    publisher, regions = _intake(ctx, jurisdiction, holder_id)
    day = _day(on)
    env = publisher.publish(_started(holder_id, jurisdiction, regions, day, **start), time=_at(day))
    publisher.flush()
    emit(
        {"event_id": env.id, "type": env.type, "holder_id": holder_id, "jurisdiction": jurisdiction},
        as_json,
        f"employment of {holder_id} in {jurisdiction} from {day} recorded ({env.id})",
    )


@employment.command("end")
@click.option("--holder", "holder_id", required=True, help="Pseudonymous holder id.")
@jurisdiction_option()
@click.option("--on", type=click.DateTime(["%Y-%m-%d"]), help="End date (default: today).")
@json_option
@pass_ctx
def employment_end(ctx: Ctx, holder_id: str, jurisdiction: str, on: datetime | None, as_json: bool) -> None:
    """A holder's employment in a jurisdiction ends."""
    publisher, _regions = _intake(ctx, jurisdiction, holder_id, ending=jurisdiction)
    day = _day(on)
    env = publisher.publish(EmploymentEnded(holder_id=holder_id, jurisdiction=jurisdiction, ended=day), time=_at(day))
    publisher.flush()
    emit({"event_id": env.id, "type": env.type}, as_json, f"employment of {holder_id} in {jurisdiction} ended {day}")


@employment.command("move")
@click.option("--holder", "holder_id", required=True, help="Pseudonymous holder id.")
@click.option("--from", "from_j", type=JURISDICTION, required=True, help="Jurisdiction the holder leaves.")
@click.option("--to", "to_j", type=JURISDICTION, required=True, help="Jurisdiction the holder moves to.")
@_start_options
@click.option("--on", type=click.DateTime(["%Y-%m-%d"]), help="Date of the move (default: today).")
@json_option
@pass_ctx
def employment_move(
    ctx: Ctx, holder_id: str, from_j: str, to_j: str, on: datetime | None, as_json: bool, **start: Any
) -> None:
    """A holder moves within the region: employment ends in one jurisdiction and starts in another."""
    if from_j == to_j:
        raise ValidationFailed("--from and --to name the same jurisdiction")
    load_registry().jurisdiction(from_j)
    publisher, regions = _intake(ctx, to_j, holder_id, ending=from_j)
    day = _day(on)
    started = _started(holder_id, to_j, regions, day, **start)
    ended = publisher.publish(EmploymentEnded(holder_id=holder_id, jurisdiction=from_j, ended=day), time=_at(day))
    began = publisher.publish(started, time=_at(day))
    publisher.flush()
    emit({"ended": ended.id, "started": began.id}, as_json, f"{holder_id} moved from {from_j} to {to_j} on {day}")


COMMANDS: list[click.Command] = [bureau, holder, employment]
