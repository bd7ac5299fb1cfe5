"""``mra keys trust``: an outside party's public key trusted under an identity with a grant; no private key here."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from support import signing_recipe as recipe

from mra.cli import cli
from mra.core.errors import MraError
from mra.events.envelope import Record, decode
from mra.events.signing import Mode, Verifier
from mra.services.keys import KeyPaths, init_keys, load_trust

GRANT = "--may-publish=cn.jjj.holders.employment_*"


def run(state: Path, *args: str) -> tuple[int, str]:
    """Exit code and what the person sees: the output, or the message of the refusal (``mra`` prints it)."""
    out = CliRunner().invoke(cli, ["--state-dir", str(state), "keys", "trust", *args])
    if out.exception is not None and not isinstance(out.exception, SystemExit):
        assert isinstance(out.exception, MraError), out.exception  # a message, never a traceback
        return 1, str(out.exception)
    return out.exit_code, out.output


def started(private: Ed25519PrivateKey, jurisdiction: str) -> Record:
    value = json.dumps(
        {
            "holder_id": "h-1",
            "jurisdiction": jurisdiction,
            "employer": {"name": "E", "credit_code": "C", "region": jurisdiction},
            "started": "2025-09-01",
        }
    ).encode()
    ce = {
        "ce_specversion": "1.0",
        "ce_id": f"id-{jurisdiction}",
        "ce_source": "/hr/acme",
        "ce_type": "cn.jjj.holders.employment_started.v2",
        "ce_time": "2025-09-01T00:00:00Z",
        "ce_subject": "h-1",
    }
    headers = recipe.signed_message(private, "hr-acme", "e1", 0, "", "h-1", ce, value)
    return Record("mra.holders", 0, 0, b"h-1", value, tuple(headers))


def test_a_trusted_outside_key_verifies_its_events_within_its_grant_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_keys(state, ["verification-platform"], Mode.PER_EVENT)
    private = Ed25519PrivateKey.generate()
    code, out = run(state, "hr-acme", recipe.public_key(private), GRANT, "--jurisdiction", "beijing")
    assert code == 0, out
    assert recipe.key_id(private) in out and "beijing" in out
    trust = load_trust(state)
    assert trust is not None
    ident = trust.identities["hr-acme"]
    assert ident.may_publish == ("cn.jjj.holders.employment_*",) and ident.jurisdictions == ("beijing",)
    assert [k.key_id for k in ident.keys] == [recipe.key_id(private)]
    assert not KeyPaths(state).signing_file("hr-acme").exists()  # no private key here

    verifier = Verifier(trust)
    assert verifier.per_event(decode(started(private, "beijing"))) is None
    refused = verifier.per_event(decode(started(private, "tianjin")))
    assert refused is not None and refused.startswith("unauthorised:") and "tianjin" in refused

    code, out = run(state, "hr-acme", recipe.public_key(private), GRANT, "--jurisdiction", "beijing")
    assert code == 0, out  # trusting the same key again changes nothing
    again = load_trust(state)
    assert again is not None and len(again.identities["hr-acme"].keys) == 1


def test_a_pem_public_key_file_is_accepted(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_keys(state, ["verification-platform"], Mode.PER_EVENT)
    private = Ed25519PrivateKey.generate()
    pem = tmp_path / "hr.pub.pem"
    pem.write_bytes(private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    code, out = run(state, "hr-acme", str(pem), GRANT, "--jurisdiction", "beijing")
    assert code == 0, out
    trust = load_trust(state)
    assert trust is not None and trust.key(recipe.key_id(private)) is not None


def test_bad_keys_and_grants_are_refused_with_a_message(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_keys(state, ["verification-platform"], Mode.PER_EVENT)
    private = Ed25519PrivateKey.generate()
    for args, says in (
        (["hr-acme", "not base64!", GRANT], "base64 of a raw 32-byte Ed25519 public key"),
        (["hr-acme", "AAAA", GRANT], "base64 of a raw 32-byte Ed25519 public key"),
        (["hr-acme", recipe.public_key(private)], "say what it may publish with --may-publish"),
        (["Not An Identity", recipe.public_key(private), GRANT], "identity"),
    ):
        code, out = run(state, *args)
        assert code != 0 and says in out and "Traceback" not in out, out
    assert run(state, "hr-acme", recipe.public_key(private), GRANT)[0] == 0
    code, out = run(state, "hr-other", recipe.public_key(private), GRANT)
    assert code != 0 and "already trusted for hr-acme" in out
