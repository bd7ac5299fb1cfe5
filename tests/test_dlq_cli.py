"""``mra dlq list|show|replay`` on a real broker: an operator inspects dead letters and re-drives them once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.facts import T, ended
from support.picky import Picky

from mra.cli import cli
from mra.core.errors import NotFound, ValidationFailed
from mra.events.consumer import Processor
from mra.events.kafka import KafkaTransport
from mra.events.publisher import Publisher
from mra.events.topics import Topics

pytestmark = pytest.mark.broker


def _run(bootstrap: str, topics: Topics, state: Path, *args: str) -> Result:
    env = {"MRA_TOPIC_PREFIX": topics.prefix, "MRA_PARTITIONS": str(topics.partitions)}
    return CliRunner().invoke(cli, ["--state-dir", str(state), "--bootstrap", bootstrap, *args], env=env)


def test_an_operator_lists_shows_and_redrives_dead_letters_once(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    pub = Publisher(kafka, topics, "test")
    ids = [pub.publish(ended(f"h{i}", "hebei", on=date(2025, 10, 1)), time=T).id for i in range(5)]
    pub.flush()
    kafka.send(topics.name("holders"), b"junk", b"not json at all", [])
    kafka.flush(10)
    store = Picky(tmp_path / "j.db", {ids[2]})
    stats = Processor(kafka, topics, ["holders"], store, None, name="bureau-hebei").run(until_idle=True, timeout=60)
    assert stats.dead_lettered == 2
    state = tmp_path / "state"

    listed = _run(bootstrap, topics, state, "dlq", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert len(rows) == 2 and all(r["redriven_at"] is None for r in rows)
    poison = next(r for r in rows if r["id"] == ids[2])
    assert poison["reason"] == "handler failed: LookupError: no such employment"
    assert poison["consumer"] == "bureau-hebei" and poison["original_topic"] == topics.name("holders")
    assert poison["type"] == "cn.jjj.holders.employment_ended.v1" and poison["dead_lettered_at"]
    text = _run(bootstrap, topics, state, "dlq", "list")
    assert poison["ref"] in text.output and "no such employment" in text.output

    shown = _run(bootstrap, topics, state, "dlq", "show", poison["ref"])
    assert shown.exit_code == 0, shown.output
    assert "reason    handler failed: LookupError: no such employment" in shown.output
    assert '"holder_id": "h2"' in shown.output and "mra_dlq_offset:" in shown.output
    as_json = json.loads(_run(bootstrap, topics, state, "dlq", "show", poison["ref"], "--json").output)
    assert json.loads(as_json["body"])["holder_id"] == "h2" and as_json["key"] == "h2"

    dry = _run(bootstrap, topics, state, "dlq", "replay", poison["ref"], "--dry-run", "--json")
    assert [r["status"] for r in json.loads(dry.output)["results"]] == ["would-redrive"]
    assert _run(bootstrap, topics, state, "dlq", "list", "--json").output == listed.output

    done = _run(bootstrap, topics, state, "dlq", "replay", poison["ref"], "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["results"][0] | {"detail": ""} == {
        "ref": poison["ref"],
        "status": "redriven",
        "detail": "",
        "id": ids[2],
        "type": poison["type"],
        "target": topics.name("holders"),
    }
    again = _run(bootstrap, topics, state, "dlq", "replay", poison["ref"], "--json")
    assert json.loads(again.output)["results"][0]["status"] == "skipped"
    waiting = json.loads(_run(bootstrap, topics, state, "dlq", "list", "--json").output)
    assert [r["ref"] for r in waiting] == [r["ref"] for r in rows if r["id"] != ids[2]]
    everything = json.loads(_run(bootstrap, topics, state, "dlq", "list", "--all", "--json").output)
    assert {r["ref"]: bool(r["redriven_at"]) for r in everything} == {r["ref"]: r["id"] == ids[2] for r in rows}

    store.poison = set()  # fixed: the re-driven event is applied, once
    Processor(kafka, topics, ["holders"], store, None, name="bureau-hebei").run(until_idle=True, timeout=60)
    assert store.event_ids().count(ids[2]) == 1 and set(store.event_ids()) == set(ids)

    junk = next(r for r in rows if r["id"] is None)
    refused = _run(bootstrap, topics, state, "dlq", "replay", "--all", "--dry-run", "--json")
    assert {r["ref"]: r["status"] for r in json.loads(refused.output)["results"]} == {
        poison["ref"]: "skipped",
        junk["ref"]: "would-redrive",
    }


def test_bad_refs_and_arguments_are_refused(
    kafka: KafkaTransport, topics: Topics, bootstrap: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    missing = _run(bootstrap, topics, state, "dlq", "show", "0:999")
    assert isinstance(missing.exception, NotFound)
    malformed = _run(bootstrap, topics, state, "dlq", "show", "zero")
    assert isinstance(malformed.exception, ValidationFailed)
    neither = _run(bootstrap, topics, state, "dlq", "replay")
    assert isinstance(neither.exception, ValidationFailed) and "--all" in str(neither.exception)
    empty = _run(bootstrap, topics, state, "dlq", "list")
    assert empty.exit_code == 0 and "no dead letters" in empty.output
    env = dict(os.environ, MRA_TOPIC_PREFIX=topics.prefix, MRA_PARTITIONS=str(topics.partitions))
    done = subprocess.run(
        [sys.executable, "-m", "mra.cli", "--state-dir", str(state), "--bootstrap", bootstrap, "dlq", "show", "0:999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3 and done.stderr.strip() == "Error: no dead letter 0:999 (see `mra dlq list`)"
