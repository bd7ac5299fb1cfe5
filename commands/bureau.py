"""``mra bureau``, ``mra holder`` and ``mra employment``: the bureaus and the facts they decide on."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, jurisdiction_option, pass_ctx, store_option
from mra.commands._input import JURISDICTION, REGION
from mra.commands._output import _, current_language, shown_time, table, working
from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.facts import HolderFile, StoredDecision
from mra.core.models import parse_employer_type
from mra.core.plugins import load_registry
from mra.events.bus import Transport
from mra.events.publisher import Publisher
from mra.events.schemas import EmployerRef, EmploymentEnded, EmploymentStarted
from mra.events.topics import Topics
from mra.i18n.places import closest
from mra.i18n.terms import N_, category_label, outcome_label
from mra.services.bureau import BureauStore
from mra.services.bureaus import group_id, open_bureau, partition_lag
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
            click.echo(_("bureau {jurisdiction} running; Ctrl-C to stop").format(jurisdiction=jurisdiction), err=True)
        before = b.store.counts()
        try:
            label = _("bureau {jurisdiction}: reading the log").format(jurisdiction=jurisdiction)
            with working(label, quiet=as_json or not until_idle):
                stats = b.run(until_idle=until_idle, timeout=timeout)
        except KeyboardInterrupt:
            b.processor.stop_event.set()
            stats = None
        counts = b.store.counts()
    finally:
        b.close()
    data: dict[str, Any] = {"jurisdiction": jurisdiction, "counts": counts}
    data["new_events"] = counts["events_applied"] - before["events_applied"]
    if stats is not None:
        data.update(
            records_read=stats.polled,
            applied=stats.applied,
            dead_lettered=stats.dead_lettered,
            idle=stats.idle,
            seconds=round(stats.seconds, 2),
        )

    def text(d: dict[str, Any]) -> str:
        head = _(
            "bureau {jurisdiction}: {new} new event(s) applied to the read model this run, {dead} dead-lettered"
        ).format(jurisdiction=jurisdiction, new=d["new_events"], dead=d.get("dead_lettered", 0))
        if d.get("idle"):
            head += _("; caught up")
        return head + "\n" + _counts_table(d["counts"])

    emit(data, as_json, text)
    if until_idle and stats is not None and not stats.idle:
        why = "; ".join(stats.errors) or "the cluster did not answer"
        raise MraError(f"bureau {jurisdiction} stopped before it was idle ({why})")


_COUNT_LABELS = {
    "events_applied": N_("events applied (all runs)"),
    "holders": N_("holders"),
    "certificates": N_("certificates"),
    "decisions_active": N_("decisions standing"),
    "decisions_eligible": N_("of which eligible"),
    "decisions_withdrawn": N_("decisions withdrawn"),
    "decisions_under_review": N_("decisions under review"),
    "outbox_unsent": N_("decisions not yet published"),
    "dead_letters": N_("dead letters"),
}


def _counts_table(counts: dict[str, int]) -> str:
    """The read model's counts, one per line, labels in the language in force."""
    rows = [{"what": _(_COUNT_LABELS.get(k, k)), "n": v} for k, v in counts.items()]
    return table(rows, [("what", _("read model")), ("n", _("count"))])


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
        transport = runtime.connect()
        lag = partition_lag(transport, runtime, store)
        for p in lag:  # a broker that under-reports its log end: the end is at least what was read
            if int(str(p["end"])) < int(str(p["position"])):
                p["reported_end"], p["end"], p["lag"] = p["end"], p["position"], 0
        describe = getattr(transport, "describe_group", None)  # the Kafka transports; not the in-memory one
        group = describe(group_id(runtime, jurisdiction)) if describe is not None else None
        if group is not None:
            by_tp = {(str(p["topic"]), int(str(p["partition"]))): p for p in lag}
            for m in group["members"]:
                m["lag"] = {f"{t}:{p}": by_tp[(t, p)]["lag"] for t, p in m["partitions"] if (t, p) in by_tp}
                m["partitions"] = [f"{t}:{p}" for t, p in m["partitions"]]
        data = {
            "jurisdiction": jurisdiction,
            "counts": store.counts(),
            "partitions": lag,
            "lag_total": sum(int(str(p["lag"])) for p in lag),
            "group": group,
            "note": "lag is measured against the broker's reported end offsets; brokers that under-report the "
            "log end make it approximate. 'Caught up' is decided by `bureau run --until-idle` (an empty poll past "
            "the end).",
        }
    finally:
        store.close()

    def text(d: dict[str, Any]) -> str:
        rows = [
            {
                "topic": p["topic"],
                "partition": p["partition"],
                "position": p["position"],
                "end": f"{p['end']}*" if "reported_end" in p else p["end"],
                "lag": p["lag"],
            }
            for p in d["partitions"]
        ]
        parts = table(
            rows,
            [("topic", _("topic")), ("partition", _("partition")), ("position", _("position")), ("end", _("end")),
             ("lag", _("lag"))],
            sort=lambda r: (r["topic"], r["partition"]),
            total=_("total lag: {lag} record(s)").format(lag=sum(int(r["lag"]) for r in rows)),
        )
        notes = (
            ["* " + _("the broker reported an end before the position read: it under-reports its log end; shown as "
                      "the position")]
            if any(isinstance(r["end"], str) for r in rows)
            else []
        )
        members = []
        if group is None:
            members.append(_("group: no member (or the broker does not describe groups)"))
        else:
            members.append(
                _("group {group} ({state}): {n} member(s)").format(
                    group=group["group_id"], state=group["state"], n=len(group["members"])
                )
            )
            for m in group["members"]:
                owned = ", ".join(
                    _("{partition} (lag {lag})").format(partition=tp, lag=m["lag"].get(tp, "?"))
                    for tp in m["partitions"]
                )
                members.append(
                    "  " + _("{client} on {host}: {owned}").format(
                        client=m["client_id"], host=m["host"], owned=owned or _("nothing")
                    )
                )
        return "\n".join([_("bureau {jurisdiction}").format(jurisdiction=jurisdiction), _counts_table(d["counts"]),
                          "", parts, *notes, "", *members])

    emit(data, as_json, text)


