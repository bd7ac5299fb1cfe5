"""The published event contracts: JSON Schemas and the AsyncAPI document match the models, and say what mra sends."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest
from click.testing import CliRunner
from support import facts
from support.facts import World

from mra.cli import cli
from mra.core.plugins import load_registry
from mra.events import contracts, schemas
from mra.events.benefits import decided_in, withdrawn_in
from mra.events.bus import InMemoryTransport
from mra.events.contracts import (
    ContractsError,
    asyncapi,
    check,
    default_dir,
    documents,
    main,
    message_id,
    schema_path,
    write,
)
from mra.events.envelope import DecodeError, Record, dataschema, decode, encode
from mra.events.publisher import Publisher
from mra.events.schemas import Event, registered_types, registered_versions
from mra.events.signing import Signer, make_checkpoint
from mra.events.topics import Topics

pytestmark = pytest.mark.filterwarnings("ignore:Field name .schema. in:UserWarning")  # asyncapi3's own models

DOCS = default_dir()
REGISTRY = load_registry()


def published(path: str) -> Any:
    return json.loads((DOCS / path).read_text(encoding="utf-8"))


def test_the_published_contracts_match_the_event_models() -> None:
    outcome = check()
    assert outcome.changed == [] and outcome.stale == [], (
        f"docs/contracts differs from the event models ({outcome}): run `mra contracts write`"
    )


def test_every_type_and_version_mra_reads_has_a_schema_whose_id_is_its_dataschema() -> None:
    versions = registered_versions()
    assert "cn.jjj.holders.employment_started.v1" in versions  # an old version, kept for upcasting
    for name, cls in registered_types().items():
        assert cls.ce_type() in versions
        for v in range(1, cls.VERSION):
            assert f"{name}.v{v}" in versions
    for ce_type in versions:
        doc = published(schema_path(ce_type))
        assert doc["$id"] == dataschema(ce_type) == f"urn:mra:schema:{ce_type}"
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(doc)


def _samples(tmp: Path) -> list[tuple[str, dict[str, Any]]]:
    """Bodies as mra really writes them: a holder decided on in memory, then withdrawn, plus a checkpoint."""
    world = World(tmp, Topics(prefix="s.", partitions=2), REGISTRY)
    world.publish(facts.registered("h1"), facts.started("h1"), facts.verified("h1"))
    bureau = world.bureau("beijing")
    try:
        bureau.run(until_idle=True, timeout=30)
        world.publish(facts.ended("h1", on=date(2026, 1, 1)), at=datetime(2026, 1, 2, tzinfo=UTC))
        bureau.run(until_idle=True, timeout=30)
    finally:
        bureau.close()
    signer = Signer.generate("test")
    cp = make_checkpoint(signer, "e", 0, "", ["0" * 64], "holders")
    assert cp is not None
    edition = REGISTRY.catalogues("beijing")[0]
    extra: list[Event] = [cp, schemas.CatalogueEditionPublished(edition=edition)]
    out = [(e.type, json.loads(e.body)) for t in ("holders", "verification", "benefits") for e in _read(world, t)]
    # the per-rule events of older logs, as an older bureau wrote them for the same decisions
    decided = [d for e in _read(world, "benefits") for d in decided_in(e.data)]
    gone = [w for e in _read(world, "benefits") for w in withdrawn_in(e.data)]
    assert decided and gone
    extra.append(schemas.BenefitDecided(decision=decided[0]))
    w = gone[0]
    extra.append(schemas.BenefitWithdrawn(decision_id=w.decision_id, holder_id=w.holder_id,
                                          jurisdiction=w.jurisdiction, code=w.code, reason=w.reason,
                                          withdrawn_at=w.withdrawn_at))
    out += [(e.ce_type(), json.loads(e.model_dump_json())) for e in extra]
    return out


def _read(world: World, topic: str) -> list[Any]:
    return [decode(r) for r in world.bus.records(world.topics.name(topic))]


def test_bodies_mra_writes_are_valid_against_their_published_schemas(tmp_path: Path) -> None:
    samples = _samples(tmp_path)
    kinds = {t for t, _ in samples}
    assert {
        c.ce_type()
        for c in (
            schemas.HolderRegistered,
            schemas.EmploymentStarted,
            schemas.EmploymentEnded,
            schemas.CertificateVerified,
            schemas.DecisionSetChanged,
            schemas.BenefitDecided,
            schemas.BenefitWithdrawn,
            schemas.HoldersCheckpoint,
            schemas.CatalogueEditionPublished,
        )
    } <= kinds
    for ce_type, body in samples:
        errors = list(jsonschema.Draft202012Validator(published(schema_path(ce_type))).iter_errors(body))
        assert errors == [], f"{ce_type}: {errors[0].message}"


def test_the_schemas_refuse_what_the_models_refuse() -> None:
    schema = published(schema_path(schemas.EmploymentStarted.ce_type()))
    body = json.loads(facts.started("h1").model_dump_json())
    jsonschema.validate(body, schema)
    for bad in (
        {**body, "extra": 1},
        {k: v for k, v in body.items() if k != "holder_id"},
        {**body, "years_in_scope": -1},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
        with pytest.raises(ValueError):
            schemas.EmploymentStarted.model_validate(bad)
    old = {
        "holder_id": "h9",
        "jurisdiction": "tianjin",
        "employer": body["employer"],
        "started": "2025-09-10",
        "years": 4,
    }
    jsonschema.validate(old, published(schema_path("cn.jjj.holders.employment_started.v1")))
    with pytest.raises(jsonschema.ValidationError):  # v1 had whole years, not years_in_scope
        jsonschema.validate(body, published(schema_path("cn.jjj.holders.employment_started.v1")))


def test_a_changed_model_makes_the_check_fail_until_the_contracts_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "contracts"
    assert write(target).changed  # a fresh directory: everything written
    assert check(target).changed == [] and check(target).stale == []

    class Changed(schemas.EmploymentEnded):
        NAME: ClassVar[str] = "cn.jjj.holders.employment_ended"
        reason: str = ""

    monkeypatch.setitem(schemas._TYPES, Changed.NAME, Changed)
    outcome = check(target)
    assert "schemas/cn.jjj.holders.employment_ended.v1.json" in outcome.changed
    assert main(["check", str(target)]) == 1
    assert main(["write", str(target)]) == 0
    assert (
        "reason" in json.loads((target / "schemas/cn.jjj.holders.employment_ended.v1.json").read_text())["properties"]
    )
    assert main(["check", str(target)]) == 0

    monkeypatch.delitem(schemas._TYPES, Changed.NAME)  # a type no longer registered: its file is stale
    assert check(target).stale == ["schemas/cn.jjj.holders.employment_ended.v1.json"]
    assert write(target).stale and not (target / "schemas/cn.jjj.holders.employment_ended.v1.json").exists()


def test_an_old_version_without_its_model_keeps_its_published_file_and_is_named_when_there_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = "cn.jjj.holders.employment_started.v1"
    monkeypatch.delitem(schemas._SUPERSEDED, ("cn.jjj.holders.employment_started", 1))
    assert registered_versions()[v1] is None
    kept = (DOCS / schema_path(v1)).read_text(encoding="utf-8")
    assert documents(DOCS)[schema_path(v1)] == kept
    assert documents(tmp_path)[schema_path(v1)] == kept  # a fresh directory gets the source tree's file
    monkeypatch.setattr(contracts, "default_dir", lambda: tmp_path)
    with pytest.raises(ContractsError, match=r"employment_started\.v1 is still read .* @superseded"):
        documents(tmp_path)
    assert main(["check", str(tmp_path)]) == 1


def test_the_cli_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["contracts", "write", "--check", "--dir", str(tmp_path / "c")])
    assert out.exit_code == 1 and "out of date" in out.output
    out = runner.invoke(cli, ["contracts", "write", "--dir", str(tmp_path / "c")])
    assert out.exit_code == 0 and "wrote" in out.output
    out = runner.invoke(cli, ["contracts", "write", "--check", "--dir", str(tmp_path / "c")])
    assert out.exit_code == 0 and "match the event models" in out.output
    (tmp_path / "c" / "asyncapi.json").write_text("{}\n")
    out = runner.invoke(cli, ["contracts", "write", "--check", "--dir", str(tmp_path / "c")])
    assert out.exit_code == 1 and "asyncapi.json" in out.output


# --- the AsyncAPI document --------------------------------------------------------------------------------------


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return _resolve(doc, node["$ref"]) if isinstance(node, dict) and set(node) == {"$ref"} else node


def test_the_asyncapi_document_is_asyncapi_3_and_every_reference_resolves() -> None:
    from asyncapi3 import AsyncAPI3

    doc = json.loads((DOCS / "asyncapi.json").read_text(encoding="utf-8"))
    assert doc == asyncapi()
    assert AsyncAPI3.model_validate(doc).asyncapi == doc["asyncapi"] == "3.0.0"
    versions = registered_versions()
    listed: dict[str, str] = {}
    for name, channel in doc["channels"].items():
        assert channel["address"] == f"mra.{name}"
        for key, ref in channel["messages"].items():
            message = _resolve(doc, ref["$ref"])
            listed[message["name"]] = name
            if key == "deadLetter":
                continue
            assert key == message_id(message["name"])
            payload = message["payload"]
            file = DOCS / payload["schema"]["$ref"]
            assert file.is_file(), f"{key}: {file} does not exist"
            assert json.loads(file.read_text())["$id"] == dataschema(message["name"])
            assert payload["schemaFormat"] == "application/schema+json;version=draft-2020-12"
            headers = message["headers"]["allOf"]
            assert _resolve(doc, headers[0]["$ref"]) is doc["components"]["schemas"]["Headers"]
            assert headers[1]["properties"]["ce_dataschema"] == {"const": dataschema(message["name"])}
            assert isinstance(message["bindings"]["kafka"]["key"]["description"], str)
    for op in doc["operations"].values():
        channel = _resolve(doc, op["channel"]["$ref"])
        for ref in op["messages"]:
            assert _resolve(doc, ref["$ref"]) in [_resolve(doc, m["$ref"]) for m in channel["messages"].values()]
    types = registered_types()
    assert {k: v for k, v in listed.items() if k != "deadLetter"} == {
        t: types[t.rsplit(".v", 1)[0]].TOPIC for t in versions
    }
    header = doc["components"]["schemas"]["Headers"]["properties"]
    for name in ("ce_mrapublisher", "ce_mraepoch", "ce_mraseq", "ce_mraprev", "ce_mrahash", "ce_mrasig", "ce_mrakey"):
        assert name in header
    assert header["content-type"] == {"const": "application/json"}


def test_the_asyncapi_validator_refuses_a_broken_document() -> None:
    from asyncapi3 import AsyncAPI3
    from pydantic import ValidationError

    doc = asyncapi()
    AsyncAPI3.model_validate(doc)
    for path, value in ((("operations", "publish_holders", "action"), "emit"), (("info", "title"), None)):
        broken = json.loads(json.dumps(doc))
        node = broken
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        with pytest.raises(ValidationError):
            AsyncAPI3.model_validate(broken)


def test_the_headers_schema_describes_a_signed_message_mra_sends() -> None:
    bus = InMemoryTransport()
    topics = Topics(prefix="mra.", partitions=1)
    bus.ensure_topics(topics.all())
    signer = Signer.generate("beijing-intake")
    env = Publisher(bus, topics, "beijing-intake", signer=signer).publish(facts.started("h1"), time=facts.T)
    record = bus.records("mra.holders")[0]
    headers = {k: v.decode() for k, v in record.headers}
    message = asyncapi()["components"]["messages"][message_id(env.type)]
    schema = {"$defs": {}, **message["headers"]["allOf"][1]}
    jsonschema.validate(headers, asyncapi()["components"]["schemas"]["Headers"])
    jsonschema.validate(headers, schema)
    assert headers["ce_dataschema"] == dataschema(env.type)
    assert encode(env)[2] == list(record.headers)  # the publisher and encode agree, dataschema included


# --- ce_dataschema on the wire ----------------------------------------------------------------------------------


def _record(headers: list[tuple[str, bytes]], value: bytes) -> Record:
    return Record("mra.holders", 0, 0, b"h1", value, tuple(headers))


def test_decoding_accepts_a_dataschema_and_validates_the_body_by_the_type() -> None:
    data = facts.started("h1")
    _, value, headers = encode(Publisher(InMemoryTransport(), Topics(), "x").envelope(data, time=facts.T))
    assert ("ce_dataschema", dataschema(data.ce_type()).encode()) in headers
    env = decode(_record(headers, value))
    assert env.data == data and "dataschema" not in env.extensions
    without = [h for h in headers if h[0] != "ce_dataschema"]
    assert decode(_record(without, value)).data == data
    foreign = [*without, ("ce_dataschema", b"https://hr.example/schemas/employment.json")]
    assert decode(_record(foreign, value)).data == data
    other = [*without, ("ce_dataschema", b"urn:mra:schema:cn.jjj.holders.employment_ended.v1")]
    assert decode(_record(other, value)).data == data  # the type decides how the body is read
    ended = [(k, b"cn.jjj.holders.employment_ended.v1" if k == "ce_type" else v) for k, v in headers]
    with pytest.raises(DecodeError, match=r"invalid cn\.jjj\.holders\.employment_ended\.v1 body"):
        decode(_record(ended, value))


def test_every_event_mra_publishes_names_its_schema(tmp_path: Path) -> None:
    world = World(tmp_path, Topics(prefix="w.", partitions=2), REGISTRY)
    world.publish(facts.registered("h1"), facts.started("h1"), facts.verified("h1"))
    bureau = world.bureau("beijing")
    try:
        bureau.run(until_idle=True, timeout=30)
    finally:
        bureau.close()
    seen = 0
    for topic in ("holders", "verification", "benefits"):
        for r in world.bus.records(world.topics.name(topic)):
            h = dict(r.headers)
            schema = h["ce_dataschema"].decode()
            assert schema == dataschema(h["ce_type"].decode())
            assert (DOCS / schema_path(h["ce_type"].decode())).is_file()
            seen += 1
    assert seen >= 4
