"""Key files in the state dir: publisher signing keys, the trust store, and the holder data-key store.

Layout (``keys/`` and its private files are readable by their owner only)::

    keys/trust.json              who may publish what, their public keys, the verification mode
    keys/signing/<identity>.json an identity's Ed25519 private keys: the active one and those rotated out
    keys/holders.db              one AES-256 data key per holder, and the tombstones of erased holders
    platform/holder.key          the secret behind holder pseudonyms

The data-key store is the one file whose loss erases every holder at once: :func:`backup_keys` and
:func:`restore_keys` copy all of the above into one file and back (optionally sealed under a passphrase).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import secrets
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, ValidationError

from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.events.bus import Transport
from mra.events.publisher import Publisher
from mra.events.signing import (
    IDENTITY,
    CheckpointPolicy,
    Guard,
    MemoryBook,
    Mode,
    Signer,
    TrustedKey,
    TrustStore,
    VerificationSettings,
    Verifier,
    dead_letter_sender,
    default_grants,
    default_scope,
    key_id,
    public_key_text,
)
from mra.events.topics import Topics
from mra.services.files import private_dir, private_file, private_sqlite

__all__ = [
    "PROVISION_HINT",
    "DataKeyStore",
    "ErasedHolder",
    "KeyPaths",
    "NotProvisioned",
    "SqliteBook",
    "backup_keys",
    "consumer_guard",
    "ensure_keys",
    "generate_key",
    "import_provision",
    "init_keys",
    "list_keys",
    "load_trust",
    "open_publisher",
    "provision",
    "require_publishing",
    "restore_keys",
    "revoke_key",
    "rotate_key",
    "save_trust",
    "set_mode",
    "signer_for",
    "standard_identities",
    "trust_key",
    "verification_settings",
    "warn_unverified",
]

BACKUP_FORMAT = "mra-keys-backup/1"
MODE_ENV = "MRA_VERIFICATION"


class ErasedHolder(MraError):
    """The holder's data key was destroyed at their request: their sealed fields read as erased."""


@dataclass(frozen=True)
class KeyPaths:
    state_dir: Path

    @property
    def root(self) -> Path:
        return self.state_dir / "keys"

    @property
    def trust(self) -> Path:
        return self.root / "trust.json"

    @property
    def signing(self) -> Path:
        return self.root / "signing"

    def signing_file(self, identity: str) -> Path:
        return self.signing / f"{identity}.json"

    @property
    def holders(self) -> Path:
        return self.root / "holders.db"

    @property
    def pseudonym(self) -> Path:
        return self.state_dir / "platform" / "holder.key"


