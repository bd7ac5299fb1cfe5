"""Signed events, signed checkpoints and the trust store: who may publish what, and the proof that they did.

Every publisher identity (``verification-platform``, ``platform-intake``, ``beijing-intake``, ``bureau-beijing``, …)
holds Ed25519 keys, one active key per running instance (all instances of a bureau publish as one identity, each
signing its own chain epochs with its own key). A key id is the first 16 hex digits of the SHA-256 of the raw
public key; the trust store maps key ids to identities and says which event types each identity may publish
(patterns such as ``cn.jjj.verification.*``). Keys are rotated, never forgotten: a retired key still verifies
what it signed, and a reader picks the key by the event's ``mrakey`` attribute.

Two ways to prove an event, chosen by :class:`Mode`:

- ``per-event``: the publisher signs each event's canonical form — its content hash (id, source, type, time,
  subject and body bytes), its partition key, its publisher stamp and the key id — and sends the signature in the
  ``mrasig`` extension attribute. A reader verifies each event before applying it.
- ``checkpoints``: the publisher signs, every N events or T ms and at every flush, a :class:`Checkpoint` listing
  the content hashes of its chain since the last one. A reader checks each event's chain link against that list
  (a dictionary lookup) and applies the event once a verified checkpoint covers it (:class:`CheckpointGate`);
  one signature verification covers N events.

An unsigned, badly signed or unauthorised event is dead-lettered with the reason and changes nothing.

The module is pure: keys, trust stores and checkpoint books are handed in; nothing here reads files.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hashlib
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import BaseModel, ConfigDict, Field

from mra.events.bus import TopicPartition, Transport
from mra.events.consumer import DeadLetter, Delivery, Handler, dead_letter_headers
from mra.events.envelope import KEY_ATTR, SIGNATURE_ATTR, Envelope, Record, Stamp, content_hash, time_text
from mra.events.schemas import (
    BenefitDecided,
    CatalogueEditionPublished,
    CertificateVerified,
    Checkpoint,
    EmploymentEnded,
    Event,
    VerificationRequested,
    checkpoint_class,
    parse_type,
)
from mra.events.topics import Topics

__all__ = [
    "CheckpointBook",
    "CheckpointGate",
    "CheckpointPolicy",
    "Guard",
    "MemoryBook",
    "Mode",
    "Signer",
    "SigningCosts",
    "TrustStore",
    "TrustedIdentity",
    "TrustedKey",
    "VerificationSettings",
    "Verifier",
    "canonical_checkpoint",
    "canonical_event",
    "dead_letter_sender",
    "default_grants",
    "default_scope",
    "event_scope",
    "key_id",
    "make_checkpoint",
    "measure_signing",
    "public_key_text",
    "verify_chain",
]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
IDENTITY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class Mode(StrEnum):
    """How readers verify events: not at all, each event's signature, or signed checkpoints over the chain."""

    OFF = "off"
    PER_EVENT = "per-event"
    CHECKPOINTS = "checkpoints"


# --- keys -------------------------------------------------------------------------------------------------------


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """A key's id: the first 16 hex digits of SHA-256 over its raw public bytes."""
    return hashlib.sha256(_raw_public(public)).hexdigest()[:16]


def public_key_text(public: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(public)).decode()


@dataclass(frozen=True)
class Signer:
    """One identity's active private key."""

    identity: str
    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, identity: str) -> Signer:
        private = Ed25519PrivateKey.generate()
        return cls(identity, key_id(private.public_key()), private)

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self.private_key.sign(data)).decode()

    def sign_event(self, env: Envelope) -> Envelope:
        """``env`` with ``mrasig`` and ``mrakey`` set."""
        signature = self.sign(canonical_event(env, self.key_id))
        return replace(env, extensions={**env.extensions, SIGNATURE_ATTR: signature, KEY_ATTR: self.key_id})


