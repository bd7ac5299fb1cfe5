"""``mra keys``: key files, the trust store, the verification mode, and backup and restore of every key."""

from __future__ import annotations

import json
import stat
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mra.cli import cli
from mra.core.errors import MraError
from mra.events.bus import InMemoryTransport
from mra.events.envelope import decode
from mra.events.kafka import KafkaTransport
from mra.events.schemas import EmploymentEnded
from mra.events.signing import Mode, Verifier
from mra.events.topics import Topics
from mra.services.keys import (
    DataKeyStore,
    ErasedHolder,
    KeyPaths,
    backup_keys,
    consumer_guard,
    load_trust,
    open_publisher,
    restore_keys,
    signer_for,
)
from mra.services.privacy import PersonalData, pseudonym_key


def mra(state: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, ["--state-dir", str(state), *args], env=env)


def failed(result: Any) -> tuple[int, str]:
    """The exit code and message ``mra`` shows for an expected failure (``mra.cli.main`` prints MraError so)."""
    error = result.exception
    assert isinstance(error, MraError), result.output
    return error.exit_code, str(error)


def as_json(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_init_generates_a_key_for_every_publisher_and_a_trust_store(tmp_path: Path) -> None:
    made = as_json(mra(tmp_path, "keys", "init", "--json"))
    assert set(made["generated"]) >= {
        "verification-platform",
        "platform-intake",
        "beijing-intake",
        "tianjin-intake",
        "hebei-intake",
        "bureau-beijing",
        "bureau-tianjin",
        "bureau-hebei",
    }
    assert made["mode"] == "per-event"
    paths = KeyPaths(tmp_path)
    assert stat.S_IMODE(paths.signing_file("bureau-beijing").stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.root.stat().st_mode) == 0o700
    trust = load_trust(tmp_path)
    assert trust is not None and trust.may_publish("bureau-beijing", "cn.jjj.benefits.benefit_decided.v1")
    assert not trust.may_publish("bureau-beijing", "cn.jjj.verification.certificate_verified.v1")
    assert as_json(mra(tmp_path, "keys", "init", "--json"))["generated"] == []  # idempotent


@pytest.mark.broker
def test_generate_list_and_rotate_keep_the_key_history(
    tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rotating reads where the log ends, to retire the old key there
    monkeypatch.setenv("MRA_BOOTSTRAP_SERVERS", bootstrap)
    monkeypatch.setenv("MRA_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("MRA_PARTITIONS", str(topics.partitions))
    first = as_json(mra(tmp_path, "keys", "generate", "beijing-intake", "--json"))
    assert "cn.jjj.holders.employment_*" in first["may_publish"]
    code, message = failed(mra(tmp_path, "keys", "generate", "beijing-intake"))
    assert code == 1 and "mra keys rotate beijing-intake" in message
    rotated = as_json(mra(tmp_path, "keys", "rotate", "beijing-intake", "--json"))
    assert rotated["retired"] == first["key_id"] and rotated["key_id"] != first["key_id"]
    listed = as_json(mra(tmp_path, "keys", "list", "--json"))
    (row,) = listed["identities"]
    assert row["identity"] == "beijing-intake" and row["private_key_here"] is True
    assert [(k["key_id"], k["active"], k["retired"] is not None) for k in row["keys"]] == [
        (first["key_id"], False, True),
        (rotated["key_id"], True, False),
    ]
    signer = signer_for(tmp_path, "beijing-intake")
    assert signer is not None and signer.key_id == rotated["key_id"]
    text = mra(tmp_path, "keys", "list")
    assert text.exit_code == 0 and "retired" in text.output and "active" in text.output


def test_bad_identities_and_unknown_ones_are_refused_clearly(tmp_path: Path) -> None:
    code, message = failed(mra(tmp_path, "keys", "generate", "xiongan-registry"))
    assert code == 2 and "--may-publish" in message
    ok = as_json(mra(tmp_path, "keys", "generate", "xiongan-registry", "--may-publish", "cn.jjj.catalogue.*", "--json"))
    assert ok["may_publish"] == ["cn.jjj.catalogue.*"]
    code, message = failed(mra(tmp_path, "keys", "generate", "../etc"))
    assert code == 2 and "not a publisher identity" in message
    code, message = failed(mra(tmp_path, "keys", "rotate", "bureau-nowhere"))
    assert code == 3 and "mra keys generate bureau-nowhere" in message


def test_the_mode_is_configuration_and_without_a_trust_store_nothing_publishes_unless_told_to_run_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bus, topics = InMemoryTransport(), Topics("k.", 2)
    bus.ensure_topics(topics.all())
    with pytest.raises(MraError, match="no trust store") as refused:
        open_publisher(tmp_path, bus, topics, "beijing-intake")
    assert "mra keys import FILE" in str(refused.value)
    with pytest.raises(MraError, match="no trust store"):
        consumer_guard(tmp_path, bus, topics)

    monkeypatch.setenv("MRA_VERIFICATION", "off")  # explicit, and loud
    plain = open_publisher(tmp_path, bus, topics, "beijing-intake")
    assert plain.signer is None and consumer_guard(tmp_path, bus, topics).validate is None
    assert "verification is OFF" in capsys.readouterr().err
    monkeypatch.delenv("MRA_VERIFICATION")

    as_json(mra(tmp_path, "keys", "generate", "beijing-intake", "--json"))
    assert as_json(mra(tmp_path, "keys", "mode", "checkpoints", "--json"))["mode"] == "checkpoints"
    publisher = open_publisher(tmp_path, bus, topics, "beijing-intake")
    assert publisher.signer is not None and publisher.checkpoints is not None
    assert consumer_guard(tmp_path, bus, topics).mode is Mode.CHECKPOINTS
    with pytest.raises(MraError, match="bureau-beijing has no signing key"):
        open_publisher(tmp_path, bus, topics, "bureau-beijing")

    monkeypatch.setenv("MRA_VERIFICATION", "per-event")  # the environment overrides the file
    publisher = open_publisher(tmp_path, bus, topics, "beijing-intake")
    assert publisher.signer is not None and publisher.checkpoints is None
    env = publisher.publish(EmploymentEnded(holder_id="h", jurisdiction="beijing", ended=date(2025, 1, 1)))
    (record,) = bus.records(topics.name("holders"))
    guard = consumer_guard(tmp_path, bus, topics)
    assert guard.validate is not None and guard.validate(decode(record)) is None and env.extensions["mrasig"]
    monkeypatch.setenv("MRA_VERIFICATION", "sometimes")
    code, message = failed(mra(tmp_path, "keys", "mode"))
    assert code == 1 and "MRA_VERIFICATION='sometimes'" in message


@pytest.mark.broker
def test_a_key_generated_while_a_reader_runs_is_trusted_without_a_restart(
    tmp_path: Path, kafka: KafkaTransport, topics: Topics, bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MRA_BOOTSTRAP_SERVERS", bootstrap)  # rotating reads where the log ends
    monkeypatch.setenv("MRA_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("MRA_PARTITIONS", str(topics.partitions))
    bus = InMemoryTransport()
    bus.ensure_topics(topics.all())
    mra(tmp_path, "keys", "init")
    guard = consumer_guard(tmp_path, bus, topics)
    assert isinstance(guard.verifier, Verifier)
    as_json(mra(tmp_path, "keys", "rotate", "beijing-intake", "--json"))
    open_publisher(tmp_path, bus, topics, "beijing-intake").publish(
        EmploymentEnded(holder_id="h", jurisdiction="beijing", ended=date(2025, 1, 1))
    )
    (record,) = bus.records(topics.name("holders"))
    assert guard.validate is not None and guard.validate(decode(record)) is None


# --- backup and restore -----------------------------------------------------------------------------------------


def populated(state: Path) -> tuple[str, str]:
    """A state dir with keys, a pseudonym secret and two holders' sealed birth dates."""
    mra(state, "keys", "init")
    pseudonym_key(KeyPaths(state).pseudonym)
    personal = PersonalData.at(state)
    try:
        a = personal.seal("h-a", "birth_date", "1980-05-01")
        b = personal.seal("h-b", "birth_date", "1975-01-02")
    finally:
        personal.close()
    return a, b


@pytest.mark.parametrize("passphrase", [None, "correct horse battery staple"])
def test_a_backup_restores_every_key_into_an_empty_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, passphrase: str | None
) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    sealed, _ = populated(home)
    backup = tmp_path / "keys.backup"
    args = ["keys", "backup", "--to", str(backup), "--json"]
    if passphrase:
        monkeypatch.setenv("MRA_BACKUP_PASSPHRASE", passphrase)
        args += ["--passphrase-env", "MRA_BACKUP_PASSPHRASE"]
    done = as_json(mra(home, *args))
    assert set(done["files"]) >= {"keys/trust.json", "keys/holders.db", "platform/holder.key"}
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    raw = backup.read_text()
    assert ("1980-05-01" not in raw) and (("ciphertext" in raw) == bool(passphrase))

    restore = ["keys", "restore", str(backup), "--json"]
    if passphrase:
        restore += ["--passphrase-env", "MRA_BACKUP_PASSPHRASE"]
    as_json(mra(elsewhere, *restore))
    personal = PersonalData.at(elsewhere)
    try:
        assert personal.open("h-a", "birth_date", sealed) == "1980-05-01"  # the holder's data survived
    finally:
        personal.close()
    assert KeyPaths(elsewhere).pseudonym.read_bytes() == KeyPaths(home).pseudonym.read_bytes()
    for identity in ("verification-platform", "bureau-hebei"):
        a, b = signer_for(home, identity), signer_for(elsewhere, identity)
        assert a is not None and b is not None and a.key_id == b.key_id
    assert load_trust(elsewhere) == load_trust(home)


def test_a_damaged_or_wrongly_opened_backup_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    populated(home)
    plain, sealed = tmp_path / "plain.backup", tmp_path / "sealed.backup"
    backup_keys(home, plain)
    backup_keys(home, sealed, "secret")
    doc = json.loads(plain.read_text())
    doc["files"]["keys/trust.json"] = doc["files"]["keys/trust.json"][:-8] + "AAAAAAA="
    plain.write_text(json.dumps(doc))
    with pytest.raises(MraError, match="fails its checksum"):
        restore_keys(tmp_path / "a", plain)
    with pytest.raises(MraError, match="wrong passphrase"):
        restore_keys(tmp_path / "b", sealed, "not the secret")
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    code, message = failed(mra(tmp_path / "c", "keys", "restore", str(sealed), "--passphrase-env", "NO_SUCH_VAR"))
    assert code == 1 and "NO_SUCH_VAR" in message
    good = tmp_path / "good.backup"
    backup_keys(home, good)
    code, message = failed(mra(home, "keys", "restore", str(good)))
    assert "already holds keys" in message and "--force" in message


def test_restoring_an_older_backup_does_not_bring_an_erased_holder_back(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sealed_a, sealed_b = populated(home)
    backup = tmp_path / "before-erasure.backup"
    backup_keys(home, backup)
    store = DataKeyStore.at(home)
    store.erase("h-a", datetime(2025, 12, 1, tzinfo=UTC), "deletion requested by the holder", {"decisions": []})
    store.close()
    result = restore_keys(home, backup, force=True)  # say the key files were damaged, and restored from backup
    assert result["erasures_kept"] == 1
    personal = PersonalData.at(home)
    try:
        with pytest.raises(ErasedHolder):
            personal.open("h-a", "birth_date", sealed_a)
        assert personal.shown("h-a", "birth_date", sealed_a) == "(erased)"
        assert personal.open("h-b", "birth_date", sealed_b) == "1975-01-02"
    finally:
        personal.close()