def _private_dir(path: Path) -> None:
    private_dir(path)


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Atomically replace ``path`` with ``data``, created with ``mode`` from the start."""
    _private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def _locked(paths: KeyPaths) -> Iterator[None]:
    """One writer of the key files at a time (key generation and rotation read, change and write them)."""
    _private_dir(paths.root)
    with open(private_file(paths.root / ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _check_identity(identity: str) -> str:
    if not IDENTITY.match(identity):
        raise ValidationFailed(
            f"{identity!r} is not a publisher identity: lower-case letters, digits, '.', '_' and '-' "
            "(e.g. verification-platform, beijing-intake, bureau-beijing)"
        )
    return identity


# --- the trust store --------------------------------------------------------------------------------------------


def load_trust(state_dir: Path) -> TrustStore | None:
    path = KeyPaths(state_dir).trust
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise MraError(f"the trust store {path} cannot be read: {e}") from None
    try:
        return TrustStore.model_validate_json(text)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise MraError(f"the trust store {path} is invalid: {where}: {first['msg']}") from None


def save_trust(state_dir: Path, trust: TrustStore) -> None:
    """Write the trust store, readable by its owner only (it says who may publish what: no other user's business,
    and nobody else's to change)."""
    _write(KeyPaths(state_dir).trust, (trust.model_dump_json(indent=2) + "\n").encode())


PROVISION_HINT = (
    "provision it: `mra broker start` or `mra up` (a local broker) or `mra keys init` (a new deployment) create "
    "every key and the trust store; on another machine of a deployment, `mra keys import FILE` installs a file made "
    "on the provisioning machine with `mra keys provision IDENTITY --to FILE`"
)


class NotProvisioned(MraError):
    """A state directory with no trust store, or without the signing key a command needs: nothing is published
    or read unverified in its place."""


def verification_settings(state_dir: Path) -> tuple[VerificationSettings, TrustStore | None]:
    """The verification settings in force: the trust store's, with ``MRA_VERIFICATION`` overriding its mode.

    Without a trust store, nothing can be verified: :class:`NotProvisioned` unless ``MRA_VERIFICATION=off`` says,
    explicitly, to run unverified."""
    trust = load_trust(state_dir)
    settings = trust.verification if trust is not None else VerificationSettings()
    env = os.environ.get(MODE_ENV, "").strip()
    if env:
        try:
            settings = settings.model_copy(update={"mode": Mode(env)})
        except ValueError:
            raise MraError(f"{MODE_ENV}={env!r}: use one of {', '.join(m.value for m in Mode)}") from None
    if settings.mode is not Mode.OFF and trust is None:
        raise NotProvisioned(f"{state_dir} has no trust store ({KeyPaths(state_dir).trust}): {PROVISION_HINT}")
    return settings, trust


UNVERIFIED_WARNING = (
    "WARNING: verification is OFF for {state}: events are published unsigned and applied unverified, so anyone "
    "who can write to the bus can grant, withdraw or hide decisions. `mra keys mode per-event` turns it back on."
)
_warned: set[str] = set()


def warn_unverified(state_dir: Path) -> None:
    """Say on stderr, once per process and state directory, that a service runs unverified."""
    key = str(state_dir)
    if key not in _warned:
        _warned.add(key)
        print(UNVERIFIED_WARNING.format(state=state_dir), file=sys.stderr, flush=True)


def ensure_keys(state_dir: Path, identities: Iterable[str]) -> dict[str, Any] | None:
    """Secure on first use: every identity's key and a verifying trust store where the state directory has no
    trust store yet (what ``broker start``, ``up`` and ``demo`` do for a local deployment); None if it had one."""
    if load_trust(state_dir) is not None:
        return None
    return init_keys(state_dir, identities, Mode.PER_EVENT)


def set_mode(state_dir: Path, mode: Mode) -> TrustStore:
    paths = KeyPaths(state_dir)
    with _locked(paths):
        trust = load_trust(state_dir) or TrustStore()
        trust = trust.model_copy(update={"verification": trust.verification.model_copy(update={"mode": mode})})
        save_trust(state_dir, trust)
    return trust


# --- signing keys -----------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _PrivateKey(_Model):
    key_id: str
    private_key: str
    created: datetime
    retired: datetime | None = None


class _SigningFile(_Model):
    identity: str
    active: str
    keys: tuple[_PrivateKey, ...]


def _read_signing(paths: KeyPaths, identity: str) -> _SigningFile | None:
    path = paths.signing_file(identity)
    try:
        return _SigningFile.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise MraError(f"the signing key file {path} cannot be read: {str(e).splitlines()[0]}") from None


def _new_key(now: datetime) -> tuple[_PrivateKey, TrustedKey]:
    private = Ed25519PrivateKey.generate()
    kid = key_id(private.public_key())
    raw = private.private_bytes_raw()
    return (
        _PrivateKey(key_id=kid, private_key=base64.b64encode(raw).decode(), created=now),
        TrustedKey(key_id=kid, public_key=public_key_text(private.public_key()), created=now),
    )


def generate_key(
    state_dir: Path,
    identity: str,
    *,
    may_publish: Sequence[str] | None = None,
    jurisdictions: Sequence[str] | None = None,
    issuers: Sequence[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A first key pair for ``identity``, trusted for ``may_publish`` (default: what mra's identity publishes) in
    ``jurisdictions`` and for ``issuers`` (default: what mra's identity of that name speaks for; '*' for any)."""
    _check_identity(identity)
    paths = KeyPaths(state_dir)
    grants = tuple(may_publish) if may_publish else default_grants(identity)
    if grants is None:
        raise ValidationFailed(
            f"{identity} is not one of mra's identities: say what it may publish with --may-publish "
            "(an event type pattern such as cn.jjj.holders.employment_*)"
        )
    now = now or datetime.now(UTC)
    with _locked(paths):
        if _read_signing(paths, identity) is not None:
            raise MraError(f"{identity} already has a key: `mra keys rotate {identity}` makes a new one")
        private, public = _new_key(now)
        _write(
            paths.signing_file(identity),
            _SigningFile(identity=identity, active=private.key_id, keys=(private,)).model_dump_json(indent=2).encode(),
        )
        trust = (load_trust(state_dir) or TrustStore()).with_key(identity, public, grants)
        scope_j, scope_i = default_scope(identity)
        scoped = trust.identities[identity].model_copy(
            update={
                "jurisdictions": tuple(jurisdictions) if jurisdictions else scope_j,
                "issuers": tuple(issuers) if issuers else scope_i,
            }
        )
        trust = trust.model_copy(update={"identities": {**trust.identities, identity: scoped}})
        save_trust(state_dir, trust)
    return {
        "identity": identity,
        "key_id": public.key_id,
        "may_publish": list(grants),
        "jurisdictions": list(scoped.jurisdictions or ()),
        "issuers": list(scoped.issuers or ()),
        "created": now.isoformat(),
    }


def rotate_key(
    state_dir: Path, identity: str, until: Mapping[str, int], now: datetime | None = None
) -> dict[str, Any]:
    """A new active key for ``identity``; the one it replaces is retired at ``until`` (the log's end per partition,
    ``"topic:partition"`` → next offset): it still verifies what it signed before, and nothing written after."""
    _check_identity(identity)
    paths = KeyPaths(state_dir)
    now = now or datetime.now(UTC)
    with _locked(paths):
        current = _read_signing(paths, identity)
        if current is None:
            raise NotFound(f"{identity} has no key to rotate: `mra keys generate {identity}`")
        private, public = _new_key(now)
        kept = tuple(k if k.retired else k.model_copy(update={"retired": now}) for k in current.keys)
        trust = load_trust(state_dir) or TrustStore()
        _check_ends(until)
        _write(
            paths.signing_file(identity),
            _SigningFile(identity=identity, active=private.key_id, keys=(*kept, private))
            .model_dump_json(indent=2)
            .encode(),
        )
        trust = _mark(trust.with_key(identity, public, retire=[current.active]), current.active, until=dict(until))
        save_trust(state_dir, trust)
    return {
        "identity": identity,
        "key_id": public.key_id,
        "retired": current.active,
        "created": now.isoformat(),
        "until": dict(until),
    }


def _check_ends(until: Mapping[str, int]) -> None:
    for where, offset in until.items():
        topic, _, partition = where.rpartition(":")
        if not topic or not partition.isdigit() or not isinstance(offset, int) or offset < 0:
            raise ValidationFailed(f"{where}={offset}: a position is topic:partition=offset")


def _mark(trust: TrustStore, kid: str, **update: Any) -> TrustStore:
    """``trust`` with key ``kid``'s entry updated."""
    found = trust.key(kid)
    if found is None:
        raise NotFound(f"no key {kid} in the trust store")
    owner, _ = found
    ident = trust.identities[owner]
    keys = tuple(k.model_copy(update=update) if k.key_id == kid else k for k in ident.keys)
    return trust.model_copy(update={"identities": {**trust.identities, owner: ident.model_copy(update={"keys": keys})}})


def revoke_key(
    state_dir: Path, kid: str, reason: str, until: Mapping[str, int], now: datetime | None = None
) -> dict[str, Any]:
    """Mark key ``kid`` compromised: from ``until`` on (per partition, ``"topic:partition"`` → first offset
    refused; a partition not named refuses everything) nothing it signed is accepted. If this state dir signs with
    it, a new key replaces it here."""
    if not reason.strip():
        raise ValidationFailed("give the reason for the revocation (--reason)")
    _check_ends(until)
    now = now or datetime.now(UTC)
    paths = KeyPaths(state_dir)
    replaced = None
    with _locked(paths):
        trust = load_trust(state_dir)
        if trust is None or trust.key(kid) is None:
            raise NotFound(f"no key {kid} in the trust store of {state_dir}")
        owner, entry = trust.key(kid)  # type: ignore[misc]
        earlier = dict(entry.until or {}) if entry.retired is not None else None
        points = dict(until)
        if earlier is not None:  # a retired key: its point only moves earlier
            points = {w: min(o, earlier.get(w, o)) for w, o in points.items()}
        trust = _mark(trust, kid, revoked=now, reason=reason.strip(), until=points)
        held = _read_signing(paths, owner)
        if held is not None and held.active == kid:
            private, public = _new_key(now)
            kept = tuple(k.model_copy(update={"retired": k.retired or now}) for k in held.keys)
            _write(
                paths.signing_file(owner),
                _SigningFile(identity=owner, active=private.key_id, keys=(*kept, private))
                .model_dump_json(indent=2)
                .encode(),
            )
            trust = trust.with_key(owner, public)
            replaced = public.key_id
        save_trust(state_dir, trust)
    return {
        "key_id": kid,
        "identity": owner,
        "revoked": now.isoformat(),
        "reason": reason.strip(),
        "until": points,
        "replaced_by": replaced,
    }


PROVISION_FORMAT = "mra-provision/1"


def provision(
    state_dir: Path, identities: Sequence[str], to: Path, *, instance: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """For another machine of the deployment: a file (mode 0600) with the trust store and, for each of
    ``identities``, a new key of its own, trusted here beside the identity's other active keys (so an instance
    added elsewhere does not retire this one). No private key of this state directory leaves it.

    With no identities the file carries the trust store alone: what a reader on another machine needs, and what
    every machine needs again after keys were added, rotated or revoked."""
    trust = load_trust(state_dir)
    if trust is None:
        raise NotProvisioned(f"{state_dir} has no trust store to hand out: {PROVISION_HINT}")
    now = now or datetime.now(UTC)
    label = instance or to.stem
    paths = KeyPaths(state_dir)
    signing: dict[str, str] = {}
    made = []
    with _locked(paths):
        trust = load_trust(state_dir) or trust
        for identity in identities:
            _check_identity(identity)
            known = trust.identities.get(identity)
            grants = known.may_publish if known is not None else default_grants(identity)
            if grants is None:
                raise ValidationFailed(
                    f"{identity} is not in the trust store and not one of mra's identities: "
                    f"`mra keys generate {identity} --may-publish PATTERN` first"
                )
            private, public = _new_key(now)
            public = public.model_copy(update={"instance": label})
            trust = trust.with_key(identity, public, grants)
            held = _SigningFile(identity=identity, active=private.key_id, keys=(private,))
            signing[identity] = held.model_dump_json()
            made.append({"identity": identity, "key_id": public.key_id, "instance": label})
        if made:
            save_trust(state_dir, trust)
    doc = {
        "format": PROVISION_FORMAT,
        "created": now.isoformat(),
        "trust": json.loads(trust.model_dump_json()),
        "signing": {name: json.loads(text) for name, text in signing.items()},
    }
    _write(to, (json.dumps(doc, indent=1) + "\n").encode())
    return {"to": str(to), "keys": made, "trust_store": True, "identities_trusted": sorted(trust.identities)}


def _read_tagged(src: Path, fmt: str, what: str, hint: str = "") -> dict[str, Any]:
    """A JSON document file whose ``format`` names what it is; anything else is refused saying what was expected."""
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{src}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MraError(f"{src} is not {what}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise MraError(f"{src} is not {what} ({fmt}{hint})")
    return doc


def import_provision(state_dir: Path, src: Path, *, force: bool = False) -> dict[str, Any]:
    """Install a file made by :func:`provision`: the trust store (replacing this one's) and the signing keys it
    carries. A key for an identity that already signs here is replaced only with ``force``."""
    doc = _read_tagged(src, PROVISION_FORMAT, "a provisioning file", "; made by `mra keys provision`")
    try:
        trust = TrustStore.model_validate(doc["trust"])
        files = {str(k): _SigningFile.model_validate(v) for k, v in dict(doc.get("signing") or {}).items()}
    except (KeyError, TypeError, ValueError) as e:
        raise MraError(f"{src} is not a complete provisioning file: {str(e).splitlines()[0]}") from None
    paths = KeyPaths(state_dir)
    for name, f in files.items():
        _check_identity(name)
        if f.identity != name or trust.key(f.active) is None:
            raise MraError(f"{src}: the key of {name} is not in the trust store it carries")
    with _locked(paths):
        for name, f in files.items():
            held = _read_signing(paths, name)
            if held is not None and held.active != f.active and not force:
                raise MraError(f"{name} already signs here with key {held.active}: import with --force to replace it")
        save_trust(state_dir, trust)
        for name, f in files.items():
            _write(paths.signing_file(name), f.model_dump_json(indent=2).encode())
    return {
        "from": str(src),
        "trust_store": str(paths.trust),
        "signing_keys": sorted(files),
        "mode": trust.verification.mode.value,
    }


def signer_for(state_dir: Path, identity: str) -> Signer | None:
    """The identity's active key, or None where this state dir holds none."""
    found = _read_signing(KeyPaths(state_dir), identity)
    if found is None:
        return None
    entry = next((k for k in found.keys if k.key_id == found.active), None)
    if entry is None:
        raise MraError(f"the signing key file of {identity} names an active key it does not hold")
    private = Ed25519PrivateKey.from_private_bytes(base64.b64decode(entry.private_key))
    return Signer(identity, entry.key_id, private)


def list_keys(state_dir: Path) -> list[dict[str, Any]]:
    """Every trusted identity with its grants and key history, and whether its private key is held here."""
    paths = KeyPaths(state_dir)
    trust = load_trust(state_dir) or TrustStore()
    out = []
    for name, ident in sorted(trust.identities.items()):
        held = _read_signing(paths, name)
        active = held.active if held else None
        jurisdictions, issuers = trust.scope(name)
        out.append(
            {
                "identity": name,
                "may_publish": list(ident.may_publish),
                "jurisdictions": list(jurisdictions),
                "issuers": list(issuers),
                "private_key_here": held is not None,
                "keys": [
                    {
                        "key_id": k.key_id,
                        "created": k.created.isoformat(),
                        "retired": k.retired.isoformat() if k.retired else None,
                        "active": k.key_id == active,
                    }
                    for k in ident.keys
                ],
            }
        )
    return out


def standard_identities(jurisdictions: Iterable[str]) -> list[str]:
    """mra's own publishers: the platform, its intake, and each jurisdiction's intake and bureau."""
    codes = sorted(jurisdictions)
    return [
        "verification-platform",
        "platform-intake",
        *(f"{j}-intake" for j in codes),
        *(f"bureau-{j}" for j in codes),
    ]


def init_keys(
    state_dir: Path, identities: Iterable[str], mode: Mode = Mode.PER_EVENT, now: datetime | None = None
) -> dict[str, Any]:
    """Keys for every identity that has none, and the trust store's mode; idempotent."""
    made = []
    paths = KeyPaths(state_dir)
    for identity in identities:
        if _read_signing(paths, identity) is None:
            made.append(generate_key(state_dir, identity, now=now)["identity"])
    set_mode(state_dir, mode)
    return {"generated": made, "mode": mode.value, "trust_store": str(paths.trust)}


# --- wiring publishers and consumers ----------------------------------------------------------------------------


def open_publisher(state_dir: Path, transport: Transport, topics: Topics, identity: str) -> Publisher:
    """A publisher for ``identity`` that signs as the state dir's verification mode says (not at all when off)."""
    settings, _ = verification_settings(state_dir)
    if settings.mode is Mode.OFF:
        warn_unverified(state_dir)
        return Publisher(transport, topics, identity)
    signer = signer_for(state_dir, identity)
    if signer is None:
        raise NotProvisioned(
            f"{identity} has no signing key in {KeyPaths(state_dir).signing}, so nothing can be published as "
            f"{identity} from here: on the provisioning machine, `mra keys provision {identity} --to FILE`, then "
            f"`mra keys import FILE` here (or `mra keys generate {identity}` for an identity new to the deployment)"
        )
    policy = (
        CheckpointPolicy(settings.checkpoint_every, settings.checkpoint_ms)
        if settings.mode is Mode.CHECKPOINTS
        else None
    )
    return Publisher(transport, topics, identity, signer=signer, checkpoints=policy)


def require_publishing(state_dir: Path, identity: str) -> None:
    """Refuse (:class:`NotProvisioned`) where ``identity`` could not publish from this state directory; say so
    loudly where it would publish unverified. For services that publish later, on demand."""
    settings, _ = verification_settings(state_dir)
    if settings.mode is Mode.OFF:
        warn_unverified(state_dir)
    elif signer_for(state_dir, identity) is None:
        raise NotProvisioned(
            f"{identity} has no signing key in {KeyPaths(state_dir).signing}: on the provisioning machine, "
            f"`mra keys provision {identity} --to FILE`, then `mra keys import FILE` here"
        )


def _reloader(state_dir: Path) -> Callable[[], TrustStore | None]:
    path = KeyPaths(state_dir).trust
    seen = [path.stat().st_mtime_ns if path.exists() else 0]

    def reload() -> TrustStore | None:
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        if mtime == seen[0]:
            return None
        seen[0] = mtime
        return load_trust(state_dir)

    return reload


def consumer_guard(state_dir: Path, transport: Transport, topics: Topics, book: Path | None = None) -> Guard:
    """The ``validate`` callback and handler wrapper for the state dir's verification mode.

    In checkpoint mode, verified checkpoints are kept in ``book`` (a SQLite file next to the read model), so that
    events held when the reader stopped are recognised when it reads them again.
    """
    settings, trust = verification_settings(state_dir)
    if settings.mode is Mode.OFF or trust is None:
        warn_unverified(state_dir)
        return Guard(Mode.OFF)
    store = (SqliteBook(book) if book is not None else MemoryBook()) if settings.mode is Mode.CHECKPOINTS else None
    return Guard(
        settings.mode,
        Verifier(trust, store, reload=_reloader(state_dir)),
        store,
        dead_letter_sender(transport, topics),
        settings.max_held,
        settings.max_wait_s,
    )


class SqliteBook:
    """Verified checkpoints in a SQLite file, so they outlive the reader that verified them."""

    def __init__(self, path: Path) -> None:
        private_sqlite(path)
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS links (publisher TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, "
            "hash TEXT NOT NULL, prev TEXT NOT NULL, PRIMARY KEY (publisher, epoch, seq))"
        )

    def add(self, publisher: str, epoch: str, first_seq: int, prev: str, hashes: Sequence[str]) -> None:
        rows = []
        before = prev
        for i, h in enumerate(hashes):
            rows.append((publisher, epoch, first_seq + i, h, before))
            before = h
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR IGNORE INTO links VALUES (?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")

    def find(self, publisher: str, epoch: str, seq: int) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT hash, prev FROM links WHERE publisher = ? AND epoch = ? AND seq = ?", (publisher, epoch, seq)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def close(self) -> None:
        self.db.close()


# --- the holder data-key store ----------------------------------------------------------------------------------


class DataKeyStore:
    """One random AES-256 key per holder, outside Kafka. Erasing a holder deletes the key (the file is written
    with ``secure_delete`` and vacuumed) and keeps a tombstone: the time, the reason, and the non-personal facts
    the holder's recorded decisions replay from."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS data_keys (
        holder_id TEXT PRIMARY KEY, key_id TEXT NOT NULL, key BLOB NOT NULL, created TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS erased (
        holder_id TEXT PRIMARY KEY, erased_at TEXT NOT NULL, reason TEXT NOT NULL, record TEXT NOT NULL
    );
    """

    def __init__(self, path: Path) -> None:
        private_sqlite(path)
        self.path = path
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA secure_delete = ON")
        self.db.execute("PRAGMA busy_timeout = 30000")
        self.db.executescript(self.SCHEMA)

    @classmethod
    def at(cls, state_dir: Path) -> DataKeyStore:
        return cls(KeyPaths(state_dir).holders)

    def close(self) -> None:
        self.db.close()

    def get(self, holder_id: str) -> tuple[str, bytes] | None:
        """The holder's data key, or None; :class:`ErasedHolder` if it was destroyed."""
        row = self.db.execute("SELECT key_id, key FROM data_keys WHERE holder_id = ?", (holder_id,)).fetchone()
        if row is not None:
            return str(row[0]), bytes(row[1])
        if self.erasure(holder_id) is not None:
            raise ErasedHolder(f"holder {holder_id} was erased: their data key no longer exists")
        return None

    def get_or_create(self, holder_id: str, now: datetime | None = None) -> tuple[str, bytes]:
        found = self.get(holder_id)
        if found is not None:
            return found
        kid, key = secrets.token_hex(4), AESGCM.generate_key(bit_length=256)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.db.execute("SELECT 1 FROM erased WHERE holder_id = ?", (holder_id,)).fetchone():
                raise ErasedHolder(f"holder {holder_id} was erased: no new data key is made for them")
            self.db.execute(
                "INSERT OR IGNORE INTO data_keys VALUES (?, ?, ?, ?)",
                (holder_id, kid, key, (now or datetime.now(UTC)).isoformat()),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        found = self.get(holder_id)
        assert found is not None
        return found

    def erasure(self, holder_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM erased WHERE holder_id = ?", (holder_id,)).fetchone()
        if row is None:
            return None
        return {"holder_id": row[0], "erased_at": row[1], "reason": row[2], **json.loads(row[3])}

    def erasures(self) -> list[dict[str, Any]]:
        ids = [r[0] for r in self.db.execute("SELECT holder_id FROM erased ORDER BY erased_at, holder_id")]
        return [e for e in (self.erasure(i) for i in ids) if e is not None]

    def holders(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM data_keys").fetchone()[0])

    def erase(self, holder_id: str, at: datetime, reason: str, record: dict[str, Any]) -> bool:
        """Destroy the holder's key and keep the tombstone; False if it was already erased."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if self.db.execute("SELECT 1 FROM erased WHERE holder_id = ?", (holder_id,)).fetchone():
                self.db.execute("ROLLBACK")
                return False
            self.db.execute("DELETE FROM data_keys WHERE holder_id = ?", (holder_id,))
            self.db.execute(
                "INSERT INTO erased VALUES (?, ?, ?, ?)",
                (holder_id, at.isoformat(), reason, json.dumps(record, sort_keys=True)),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("VACUUM")  # no free page keeps the key's bytes
        return True

    def snapshot(self) -> bytes:
        """A consistent copy of the whole store, as SQLite file bytes."""
        with tempfile.TemporaryDirectory() as tmp:
            target = sqlite3.connect(str(Path(tmp) / "copy.db"))
            try:
                self.db.backup(target)
            finally:
                target.close()
            return (Path(tmp) / "copy.db").read_bytes()


# --- backup and restore -----------------------------------------------------------------------------------------


def _files(state_dir: Path) -> dict[str, bytes]:
    paths = KeyPaths(state_dir)
    out: dict[str, bytes] = {}
    if paths.trust.exists():
        out["keys/trust.json"] = paths.trust.read_bytes()
    if paths.signing.is_dir():
        for f in sorted(paths.signing.glob("*.json")):
            out[f"keys/signing/{f.name}"] = f.read_bytes()
    if paths.holders.exists():
        store = DataKeyStore(paths.holders)
        try:
            out["keys/holders.db"] = store.snapshot()
        finally:
            store.close()
    if paths.pseudonym.exists():
        out["platform/holder.key"] = paths.pseudonym.read_bytes()
    return out


def _kdf(salt: bytes) -> Scrypt:
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1)


def backup_keys(state_dir: Path, to: Path, passphrase: str | None = None) -> dict[str, Any]:
    """Write every key file of the state dir to ``to`` (mode 0600), sealed under ``passphrase`` if given."""
    files = _files(state_dir)
    if not files:
        raise NotFound(f"no keys in {state_dir} to back up")
    payload = json.dumps({name: base64.b64encode(data).decode() for name, data in files.items()}, sort_keys=True)
    doc: dict[str, Any] = {"format": BACKUP_FORMAT, "created": datetime.now(UTC).isoformat()}
    if passphrase:
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        key = _kdf(salt).derive(passphrase.encode())
        sealed = AESGCM(key).encrypt(nonce, payload.encode(), BACKUP_FORMAT.encode())
        doc |= {
            "kdf": {"name": "scrypt", "n": 2**15, "r": 8, "p": 1, "salt": base64.b64encode(salt).decode()},
            "nonce": base64.b64encode(nonce).decode(),
            "ciphertext": base64.b64encode(sealed).decode(),
        }
    else:
        doc |= {"sha256": hashlib.sha256(payload.encode()).hexdigest(), "files": json.loads(payload)}
    _write(to, (json.dumps(doc, indent=1) + "\n").encode())
    return {"to": str(to), "files": sorted(files), "encrypted": bool(passphrase)}


def _read_backup(src: Path, passphrase: str | None) -> dict[str, bytes]:
    doc = _read_tagged(src, BACKUP_FORMAT, "a key backup")
    try:
        if "ciphertext" in doc:
            if not passphrase:
                raise MraError(f"{src} is sealed under a passphrase: give it with --passphrase-env")
            key = _kdf(base64.b64decode(doc["kdf"]["salt"])).derive(passphrase.encode())
            try:
                payload = AESGCM(key).decrypt(
                    base64.b64decode(doc["nonce"]), base64.b64decode(doc["ciphertext"]), BACKUP_FORMAT.encode()
                )
            except InvalidTag:
                raise MraError(f"{src}: wrong passphrase, or the backup was altered") from None
            files = json.loads(payload)
        else:
            files = doc["files"]
            text = json.dumps(files, sort_keys=True)
            if hashlib.sha256(text.encode()).hexdigest() != doc.get("sha256"):
                raise MraError(f"{src} fails its checksum: the backup was altered or truncated")
        return {str(name): base64.b64decode(data) for name, data in files.items()}
    except (KeyError, TypeError, ValueError) as e:
        raise MraError(f"{src} is not a complete key backup: {e}") from None


def restore_keys(state_dir: Path, src: Path, passphrase: str | None = None, force: bool = False) -> dict[str, Any]:
    """Put a backup's key files in place. Holders erased here since the backup stay erased (their tombstones are
    merged into the restored store and their keys deleted from it). Stop the services that use the keys first."""
    files = _read_backup(src, passphrase)
    allowed = {"keys/trust.json", "keys/holders.db", "platform/holder.key"}
    for name in files:
        if name not in allowed and not (name.startswith("keys/signing/") and name.count("/") == 2):
            raise MraError(f"{src} holds an unexpected file {name!r}: not restoring it")
    paths = KeyPaths(state_dir)
    existing = _files(state_dir)
    if existing and not force:
        raise MraError(f"{state_dir} already holds keys ({', '.join(sorted(existing))}): restore with --force")
    kept: list[dict[str, Any]] = []
    if paths.holders.exists():
        store = DataKeyStore(paths.holders)
        try:
            kept = store.erasures()
        finally:
            store.close()
    with _locked(paths):
        for name, data in files.items():
            target = state_dir / name
            if name == "keys/holders.db":
                for suffix in ("-wal", "-shm", "-journal"):
                    Path(str(target) + suffix).unlink(missing_ok=True)
            _write(target, data)
    reapplied = 0
    if kept:
        store = DataKeyStore(paths.holders)
        try:
            for e in kept:
                record = {k: v for k, v in e.items() if k not in ("holder_id", "erased_at", "reason")}
                reapplied += store.erase(e["holder_id"], datetime.fromisoformat(e["erased_at"]), e["reason"], record)
        finally:
            store.close()
    return {"from": str(src), "files": sorted(files), "erasures_kept": reapplied}


def trust_key(
    state_dir: Path,
    identity: str,
    public_key: str,
    *,
    may_publish: Sequence[str] | None = None,
    jurisdictions: Sequence[str] | None = None,
    issuers: Sequence[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Trust a key another party holds (an outside producer such as an employer's HR system): its public key, under
    ``identity`` with a grant. No private key is made or kept here; the party signs as docs/contracts/signing.md says.

    ``public_key``: base64 of the raw 32-byte Ed25519 public key, or a PEM public key (SubjectPublicKeyInfo)."""
    _check_identity(identity)
    text = public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            loaded = load_pem_public_key(text.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise ValueError("not an Ed25519 key")
            public = loaded
        else:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ValidationFailed(
            "the public key must be base64 of a raw 32-byte Ed25519 public key or an Ed25519 PEM public key"
        ) from None
    now = now or datetime.now(UTC)
    kid = key_id(public)
    paths = KeyPaths(state_dir)
    with _locked(paths):
        trust = load_trust(state_dir)
        if trust is None:
            raise NotProvisioned(f"{state_dir} has no trust store: {PROVISION_HINT}")
        known = trust.key(kid)
        if known is not None and known[0] != identity:
            raise ValidationFailed(f"key {kid} is already trusted for {known[0]}: a key belongs to one identity")
        ident = trust.identities.get(identity)
        grants = tuple(may_publish) if may_publish else (ident.may_publish if ident else default_grants(identity))
        if not grants:
            raise ValidationFailed(
                f"{identity} is not one of mra's identities: say what it may publish with --may-publish "
                "(an event type pattern such as cn.jjj.holders.employment_*)"
            )
        if known is None:
            entry = TrustedKey(key_id=kid, public_key=public_key_text(public), created=now, instance="outside")
            trust = trust.with_key(identity, entry, grants)
        scope_j, scope_i = trust.scope(identity)
        scoped = trust.identities[identity].model_copy(
            update={
                "may_publish": grants,
                "jurisdictions": tuple(jurisdictions) if jurisdictions else scope_j,
                "issuers": tuple(issuers) if issuers else scope_i,
            }
        )
        trust = trust.model_copy(update={"identities": {**trust.identities, identity: scoped}})
        save_trust(state_dir, trust)
    return {
        "identity": identity,
        "key_id": kid,
        "may_publish": list(grants),
        "jurisdictions": list(scoped.jurisdictions or ()),
        "issuers": list(scoped.issuers or ()),
        "new": known is None,
    }
