"""Published event contracts, generated from the event models: one JSON Schema per event type and version, and an
AsyncAPI 3.0 document of the topics, keys, headers and payloads.

Outside producers and readers build against these files (``docs/contracts/``), not against mra's code, so they
must say exactly what the models accept. They are generated, never edited: ``mra contracts write`` (or
``python -m mra.events.contracts write``) rewrites them and ``--check`` fails when they differ from the models.

A schema's ``$id`` is the event's ``ce_dataschema`` (:func:`mra.events.envelope.dataschema`). The schema of an old
version comes from the model kept for it (:func:`mra.events.schemas.superseded`); where none was kept, the file
already published for it is kept as it is: a released version never changes.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mra import __version__
from mra.events.envelope import (
    CONTENT_TYPE,
    KEY_ATTR,
    SIGNATURE_ATTR,
    SPECVERSION,
    dataschema,
)
from mra.events.schemas import Event, parse_type, registered_types, registered_versions
from mra.events.topics import LOGICAL_TOPICS, Topics

__all__ = [
    "ContractsError",
    "Outcome",
    "asyncapi",
    "check",
    "default_dir",
    "documents",
    "json_schema",
    "main",
    "message_id",
    "schema_path",
    "write",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
PAYLOAD_FORMAT = "application/schema+json;version=draft-2020-12"
KAFKA_BINDING = "0.5.0"
ASYNCAPI_FILE = "asyncapi.json"
SCHEMA_DIR = "schemas"

_TOPIC_TEXT = {
    "catalogue": "Catalogue editions and withdrawn entries, keyed by catalogue; every reader reads all of it.",
    "verification": "Verification requests and their outcomes (附件 2), keyed by holder id.",
    "holders": "Facts about holders: registration, employment, erasure, keyed by holder id.",
    "benefits": "Bureaus' benefit decisions and withdrawals, keyed by holder id.",
    "deadletter": "Records a reader set aside, with the original key, value and headers and the reason.",
}


class ContractsError(RuntimeError):
    """The contracts cannot be generated as the models stand (an old version with neither model nor file)."""


def default_dir() -> Path:
    """``docs/contracts`` of the source tree mra runs from."""
    return Path(__file__).resolve().parent.parent / "docs" / "contracts"


def schema_path(ce_type: str) -> str:
    """Where the schema of ``ce_type`` is, relative to the contracts directory."""
    return f"{SCHEMA_DIR}/{ce_type}.json"


def message_id(ce_type: str) -> str:
    """The key of ``ce_type``'s message in the AsyncAPI document (letters, digits, ``_``, ``-``; the message's
    ``name`` is the type itself)."""
    return ce_type.replace(".", "_")


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def json_schema(ce_type: str, model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the body of ``ce_type``, as ``model`` validates it."""
    body = model.model_json_schema(mode="validation")
    doc: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "$id": dataschema(ce_type), **body}
    doc["title"] = ce_type
    return doc


def _key_text(cls: type[Event]) -> str:
    """What the Kafka key of ``cls``'s events is: the overriding ``partition_key``'s docstring, else the holder."""
    own = cls.partition_key
    if own is not Event.partition_key and own.__doc__:
        return " ".join(own.__doc__.split()).replace("``", "`")
    return "The holder id (pseudonymous): one holder's events stay in order on one partition."


def _doc_text(model: type[BaseModel]) -> str:
    """The model's docstring (or its base's) on one line, reST literals as Markdown ones."""
    doc = inspect.getdoc(model) or ""
    if doc in (inspect.getdoc(Event), inspect.getdoc(BaseModel)):
        return ""
    return " ".join(doc.split()).replace("``", "`")


_TEXT = {"type": "string"}


def _headers_schema() -> dict[str, Any]:
    """The headers every mra event carries, and those a signed one adds (Kafka header values, UTF-8 text)."""
    hex64 = {"type": "string", "pattern": "^([0-9a-f]{64})?$"}
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0 attributes in Kafka binary content mode (ce_ headers), the publisher stamp (mra "
            "extension attributes) and, on a signed event, the signature. Header values are UTF-8 text."
        ),
        "properties": {
            "ce_specversion": {"const": SPECVERSION},
            "ce_id": {**_TEXT, "minLength": 1, "description": "Unique per source; a re-sent event keeps its id."},
            "ce_source": {**_TEXT, "minLength": 1, "description": "URI reference of the publisher instance."},
            "ce_type": {**_TEXT, "pattern": r"^[a-z][a-z0-9_.]*\.v[0-9]+$", "description": "name.vN"},
            "ce_dataschema": {
                **_TEXT,
                "description": "urn:mra:schema:<ce_type>, the $id of the body's JSON Schema; optional on read.",
            },
            "ce_time": {**_TEXT, "format": "date-time", "description": "RFC 3339; the event time decisions use."},
            "ce_subject": {**_TEXT, "description": "What the event is about (usually the holder id)."},
            "content-type": {"const": CONTENT_TYPE},
            "ce_mrapublisher": {**_TEXT, "description": "The publisher identity (trust store name)."},
            "ce_mraepoch": {**_TEXT, "description": "The run of the publisher instance; each run starts a chain."},
            "ce_mraseq": {**_TEXT, "pattern": "^[0-9]+$", "description": "Position in the epoch's chain, from 0."},
            "ce_mraprev": {**hex64, "description": "Content hash of the same epoch's previous event ('' at seq 0)."},
            "ce_mrahash": {**hex64, "description": "Content hash of this event; readers recompute it."},
            f"ce_{SIGNATURE_ATTR}": {**_TEXT, "description": "Base64 of the Ed25519 signature (signing.md)."},
            f"ce_{KEY_ATTR}": {**_TEXT, "pattern": "^[0-9a-f]{16}$", "description": "Id of the signing key."},
        },
        "required": [
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_mrapublisher",
            "ce_mraepoch",
            "ce_mraseq",
            "ce_mraprev",
        ],
    }


