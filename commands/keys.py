"""``mra keys``: publisher signing keys, the trust store, the verification mode, and key backups."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mra.commands._common import Ctx, emit, json_option, pass_ctx
from mra.core.errors import MraError, NotFound
from mra.core.plugins import load_registry
from mra.events.signing import Mode
from mra.services.keys import (
    UNVERIFIED_WARNING,
    KeyPaths,
    NotProvisioned,
    backup_keys,
    generate_key,
    import_provision,
    init_keys,
    list_keys,
    provision,
    restore_keys,
    revoke_key,
    rotate_key,
    set_mode,
    standard_identities,
    trust_key,
    verification_settings,
)

__all__ = ["COMMANDS", "keys"]

_MODES = click.Choice([m.value for m in Mode])


def _passphrase(env: str | None) -> str | None:
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise MraError(f"--passphrase-env {env}: the environment variable {env} is not set or empty")
    return value


@click.group("keys")
def keys() -> None:
    """Signing keys of every publisher identity, the trust store (who may publish what), and their backup."""


@keys.command("init")
@click.option("--mode", type=_MODES, default=Mode.PER_EVENT.value, show_default=True, help="Verification mode.")
@json_option
@pass_ctx
def init(ctx: Ctx, mode: str, as_json: bool) -> None:
    """Keys for the platform, its intake and every loaded jurisdiction's intake and bureau, and the trust store."""
    codes = load_registry().jurisdictions
    result = init_keys(ctx.ensure_state_dir(), standard_identities(codes), Mode(mode))
    made = ", ".join(result["generated"]) or "none (every identity had one)"
    text = f"keys generated: {made}\nverification: {result['mode']}; trust store {result['trust_store']}"
    emit(result, as_json, text)


@keys.command("generate")
@click.argument("identity")
@click.option(
    "--may-publish",
    "patterns",
    multiple=True,
    help="Event type pattern the identity may publish (repeatable), e.g. 'cn.jjj.holders.employment_*'. "
    "Default: what mra's identity of that name publishes.",
)
@click.option(
    "--jurisdiction",
    "jurisdictions",
    multiple=True,
    help="Jurisdiction whose events it may publish (repeatable; '*' for any). Default: a jurisdiction's intake and "
    "bureau speak for their own jurisdiction only, the platform for every one, anyone else for none.",
)
@click.option(
    "--issuer",
    "issuers",
    multiple=True,
    help="Issuer whose certificates it may report on (repeatable; '*' for any). Default: the platform only.",
)
@json_option
@pass_ctx
def generate(
    ctx: Ctx,
    identity: str,
    patterns: tuple[str, ...],
    jurisdictions: tuple[str, ...],
    issuers: tuple[str, ...],
    as_json: bool,
) -> None:
    """A first key pair for a publisher identity, trusted in the trust store for event types, jurisdictions and
    issuers."""
    result = generate_key(
        ctx.ensure_state_dir(),
        identity,
        may_publish=list(patterns) or None,
        jurisdictions=list(jurisdictions) or None,
        issuers=list(issuers) or None,
    )
    emit(
        result,
        as_json,
        f"{identity}: key {result['key_id']}, may publish {', '.join(result['may_publish'])} "
        f"for {', '.join(result['jurisdictions']) or 'no jurisdiction'}",
    )


@keys.command("rotate")
@click.argument("identity")
@json_option
@pass_ctx
def rotate(ctx: Ctx, identity: str, as_json: bool) -> None:
    """A new signing key for an identity; the old one is retired at the log's current end: it still verifies what
    it signed before, and nothing written after (judged by the broker's positions, never by the event's time).
    Needs the broker, to read where the log ends; then hand the trust store to the other machines
    (`mra keys provision --to FILE`, `mra keys import FILE`)."""
    from mra.services.keys import signer_for

    if signer_for(ctx.state_dir, identity) is None:  # nothing to rotate: say so before asking the cluster anything
        raise NotFound(f"{identity} has no key to rotate: `mra keys generate {identity}`")
    result = rotate_key(ctx.ensure_state_dir(), identity, _log_ends(ctx))
    emit(result, as_json, f"{identity}: now signs with {result['key_id']} (retired {result['retired']})")


def _log_ends(ctx: Ctx) -> dict[str, int]:
    from mra.services.audit import AUDITED_TOPICS, log_ends

    runtime = ctx.runtime()
    transport = runtime.connect("mra-keys")
    try:
        return log_ends(transport, [runtime.topics.name(t) for t in AUDITED_TOPICS])
    finally:
        transport.close()


