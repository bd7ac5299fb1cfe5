"""The web door without a broker: tokens, the public check's rate limit, bad input, problem documents, languages."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from mra.cli import cli
from mra.i18n import _messages
from mra.services.access import AccessStore
from mra.web.app import create_app
from mra.web.backend import Backend
from mra.web.limits import RateLimiter
from mra.web.settings import WebSettings
from mra.web.text import MESSAGES, negotiate, translator

CREDIT = "91110108MA01K7QH2J"


def client(state: Path, **settings: object) -> TestClient:
    backend = Backend(state, settings=WebSettings(**settings))  # type: ignore[arg-type]
    return TestClient(create_app(backend), raise_server_exceptions=False)


def test_tokens_are_kept_hashed_owner_only_and_authenticate(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    employer, token = store.add_employer("北京示例科技有限公司", CREDIT.lower())
    assert employer.credit_code == CREDIT and token.startswith(f"mra_{employer.token_id}_")
    text = store.tokens_path.read_text(encoding="utf-8")
    assert token not in text and token[-43:] not in text
    assert stat.S_IMODE(store.tokens_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700
    assert store.authenticate(token) == employer
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.authenticate("Bearer " + token) is None and store.authenticate("") is None
    store.remove(employer.token_id)
    assert store.authenticate(token) is None
    assert not list(store.root.glob(".tokens.*"))  # no temporary file left behind


def test_access_cli_issues_tokens_and_refuses_bad_input(tmp_path: Path) -> None:
    base = ["--state-dir", str(tmp_path)]
    runner = CliRunner()
    ok = runner.invoke(cli, [*base, "access", "add-employer", "示例", "--credit-code", CREDIT, "--json"])
    assert ok.exit_code == 0, ok.output
    issued = json.loads(ok.output)
    assert issued["role"] == "employer" and issued["credit_code"] == CREDIT and issued["token"].startswith("mra_")
    bad = runner.invoke(cli, [*base, "access", "add-employer", "示例", "--credit-code", "91110108MA01K7QH2X"])
    assert bad.exit_code != 0 and "check character" in str(bad.exception)
    clerk = runner.invoke(cli, [*base, "access", "add-clerk", "王芳", "-j", "beijing", "--json"])
    assert clerk.exit_code == 0 and json.loads(clerk.output)["jurisdiction"] == "beijing"
    nowhere = runner.invoke(cli, [*base, "access", "add-clerk", "王芳", "-j", "atlantis"])
    assert nowhere.exit_code != 0 and "atlantis" in str(nowhere.exception)
    listed = json.loads(runner.invoke(cli, [*base, "access", "list", "--json"]).output)
    assert sorted(r["role"] for r in listed) == ["clerk", "employer"] and all("token" not in r for r in listed)
    assert issued["token"] not in (tmp_path / "access" / "tokens.json").read_text(encoding="utf-8")


def test_a_burst_of_1000_checks_gets_200_within_the_limit_and_429_with_retry_after_past_it(tmp_path: Path) -> None:
    web = client(tmp_path, check_rate_per_minute=1, check_burst=60)  # one check a minute comes back
    started = time.monotonic()
    answers = [web.get(f"/api/v1/check/{'ABCD-EFGH-JKMN-P' if i % 2 else 'ABCD'}") for i in range(1000)]
    elapsed = time.monotonic() - started
    codes = [r.status_code for r in answers]
    assert not [c for c in codes if c >= 500]
    assert set(codes) <= {200, 429}
    assert codes[:60] == [200] * 60  # the burst is served
    assert all(r.json()["status"] in ("unknown", "mistyped") for r in answers[:60])
    refills = int(elapsed / 60) + 1
    assert 60 <= codes.count(200) <= 60 + refills
    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) >= 1000 - 60 - refills
    for r in limited:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.json()["status"] == 429
    page = web.get("/check/ABCD-EFGH-JKMN-P", headers={"accept-language": "en"})
    assert page.status_code == 429 and "try again in" in page.text and page.headers["retry-after"]


def test_the_rate_limiter_refills_and_keeps_clients_apart() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clients=3, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a")] == [0, 0]
    assert limiter.take("a") == 1
    assert limiter.take("b") == 0  # another client has its own bucket
    now[0] += 1.0
    assert limiter.take("a") == 0
    for c in "cdefg":
        limiter.take(c)
    assert len(limiter._buckets) == 3  # bounded memory


def test_bad_input_gets_problem_json_never_a_traceback(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    _, token = store.add_employer("示例", CREDIT)
    web = client(tmp_path, max_body_bytes=4096)
    auth = {"Authorization": f"Bearer {token}"}
    cases = [
        web.post("/api/v1/requests", content=b"{not json", headers=auth),
        web.post("/api/v1/requests", content=b"[" * 2000 + b"]" * 2000, headers=auth),
        web.post("/api/v1/requests", content="\ufffe".encode("utf-16"), headers=auth),
        web.post("/api/v1/requests", content=b"", headers=auth),
        web.post("/api/v1/requests", content=b"x" * 5000, headers=auth),
        web.post("/api/v1/requests", json={"employer": {"credit_code": "91110000000000000X"}}, headers=auth),
        web.post("/api/v1/requests", json={}, headers={"Authorization": "Bearer nope"}),
        web.get("/api/v1/requests/x" * 3, headers=auth),
        web.get("/api/v1/clerk/review", headers=auth),
        web.get("/api/v1/nothing-here"),
    ]
    assert [r.status_code for r in cases] == [422, 422, 422, 422, 413, 403, 401, 404, 403, 404]
    for r in cases:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        body = r.json()
        assert body["status"] == r.status_code and body["title"]
        assert "Traceback" not in r.text
    assert cases[6].headers["www-authenticate"] == "Bearer"
    chunked = web.post("/api/v1/requests", content=iter([b"x" * 3000, b"x" * 3000]), headers=auth)
    assert chunked.status_code == 413  # no declared length: counted as it arrives


def test_pages_redirect_to_sign_in_and_say_what_to_fix(tmp_path: Path) -> None:
    web = client(tmp_path)
    for path in ("/employer", "/employer/new", "/clerk", "/clerk/review", "/ops"):
        r = web.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/signin?next={path}"
    bad = web.post("/signin", data={"token": "mra_000000000000_" + "A" * 43}, headers={"accept-language": "en"})
    assert bad.status_code == 401 and "not valid" in bad.text
    missing = web.get("/no/such/page")
    assert missing.status_code == 404 and "页面不存在" in missing.text and "<html" in missing.text


def test_pages_speak_chinese_by_default_and_english_when_asked(tmp_path: Path) -> None:
    web = client(tmp_path)
    assert 'lang="zh-CN"' in web.get("/").text and "核验码查询" in web.get("/").text
    en = web.get("/", headers={"accept-language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert 'lang="en"' in en.text and "Check a code" in en.text
    switched = web.get("/lang/en?next=/check", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/check"
    assert "Check a verification code" in web.get("/check").text  # the cookie the switch set
    assert web.get("/lang/en?next=//evil.example", follow_redirects=False).headers["location"] == "/"
    assert negotiate(None) == "zh_CN" and negotiate("fr, en;q=0.1") == "en" and negotiate("en;q=0.2, zh-CN") == "zh_CN"
    assert translator("en")("check.status.valid") == "Valid" and translator("xx")("check.status.valid") == "有效"
    zh = _messages("zh_CN")
    assert [m for m in MESSAGES.values() if m not in zh] == []  # every page text has its Chinese in the catalogue
    assert translator("zh_CN")("no.such.key") == "no.such.key"


def test_the_check_shows_only_the_configured_fields_and_is_documented(tmp_path: Path) -> None:
    web = client(tmp_path, check_fields=())
    assert web.get("/api/v1/check/ABCD-EFGH-JKMN-P").json()["status"] in ("unknown", "mistyped")
    doc = web.get("/openapi.json").json()
    assert {"/api/v1/requests", "/api/v1/requests/{request_id}", "/api/v1/check/{code}", "/healthz", "/readyz",
            "/api/v1/clerk/holders", "/api/v1/clerk/holders/{holder_id}", "/api/v1/clerk/review",
            "/api/v1/ops/status", "/check/{code}"} <= doc["paths"].keys()
    body = doc["paths"]["/api/v1/requests"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) >= {"employer", "holder", "certificate"}
    assert web.get("/healthz").json() == {"status": "ok"}
    with pytest.raises(ValueError):
        WebSettings(check_fields=("birth_date",))  # type: ignore[arg-type]


def test_a_request_accepted_while_the_broker_is_down_is_kept_and_said_so(tmp_path: Path) -> None:
    request = json.loads((Path(__file__).resolve().parents[1] / "examples" / "request.json").read_text("utf-8"))
    _, token = AccessStore(tmp_path).add_employer(request["employer"]["name"], request["employer"]["credit_code"])
    backend = Backend(tmp_path, "127.0.0.1:1", WebSettings())  # nothing listens there
    web = TestClient(create_app(backend), raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token}"}
    r = web.post("/api/v1/requests", json=request, headers=auth)
    assert r.status_code == 503 and r.headers["retry-after"]
    assert "accepted and kept" in r.json()["detail"] and "Submit the same request again" in r.json()["detail"]
    rid = r.json()["detail"].split()[1]
    kept = web.get(f"/api/v1/requests/{rid}", headers=auth).json()
    assert kept["status"] == "submitted" and kept["expected_by"]
    assert [x["request_id"] for x in web.get("/api/v1/requests", headers=auth).json()["requests"]] == [rid]
