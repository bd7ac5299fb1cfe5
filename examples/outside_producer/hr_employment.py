"""An employer's HR system publishing employment events to mra's bureaus, as an outside producer.

It uses only confluent-kafka, the CloudEvents SDK and cryptography: nothing of mra. What it sends follows
docs/contracts/ (asyncapi.json for topics, keys and headers; schemas/ for bodies; signing.md for the signature).

    python hr_employment.py keygen --identity hr-acme --key hr-acme.pem
        writes a new Ed25519 private key (PKCS#8 PEM, mode 0600) and prints the trust store entry to hand to mra's
        operator (the public key, its id and the grant asked for), and on stderr the `mra keys trust` command for it.
    python hr_employment.py publish --bootstrap HOST:PORT --identity hr-acme --key hr-acme.pem --file events.jsonl
        publishes each line of events.jsonl, {"type": "cn.jjj.holders.employment_started.v2", "data": {...}},
        signed, as one chain (a new epoch per run), and prints one line per event delivered.

Exit status: 0 when every event was delivered, 1 when the broker refused one, 2 on bad input.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudevents.core.bindings.kafka import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from confluent_kafka import KafkaException, Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

EVENT_TAG = "mra-event-signature/1"
SCHEMA_PREFIX = "urn:mra:schema:"
TYPE = re.compile(r"^cn\.jjj\.(?P<topic>[a-z]+)\.[a-z0-9_]+\.v[0-9]+$")
IDENTITY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class BadInput(Exception):
    """Something the person running the example must fix; the message says what."""


# --- signing, as docs/contracts/signing.md describes it -----------------------------------------------------------


def lp(b: bytes) -> bytes:
    """LP(b): 4-byte big-endian length, then the bytes."""
    return len(b).to_bytes(4, "big") + b


def lp_text(*parts: str) -> bytes:
    return b"".join(lp(p.encode("utf-8")) for p in parts)


def key_id(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def content_hash(headers: dict[str, bytes], value: bytes) -> str:
    parts = [headers[h].decode("utf-8") for h in ("ce_id", "ce_source", "ce_type", "ce_time")]
    parts.append(headers.get("ce_subject", b"").decode("utf-8"))
    return hashlib.sha256(lp_text(*parts) + value).hexdigest()


# --- keys ---------------------------------------------------------------------------------------------------------


def keygen(identity: str, key_file: Path, grants: list[str], jurisdictions: list[str]) -> dict[str, Any]:
    if key_file.exists():
        raise BadInput(f"{key_file} exists: a key is never overwritten; choose another file")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = {
        "key_id": key_id(private),
        "public_key": base64.b64encode(raw).decode(),
        "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    entry: dict[str, Any] = {"may_publish": grants}
    if jurisdictions:
        entry["jurisdictions"] = jurisdictions
    entry["keys"] = [key]
    return {"identities": {identity: entry}}


def load_key(key_file: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(key_file.read_bytes(), password=None)
    except OSError as e:
        raise BadInput(f"cannot read the key {key_file}: {e.strerror}") from None
    except ValueError:
        raise BadInput(f"{key_file} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(f"{key_file} is not an Ed25519 key")
    return key


# --- events -------------------------------------------------------------------------------------------------------


def read_events(path: Path) -> list[tuple[str, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8") from None
    events = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as e:
            raise BadInput(f"{path}:{n}: not JSON ({e})") from None
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("type"), str)
            or not isinstance(item.get("data"), dict)
        ):
            raise BadInput(f'{path}:{n}: expected {{"type": "cn.jjj.<topic>.<name>.vN", "data": {{...}}}}')
        if not TYPE.match(item["type"]):
            raise BadInput(f"{path}:{n}: {item['type']!r} is not an event type (cn.jjj.<topic>.<name>.vN)")
        if not isinstance(item["data"].get("holder_id"), str) or not item["data"]["holder_id"]:
            raise BadInput(f"{path}:{n}: data.holder_id is missing (the pseudonymous holder id mra gave)")
        events.append((item["type"], item["data"]))
    if not events:
        raise BadInput(f"{path} holds no events")
    return events


class Chain:
    """One run of this producer: an epoch, and the position and hash of its last event."""

    def __init__(self, identity: str, source: str, private: Ed25519PrivateKey) -> None:
        self.identity, self.source, self.private = identity, source, private
        self.kid = key_id(private)
        self.epoch = uuid.uuid4().hex
        self.seq = 0
        self.prev = ""

    def message(self, ce_type: str, data: dict[str, Any], when: datetime) -> tuple[str, bytes, bytes, dict[str, bytes]]:
        """Topic suffix, key, value and headers of the next event, signed."""
        holder = data["holder_id"]
        attributes: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "source": self.source,
            "type": ce_type,
            "specversion": "1.0",
            "time": when,
            "subject": holder,
            "datacontenttype": "application/json",
            "dataschema": SCHEMA_PREFIX + ce_type,
            "mrapublisher": self.identity,
            "mraepoch": self.epoch,
            "mraseq": str(self.seq),
            "mraprev": self.prev,
        }
        unsigned = to_binary(CloudEvent(attributes=attributes, data=data), JSONFormat(), key_mapper=lambda _: holder)
        digest = content_hash(unsigned.headers, unsigned.value)  # over the bytes that will travel
        signed = lp_text(EVENT_TAG, digest, holder, self.identity, self.epoch, str(self.seq), self.prev, self.kid)
        attributes.update(
            mrahash=digest, mrakey=self.kid, mrasig=base64.b64encode(self.private.sign(signed)).decode("ascii")
        )
        message = to_binary(CloudEvent(attributes=attributes, data=data), JSONFormat(), key_mapper=lambda _: holder)
        assert message.value == unsigned.value and message.headers["ce_time"] == unsigned.headers["ce_time"]
        self.seq += 1
        self.prev = digest
        return TYPE.match(ce_type)["topic"], holder.encode(), message.value, message.headers  # type: ignore[index]


def publish(bootstrap: str, prefix: str, chain: Chain, events: list[tuple[str, dict[str, Any]]]) -> int:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    failures: list[str] = []

    def report(what: str) -> Any:
        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                failures.append(f"{what}: {err}")
            else:
                print(f"delivered {what} to {msg.topic()} [{msg.partition()}] @{msg.offset()}", flush=True)

        return delivered

    for ce_type, data in events:
        topic, key, value, headers = chain.message(ce_type, data, datetime.now(UTC))
        what = f"{ce_type} {headers['ce_id'].decode()}"
        try:
            producer.produce(
                prefix + topic, key=key, value=value, headers=list(headers.items()), on_delivery=report(what)
            )
        except (KafkaException, BufferError) as e:
            failures.append(f"{what}: {e}")
        producer.poll(0)
    left = producer.flush(30)
    if left:
        failures.append(f"{left} event(s) not delivered within 30 s")
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("keygen", help="a new signing key, and the trust store entry for mra's operator")
    gen.add_argument("--identity", required=True)
    gen.add_argument("--key", required=True, type=Path, help="private key file to create (PEM, mode 0600)")
    gen.add_argument("--may-publish", action="append", help="grant asked for (default: cn.jjj.holders.employment_*)")
    gen.add_argument(
        "--jurisdiction", action="append", help="jurisdiction the employer's events speak for (repeatable)"
    )
    pub = sub.add_parser("publish", help="publish the events of a JSON Lines file, signed")
    pub.add_argument("--bootstrap", required=True)
    pub.add_argument("--topic-prefix", default="mra.")
    pub.add_argument("--identity", required=True)
    pub.add_argument("--key", required=True, type=Path)
    pub.add_argument("--source", help="ce_source (default: /hr/<identity>)")
    pub.add_argument("--file", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if not IDENTITY.match(args.identity):
            raise BadInput(f"identity {args.identity!r}: lowercase letters, digits, '.', '_', '-', at most 64")
        if args.command == "keygen":
            grants = args.may_publish or ["cn.jjj.holders.employment_*"]
            entry = keygen(args.identity, args.key, grants, args.jurisdiction or [])
            print(json.dumps(entry, indent=2))
            key = entry["identities"][args.identity]["keys"][0]
            flags = [f"--may-publish '{g}'" for g in grants] + [f"--jurisdiction {j}" for j in args.jurisdiction or []]
            print(
                f"mra's operator trusts it with: mra keys trust {args.identity} {key['public_key']} {' '.join(flags)}",
                file=sys.stderr,
            )
            return 0
        chain = Chain(args.identity, args.source or f"/hr/{args.identity}", load_key(args.key))
        return publish(args.bootstrap, args.topic_prefix, chain, read_events(args.file))
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
