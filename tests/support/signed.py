"""Provisioned state directories and genuine publishers, for tests that publish events a verifying reader reads.

mra verifies by default: a reader applies only events signed by an identity its trust store allows to publish them.
Tests therefore provision their state directories (:func:`provisioned`) and publish each event as the identity mra
itself publishes it under (:class:`Genuine`), signed. The keys are made once per test process (a keyring) and
copied into each state directory: a copy trusts exactly the keyring's keys, as a machine provisioned with
``mra keys import`` does.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from mra.core.plugins import load_registry
from mra.events.bus import Transport
from mra.events.envelope import Envelope
from mra.events.publisher import Publisher
from mra.events.schemas import (
    BenefitDecided,
    BenefitWithdrawn,
    CatalogueEditionPublished,
    CatalogueEntryWithdrawn,
    EmploymentEnded,
    EmploymentStarted,
    Event,
    HolderRegistered,
    VerificationAccepted,
    VerificationRefused,
    VerificationRequested,
)
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.keys import KeyPaths, generate_key, init_keys, signer_for, standard_identities

__all__ = ["TEST_IDENTITIES", "Genuine", "genuine_identity", "keyring", "provisioned", "signed"]

TEST_IDENTITIES = ("test", "intake", "test-intake")
"""Publishers of tests that stand for every intake at once: trusted for every event type, and said so."""

_KEYRING: list[Path] = []


def keyring() -> Path:
    """A state directory holding every standard identity's key and a verifying trust store, made once per process."""
    if not _KEYRING:
        home = Path(tempfile.mkdtemp(prefix="mra-test-keyring-"))
        init_keys(home, standard_identities(load_registry().jurisdictions), Mode.PER_EVENT)
        for identity in TEST_IDENTITIES:
            generate_key(home, identity, may_publish=["cn.jjj.*"], jurisdictions=["*"], issuers=["*"])
        _KEYRING.append(home)
    return _KEYRING[0]


def provisioned(state_dir: Path, *extra: str, mode: Mode | None = None) -> Path:
    """``state_dir`` with the keyring's keys and trust store, and keys of its own for the ``extra`` identities (a
    jurisdiction's bureau a test adds, say), in ``mode`` if given; returned for chaining."""
    target = KeyPaths(state_dir).root
    if not target.exists():
        shutil.copytree(KeyPaths(keyring()).root, target)
    for identity in extra:
        if signer_for(state_dir, identity) is None:
            generate_key(state_dir, identity)
    if mode is not None:
        from mra.services.keys import set_mode

        set_mode(state_dir, mode)
    return state_dir


def signed(transport: Transport, topics: Topics, identity: str = "test") -> Publisher:
    """A publisher for ``identity`` signing with its key from the keyring (a new epoch each call)."""
    signer = signer_for(keyring(), identity)
    assert signer is not None, f"no key for {identity} in the keyring"
    return Publisher(transport, topics, identity, signer=signer)


def genuine_identity(data: Event) -> str:
    """The identity mra publishes ``data`` under."""
    if isinstance(data, EmploymentStarted | EmploymentEnded | CatalogueEntryWithdrawn):
        return f"{data.jurisdiction}-intake"
    if isinstance(data, CatalogueEditionPublished):
        return f"{data.edition.jurisdiction}-intake"
    if isinstance(data, BenefitDecided):
        return f"bureau-{data.decision.jurisdiction}"
    if isinstance(data, BenefitWithdrawn):
        return f"bureau-{data.jurisdiction}"
    if isinstance(data, VerificationRequested | VerificationAccepted | VerificationRefused | HolderRegistered):
        return "platform-intake"
    return "verification-platform"


class Genuine:
    """Publishes each event as :func:`genuine_identity` says, signed with that identity's key from ``keys``
    (default: the keyring), with :class:`~mra.events.publisher.Publisher`'s ``publish``/``envelope``/``flush``."""

    def __init__(self, transport: Transport, topics: Topics, keys: Path | None = None) -> None:
        self.transport = transport
        self.topics = topics
        self.keys = keys or keyring()
        self.publishers: dict[str, Publisher] = {}

    def publisher(self, identity: str) -> Publisher:
        pub = self.publishers.get(identity)
        if pub is None:
            signer = signer_for(self.keys, identity)
            assert signer is not None, f"no key for {identity} in {self.keys}"
            pub = self.publishers[identity] = Publisher(self.transport, self.topics, identity, signer=signer)
        return pub

    def publish(
        self, data: Event, *, id: str | None = None, time: datetime | None = None, body: bytes | None = None
    ) -> Envelope:
        return self.publisher(genuine_identity(data)).publish(data, id=id, time=time, body=body)

    def envelope(
        self, data: Event, *, id: str | None = None, time: datetime | None = None, body: bytes | None = None
    ) -> Envelope:
        return self.publisher(genuine_identity(data)).envelope(data, id=id, time=time, body=body)

    def send(self, env: Envelope) -> None:
        Publisher(self.transport, self.topics, "send").send(env)

    def flush(self, timeout: float | None = 30.0) -> None:
        for pub in self.publishers.values():
            pub.flush(timeout)
