"""What someone who can write to the bus can do to a deployment provisioned as mra provisions it, on the real
broker: each hole an attacker found, and the genuine event that must still win."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support.deployment import T0, Deployment
from support.facts import verified

from mra.core.ids import stable_id
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.schemas import EmploymentEnded, VerificationRequested
from mra.events.signing import Signer
from mra.events.topics import Topics
from mra.services.audit import AUDITED_TOPICS, log_ends, read_log, verify
from mra.services.bureaus import open_bureau
from mra.services.codes import read_code
from mra.services.demo import REQUESTS
from mra.services.keys import KeyPaths, load_trust, rotate_key
from mra.services.platform import PlatformPaths, check_code, revoke_code
from mra.services.privacy import ErasedHolder, PersonalData, erase_holder, is_sealed

pytestmark = pytest.mark.broker


@pytest.fixture
def deployment(tmp_path: Path, bootstrap: str, kafka: KafkaTransport, topics: Topics) -> Iterator[Deployment]:
    d = Deployment(tmp_path / "state", bootstrap, topics)
    try:
        yield d
    finally:
        d.close()


def test_a_squatted_revocation_id_does_not_stop_the_revocation(deployment: Deployment) -> None:
    d = deployment
    holder, code = d.verified_and_employed()
    assert d.eligible("beijing", holder), "the genuine holder is decided eligible first"
    # a trusted intake publishes its own event under the id the revocation will have (computable in advance)
    squatted = stable_id("verification.certificate_revoked", read_code(code).compact, T0.isoformat(),
                         "withdrawn by the issuer")  # fmt: skip
    intake = d.publisher("beijing-intake")
    squatter = intake.publish(
        EmploymentEnded(holder_id="h-someone-else", jurisdiction="beijing", ended=T0.date()), id=squatted, time=T0
    )
    intake.flush()
    d.settle("beijing")

    def publish(data: object, ident: str, at: object) -> None:
        d.platform.publisher.publish(data, id=ident, time=at)  # type: ignore[arg-type]

    revoked = revoke_code(d.home, code, "withdrawn by the issuer", T0, publish)
    d.platform.publisher.flush()
    assert revoked["published"] and squatter.id == squatted
    d.settle("beijing")

    assert check_code(d.home, code)["status"] == "revoked"
    assert d.eligible("beijing", holder) == [], "the revocation was applied, not skipped as a redelivery"
    assert not [x for x in d.dead_letters() if x["id"] == squatted]
    result = verify(d.transport, [d.topics.name(t) for t in ("verification", "holders")], complete=False)
    reused = [f for f in result.findings if f.kind == "id_reused"]
    assert reused and all(f.tampering for f in reused)
    assert any("beijing-intake" in f.detail and "verification-platform" in f.detail for f in reused)


def test_an_id_its_publisher_used_before_for_other_content_is_dead_lettered_not_skipped(deployment: Deployment) -> None:
    d = deployment
    holder, _ = d.verified_and_employed()
    before = d.eligible("beijing", holder)
    assert before
    intake = d.publisher("beijing-intake")
    (first,) = [e for e in d.log("holders") if e.type.startswith("cn.jjj.holders.employment_started")]
    # the same identity, the same id, other content: an end of the employment the bureau decided on
    intake.publish(EmploymentEnded(holder_id=holder, jurisdiction="beijing", ended=T0.date()), id=first.id, time=T0)
    intake.flush()
    d.settle("beijing")
    assert d.eligible("beijing", holder) == before
    (letter,) = [x for x in d.dead_letters() if x["id"] == first.id]
    assert letter["reason"].startswith("id reused: beijing-intake published event") and "employment_ended" in letter[
        "type"
    ]
    result = verify(d.transport, [d.topics.name("holders")], complete=False)
    assert [f.kind for f in result.tampering] == ["id_reused"]


# --- files at rest --------------------------------------------------------------------------------------------


def _exposed(root: Path) -> list[str]:
    """Every file or directory under ``root`` that a group member or another user could read or enter."""
    out = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            out.append(f"{path.relative_to(root)} {oct(mode)}")
    return out


def test_under_umask_022_no_file_of_a_deployment_is_readable_by_others(tmp_path: Path, bootstrap: str) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    done = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, "demo", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any(p.name == "trust.json" for p in files)
    assert _exposed(state) == []


def test_sqlite_wal_and_shm_files_are_private_while_open(
    tmp_path: Path, bootstrap: str, topics: Topics, kafka: KafkaTransport
) -> None:
    old = os.umask(0o022)
    try:
        d = Deployment(tmp_path / "state", bootstrap, topics)
        try:
            d.verified_and_employed()  # the platform's and the bureau's read models, the key store, the books
            sides = [p for p in d.home.rglob("*") if p.name.endswith(("-wal", "-shm"))]
            assert {p.name for p in sides} >= {"beijing.db-wal", "beijing.db-shm", "platform.db-wal"}
            assert _exposed(d.home) == []
        finally:
            d.close()
    finally:
        os.umask(old)


# --- scoped grants --------------------------------------------------------------------------------------------


def test_a_cross_jurisdiction_employment_event_is_refused(deployment: Deployment) -> None:
    d = deployment
    holder, _ = d.verified_and_employed()
    before = d.eligible("beijing", holder)
    hebei = d.publisher("hebei-intake")  # trusted for employment events, in Hebei
    forged = hebei.publish(EmploymentEnded(holder_id=holder, jurisdiction="beijing", ended=T0.date()), time=T0)
    hebei.flush()
    d.settle("beijing")
    assert d.eligible("beijing", holder) == before and before
    (letter,) = [x for x in d.dead_letters() if x["id"] == forged.id]
    assert letter["reason"].startswith("unauthorised")
    assert "may not speak for jurisdiction 'beijing'" in letter["reason"]


def test_a_holder_moves_from_beijing_to_tianjin_under_scoped_grants(deployment: Deployment) -> None:
    d = deployment
    holder, _ = d.verified_and_employed()
    assert d.eligible("beijing", holder) and not d.eligible("tianjin", holder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    env |= {"MRA_TOPIC_PREFIX": d.topics.prefix, "MRA_PARTITIONS": str(d.topics.partitions)}
    moved = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(d.home), "--bootstrap", d.runtime.resolve_bootstrap(),
         "employment", "move", "--holder", holder, "--from", "beijing", "--to", "tianjin",
         "--employer", "天津示例金融科技有限公司", "--employer-code", "91120116MA05TJ0009",
         "--on", "2025-11-03", "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    d.settle("beijing", "tianjin")
    assert d.eligible("beijing", holder) == []
    assert d.eligible("tianjin", holder)
    assert d.dead_letters() == []
    publishers = {e.type.split(".")[-2]: e.stamp.publisher for e in d.log("holders") if e.stamp and holder in e.key}
    assert publishers["employment_ended"] == "beijing-intake" and publishers["employment_started"] == "tianjin-intake"


# --- key lifecycle --------------------------------------------------------------------------------------------


def _old_signer(home: Path, identity: str, kid: str) -> Signer:
    """A key as whoever kept (or stole) the private key file holds it."""
    held = json.loads(KeyPaths(home).signing_file(identity).read_text())
    entry = next(k for k in held["keys"] if k["key_id"] == kid)
    return Signer(identity, kid, Ed25519PrivateKey.from_private_bytes(base64.b64decode(entry["private_key"])))


def _ends(d: Deployment) -> dict[str, int]:
    return log_ends(d.transport, [d.topics.name(t) for t in AUDITED_TOPICS])


def test_a_retired_key_verifies_what_it_signed_before_and_no_new_signature_even_backdated(
    deployment: Deployment,
) -> None:
    d = deployment
    holder, _ = d.verified_and_employed()
    old = d.platform.publisher.signer
    assert old is not None
    rotated = rotate_key(d.home, "verification-platform", _ends(d))
    assert rotated["retired"] == old.key_id
    d.platform.close()
    d._platform = None  # the platform restarts on its new key
    forger = Publisher(d.transport, d.topics, "verification-platform", signer=_old_signer(d.home, *_id(old)))
    # a certificate nobody verified, signed with the retired key and backdated a year
    forged = forger.publish(
        verified(holder, "BJ2025-I-047", request="r-forged", key="k-forged", code="FORGED-01"),
        time=T0 - timedelta(days=365),
    )
    forger.flush()
    d.settle("beijing")
    letters = [x for x in d.dead_letters() if x["id"] == forged.id]  # by the bureau, and by the platform
    assert letters and all(x["reason"].startswith("retired key") and "past its point" in x["reason"] for x in letters)
    certificates = d.bureau("beijing").store.db.execute("SELECT certificate_key FROM certificates").fetchall()
    assert "k-forged" not in {r[0] for r in certificates}
    # what the retired key signed before its point still verifies: a fresh reader of the whole log applies it
    fresh = open_bureau(d.runtime, "beijing", registry=d.registry, transport=d.transport, group=False,
                        db=d.home / "fresh.db")  # fmt: skip
    try:
        stats = fresh.run(until_idle=True, timeout=60)
        assert stats.idle and fresh.store.active_decisions(holder) and stats.dead_lettered == 1
    finally:
        fresh.close()
    trust = load_trust(d.home)
    result = verify(d.transport, [d.topics.name(t) for t in AUDITED_TOPICS], complete=True, trust=trust)
    past = [f for f in result.findings if f.kind == "past_key_point"]
    assert [(f.offset, f.tampering) for f in past] == [(forged_offset(d, forged.id), True)]


def _id(signer: Signer) -> tuple[str, str]:
    return signer.identity, signer.key_id


def forged_offset(d: Deployment, event_id: str) -> int:
    return next(r.offset for r in read_log(d.transport, [d.topics.name("verification")]) if dict(r.headers)["ce_id"]
                == event_id.encode())  # fmt: skip


def test_a_revoked_key_is_refused_from_its_point_on_through_the_cli(
    deployment: Deployment, bootstrap: str
) -> None:
    d = deployment
    holder, _ = d.verified_and_employed()
    before = d.eligible("beijing", holder)
    stolen = d.publisher("beijing-intake").signer
    assert stolen is not None and before
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRA_")}
    env |= {"MRA_TOPIC_PREFIX": d.topics.prefix, "MRA_PARTITIONS": str(d.topics.partitions)}
    revoked = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(d.home), "--bootstrap", bootstrap,
         "keys", "revoke", stolen.key_id, "--reason", "the intake's laptop was stolen", "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["replaced_by"]
    thief = Publisher(d.transport, d.topics, "beijing-intake", signer=stolen)
    forged = thief.publish(EmploymentEnded(holder_id=holder, jurisdiction="beijing", ended=T0.date()), time=T0)
    thief.flush()
    d.settle("beijing")
    assert d.eligible("beijing", holder) == before
    (letter,) = [x for x in d.dead_letters() if x["id"] == forged.id]
    assert letter["reason"].startswith("revoked key") and "laptop was stolen" in letter["reason"]
    audit = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(d.home), "--bootstrap", bootstrap,
         "audit", "verify", "--json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    report = json.loads(audit.stdout)
    assert audit.returncode != 0 and any(f["kind"] == "past_key_point" for f in report["findings"])
    # the replacement key the state dir now holds is accepted
    d._publishers.clear()
    d.employ(holder, "beijing")
    d.settle("beijing")
    assert [x for x in d.dead_letters() if x["id"] != forged.id] == []


# --- the certificate number -----------------------------------------------------------------------------------


def _files_holding(root: Path, needle: bytes, *, leave: tuple[str, ...] = ()) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.name not in leave and needle in p.read_bytes()
    )


def test_the_certificate_number_never_travels_or_rests_in_plain_text_and_erasure_makes_it_unreadable(
    deployment: Deployment,
) -> None:
    d = deployment
    number = REQUESTS["Jane Smith"]["certificate"]["number"]
    holder, code = d.verified_and_employed()
    assert check_code(d.home, code)["status"] == "valid"
    on_bus = [
        r for t in AUDITED_TOPICS for r in read_log(d.transport, [d.topics.name(t)])
        if number.encode() in (r.value or b"") + b"".join(v for _, v in r.headers)
    ]  # fmt: skip
    assert on_bus == []
    (request,) = [e.data for e in d.log("verification") if isinstance(e.data, VerificationRequested)]
    assert is_sealed(request.certificate_number)
    d.platform.close()
    d._platform = None
    assert _files_holding(d.home, number.encode(), leave=("issuer-register.json",)) == []
    personal = PersonalData.at(d.home)
    try:
        assert personal.open(holder, "certificate_number", request.certificate_number) == number
    finally:
        personal.close()

    erase_holder(d.home, holder, transport=d.transport, topics=d.topics, publisher=d.publisher("verification-platform"))
    personal = PersonalData.at(d.home)
    try:
        with pytest.raises(ErasedHolder):
            personal.open(holder, "certificate_number", request.certificate_number)
        stored = sqlite3.connect(PlatformPaths(d.home).read_model).execute(
            "SELECT certificate_number FROM requests WHERE holder_id = ?", (holder,)
        ).fetchall()
        assert stored and all(is_sealed(r[0]) for r in stored)
        with pytest.raises(ErasedHolder):
            personal.open(holder, "certificate_number", stored[0][0])
    finally:
        personal.close()