def _message(ce_type: str, model: type[BaseModel], cls: type[Event]) -> dict[str, Any]:
    current = parse_type(ce_type)[1] == cls.VERSION
    summary = _doc_text(model).split(". ")[0].rstrip(".") or ce_type
    description = _doc_text(model) or ce_type
    if not current:
        description = f"Superseded by {cls.ce_type()}; readers upcast it. {description}"
    return {
        "name": ce_type,
        "title": ce_type,
        "summary": summary,
        "description": description,
        "contentType": CONTENT_TYPE,
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/Headers"},
                {
                    "properties": {
                        "ce_type": {"const": ce_type},
                        "ce_dataschema": {"const": dataschema(ce_type)},
                    }
                },
            ]
        },
        "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": schema_path(ce_type)}},
        "bindings": {
            "kafka": {"key": {"type": "string", "description": _key_text(cls)}, "bindingVersion": KAFKA_BINDING}
        },
    }


def asyncapi(versions: dict[str, type[BaseModel] | None] | None = None) -> dict[str, Any]:
    """The AsyncAPI 3.0 document: one channel per topic, one message per event type and version."""
    versions = registered_versions() if versions is None else versions
    types = registered_types()
    topics = Topics()
    messages: dict[str, Any] = {}
    by_topic: dict[str, list[str]] = {t: [] for t in LOGICAL_TOPICS}
    for ce_type, model in versions.items():
        cls = types[parse_type(ce_type)[0]]
        messages[message_id(ce_type)] = _message(ce_type, model or cls, cls)
        by_topic[cls.TOPIC].append(message_id(ce_type))
    messages["deadLetter"] = {
        "name": "deadLetter",
        "title": "Dead letter",
        "summary": "A record a reader could not or would not apply, set aside with the reason.",
        "headers": {
            "type": "object",
            "description": "The original record's headers, plus where it came from and why it was set aside.",
            "properties": {
                "mra_dlq_reason": {**_TEXT, "description": "Why, starting with a fixed word (unsigned:, …)."},
                "mra_dlq_topic": _TEXT,
                "mra_dlq_partition": {**_TEXT, "pattern": "^[0-9]+$"},
                "mra_dlq_offset": {**_TEXT, "pattern": "^[0-9]+$"},
                "mra_dlq_consumer": _TEXT,
            },
            "required": ["mra_dlq_reason", "mra_dlq_topic", "mra_dlq_partition", "mra_dlq_offset"],
        },
        "payload": {"description": "The original value, byte for byte (it may not be JSON)."},
        "bindings": {"kafka": {"key": {"description": "The original key."}, "bindingVersion": KAFKA_BINDING}},
    }
    by_topic["deadletter"].append("deadLetter")
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in LOGICAL_TOPICS:
        names = by_topic[topic]
        channels[topic] = {
            "address": topics.name(topic),
            "title": topic,
            "description": (
                f"{_TOPIC_TEXT.get(topic, topic)} The address is MRA_TOPIC_PREFIX (default "
                f"{topics.prefix!r}) + {topic!r}; topics are created with MRA_PARTITIONS partitions (default "
                f"{topics.partitions})."
            ),
            "messages": {n: {"$ref": f"#/components/messages/{n}"} for n in names},
            "bindings": {"kafka": {"topic": topics.name(topic), "bindingVersion": KAFKA_BINDING}},
        }
        for action, verb in (("send", "publish"), ("receive", "read")):
            operations[f"{verb}_{topic}"] = {
                "action": action,
                "title": f"{verb.capitalize()} {topic}",
                "channel": {"$ref": f"#/channels/{topic}"},
                "messages": [{"$ref": f"#/channels/{topic}/messages/{n}"} for n in names],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "mra events",
            "version": __version__,
            "description": (
                "The events of mra, the Beijing–Tianjin–Hebei mutual recognition of professional qualifications, "
                "on Kafka: CloudEvents 1.0 in binary content mode, JSON bodies, keyed for per-holder order. A "
                "publisher outside mra needs an identity and a grant in the readers' trust store and signs its "
                "events as signing.md describes. Generated from the event models; do not edit."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "Any Kafka-protocol cluster; MRA_BOOTSTRAP_SERVERS names it.",
                "variables": {"bootstrap": {"default": "127.0.0.1:9092"}},
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {"Headers": _headers_schema()}, "messages": messages},
    }


