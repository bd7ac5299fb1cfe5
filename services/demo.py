"""The scripted scenario behind ``mra demo``: the platform and the three bureaus, end to end, then an audit.

Employers submit four requests (one for a certificate the issuer never issued); the platform verifies three
and rejects the forged one; Beijing decides for the holders it employs; one holder moves to Tianjin and one
to Hebei, and both are honoured there under clause 四.3 with no second verification; one certificate is
revoked and its decisions withdrawn; finally every bureau's read model is rebuilt from the log and compared.

Each run uses a fresh topic prefix and its own state directory, so runs never see each other's events. The run
generates its own keys and trust store there: every event is signed and verified before it is applied.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from mra.core.plugins import load_registry
from mra.events.broker import broker_status, start_broker, stop_broker
from mra.events.envelope import decode
from mra.events.publisher import Publisher
from mra.events.schemas import (
    CatalogueEditionPublished,
    EmployerRef,
    EmploymentEnded,
    EmploymentStarted,
    VerificationRequested,
)
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.bureaus import open_bureau
from mra.services.files import private_dir
from mra.services.keys import init_keys, standard_identities, verification_settings
from mra.services.platform import (
    Platform,
    check_code,
    load_settings,
    prepare,
    publish_submission,
    request_status,
    revoke_code,
)
from mra.services.replay import compare, replay
from mra.services.runtime import Runtime

__all__ = ["run_demo"]

JURISDICTIONS = ("beijing", "tianjin", "hebei")
T0 = datetime(2025, 10, 9, 2, 0, tzinfo=UTC)  # the scenario's own clock: a replay decides the same

REGISTER = {
    "source": "Fictional register for the demonstration: none of these certificates exists.",
    "issuers": [
        {
            "names": ["ACCA", "特许公认会计师公会", "Association of Chartered Certified Accountants"],
            "certificates": [
                {
                    "number": "ACCA-2019-004512",
                    "holder": "Jane Smith",
                    "entry": "BJ2025-I-139",
                    "issued": "2019-06-30",
                    "expires": None,
                    "status": "valid",
                }
            ],
        },
        {
            "names": ["CFA Institute", "特许金融分析师协会"],
            "certificates": [
                {
                    "number": "CFA-2012-118230",
                    "holder": "王立新",
                    "entry": "BJ2025-U-09",
                    "issued": "2012-09-01",
                    "expires": None,
                    "status": "valid",
                }
            ],
        },
        {
            "names": ["PMI", "项目管理协会", "Project Management Institute"],
            "certificates": [
                {
                    "number": "PMP-3318842",
                    "holder": "陈嘉欣",
                    "entry": "BJ2025-I-047",
                    "issued": "2020-05-20",
                    "expires": None,
                    "status": "valid",
                }
            ],
        },
    ],
}


def _request(
    name: str,
    nationality: str,
    born: str,
    doc: str,
    entry: str,
    issuer: str,
    number: str,
    issued: str,
    employer: str,
    code: str,
) -> dict[str, Any]:
    return {
        "employer": {"name": employer, "credit_code": code, "region": "beijing"},
        "holder": {
            "name": name,
            "nationality": nationality,
            "birth_date": born,
            "document_type": "passport",
            "document_number": doc,
        },
        "certificate": {"entry": entry, "issuer": issuer, "number": number, "issued": issued, "expires": None},
    }


DESTINATION_EMPLOYERS = {
    "tianjin": ("天津示例金融科技有限公司", "91120116MA05TJ0009"),
    "hebei": ("河北雄安示例投资有限公司", "91130600MA0HB0000R"),
}

REQUESTS = {
    "Jane Smith": _request(
        "Jane Smith",
        "GB",
        "1988-04-12",
        "X1234567",
        "BJ2025-I-139",
        "ACCA",
        "ACCA-2019-004512",
        "2019-06-30",
        "北京示例科技有限公司",
        "91110108MA01K7QH2J",
    ),
    "王立新": _request(
        "王立新",
        "CN",
        "1979-02-03",
        "E10293847",
        "BJ2025-U-09",
        "CFA Institute",
        "CFA-2012-118230",
        "2012-09-01",
        "北京示例投资管理有限公司",
        "91110105MA0089X1XD",
    ),
    "陈嘉欣": _request(
        "陈嘉欣",
        "HK",
        "1990-07-21",
        "K5566778",
        "BJ2025-I-047",
        "PMI",
        "PMP-3318842",
        "2020-05-20",
        "北京示例工程咨询有限公司",
        "91110106MA00AB1C2J",
    ),
    "Forged": _request(
        "Alex Forger",
        "US",
        "1985-01-01",
        "F0000001",
        "BJ2025-I-139",
        "ACCA",
        "ACCA-2099-000001",
        "2021-01-04",
        "北京示例科技有限公司",
        "91110108MA01K7QH2J",
    ),
}


@dataclass
class DemoReport:
    bootstrap: str
    topic_prefix: str
    state_dir: str
    steps: list[str] = field(default_factory=list)
    holders: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    verification_requests: int = 0
    replay: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    ok: bool = False


def run_demo(state_dir: Path, bootstrap: str | None, say: Callable[[str], None]) -> DemoReport:
    """Run the scenario; start (and afterwards stop) a local broker only if none is reachable."""
    owned_broker: Path | None = None
    if not bootstrap:
        info = broker_status(state_dir)
        if not info.running:
            owned_broker = state_dir / "demo-broker"
            info = start_broker(owned_broker)
            say(f"started a local broker at {info.bootstrap} (Tansu: its log is in memory and goes when it stops)")
        else:
            memory = " (Tansu: its log is in memory)" if info.kind == "tansu" else f" ({info.kind}: its log is on disk)"
            say(f"using the running broker at {info.bootstrap}{memory}")
        bootstrap = info.bootstrap
    assert bootstrap
    try:
        return _scenario(state_dir, bootstrap, say)
    finally:
        if owned_broker is not None:
            stop_broker(owned_broker)
            say("stopped the local broker")


def _scenario(state_dir: Path, bootstrap: str, say: Callable[[str], None]) -> DemoReport:
    prefix = f"demo-{uuid.uuid4().hex[:8]}."
    home = state_dir / "demo" / prefix.rstrip(".")
    private_dir(home)
    runtime = Runtime(home, bootstrap, Topics(prefix, 3))
    report = DemoReport(bootstrap, prefix, str(home))
    registry = load_registry()
    transport = runtime.connect(client_id="mra-demo")
    (home / "platform").mkdir(exist_ok=True)
    (home / "platform" / "issuer-register.json").write_text(json.dumps(REGISTER, ensure_ascii=False, indent=2))
    settings = load_settings(home, issuer_timeout_s=5.0)
    keys = init_keys(home, standard_identities(registry.jurisdictions), Mode.PER_EVENT)
    mode = verification_settings(home)[0].mode.value  # MRA_VERIFICATION may choose another mode
    report.verification = {"mode": mode, "identities": len(keys["generated"]), "dead_lettered": 0}
    intake = runtime.publisher(transport, "platform-intake")
    bureaus = {j: open_bureau(runtime, j, registry=registry, transport=transport, group=False) for j in JURISDICTIONS}
    platform = Platform(transport, runtime.topics, home, registry=registry, settings=settings, clock=lambda: T0)

    def step(text: str) -> None:
        report.steps.append(text)
        say(text)

    def settle() -> None:
        platform.run(until_idle=True, timeout=60)
        for b in bureaus.values():
            b.run(until_idle=True, timeout=60)

    try:
        step(
            f"generated signing keys for {len(keys['generated'])} publishers and a trust store: every event is "
            f"signed and verified ({mode})"
        )
        beijing_intake = runtime.publisher(transport, "beijing-intake")
        for edition in registry.catalogues("beijing"):
            beijing_intake.publish(
                CatalogueEditionPublished(edition=edition), time=datetime(2025, 9, 4, 16, tzinfo=UTC)
            )
        beijing_intake.flush()
        step(f"published the Beijing catalogue (2025 edition, {len(registry.catalogues('beijing')[0].entries)} rows)")

        subs = {}
        for who, raw in REQUESTS.items():
            sub = prepare(raw, state_dir=home, registry=registry, settings=settings, now=T0)
            publish_submission(sub, intake)
            subs[who] = sub
            due = sub.expected_by.date().isoformat() if sub.expected_by else "-"
            step(
                f"{raw['employer']['name']} submitted {raw['certificate']['entry']} for {who}: {sub.status}, "
                f"expected by {due}"
            )
        for who in ("Jane Smith", "王立新", "陈嘉欣"):
            employer = REQUESTS[who]["employer"]
            _employ(
                beijing_intake,
                subs[who].holder_id,
                "beijing",
                (employer["name"], employer["credit_code"]),
                date(2025, 10, 8),
            )
        beijing_intake.flush()
        settle()
        codes = {who: request_status(home, sub.request_id).get("verification_code") for who, sub in subs.items()}
        step("the platform checked every request with its issuer; Beijing decided for the three holders it employs")

        move_day = date(2025, 11, 3)
        at = datetime(2025, 11, 3, 1, tzinfo=UTC)
        for who, dest in (("Jane Smith", "tianjin"), ("王立新", "hebei")):
            hid = subs[who].holder_id
            beijing_intake.publish(EmploymentEnded(holder_id=hid, jurisdiction="beijing", ended=move_day), time=at)
            beijing_intake.flush()
            arriving = runtime.publisher(transport, f"{dest}-intake")  # each intake speaks for its own jurisdiction
            _employ(arriving, hid, dest, DESTINATION_EMPLOYERS[dest], move_day, at)
            arriving.flush()
            step(f"{who} moved from Beijing to {dest.capitalize()} on {move_day}")
        settle()

        revoked_at = T0 + timedelta(days=60)

        def publish(data: Any, ident: str, when: datetime) -> None:
            platform.publisher.publish(data, id=ident, time=when)  # the platform, which may publish revocations

        revoked = revoke_code(home, codes["陈嘉欣"] or "", "the issuer withdrew the certificate", revoked_at, publish)
        platform.publisher.flush()
        step(f"the issuer revoked 陈嘉欣's certificate ({revoked['code']})")
        settle()

        report.verification_requests = sum(
            isinstance(decode(r).data, VerificationRequested)
            for r in _all(transport, runtime.topics.name("verification"))
        )
        for who, sub in subs.items():
            if who == "Forged":
                continue
            report.holders.append(_holder_summary(who, sub.holder_id, codes[who], bureaus, home))
        forged = request_status(home, subs["Forged"].request_id)
        report.rejected.append(
            {
                "who": "Forged",
                "entry": REQUESTS["Forged"]["certificate"]["entry"],
                "status": forged["status"],
                "reason": forged.get("reason"),
                "detail": forged.get("detail"),
            }
        )

        diffs_total = 0
        for j, b in bureaus.items():
            fresh = replay(runtime, j, registry=registry, transport=transport, into=home / "replay" / j)
            diffs = compare(b.store, fresh.store)
            diffs_total += len(diffs)
            report.replay[j] = {
                "events": fresh.stats.polled,
                "differences": len(diffs),
                "decisions": len(fresh.store.active_decisions()),
            }
            fresh.store.close()
        step(
            "replayed every bureau's log into a fresh read model: "
            + ("no differences" if diffs_total == 0 else f"{diffs_total} difference(s)")
        )
        dead = sum(b.store.counts()["dead_letters"] for b in bureaus.values()) + platform.store.dead_letter_count()
        report.verification["dead_lettered"] = int(dead)
        report.ok = diffs_total == 0 and report.verification_requests == len(REQUESTS) and dead == 0
        return report
    finally:
        platform.close()
        for b in bureaus.values():
            b.close()
        transport.close()


def _employ(
    pub: Publisher, holder_id: str, j: str, employer: tuple[str, str], on: date, at: datetime | None = None
) -> None:
    name, credit_code = employer
    pub.publish(
        EmploymentStarted(
            holder_id=holder_id,
            jurisdiction=j,
            employer=EmployerRef(name=name, credit_code=credit_code, region=j),
            started=on,
            years_in_scope=3,
            in_scope=True,
        ),
        time=at or datetime.combine(on, datetime.min.time(), UTC),
    )


def _all(transport: Any, topic: str) -> list[Any]:
    reader = transport.reader([topic])
    out: list[Any] = []
    empty = 0
    while empty < 2:
        batch = reader.poll(200, 5000)
        empty = 0 if batch else empty + 1
        out += batch
    reader.close()
    return out


def _holder_summary(who: str, holder_id: str, code: str | None, bureaus: dict[str, Any], home: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"who": who, "holder_id": holder_id, "verification_code": code}
    if code:
        check = check_code(home, code)
        out["public_check"] = check.get("status")
    for j, b in bureaus.items():
        out[j] = [
            {"code": d.code, "outcome": d.outcome.value, "clause": d.clause, "verification_code": d.verification_code}
            for d in b.store.active_decisions(holder_id)
            if d.outcome.value in ("eligible", "conditional")
        ]
        out[f"{j}_withdrawn"] = sorted(
            (
                {"code": s.decision.code, "outcome": s.decision.outcome.value, "reason": s.withdrawn_reason}
                for s in b.store.store.decisions(holder_id, active=False)
                if s.decision.outcome.value in ("eligible", "conditional")
            ),
            key=lambda x: str(x["code"]),
        )
    return out