# --- holder ---------------------------------------------------------------------------------------------------


@click.group()
def holder() -> None:
    """What a bureau knows and decided about a holder."""


_OUTCOME_ORDER = {"eligible": 0, "conditional": 1, "advisory": 2, "ineligible": 3}


def _withdrawn_on(stored: StoredDecision, facts: HolderFile | None) -> str | None:
    """The day a decision stopped standing, from the fact that ended it: the certificate's revocation, the
    entry's withdrawal, or the end of the employment in the bureau's jurisdiction."""
    if facts is None:
        return None
    d = stored.decision
    for c in facts.certificates:
        if c.revoked_at is not None and d.certificate_key and c.certificate_key == d.certificate_key:
            return c.revoked_at.date().isoformat()
    entry = facts.withdrawn.get(d.entry_id)
    if entry is not None:
        return entry.effective.isoformat()
    ends = [
        e.employment.ended
        for e in facts.employments
        if e.employment.jurisdiction == d.jurisdiction and e.employment.ended is not None
    ]
    return max(ends).isoformat() if ends else None


def _history(facts: HolderFile | None) -> list[dict[str, str]]:
    """What happened to the holder, as the bureau's read model has it, oldest first."""
    if facts is None:
        return []
    events: list[dict[str, str]] = []
    for c in facts.certificates:
        events.append({"at": c.verified_at.isoformat(), "what": "certificate_verified", "detail": c.entry_id})
        if c.revoked_at is not None:
            events.append(
                {"at": c.revoked_at.isoformat(), "what": "certificate_revoked", "detail": c.revoke_reason or ""}
            )
    for e in facts.employments:
        emp = e.employment
        detail = f"{emp.jurisdiction} {emp.employer} ({emp.started.isoformat()})"
        events.append({"at": e.event_time.isoformat(), "what": "employment_started", "detail": detail})
        if emp.ended is not None:
            ended_at = (e.ended_time or e.event_time).isoformat()
            detail = f"{emp.jurisdiction} ({emp.ended.isoformat()})"
            events.append({"at": ended_at, "what": "employment_ended", "detail": detail})
    for w in facts.withdrawn.values():
        detail = f"{w.entry_id} ({w.effective.isoformat()}) {w.reason}"
        events.append({"at": w.event_time.isoformat(), "what": "entry_withdrawn", "detail": detail})
    if facts.erasure is not None:
        events.append({"at": facts.erasure.erased_at.isoformat(), "what": "holder_erased", "detail": ""})
    return sorted(events, key=lambda e: e["at"])


_HISTORY_LABELS = {
    "certificate_verified": N_("certificate verified"),
    "certificate_revoked": N_("certificate revoked"),
    "employment_started": N_("employment started"),
    "employment_ended": N_("employment ended"),
    "entry_withdrawn": N_("catalogue entry withdrawn"),
    "holder_erased": N_("personal data erased"),
}


