"""Personal data: keyed pseudonyms, per-holder data keys, sealed fields, and erasure.

- The holder id on the bus is ``h-`` + HMAC-SHA256, under the platform's secret ``platform/holder.key``, of the
  identity document (type, number, nationality): whoever holds the secret can derive it (``mra holder id``), nobody
  else can reverse it.
- A personal field that must travel or be kept (the birth date on ``HolderRegistered``; the name in the platform's
  intake store) is *sealed*: AES-256-GCM under the holder's own data key from the key store
  (:class:`~mra.services.keys.DataKeyStore`), bound to the holder id and the field's name. The nonce is derived
  from the key and the plaintext, so sealing the same value twice gives the same text and a re-published event is
  byte-identical.
- Erasing a holder (``mra holder erase``) destroys the data key: every sealed copy of their fields — on the topics,
  in read models, in backups of them — reads as erased from then on, while the log and its hash chain stay as
  they are (the content hash covers the ciphertext). A ``HolderErased`` event tells every bureau, and carries the
  non-personal facts their recorded decisions replay from.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mra.core.catalogue import normalise
from mra.core.errors import MraError, NotFound
from mra.core.ids import stable_id
from mra.core.models import BenefitDecision, full_years
from mra.events.benefits import decided_in, holder_of
from mra.events.bus import Transport
from mra.events.envelope import DecodeError, Envelope, decode
from mra.events.publisher import Publisher
from mra.events.schemas import HolderErased, HolderRegistered
from mra.events.topics import Topics
from mra.services.audit import read_log
from mra.services.files import private_dir
from mra.services.keys import DataKeyStore, ErasedHolder, KeyPaths

__all__ = [
    "DEFAULT_REASON",
    "ERASED",
    "SEALED",
    "ErasedHolder",
    "PersonalData",
    "erase_holder",
    "erasure_facts",
    "fold",
    "holder_pseudonym",
    "is_sealed",
    "keyed",
    "open_value",
    "pseudonym_key",
    "read_pseudonym_key",
    "seal_value",
]

SEALED = "mra:sealed:v1:"
ERASED = "(erased)"
DEFAULT_REASON = "deletion requested by the holder"


# --- pseudonyms -----------------------------------------------------------------------------------------------


def pseudonym_key(path: Path) -> bytes:
    """The platform's secret for pseudonyms, created on first use (32 random bytes, readable by the owner only)."""
    for _ in range(50):
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if text:
            return bytes.fromhex(text)
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # atomic, and fails if another process created the key first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        time.sleep(0.01)
    raise MraError(f"the holder key {path} is empty or unreadable")


def read_pseudonym_key(state_dir: Path) -> bytes:
    """The existing secret, for an operator deriving a holder id; never created here (a new one derives nothing)."""
    path = KeyPaths(state_dir).pseudonym
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise NotFound(
            f"no pseudonym key at {path}: holder ids can be derived only where the platform's key is kept"
        ) from None
    except PermissionError:
        raise MraError(f"{path} is not readable by this user: holder ids are for the platform's operator") from None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise MraError(f"the pseudonym key {path} is damaged") from None


def fold(text: str) -> str:
    return "".join(normalise(text).split())