def _index(versions: dict[str, type[BaseModel] | None]) -> str:
    types = registered_types()
    lines = [
        "# Event contracts",
        "",
        "Generated from the event models by `mra contracts write`; do not edit. `tests/test_contracts.py` fails when a",
        "model changes and these files do not.",
        "",
        f"- [`{ASYNCAPI_FILE}`]({ASYNCAPI_FILE}): the AsyncAPI 3.0 document (topics, keys, headers, payloads).",
        f"- `{SCHEMA_DIR}/<type>.json`: the JSON Schema (2020-12) of each event type's body, old versions included;",
        "  its `$id` is the event's `ce_dataschema`.",
        "- [signing.md](signing.md): the exact bytes an outside producer hashes and signs, with test vectors.",
        "",
        "Readers must read committed (Kafka's `isolation.level=read_committed`; librdkafka's default, kafka-python's",
        "`isolation_level='read_committed'`). Bureaus publish to `benefits` in Kafka transactions: a transaction that",
        "was aborted (a bureau instance killed or fenced by its successor) leaves records on the log that only a",
        "read_uncommitted reader sees, and those events were never published. A reader that reads committed sees",
        "each decision-set event id once. Tansu, the development broker, shows aborted records to read_committed",
        "readers too (docs/brokers.md): there, skip an event id read before, as every mra reader does.",
        "",
        "| type | topic | key | current |",
        "|---|---|---|---|",
    ]
    for ce_type in versions:
        cls = types[parse_type(ce_type)[0]]
        current = "yes" if cls.ce_type() == ce_type else f"upcast to {cls.ce_type()}"
        key = _key_text(cls).split(":")[0].rstrip(".")
        lines.append(f"| [`{ce_type}`]({schema_path(ce_type)}) | `{cls.TOPIC}` | {key} | {current} |")
    return "\n".join(lines) + "\n"


def documents(directory: Path | None = None) -> dict[str, str]:
    """Every generated file, by its path relative to the contracts directory, with its text.

    An old version with no kept model keeps its published file, from ``directory`` or else from the source tree.
    """
    directory = default_dir() if directory is None else directory
    versions = registered_versions()
    out: dict[str, str] = {}
    for ce_type, model in versions.items():
        path = schema_path(ce_type)
        if model is not None:
            out[path] = _dump(json_schema(ce_type, model))
            continue
        published = next((d / path for d in (directory, default_dir()) if (d / path).is_file()), None)
        if published is None:
            name, version = parse_type(ce_type)
            raise ContractsError(
                f"{ce_type} is still read (an upcaster exists) but neither its model nor {path} is kept: keep the "
                f"old model with @superseded({name!r}, {version}) in mra.events.schemas"
            )
        out[path] = published.read_text(encoding="utf-8")
    out[ASYNCAPI_FILE] = _dump(asyncapi(versions))
    out["README.md"] = _index(versions)
    return out


@dataclass(frozen=True)
class Outcome:
    """What ``write`` or ``check`` found: files that differ (or were rewritten) and stale schema files."""

    changed: list[str]
    stale: list[str]


def _compare(directory: Path) -> tuple[dict[str, str], Outcome]:
    docs = documents(directory)
    changed = [
        p for p, text in docs.items() if not (directory / p).is_file() or (directory / p).read_text("utf-8") != text
    ]
    present = sorted(f"{SCHEMA_DIR}/{f.name}" for f in (directory / SCHEMA_DIR).glob("*.json"))
    stale = [p for p in present if p not in docs]
    return docs, Outcome(changed, stale)


def check(directory: Path | None = None) -> Outcome:
    """Which published files differ from what the models give (nothing is written)."""
    return _compare(default_dir() if directory is None else directory)[1]


def write(directory: Path | None = None) -> Outcome:
    """Rewrite the published files that differ and remove schema files of types no longer registered."""
    directory = default_dir() if directory is None else directory
    docs, outcome = _compare(directory)
    for p in outcome.changed:
        target = directory / p
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(docs[p], encoding="utf-8")
    for p in outcome.stale:
        (directory / p).unlink()
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mra.events.contracts [write|check] [DIR]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    action = args.pop(0) if args else "check"
    if action not in ("write", "check") or len(args) > 1:
        print("usage: python -m mra.events.contracts [write|check] [DIR]", file=sys.stderr)
        return 2
    directory = Path(args[0]) if args else default_dir()
    try:
        outcome = write(directory) if action == "write" else check(directory)
    except ContractsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in outcome.changed:
        print(f"{'wrote' if action == 'write' else 'out of date'}: {directory / p}")
    for p in outcome.stale:
        print(f"{'removed' if action == 'write' else 'stale'}: {directory / p}")
    if action == "check" and (outcome.changed or outcome.stale):
        print("the published contracts differ from the event models: run `mra contracts write`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