def _parts(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        b = part.encode()
        out += len(b).to_bytes(4, "big") + b
    return bytes(out)


def _event_hash(env: Envelope) -> str:
    return env.hash or content_hash(env.id, env.source, env.type, time_text(env.time), env.subject, env.body)


def canonical_event(env: Envelope, key: str) -> bytes:
    """What a per-event signature covers: the content hash (id, source, type, time, subject, body bytes), the
    partition key, the publisher stamp and the key id, length-prefixed."""
    stamp = env.stamp or Stamp("", "", -1, "")
    return _parts(
        "mra-event-signature/1",
        _event_hash(env),
        env.key,
        stamp.publisher,
        stamp.epoch,
        str(stamp.seq),
        stamp.prev,
        key,
    )


def canonical_checkpoint(
    publisher: str, epoch: str, first_seq: int, last_seq: int, prev: str, hashes: Sequence[str], key: str
) -> bytes:
    """What a checkpoint's signature covers: the stretch of chain, with the hashes folded into one digest."""
    folded = hashlib.sha256(b"".join(bytes.fromhex(h) for h in hashes)).hexdigest()
    return _parts("mra-checkpoint/1", publisher, epoch, str(first_seq), str(last_seq), prev, folded, key)


def make_checkpoint(
    signer: Signer, epoch: str, first_seq: int, prev: str, hashes: Sequence[str], topic: str
) -> Checkpoint | None:
    """The signed checkpoint event for ``topic`` over ``hashes`` (events ``first_seq``… of ``epoch``)."""
    cls = checkpoint_class(topic)
    if cls is None or not hashes:
        return None
    last = first_seq + len(hashes) - 1
    signature = signer.sign(canonical_checkpoint(signer.identity, epoch, first_seq, last, prev, hashes, signer.key_id))
    return cls(
        publisher=signer.identity,
        epoch=epoch,
        first_seq=first_seq,
        last_seq=last,
        prev=prev,
        hashes=tuple(hashes),
        key_id=signer.key_id,
        signature=signature,
    )


@dataclass(frozen=True)
class CheckpointPolicy:
    """When a publisher in checkpoint mode signs: after ``every`` events, after ``ms`` milliseconds (checked as
    events are published), and always when it flushes."""

    every: int = 100
    ms: float = 1000.0


# --- the trust store --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TrustedKey(_Model):
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    created: datetime
    retired: datetime | None = Field(None, description="set when rotated out; it still verifies what it signed")
    instance: str = Field("", description="which running instance of the identity holds the private key")
    revoked: datetime | None = Field(None, description="set when the key was compromised")
    reason: str = Field("", description="why it was revoked")
    until: dict[str, int] | None = Field(
        None,
        description="for a retired or revoked key: per partition ('topic:partition'), the first offset it no longer "
        "verifies (the log's end when it was retired, or the point of compromise); a partition not named: none",
    )

    @property
    def ended(self) -> bool:
        """Retired or revoked: it verifies only events written before its point."""
        return self.retired is not None or self.revoked is not None

    def past_point(self, topic: str, partition: int, offset: int) -> bool:
        """Whether an event at this position is past the key's point (always False for an active key)."""
        if not self.ended:
            return False
        return offset >= (self.until or {}).get(f"{topic}:{partition}", 0)


class TrustedIdentity(_Model):
    may_publish: tuple[str, ...] = Field((), description="event type patterns, e.g. cn.jjj.verification.*")
    jurisdictions: tuple[str, ...] | None = Field(
        None,
        description="jurisdictions whose events the identity may publish ('*': any); None: the default for its name "
        "(default_scope): a jurisdiction's intake and bureau speak for that jurisdiction only",
    )
    issuers: tuple[str, ...] | None = Field(
        None,
        description="issuers whose certificates the identity may report on ('*': any); None: the default for its name "
        "(only the platform and its intake)",
    )
    keys: tuple[TrustedKey, ...] = ()


class VerificationSettings(_Model):
    mode: Mode = Field(Mode.PER_EVENT, description="verifying is the default; off must be chosen, and is loud")
    checkpoint_every: int = Field(100, ge=1, le=10_000)
    checkpoint_ms: float = Field(1000.0, gt=0)
    max_held: int = Field(50_000, ge=1, description="events a checkpoint-mode reader holds before giving up on one")
    max_wait_s: float = Field(60.0, gt=0, description="seconds an event may wait for its checkpoint")


class TrustStore(_Model):
    """Which identity may publish which event types, with their public keys, and the verification settings."""

    format: str = "mra-trust/1"
    verification: VerificationSettings = VerificationSettings()
    identities: dict[str, TrustedIdentity] = Field(default_factory=dict)

    def key(self, kid: str) -> tuple[str, TrustedKey] | None:
        for name, ident in self.identities.items():
            for k in ident.keys:
                if k.key_id == kid:
                    return name, k
        return None

    def may_publish(self, identity: str, ce_type: str) -> bool:
        ident = self.identities.get(identity)
        if ident is None:
            return False
        try:
            name, _ = parse_type(ce_type)
        except ValueError:
            name = ce_type
        return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(ce_type, p) for p in ident.may_publish)

    def scope(self, identity: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The jurisdictions and issuers ``identity`` may speak for: its grant's, or the default for its name."""
        ident = self.identities.get(identity)
        jurisdictions, issuers = default_scope(identity)
        if ident is not None and ident.jurisdictions is not None:
            jurisdictions = ident.jurisdictions
        if ident is not None and ident.issuers is not None:
            issuers = ident.issuers
        return jurisdictions, issuers

    def out_of_scope(self, identity: str, data: Event) -> str | None:
        """Why ``identity`` may not publish ``data`` (a jurisdiction or issuer it does not speak for), or None."""
        jurisdiction, issuer = event_scope(data)
        jurisdictions, issuers = self.scope(identity)
        if jurisdiction is not None and "*" not in jurisdictions and jurisdiction not in jurisdictions:
            allowed = ", ".join(jurisdictions) or "none"
            return f"{identity} may not speak for jurisdiction {jurisdiction!r} (it speaks for: {allowed})"
        if issuer is not None and "*" not in issuers and issuer not in issuers:
            allowed = ", ".join(issuers) or "none"
            return f"{identity} may not report on certificates of issuer {issuer!r} (it may for: {allowed})"
        return None

    def with_key(
        self,
        identity: str,
        key: TrustedKey,
        may_publish: Sequence[str] | None = None,
        retire: Iterable[str] = (),
    ) -> TrustStore:
        """A copy with ``key`` added to ``identity`` (created if new) and the keys ``retire`` names marked retired.

        An identity holds one active key per running instance (each instance signs its own chain epochs); a key
        added for a new instance leaves the others active, a rotation retires the one it replaces."""
        ident = self.identities.get(identity, TrustedIdentity())
        gone = set(retire)
        keys = tuple(
            k if k.retired or k.key_id not in gone else k.model_copy(update={"retired": key.created})
            for k in ident.keys
        )
        grants = tuple(may_publish) if may_publish is not None else ident.may_publish
        updated = TrustedIdentity(may_publish=grants, keys=(*keys, key))
        return self.model_copy(update={"identities": {**self.identities, identity: updated}})


def default_scope(identity: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The jurisdictions and issuers mra's own identities speak for, by their names: the platform and its intake
    for every jurisdiction and issuer, a jurisdiction's intake and bureau for that jurisdiction only, anyone else
    for none."""
    if identity in ("verification-platform", "platform-intake"):
        return ("*",), ("*",)
    if identity.endswith("-intake"):
        return (identity.removesuffix("-intake"),), ()
    if identity.startswith("bureau-"):
        return (identity.removeprefix("bureau-"),), ()
    return (), ()


def event_scope(data: Event) -> tuple[str | None, str | None]:
    """The jurisdiction and the issuer an event speaks for (None where it names none)."""
    if isinstance(data, CatalogueEditionPublished):
        return data.edition.jurisdiction, None
    if isinstance(data, BenefitDecided):
        return data.decision.jurisdiction, None
    if isinstance(data, CertificateVerified):
        return data.verified_by, data.issuer
    if isinstance(data, VerificationRequested):
        return None, data.issuer
    jurisdiction = getattr(data, "jurisdiction", None)
    return (jurisdiction if isinstance(jurisdiction, str) else None), None


def default_grants(identity: str) -> tuple[str, ...] | None:
    """What mra's own identities publish, by their names; None for an identity mra does not know."""
    if identity == "verification-platform":
        return ("cn.jjj.verification.*", "cn.jjj.holders.holder_registered", "cn.jjj.holders.holder_erased")
    if identity == "platform-intake":
        return (
            "cn.jjj.verification.requested",
            "cn.jjj.verification.accepted",
            "cn.jjj.verification.refused",
            "cn.jjj.holders.holder_registered",
        )
    if identity.endswith("-intake"):
        return ("cn.jjj.holders.employment_*", "cn.jjj.catalogue.*")
    if identity.startswith("bureau-"):
        return ("cn.jjj.benefits.*",)
    return None


# --- verifying --------------------------------------------------------------------------------------------------


class CheckpointBook(Protocol):
    """Verified checkpoints, by chain position: what a checkpoint-mode reader checks events against."""

    def add(self, publisher: str, epoch: str, first_seq: int, prev: str, hashes: Sequence[str]) -> None: ...

    def find(self, publisher: str, epoch: str, seq: int) -> tuple[str, str] | None:
        """The (hash, previous hash) a verified checkpoint gives for this position, or None."""
        ...


class MemoryBook:
    """A checkpoint book that lives as long as the process (enough for a replay into a fresh read model)."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, str, int], tuple[str, str]] = {}

    def add(self, publisher: str, epoch: str, first_seq: int, prev: str, hashes: Sequence[str]) -> None:
        before = prev
        for i, h in enumerate(hashes):
            self._links[(publisher, epoch, first_seq + i)] = (h, before)
            before = h

    def find(self, publisher: str, epoch: str, seq: int) -> tuple[str, str] | None:
        return self._links.get((publisher, epoch, seq))


class Verifier:
    """Checks events against a trust store. Every method returns None when the event may be applied, else the
    reason the dead-letter topic records."""

    def __init__(
        self,
        trust: TrustStore,
        book: CheckpointBook | None = None,
        reload: Callable[[], TrustStore | None] | None = None,
    ) -> None:
        self.book = book
        self._reload = reload
        self._use(trust)

    def _use(self, trust: TrustStore) -> None:
        self.trust = trust
        self._keys: dict[str, tuple[str, Ed25519PublicKey]] = {}
        self._entries: dict[str, TrustedKey] = {}
        for name, ident in trust.identities.items():
            for k in ident.keys:
                try:
                    raw = base64.b64decode(k.public_key, validate=True)
                    self._keys[k.key_id] = (name, Ed25519PublicKey.from_public_bytes(raw))
                    self._entries[k.key_id] = k
                except (binascii.Error, ValueError):
                    continue  # a damaged entry verifies nothing

    def _ended(self, kid: str, what: str, record: Record | None) -> str | None:
        """Why a retired or revoked key cannot vouch for ``what`` at this position, or None. The position is the
        broker's (where the record was written), which the signer does not control; ``ce_time`` is not used."""
        entry = self._entries.get(kid)
        if entry is None or not entry.ended:
            return None
        state = "revoked" if entry.revoked is not None else "retired"
        why = f" ({entry.reason})" if entry.reason else ""
        if record is None:
            return f"{state} key: {kid}{why} signed {what}; a {state} key vouches only for positions before its point"
        if entry.past_point(record.topic, record.partition, record.offset):
            last = (entry.until or {}).get(f"{record.topic}:{record.partition}", 0)
            return (
                f"{state} key: {kid}{why} signed {what} at {record.topic}[{record.partition}]@{record.offset}, past "
                f"its point (it vouches for offsets below {last} of that partition only)"
            )
        return None

    def _key(self, kid: str) -> tuple[str, Ed25519PublicKey] | None:
        found = self._keys.get(kid)
        if found is None and self._reload is not None:  # a key generated or rotated since this reader started
            fresh = self._reload()
            if fresh is not None:
                self._use(fresh)
                found = self._keys.get(kid)
        return found

    def refresh(self) -> None:
        """Take up a trust store changed since it was read (a key retired or revoked, an instance added): readers
        honour a revocation from the next event they read."""
        if self._reload is not None:
            fresh = self._reload()
            if fresh is not None:
                self._use(fresh)

    def authorise(self, env: Envelope) -> str | None:
        """The publisher stamp names an identity the trust store lets publish this event type."""
        if env.stamp is None:
            return f"unsigned: {env.type} {env.id} has no publisher stamp (ce_mrapublisher)"
        who = env.stamp.publisher
        if who not in self.trust.identities and self._reload is not None:
            fresh = self._reload()
            if fresh is not None:
                self._use(fresh)
        if who not in self.trust.identities:
            return f"unauthorised: publisher {who!r} is not in the trust store"
        if isinstance(env.data, Checkpoint):
            return None  # every identity signs checkpoints over its own chain
        if not self.trust.may_publish(who, env.type):
            granted = ", ".join(self.trust.identities[who].may_publish) or "nothing"
            return f"unauthorised: {who} may not publish {env.type} (the trust store lets it publish {granted})"
        beyond = self.trust.out_of_scope(who, env.data)
        if beyond:
            return f"unauthorised: {env.type} {env.id}: {beyond}"
        return None

    def signature(self, env: Envelope, record: Record | None = None) -> str | None:
        """The event's ``mrasig`` verifies under the ``mrakey`` key, which belongs to the stamped publisher."""
        who = env.stamp.publisher if env.stamp else "?"
        sig, kid = env.extensions.get(SIGNATURE_ATTR), env.extensions.get(KEY_ATTR)
        if not sig:
            return f"unsigned: {env.type} {env.id} from {who} carries no signature (ce_{SIGNATURE_ATTR})"
        if not kid:
            return f"unsigned: {env.type} {env.id} from {who} names no key (ce_{KEY_ATTR})"
        found = self._key(kid)
        if found is None:
            return f"unknown key: {kid} (signing {env.type} {env.id} as {who}) is not in the trust store"
        owner, public = found
        if owner != who:
            return f"bad signature: key {kid} belongs to {owner}, not to the publisher {who} ({env.type} {env.id})"
        try:
            public.verify(base64.b64decode(sig, validate=True), canonical_event(env, kid))
        except (InvalidSignature, binascii.Error, ValueError):
            return f"bad signature: {env.type} {env.id} from {who} does not verify under key {kid}"
        return self._ended(kid, f"{env.type} {env.id} as {who}", record)

    def checkpoint(self, env: Envelope, record: Record | None = None) -> str | None:
        """A checkpoint's own signature; a good one goes into the book."""
        cp = env.data
        if not isinstance(cp, Checkpoint):
            return f"bad checkpoint: {env.type} is not a checkpoint"
        if env.stamp is not None and env.stamp.publisher != cp.publisher:
            return f"bad checkpoint: stamped by {env.stamp.publisher} but signed for {cp.publisher}"
        if cp.last_seq - cp.first_seq + 1 != len(cp.hashes) or not all(_HEX64.match(h) for h in cp.hashes):
            return f"bad checkpoint: {env.id} lists {len(cp.hashes)} hashes for seq {cp.first_seq}..{cp.last_seq}"
        found = self._key(cp.key_id)
        if found is None:
            return f"unknown key: {cp.key_id} (checkpoint of {cp.publisher}) is not in the trust store"
        owner, public = found
        if owner != cp.publisher:
            return f"bad checkpoint: key {cp.key_id} belongs to {owner}, not to {cp.publisher}"
        message = canonical_checkpoint(cp.publisher, cp.epoch, cp.first_seq, cp.last_seq, cp.prev, cp.hashes, cp.key_id)
        try:
            public.verify(base64.b64decode(cp.signature, validate=True), message)
        except (InvalidSignature, binascii.Error, ValueError):
            return f"bad checkpoint: {env.id} of {cp.publisher} does not verify under key {cp.key_id}"
        ended = self._ended(cp.key_id, f"checkpoint {env.id} of {cp.publisher}", record)
        if ended:
            return ended
        if self.book is not None:
            self.book.add(cp.publisher, cp.epoch, cp.first_seq, cp.prev, cp.hashes)
        return None

    def per_event(self, env: Envelope, record: Record | None = None) -> str | None:
        """``validate`` in per-event mode: authorised and signed, or a verified checkpoint; ``record`` is where it
        was read (a retired or revoked key vouches only for positions before its point)."""
        self.refresh()
        problem = self.authorise(env)
        if problem:
            return problem
        if isinstance(env.data, Checkpoint):
            return self.checkpoint(env, record)
        return self.signature(env, record)

    def screen(self, env: Envelope, record: Record | None = None) -> str | None:
        """``validate`` in checkpoint mode: the cheap checks now; an unsigned event waits in the gate."""
        self.refresh()
        problem = self.authorise(env)
        if problem:
            return problem
        if isinstance(env.data, Checkpoint):
            return self.checkpoint(env, record)
        if SIGNATURE_ATTR in env.extensions:
            return self.signature(env, record)
        return None


# --- the checkpoint gate ----------------------------------------------------------------------------------------


@dataclass
class _Entry:
    offset: int
    delivery: Delivery | None
    dead: DeadLetter | None
    since: float


class CheckpointGate:
    """A handler in front of a read model: applies an unsigned event once a verified checkpoint covers it.

    Order within a partition is kept: a held event holds the events behind it in its partition (their positions
    are recorded with the change they cause, so nothing may overtake it). An event whose hash or chain link
    disagrees with its checkpoint is dead-lettered at once; one no checkpoint covers is dead-lettered after
    ``max_wait_s`` seconds, or when more than ``max_held`` events are held. Held events are not recorded, so a
    reader that stops re-reads them; the book of verified checkpoints must outlive the process for that.
    """

    def __init__(
        self,
        inner: Handler,
        book: CheckpointBook,
        send_dead: Callable[[Sequence[DeadLetter]], None],
        *,
        max_held: int = 50_000,
        max_wait_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.book = book
        self.send_dead = send_dead
        self.max_held = max_held
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._queues: dict[TopicPartition, deque[_Entry]] = {}

    @property
    def held(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def positions(self) -> Mapping[TopicPartition, int]:
        return self.inner.positions()

    def _status(self, d: Delivery) -> str | None:
        """ "" to apply, None to hold, else the reason to dead-letter."""
        env = d.envelope
        if isinstance(env.data, Checkpoint) or SIGNATURE_ATTR in env.extensions or env.stamp is None:
            return ""  # verified on its own by the validate callback (or, without a stamp, refused there)
        stamp = env.stamp
        link = self.book.find(stamp.publisher, stamp.epoch, stamp.seq)
        if link is None:
            return None
        expected, prev = link
        if expected != env.hash:
            return (
                f"bad checkpoint match: {env.type} {env.id} (seq {stamp.seq} of {stamp.publisher}) has content "
                f"hash {env.hash[:16]}…, its signed checkpoint says {expected[:16]}…"
            )
        if prev != stamp.prev:
            return f"broken chain: {env.type} {env.id} (seq {stamp.seq} of {stamp.publisher}) links to the wrong event"
        return ""

    def apply(self, deliveries: Sequence[Delivery], dead: Sequence[DeadLetter]) -> None:
        now = self.clock()
        saved = {tp: deque(q) for tp, q in self._queues.items()}
        queued = {(tp, e.offset) for tp, q in self._queues.items() for e in q}
        new = [(d.record, d, None) for d in deliveries] + [(x.record, None, x) for x in dead]
        for record, d, x in sorted(new, key=lambda n: (n[0].topic, n[0].partition, n[0].offset)):
            tp = (record.topic, record.partition)
            if (tp, record.offset) not in queued:
                self._queues.setdefault(tp, deque()).append(_Entry(record.offset, d, x, now))
        good: list[Delivery] = []
        letters: list[DeadLetter] = []
        gave_up: list[DeadLetter] = []
        count = self.held
        for q in self._queues.values():
            while q:
                head = q[0]
                if head.dead is not None:
                    letters.append(head.dead)
                elif head.delivery is not None:
                    status = self._status(head.delivery)
                    if status == "":
                        good.append(head.delivery)
                    elif status is not None:
                        gave_up.append(DeadLetter(head.delivery.record, status))
                    elif count > self.max_held or now - head.since > self.max_wait_s:
                        why = (
                            f"more than {self.max_held} events held"
                            if count > self.max_held
                            else f"{self.max_wait_s:g}s"
                        )
                        env = head.delivery.envelope
                        gave_up.append(
                            DeadLetter(
                                head.delivery.record,
                                f"unverified: no signed checkpoint covered {env.type} {env.id} within {why}",
                            )
                        )
                    else:
                        break
                q.popleft()
                count -= 1
        for tp in [tp for tp, q in self._queues.items() if not q]:
            del self._queues[tp]
        try:
            if gave_up:
                self.send_dead(gave_up)
            if good or letters or gave_up:
                self.inner.apply(good, [*letters, *gave_up])
        except BaseException:
            self._queues = saved
            raise


def dead_letter_sender(transport: Transport, topics: Topics) -> Callable[[Sequence[DeadLetter]], None]:
    """Send dead letters as the consumer does: the record, its headers, and why."""

    def send(letters: Sequence[DeadLetter]) -> None:
        target = topics.name("deadletter")
        for d in letters:
            transport.send(target, d.record.key, d.record.value or b"", dead_letter_headers(d.record, d.reason))
        transport.flush(30)

    return send


@dataclass
class Guard:
    """What a consumer needs for one verification mode: the ``validate`` callback and a handler wrapper."""

    mode: Mode
    verifier: Verifier | None = None
    book: CheckpointBook | None = None
    send_dead: Callable[[Sequence[DeadLetter]], None] | None = None
    max_held: int = 50_000
    max_wait_s: float = 60.0
    gates: list[CheckpointGate] = field(default_factory=list)

    @property
    def validate(self) -> Callable[[Envelope, Record | None], str | None] | None:
        if self.mode is Mode.OFF or self.verifier is None:
            return None
        return self.verifier.per_event if self.mode is Mode.PER_EVENT else self.verifier.screen

    def wrap(self, handler: Handler) -> Handler:
        if self.mode is not Mode.CHECKPOINTS or self.book is None or self.send_dead is None:
            return handler
        gate = CheckpointGate(handler, self.book, self.send_dead, max_held=self.max_held, max_wait_s=self.max_wait_s)
        self.gates.append(gate)
        return gate


# --- chains and costs -------------------------------------------------------------------------------------------


def verify_chain(envelopes: Iterable[Envelope]) -> list[str]:
    """Every break in the publishers' hash chains among ``envelopes`` (each read once, from every topic the
    publishers write): a missing position, or an event whose ``prev`` is not the hash of the one before it."""
    chains: dict[tuple[str, str], dict[int, Envelope]] = {}
    for env in envelopes:
        if env.stamp is not None:
            chains.setdefault((env.stamp.publisher, env.stamp.epoch), {})[env.stamp.seq] = env
    problems: list[str] = []
    for (who, epoch), events in sorted(chains.items()):
        before = ""
        for seq in range(max(events) + 1):
            at = events.get(seq)
            if at is None or at.stamp is None:
                problems.append(f"{who} epoch {epoch[:8]}: no event at seq {seq}")
                before = ""
                continue
            if (before and at.stamp.prev != before) or (seq == 0 and at.stamp.prev):
                problems.append(f"{who} epoch {epoch[:8]}: seq {seq} ({at.id}) does not link to seq {seq - 1}")
            before = at.hash
    return problems


@dataclass(frozen=True)
class SigningCosts:
    """Microseconds per event of each way to prove events, measured on this machine."""

    events: int
    every: int
    sign_per_event_us: float
    verify_per_event_us: float
    checkpoint_sign_per_event_us: float
    checkpoint_verify_per_event_us: float
    chain_check_per_event_us: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in vars(self).items()}


def measure_signing(events: int = 2000, every: int = 100) -> SigningCosts:
    """Sign and verify ``events`` events one by one, then as checkpoints of ``every`` events (for benchmarks)."""
    signer = Signer.generate("bench")
    trust = TrustStore(
        identities={
            "bench": TrustedIdentity(
                may_publish=("cn.jjj.*",),
                jurisdictions=("*",),
                keys=(
                    TrustedKey(
                        key_id=signer.key_id,
                        public_key=public_key_text(signer.private_key.public_key()),
                        created=datetime(2025, 1, 1, tzinfo=UTC),
                    ),
                ),
            )
        }
    )
    at = datetime(2025, 1, 1, tzinfo=UTC)
    data = EmploymentEnded(holder_id="h-bench", jurisdiction="beijing", ended=at.date())
    body, ce_type = data.model_dump_json().encode(), data.ce_type()
    envs: list[Envelope] = []
    prev = ""
    for i in range(events):
        ident = f"bench-{i}"
        digest = content_hash(ident, "/bench", ce_type, time_text(at), data.subject(), body)
        stamp = Stamp("bench", "e", i, prev)
        envs.append(Envelope(ident, "/bench", ce_type, at, data.subject(), "h-bench", data, stamp, {}, digest))
        prev = digest
    verifier = Verifier(trust, MemoryBook())

    t = time.perf_counter()
    signed = [signer.sign_event(e) for e in envs]
    sign_us = (time.perf_counter() - t) / events * 1e6
    t = time.perf_counter()
    bad = sum(verifier.signature(e) is not None for e in signed)
    verify_us = (time.perf_counter() - t) / events * 1e6
    if bad:
        raise RuntimeError(f"{bad} signatures did not verify")

    t = time.perf_counter()
    checkpoints: list[Checkpoint] = []
    for start in range(0, events, every):
        chunk = [e.hash for e in envs[start : start + every]]
        first = envs[start].stamp
        cp = make_checkpoint(signer, "e", start, first.prev if first else "", chunk, "holders")
        if cp is not None:
            checkpoints.append(cp)
    cp_sign_us = (time.perf_counter() - t) / events * 1e6
    t = time.perf_counter()
    for cp in checkpoints:
        env = Envelope(cp.publisher, "/bench", cp.ce_type(), at, "", "", cp, None, {}, "")
        problem = verifier.checkpoint(env)
        if problem:
            raise RuntimeError(problem)
    cp_verify_us = (time.perf_counter() - t) / events * 1e6
    book = verifier.book
    assert book is not None
    t = time.perf_counter()
    for e in envs:
        assert e.stamp is not None
        link = book.find("bench", "e", e.stamp.seq)
        if link is None or link != (e.hash, e.stamp.prev):
            raise RuntimeError(f"event {e.id} is not covered")
    link_us = (time.perf_counter() - t) / events * 1e6
    return SigningCosts(events, every, sign_us, verify_us, cp_sign_us, cp_verify_us + link_us, link_us)
