"""The web door in a real browser (Debian's Chromium driven by Playwright, JavaScript off) on a real broker.

An employer submits a request through the form and later sees the code; the public checks it (valid, then revoked
after ``mra verify revoke``, then mistyped); a clerk finds the holder and sees the decisions with their clauses, in
Chinese and in English. Every page is loaded at 375 px and at desktop width, checked for horizontal scroll,
unlabelled inputs and text contrast under 4.5:1, and kept as a screenshot in ``test-artifacts/web/``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from mra.cli import cli
from mra.events.kafka import KafkaTransport
from mra.events.topics import Topics
from mra.services.codes import ALPHABET

pytestmark = pytest.mark.broker

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EMPLOYER = "北京示例科技有限公司"
CREDIT = "91110108MA01K7QH2J"
OTHER_CREDIT = "91110000600037341L"
WIDTHS = {"375": {"width": 375, "height": 740}, "desktop": {"width": 1280, "height": 900}}

CONTRAST_JS = """() => {
  const rgb = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); return m ? m[1].split(',').map(Number) : null; };
  const lin = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = p => 0.2126 * lin(p[0]) + 0.7152 * lin(p[1]) + 0.0722 * lin(p[2]);
  const back = el => { for (; el; el = el.parentElement) { const p = rgb(getComputedStyle(el).backgroundColor);
    if (p && (p.length < 4 || p[3] > 0)) return p; } return [255, 255, 255]; };
  const bad = [];
  const w = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (w.nextNode()) {
    const n = w.currentNode, el = n.parentElement;
    if (!n.textContent.trim() || !el) continue;
    const cs = getComputedStyle(el), r = el.getBoundingClientRect();
    if (cs.visibility === 'hidden' || cs.display === 'none' || r.width <= 1 || r.height <= 1) continue;
    const a = lum(rgb(cs.color)), b = lum(back(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(n.textContent.trim().slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return bad;
}"""
LABELS_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name || e.id)"""
SCROLL_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


class Mra:
    def __init__(self, bootstrap: str, state: Path) -> None:
        self.base = ["--state-dir", str(state), "--bootstrap", bootstrap]

    def __call__(self, *args: str) -> Any:
        result = CliRunner().invoke(cli, [*self.base, *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
        return json.loads(result.output) if "--json" in args else result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mra(bootstrap: str, kafka: KafkaTransport, topics: Topics, state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Mra:
    monkeypatch.setenv("MRA_TOPIC_PREFIX", topics.prefix)
    monkeypatch.setenv("MRA_PARTITIONS", str(topics.partitions))
    m = Mra(bootstrap, state_dir)
    m("keys", "init")  # a signed deployment: every event is signed and verified
    return m


@pytest.fixture
def server(mra: Mra, bootstrap: str, state_dir: Path) -> Iterator[str]:
    from mra.web.server import WebServer

    web = WebServer(state_dir, bootstrap, "127.0.0.1", _free_port())
    web.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(web.address + "healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.1)
    try:
        yield web.address.rstrip("/")
    finally:
        web.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/browser.sh installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Visitor:
    """One person's browser: a phone-width page and a desktop page sharing cookies, JavaScript off."""

    def __init__(self, browser: Any, base: str, who: str, locale: str = "zh-CN") -> None:
        self.context = browser.new_context(locale=locale, java_script_enabled=False)
        self.pages = {w: self.context.new_page() for w in WIDTHS}
        for w, size in WIDTHS.items():
            self.pages[w].set_viewport_size(size)
        self.page = self.pages["375"]
        self.base, self.who = base, who
        self.shots: list[Path] = []

    def check(self, name: str) -> None:
        """Both widths: the current page's URL, inspected and kept as a screenshot."""
        url = self.page.url
        for w, page in self.pages.items():
            if page is not self.page:
                page.goto(url)
            assert page.evaluate(SCROLL_JS) <= 0, f"{name}: horizontal scroll at {w}"
            assert page.evaluate(LABELS_JS) == [], f"{name}: unlabelled inputs"
            assert page.evaluate(CONTRAST_JS) == [], f"{name}: text under 4.5:1 at {w}"
            path = ARTIFACTS / f"{self.who}-{name}-{w}.png"
            page.screenshot(path=str(path), full_page=True)
            self.shots.append(path)

    def close(self) -> None:
        self.context.close()


def _mistype(code: str) -> str:
    """The code with its first symbol changed: the check character catches it."""
    first = code[0]
    return ALPHABET[(ALPHABET.index(first) + 1) % len(ALPHABET)] + code[1:]


def test_employer_public_and_clerk_through_the_browser(
    mra: Mra, server: str, browser: Any, state_dir: Path, bootstrap: str
) -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    mra("catalogue", "publish", "-j", "beijing")
    employer_token = mra("access", "add-employer", EMPLOYER, "--credit-code", CREDIT, "--json")["token"]
    other_token = mra("access", "add-employer", "另一家单位", "--credit-code", OTHER_CREDIT, "--json")["token"]
    clerk_token = mra("access", "add-clerk", "王芳", "-j", "beijing", "--json")["token"]

    # an employer signs in and submits through the form -------------------------------------------------------
    employer = Visitor(browser, server, "employer")
    page = employer.page
    page.goto(server + "/employer")
    assert "/signin" in page.url
    employer.check("signin")
    page.get_by_label("访问令牌").fill(employer_token)
    page.get_by_role("button", name="登录").click()
    assert page.url.endswith("/employer")
    employer.check("requests-empty")
    page.get_by_role("link", name="提交新的核验申请").click()
    page.select_option("#employer_region", "beijing")
    page.get_by_label("姓名").fill("Jane Smith")
    page.get_by_label("国籍或地区代码").fill("GB")
    page.get_by_label("出生日期").fill("1988-04-12")
    page.select_option("#holder_document_type", "passport")
    page.get_by_label("证件号码").fill("X1234567")
    page.get_by_label("目录条目编号").fill("BJ2025-I-139")
    page.get_by_label("发证机构").fill("No Such Institute")
    page.get_by_label("证书编号").fill("ACCA-2019-004512")
    page.get_by_label("发证日期").fill("2019-06-30")
    employer.check("form")
    page.get_by_role("button", name="提交申请").click()
    reasons = page.locator("#reasons")
    assert "申请未被受理" in reasons.inner_text() and "No Such Institute" in reasons.inner_text()
    assert page.get_by_label("姓名").input_value() == "Jane Smith"  # what was typed is kept
    page.screenshot(path=str(ARTIFACTS / "employer-form-refused-375.png"), full_page=True)
    page.get_by_label("发证机构").fill("ACCA")
    page.get_by_role("button", name="提交申请").click()
    assert re.search(r"/employer/requests/[^/?]+\?new=1$", page.url), page.url
    request_id = page.url.split("/employer/requests/")[1].split("?")[0]
    assert "已受理" in page.inner_text("main") and "预计完成时间" in page.inner_text("main")
    assert page.locator("#verification-code").count() == 0
    employer.check("request-accepted")

    # the platform verifies; the employer sees the code and the holder's pseudonym ----------------------------
    mra("platform", "run", "--until-idle", "--register", str(ROOT / "examples" / "issuer-register.json"))
    page.goto(f"{server}/employer/requests/{request_id}")
    code = page.locator("#verification-code").inner_text().strip()
    holder_id = page.locator("#holder-id").inner_text().strip()
    assert re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]", code), code
    assert holder_id and "Jane" not in holder_id
    assert "已核验" in page.inner_text("main")
    assert page.locator("figure.qr svg").count() == 1
    employer.check("request-verified")
    page.goto(server + "/employer")
    assert code in page.inner_text("main")
    employer.check("requests")

    # another employer cannot see it ---------------------------------------------------------------------------
    other = httpx.get(f"{server}/api/v1/requests/{request_id}", headers={"Authorization": f"Bearer {other_token}"})
    assert other.status_code == 404 and other.headers["content-type"].startswith("application/problem+json")
    mine = httpx.get(f"{server}/api/v1/requests/{request_id}", headers={"Authorization": f"Bearer {employer_token}"})
    assert mine.json()["verification_code"] == code and mine.json()["holder_id"] == holder_id

    # the public checks the code: valid ------------------------------------------------------------------------
    public = Visitor(browser, server, "public")
    page = public.page
    page.goto(server + "/")
    public.check("home")
    page.goto(server + "/check")
    page.get_by_label("核验码").fill(code.lower().replace("-", ""))
    page.get_by_role("button", name="查询").click()
    assert page.locator(".badge").inner_text() == "有效"
    assert "ACCA" in page.inner_text("main") and "J*** S****" in page.inner_text("main")
    assert page.locator("figure.qr svg").count() == 1
    public.check("check-valid")
    from mra.web.backend import Backend
    from mra.web.settings import WebSettings

    def shown(fields: tuple[str, ...]) -> set[str]:
        return set(Backend(state_dir, bootstrap, WebSettings(check_fields=fields)).check(code))  # type: ignore[arg-type]

    assert shown(()) == {"code", "status", "detail", "disclaimer"}  # the status only
    assert shown(("holder",)) == {"code", "status", "detail", "disclaimer", "holder"}
    assert {"entry_id", "issuer", "verified_at", "certificate_expires", "holder"} <= shown(WebSettings().check_fields)

    # a clerk finds the holder and reads the decisions with their clauses --------------------------------------
    mra("employment", "start", "--holder", holder_id, "-j", "beijing", "--employer", EMPLOYER, "--years", "3")
    mra("bureau", "run", "-j", "beijing", "--until-idle", "--timeout", "120")
    clerk = Visitor(browser, server, "clerk")
    page = clerk.page
    page.goto(server + "/clerk")
    page.get_by_label("访问令牌").fill(clerk_token)
    page.get_by_role("button", name="登录").click()
    assert page.url.endswith("/clerk")
    page.get_by_label("申请编号").fill(request_id)
    page.get_by_role("button", name="查找").click()
    clerk.check("search")
    page.get_by_role("link", name=holder_id).click()
    decisions = page.locator("article.decision")
    assert decisions.count() >= 1
    first = decisions.first.inner_text()
    assert "依据条款" in first and "京人社事业发〔2025〕11号" in first
    assert "现行认定" in page.inner_text("main")
    clerk.check("holder-zh")
    page.get_by_role("link", name="English").click()
    assert "Current decisions" in page.inner_text("main")
    assert "Clause" in page.locator("article.decision").first.inner_text()
    assert "京人社事业发〔2025〕11号" in page.locator("article.decision").first.inner_text()
    clerk.check("holder-en")
    page.get_by_role("link", name="Print the decision letter").click()
    assert "Notice of benefit decisions" in page.inner_text("main") and holder_id in page.inner_text("main")
    clerk.check("letter-en")
    page.goto(server + "/clerk/review")
    clerk.check("review-en")
    page.goto(f"{server}/clerk?employer={EMPLOYER}")
    assert holder_id in page.inner_text("main")
    page.get_by_role("link", name="中文").click()
    assert "查找结果" in page.inner_text("main")

    # the issuer withdraws the certificate: the check says revoked, the clerk sees the withdrawals --------------
    mra("verify", "revoke", code, "--reason", "issuer withdrew the certificate")
    mra("platform", "run", "--until-idle", "--register", str(ROOT / "examples" / "issuer-register.json"))
    page = public.page
    page.goto(f"{server}/check/{code}")
    assert page.locator(".badge").inner_text() == "已撤销"
    assert "撤销日期" in page.inner_text("main")
    public.check("check-revoked")
    mra("bureau", "run", "-j", "beijing", "--until-idle", "--timeout", "120")
    page = clerk.page
    page.goto(f"{server}/clerk/holders/{holder_id}")
    assert "certificate revoked" in page.inner_text("main")
    clerk.check("holder-withdrawn-zh")

    # a mistyped code -----------------------------------------------------------------------------------------
    page = public.page
    page.goto(server + "/check")
    page.get_by_label("核验码").fill(_mistype(code))
    page.get_by_role("button", name="查询").click()
    assert page.locator(".badge").inner_text() == "输入有误"
    public.check("check-mistyped")
    api = httpx.get(f"{server}/api/v1/check/{_mistype(code)}").json()
    assert api["status"] == "mistyped"

    for visitor in (employer, public, clerk):
        visitor.close()
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) >= 30 and all((ARTIFACTS / s).stat().st_size > 5000 for s in shots)
