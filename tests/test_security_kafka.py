"""What someone who can write to the bus can do to a deployment provisioned as mra provisions it, on the real
broker: each hole an attacker found, and the genuine event that must still win."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mra.core.ids import stable_id
from mra.events.kafka import KafkaTransport
from mra.events.schemas import EmploymentEnded
from mra.events.topics import Topics
from mra.services.audit import verify
from mra.services.codes import read_code
from mra.services.platform import check_code, revoke_code
from tests.support.deployment import T0, Deployment

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
    squatted = stable_id("verification.certificate_revoked", read_code(code).compact)
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