@holder.command("show")
@click.argument("holder_id")
@jurisdiction_option()
@store_option
@json_option
@pass_ctx
def holder_show(ctx: Ctx, holder_id: str, jurisdiction: str, store_url: str | None, as_json: bool) -> None:
    """The holder's verified certificates, the decisions standing (sorted by outcome, with the benefit's name),
    those withdrawn (when and why), and the history of the facts they rest on."""
    runtime = ctx.runtime()
    registry = load_registry()
    store = BureauStore(open_store(runtime, jurisdiction, store_url), jurisdiction, registry)
    try:
        data = store.holder(holder_id)
        facts = store.store.holder_file(holder_id)
        withdrawn = store.store.decisions(holder_id, active=False)
    finally:
        store.close()
    if data is None:
        raise NotFound(
            _("holder {holder_id} is not known to the {jurisdiction} bureau (has it run?)").format(
                holder_id=holder_id, jurisdiction=jurisdiction
            )
        )
    names = {r.code: (r.title_zh, r.title_en) for r in registry.rules(jurisdiction)}
    for dec in data["decisions"]:
        dec["name_zh"], dec["name_en"] = names.get(dec["code"], ("", ""))
    data["decisions"].sort(key=lambda d: (_OUTCOME_ORDER.get(str(d["outcome"]), 9), d["code"]))
    data["withdrawn"] = sorted(
        (
            {
                "code": w.decision.code,
                "name_zh": names.get(w.decision.code, ("", ""))[0],
                "name_en": names.get(w.decision.code, ("", ""))[1],
                "outcome": str(w.decision.outcome),
                "clause": w.decision.clause,
                "withdrawn_on": _withdrawn_on(w, facts),
                "withdrawn_reason": w.withdrawn_reason,
            }
            for w in withdrawn
        ),
        key=lambda w: (w["withdrawn_on"] or "", w["code"]),
    )
    data["history"] = _history(facts)
    lang = current_language()

    def text(d: dict[str, Any]) -> str:
        category = category_label(str(d["category"]), lang) if d.get("category") else "?"
        lines = [
            _("holder {holder_id} ({category}) in {jurisdiction}").format(
                holder_id=holder_id, category=category, jurisdiction=jurisdiction
            )
        ]
        for c in d["certificates"]:
            state = _("REVOKED") if c["revoked"] else _("verified")
            lines.append(
                "  "
                + _("certificate {entry_id} code {code} {state} by {verified_by}").format(
                    entry_id=c["entry_id"], code=c["verification_code"], state=state, verified_by=c["verified_by"]
                )
            )
        counts = Counter(str(x["outcome"]) for x in d["decisions"])
        summary = ", ".join(f"{counts[o]} {outcome_label(o, lang)}" for o in _OUTCOME_ORDER if counts[o])
        lines += ["", _("decisions standing: {n}").format(n=len(d["decisions"])) + (f" ({summary})" if summary else "")]
        rows = [
            {
                "outcome": outcome_label(str(x["outcome"]), lang),
                "name": x["name_zh"] if lang == "zh_CN" else (x["name_en"] or x["name_zh"]),
                "code": x["code"],
                "clause": x["clause"],
                "why": "; ".join(x["reasons"] or x["conditions"] or []),
            }
            for x in d["decisions"]
        ]
        if rows:
            shown = table(
                rows,
                [("outcome", _("outcome")), ("name", _("benefit")), ("code", _("code")), ("clause", _("clause"))],
            ).splitlines()
            lines += shown[:2]
            for line, row in zip(shown[2:], rows, strict=True):
                lines.append(line)
                if row["why"]:
                    lines.append("    " + _("because: {why}").format(why=row["why"]))
        if d["withdrawn"]:
            lines += ["", _("withdrawn: {n}").format(n=len(d["withdrawn"]))]
            for w in d["withdrawn"]:
                name = w["name_zh"] if lang == "zh_CN" else (w["name_en"] or w["name_zh"])
                when = (
                    _("withdrawn on {day} because {reason}").format(day=w["withdrawn_on"], reason=w["withdrawn_reason"])
                    if w["withdrawn_on"]
                    else _("withdrawn because {reason}").format(reason=w["withdrawn_reason"])
                )
                lines.append(f"  {w['code']}  {name}  {when}")
        if d["history"]:
            lines += ["", _("history")]
            for h in d["history"]:
                lines.append(f"  {shown_time(h['at'])}  {_(_HISTORY_LABELS.get(h['what'], h['what']))}  {h['detail']}")
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
    publisher = runtime.publisher(transport, f"{jurisdiction}-intake")  # no keys: refused before anything else
    _check_holder(ctx, transport, runtime.topics, holder_id, ending)
    return publisher, regions


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
    # each jurisdiction's intake speaks for its own jurisdiction only: the end as the source's, the start as the
    # destination's
    leaving = _intake(ctx, from_j, holder_id, ending=from_j)[0]
    arriving, regions = _intake(ctx, to_j, holder_id)
    day = _day(on)
    started = _started(holder_id, to_j, regions, day, **start)
    ended = leaving.publish(EmploymentEnded(holder_id=holder_id, jurisdiction=from_j, ended=day), time=_at(day))
    leaving.flush()
    began = arriving.publish(started, time=_at(day))
    arriving.flush()
    emit({"ended": ended.id, "started": began.id}, as_json, f"{holder_id} moved from {from_j} to {to_j} on {day}")


COMMANDS: list[click.Command] = [bureau, holder, employment]