def keyed(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def holder_pseudonym(key: bytes, document_type: str, document_number: str, nationality: str) -> str:
    """The holder id on the bus: HMAC-SHA256 of (document type, number, nationality), never the data itself."""
    digest = keyed(key, "holder", document_type.strip().lower(), fold(document_number), nationality.strip().upper())
    return "h-" + digest[:32]


# --- sealed fields --------------------------------------------------------------------------------------------


def is_sealed(text: str | None) -> bool:
    return bool(text) and str(text).startswith(SEALED)


def _aad(holder_id: str, field: str) -> bytes:
    return f"mra-sealed/1\x1f{holder_id}\x1f{field}".encode()


def seal_value(key_id: str, key: bytes, holder_id: str, field: str, value: str) -> str:
    """``value`` sealed for ``holder_id``'s ``field``: ``mra:sealed:v1:<key id>:<base64url nonce+ciphertext>``."""
    aad = _aad(holder_id, field)
    nonce = hmac.new(key, b"nonce\x1f" + aad + b"\x1f" + value.encode(), hashlib.sha256).digest()[:12]
    sealed = AESGCM(key).encrypt(nonce, value.encode(), aad)
    return f"{SEALED}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_value(key: bytes, holder_id: str, field: str, text: str) -> str:
    """The plaintext of a sealed field; :class:`MraError` if it is not sealed for this holder and field."""
    try:
        _, blob = text.removeprefix(SEALED).split(":", 1)
        raw = base64.urlsafe_b64decode(blob)
        return AESGCM(key).decrypt(raw[:12], raw[12:], _aad(holder_id, field)).decode()
    except (ValueError, binascii.Error, InvalidTag, UnicodeDecodeError):
        raise MraError(f"a sealed {field} of holder {holder_id} does not open with their data key") from None


class PersonalData:
    """Sealing and opening holders' personal fields through the key store (opened when first needed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store: DataKeyStore | None = None

    @classmethod
    def at(cls, state_dir: Path) -> PersonalData:
        return cls(KeyPaths(state_dir).holders)

    @property
    def store(self) -> DataKeyStore:
        if self._store is None:
            self._store = DataKeyStore(self.path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def seal(self, holder_id: str, field: str, value: str) -> str:
        """Seal under the holder's data key, made on first use; :class:`ErasedHolder` for an erased holder."""
        kid, key = self.store.get_or_create(holder_id)
        return seal_value(kid, key, holder_id, field, value)

    def keyed(self, holder_id: str, *parts: str) -> str:
        """An HMAC under the holder's data key: a check value that becomes meaningless when they are erased."""
        _, key = self.store.get_or_create(holder_id)
        return keyed(key, *parts)

    def open(self, holder_id: str, field: str, text: str) -> str:
        """The field's value (plain text passes through); :class:`ErasedHolder` once the holder is erased."""
        if not is_sealed(text):
            return text
        found = self.store.get(holder_id)
        if found is None:
            raise MraError(f"holder {holder_id} has no data key in this key store ({self.path})")
        return open_value(found[1], holder_id, field, text)

    def shown(self, holder_id: str, field: str, text: str | None) -> str | None:
        """What to show of a field: its value, or ``(erased)``."""
        if text is None:
            return None
        try:
            return self.open(holder_id, field, text)
        except ErasedHolder:
            return ERASED

    def erased(self, holder_id: str) -> bool:
        if self._store is None and not self.path.exists():
            return False
        return self.store.erasure(holder_id) is not None


# --- erasure --------------------------------------------------------------------------------------------------


def erasure_facts(
    holder_id: str, born: date | None, decisions: Iterable[BenefitDecision]
) -> tuple[tuple[str, ...], dict[str, int]]:
    """What an erased holder's recorded decisions replay from: their ids, and the holder's age in full years on
    each decision date (UTC, as bureaus count it). Both are already on the benefits topic in other words."""
    mine = [d for d in decisions if d.holder_id == holder_id]
    ids = tuple(sorted({d.decision_id for d in mine if d.decision_id}))
    ages: dict[str, int] = {}
    for d in mine:
        day = d.decided_at.astimezone(UTC).date()
        if born is not None:
            ages[day.isoformat()] = full_years(born, day)
        elif isinstance(d.inputs.get("age"), int):
            ages[day.isoformat()] = int(d.inputs["age"])  # type: ignore[arg-type]
    return ids, dict(sorted(ages.items()))


def _read_topics(transport: Transport, names: list[str]) -> list[Envelope]:
    """Every readable event of ``names``, to the end of the log (see :func:`mra.services.audit.read_log`)."""
    out: list[Envelope] = []
    for record in read_log(transport, names, timeout=120):
        try:
            out.append(decode(record))
        except DecodeError:
            continue
    return out


def erase_holder(
    state_dir: Path,
    holder_id: str,
    *,
    transport: Transport,
    topics: Topics,
    publisher: Publisher,
    now: datetime | None = None,
    reason: str = DEFAULT_REASON,
) -> dict[str, Any]:
    """Destroy ``holder_id``'s data key and publish :class:`HolderErased`; running it again re-publishes the same
    event (same id, same content), so an erasure whose event could not be published is completed by erasing again,
    and a key brought back by restoring an older backup is destroyed again under the erasure on the log.

    Before the key goes, the holders and benefits topics are read for the holder's birth date (sealed) and recorded
    decisions: the event keeps the decisions' ids and the holder's age on each decision date.
    """
    personal = PersonalData.at(state_dir)
    try:
        done = personal.store.erasure(holder_id)
        if done is None:
            if personal.store.get(holder_id) is None:
                raise NotFound(f"holder {holder_id} has no data key in this key store: nothing to erase here")
            events = _read_topics(transport, [topics.name("holders"), topics.name("benefits")])
            born: date | None = None
            decisions: list[BenefitDecision] = []
            logged: HolderErased | None = None
            for env in events:
                data = env.data
                if isinstance(data, HolderErased) and data.holder_id == holder_id:
                    logged = data  # erased before, and the key came back with a restored backup
                elif isinstance(data, HolderRegistered) and data.holder_id == holder_id:
                    if data.birth_date is not None:
                        born = data.birth_date
                    elif "birth_date" in data.personal:
                        born = date.fromisoformat(personal.open(holder_id, "birth_date", data.personal["birth_date"]))
                elif holder_of(data) == holder_id:
                    decisions.extend(decided_in(data))
            if logged is not None:  # the same erasure again, word for word
                ids, ages, at, reason = logged.decisions, logged.ages, logged.erased_at, logged.reason
            else:
                ids, ages = erasure_facts(holder_id, born, decisions)
                at = (now or datetime.now(UTC)).astimezone(UTC)
            personal.store.erase(holder_id, at, reason, {"decisions": list(ids), "ages": ages})
            done = personal.store.erasure(holder_id)
            assert done is not None
            again = False
        else:
            again = True
    finally:
        personal.close()
    event = HolderErased(
        holder_id=holder_id,
        erased_at=datetime.fromisoformat(done["erased_at"]),
        reason=done["reason"],
        decisions=tuple(done.get("decisions", ())),
        ages=dict(done.get("ages", {})),
    )
    env = publisher.publish(event, id=stable_id("holders.holder_erased", holder_id), time=event.erased_at)
    publisher.flush()
    return {
        "holder_id": holder_id,
        "erased_at": event.erased_at.isoformat(),
        "already_erased": again,
        "decisions_kept": len(event.decisions),
        "event_id": env.id,
    }