def _positions(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        where, _, offset = part.strip().rpartition(":")
        topic, _, partition = where.rpartition(":")
        if not topic or not partition.isdigit() or not offset.isdigit():
            raise MraError(f"--after {text!r}: give TOPIC:PARTITION:OFFSET[,...] or an ISO 8601 time")
        out[f"{topic}:{partition}"] = int(offset)
    return out


@keys.command("revoke")
@click.argument("key_id")
@click.option("--reason", required=True, help="Why the key is revoked (compromised, lost, ...).")
@click.option(
    "--after",
    help="The point of compromise: TOPIC:PARTITION:OFFSET[,...] (the first offsets refused; partitions not named "
    "refuse from the log's current end), or a time (ISO 8601): the first record the key signed at or after it, "
    "by the broker's record timestamp. Default: the log's current end.",
)
@json_option
@pass_ctx
def revoke(ctx: Ctx, key_id: str, reason: str, after: str | None, as_json: bool) -> None:
    """Mark a key compromised: nothing it signed past the point is accepted by any reader of this trust store, and
    `mra audit verify` reports what it signed past it. If this state dir signs with it, a new key replaces it."""
    ends = _log_ends(ctx)
    points = ends
    if after:
        try:
            datetime.fromisoformat(after.replace("Z", "+00:00"))
            points = _first_signed_after(ctx, key_id, after, ends)
        except ValueError:
            points = ends | _positions(after)
    result = revoke_key(ctx.ensure_state_dir(), key_id, reason, points)
    new = result["replaced_by"]
    extra = f"; this state dir now signs as {result['identity']} with {new}" if new else ""
    emit(result, as_json, f"key {key_id} of {result['identity']} revoked{extra}; hand the trust store to every machine")


def _first_signed_after(ctx: Ctx, key_id: str, when: str, ends: dict[str, int]) -> dict[str, int]:
    from mra.services.audit import AUDITED_TOPICS, read_log

    try:
        at = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise MraError(f"--after {when!r}: not an ISO 8601 time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    ms = at.timestamp() * 1000
    points = dict(ends)
    runtime = ctx.runtime()
    transport = runtime.connect("mra-keys")
    try:
        for r in read_log(transport, [runtime.topics.name(t) for t in AUDITED_TOPICS]):
            where = f"{r.topic}:{r.partition}"
            signed_by = dict(r.headers).get("ce_mrakey")
            if signed_by == key_id.encode() and r.timestamp_ms >= ms and r.offset < points.get(where, r.offset + 1):
                points[where] = r.offset
    finally:
        transport.close()
    return points


@keys.command("list")
@json_option
@pass_ctx
def list_(ctx: Ctx, as_json: bool) -> None:
    """Every trusted identity: what it may publish, its key history, whether its private key is here."""
    rows = list_keys(ctx.state_dir)
    try:
        settings, trust = verification_settings(ctx.state_dir)
    except NotProvisioned as e:
        emit({"verification": None, "trust_store": None, "identities": []}, as_json, f"not provisioned: {e}")
        return
    data: dict[str, Any] = {
        "verification": settings.model_dump(mode="json"),
        "trust_store": str(KeyPaths(ctx.state_dir).trust) if trust is not None else None,
        "identities": rows,
    }

    def text(d: dict[str, Any]) -> str:
        if not rows:
            return "no trust store here: verification is off (`mra keys init` creates one)"
        lines = [f"verification: {settings.mode.value}; trust store {d['trust_store']}"]
        for r in rows:
            here = "" if r["private_key_here"] else "  (public key only)"
            lines.append(
                f"{r['identity']}{here}: may publish {', '.join(r['may_publish']) or 'nothing'} "
                f"for {', '.join(r['jurisdictions']) or 'no jurisdiction'}"
                + (f", issuers {', '.join(r['issuers'])}" if r["issuers"] else "")
            )
            for k in r["keys"]:
                state = "active" if k["active"] else f"retired {k['retired'][:10]}" if k["retired"] else "trusted"
                lines.append(f"    {k['key_id']}  created {k['created'][:10]}  {state}")
        return "\n".join(lines)

    emit(data, as_json, text)


@keys.command("mode")
@click.argument("mode", type=_MODES, required=False)
@json_option
@pass_ctx
def mode_(ctx: Ctx, mode: str | None, as_json: bool) -> None:
    """Show or set how readers verify events: off, per-event signatures, or signed checkpoints."""
    if mode is not None:
        set_mode(ctx.ensure_state_dir(), Mode(mode))
        if Mode(mode) is Mode.OFF:
            click.echo(UNVERIFIED_WARNING.format(state=ctx.state_dir), err=True)
            click.echo("WARNING: every service started on this state directory will say it runs unverified.", err=True)
    settings, _ = verification_settings(ctx.state_dir)
    data = settings.model_dump(mode="json")
    override = os.environ.get("MRA_VERIFICATION")
    note = f" (MRA_VERIFICATION={override} overrides the trust store)" if override else ""
    emit(data, as_json, f"verification: {settings.mode.value}{note}")


@keys.command("provision")
@click.argument("identities", nargs=-1)
@click.option(
    "--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write (mode 0600)."
)
@click.option("--instance", default="", help="Name of the instance the new keys are for (default: the file's name).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
@pass_ctx
def provision_(ctx: Ctx, identities: tuple[str, ...], to: Path, instance: str, force: bool, as_json: bool) -> None:
    """For another machine: the trust store and, for each IDENTITY, a new key of its own (trusted here beside the
    identity's other active keys). Without IDENTITY, the trust store alone. Install it there with `mra keys import`.

    The file holds private keys: move it like one (scp, a sealed medium), then delete it."""
    if to.exists() and not force:
        raise MraError(f"{to} exists: choose another file or give --force")
    result = provision(ctx.state_dir, list(identities), to, instance=instance)
    made = ", ".join(f"{k['identity']} ({k['key_id']})" for k in result["keys"]) or "none (the trust store alone)"
    emit(result, as_json, f"wrote {to}: trust store, and new keys for {made}; there: mra keys import {to.name}")


@keys.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a signing key this state dir already holds for an identity.")
@json_option
@pass_ctx
def import_(ctx: Ctx, file: Path, force: bool, as_json: bool) -> None:
    """Install a file made by `mra keys provision`: the trust store and this machine's own signing keys."""
    result = import_provision(ctx.ensure_state_dir(), file, force=force)
    keys_text = ", ".join(result["signing_keys"]) or "none (verifying only)"
    emit(result, as_json, f"trust store installed ({result['mode']}); signing keys for: {keys_text}")


@keys.command("backup")
@click.option("--to", "to", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Backup file.")
@click.option("--passphrase-env", help="Seal the backup under the passphrase in this environment variable.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
@pass_ctx
def backup(ctx: Ctx, to: Path, passphrase_env: str | None, force: bool, as_json: bool) -> None:
    """Copy every key of the state dir (signing keys, trust store, holder data keys, pseudonym key) to one file.

    The holder data keys are the only copy of what lets anyone read a holder's sealed fields: lose them and every
    holder is erased. Keep the backup as safe as the keys (it is written readable by its owner only).
    """
    if to.exists() and not force:
        raise MraError(f"{to} exists: choose another file or give --force")
    result = backup_keys(ctx.state_dir, to, _passphrase(passphrase_env)) | {"at": datetime.now(UTC).isoformat()}
    sealed = "sealed under the passphrase" if result["encrypted"] else "NOT encrypted: store it encrypted"
    emit(result, as_json, f"backed up {len(result['files'])} key file(s) to {to} ({sealed})")


@keys.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--passphrase-env", help="The environment variable holding the backup's passphrase.")
@click.option("--force", is_flag=True, help="Replace keys already in the state dir.")
@json_option
@pass_ctx
def restore(ctx: Ctx, backup_file: Path, passphrase_env: str | None, force: bool, as_json: bool) -> None:
    """Put a key backup in place (stop the platform and bureaus first). Holders erased here since the backup
    was taken stay erased."""
    result = restore_keys(ctx.ensure_state_dir(), backup_file, _passphrase(passphrase_env), force)
    emit(
        result,
        as_json,
        f"restored {len(result['files'])} key file(s) from {backup_file}; "
        f"{result['erasures_kept']} erasure(s) made since the backup kept",
    )


@keys.command("trust")
@click.argument("identity")
@click.argument("public_key")
@click.option(
    "--may-publish",
    "patterns",
    multiple=True,
    help="Event type pattern the identity may publish (repeatable), e.g. 'cn.jjj.holders.employment_*'.",
)
@click.option(
    "--jurisdiction", "jurisdictions", multiple=True, help="Jurisdiction it may speak for (repeatable; '*' for any)."
)
@click.option("--issuer", "issuers", multiple=True, help="Issuer whose certificates it may report on (repeatable).")
@json_option
@pass_ctx
def trust(
    ctx: Ctx,
    identity: str,
    public_key: str,
    patterns: tuple[str, ...],
    jurisdictions: tuple[str, ...],
    issuers: tuple[str, ...],
    as_json: bool,
) -> None:
    """Trust an outside party's key (PUBLIC_KEY: base64 of the raw Ed25519 public key, or a PEM file): it signs
    under IDENTITY with the grant given; no private key is kept here."""
    if os.path.isfile(public_key):
        with open(public_key, encoding="utf-8") as f:
            public_key = f.read()
    result = trust_key(
        ctx.ensure_state_dir(),
        identity,
        public_key,
        may_publish=list(patterns) or None,
        jurisdictions=list(jurisdictions) or None,
        issuers=list(issuers) or None,
    )
    emit(
        result,
        as_json,
        f"{identity}: key {result['key_id']} trusted, may publish {', '.join(result['may_publish'])} "
        f"for {', '.join(result['jurisdictions']) or 'no jurisdiction'}",
    )


COMMANDS: list[click.Command] = [keys]
