"""The web API on a real broker: employers see only their own requests, the OpenAPI document is fuzzed with no 5xx,
and operators see readiness, counts and lag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from mra.cli import cli
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics
from mra.services.access import AccessStore
from mra.web.app import create_app
from mra.web.backend import Backend
from mra.web.settings import WebSettings

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parents[1]
REQUEST: dict[str, Any] = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))
CREDIT = REQUEST["employer"]["credit_code"]
OTHER_CREDIT = "91110000600037341L"
FUZZ_EXAMPLES = 15


@dataclass
class Web:
    client: TestClient
    backend: Backend
    tokens: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def web(
    bootstrap: str, kafka: KafkaTransport, topics: Topics, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Web]:
    monkeypatch.setenv("MRA_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("MRA_PARTITIONS", str(topics.partitions))
    keys = CliRunner().invoke(cli, ["--state-dir", str(state_dir), "--bootstrap", bootstrap, "keys", "init"])
    assert keys.exit_code == 0, keys.output
    store = AccessStore(state_dir)
    tokens = {
        "employer": store.add_employer(REQUEST["employer"]["name"], CREDIT)[1],
        "other": store.add_employer("另一家单位", OTHER_CREDIT)[1],
        "clerk": store.add_clerk("王芳", "beijing", _registry())[1],
        "operator": store.add_operator("运维")[1],
    }
    backend = Backend(state_dir, bootstrap, WebSettings(check_burst=100_000, check_rate_per_minute=100_000))
    try:
        yield Web(TestClient(create_app(backend), raise_server_exceptions=False), backend, tokens)
    finally:
        backend.close()


def _registry() -> Any:
    from mra.core.plugins import load_registry

    return load_registry()


def test_an_employer_token_cannot_read_another_employers_request(web: Web) -> None:
    c = web.client
    made = c.post("/api/v1/requests", json=REQUEST, headers=web.auth("employer"))
    assert made.status_code == 201, made.text
    rid = made.json()["request_id"]
    assert made.headers["location"] == f"/api/v1/requests/{rid}"
    again = c.post("/api/v1/requests", json=REQUEST, headers=web.auth("employer"))
    assert again.status_code == 200 and again.json()["request_id"] == rid and again.json()["resubmitted"]
    mine = c.get(f"/api/v1/requests/{rid}", headers=web.auth("employer"))
    assert mine.status_code == 200
    assert mine.json()["status"] == "submitted" and mine.json()["expected_by"]
    assert "verification_code" not in mine.json() or not mine.json()["verification_code"]
    theirs = c.get(f"/api/v1/requests/{rid}", headers=web.auth("other"))
    assert theirs.status_code == 404 and theirs.headers["content-type"].startswith("application/problem+json")
    assert rid not in theirs.text or "no verification request" in theirs.json()["detail"]
    assert c.get("/api/v1/requests", headers=web.auth("other")).json() == {"requests": []}
    assert [r["request_id"] for r in c.get("/api/v1/requests", headers=web.auth("employer")).json()["requests"]] == [
        rid
    ]
    forged = c.post("/api/v1/requests", json=REQUEST, headers=web.auth("other"))  # someone else's credit code
    assert forged.status_code == 403
    assert c.get(f"/api/v1/requests/{rid}", headers=web.auth("clerk")).status_code == 403
    assert c.get(f"/api/v1/requests/{rid}").status_code == 401
    page = c.get(f"/employer/requests/{rid}", cookies={"mra_session": web.tokens["other"]})
    assert page.status_code == 404 and "<html" in page.text


def test_a_refused_request_says_every_reason_and_is_recorded_as_the_cli_records_it(web: Web) -> None:
    bad = json.loads(json.dumps(REQUEST))
    bad["certificate"]["issuer"] = "No Such Institute"
    bad["holder"]["birth_date"] = "2999-01-01"
    bad["holder"]["extra"] = "x"
    r = web.client.post("/api/v1/requests", json=bad, headers=web.auth("employer"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert any("unknown field holder.extra" in e for e in errors)
    rid = r.json()["detail"].split()[1]
    status = web.client.get(f"/api/v1/requests/{rid}", headers=web.auth("employer")).json()
    assert status["status"] == "refused" and status["reasons"] == errors


def test_ready_and_the_operators_counts_and_lag(web: Web) -> None:
    assert web.client.get("/readyz").json() == {"status": "ready"}
    assert web.client.post("/api/v1/requests", json=REQUEST, headers=web.auth("employer")).status_code == 201
    status = web.client.get("/api/v1/ops/status", headers=web.auth("operator"))
    assert status.status_code == 200
    data = status.json()
    assert set(data["bureaus"]) == {"beijing", "tianjin", "hebei"}
    assert data["platform"]["requests"] == {} or isinstance(data["platform"]["requests"], dict)
    assert web.client.get("/api/v1/ops/status", headers=web.auth("clerk")).status_code == 403
    page = web.client.get("/ops", cookies={"mra_session": web.tokens["operator"]})
    assert page.status_code == 200 and "核验平台" in page.text


def _fuzz(op: Any, headers: dict[str, str], seen: dict[int, int]) -> None:
    @given(case=op.as_strategy())
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: Any) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (case.method, case.formatted_path, response.status_code, response.text)
        assert "Traceback" not in response.text

    fuzz()


def test_the_openapi_document_fuzzed_gets_no_5xx(web: Web) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", web.client.app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 20
    seen: dict[int, int] = {}
    for op in operations:
        path = op.path
        who = "clerk" if "/clerk" in path else "operator" if "/ops" in path else "employer"

        _fuzz(op, web.auth(who), seen)
    assert sum(seen.values()) >= len(operations) and any(400 <= s < 500 for s in seen)


@pytest.mark.parametrize("command", [["serve"], ["up", "--jurisdictions", "beijing"]], ids=["serve", "up"])
def test_mra_serve_and_up_answer_health_readiness_and_openapi(
    bootstrap: str, kafka: KafkaTransport, topics: Topics, state_dir: Path, command: list[str]
) -> None:
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = os.environ | {"MRA_TOPIC_PREFIX": topics.prefix, "MRA_PARTITIONS": str(topics.partitions)}
    base = [sys.executable, "-m", "mra.cli", "--state-dir", str(state_dir), "--bootstrap", bootstrap]
    assert subprocess.run([*base, "keys", "init"], env=env, capture_output=True, timeout=120).returncode == 0
    server = subprocess.Popen([*base, *command, "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).json() == {"status": "ok"}:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "mra serve did not start"
            time.sleep(0.2)
        assert httpx.get(url + "/readyz", timeout=60).json() == {"status": "ready"}
        doc = httpx.get(url + "/openapi.json", timeout=10).json()
        assert doc["openapi"].startswith("3.") and "/api/v1/check/{code}" in doc["paths"]
        page = httpx.get(url + "/", headers={"accept-language": "zh-CN"}, timeout=10)
        assert page.status_code == 200 and "核验码" in page.text
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    assert f"http://127.0.0.1:{port}/" in err and "Traceback" not in err
