"""The ASGI application: JSON API under ``/api/v1`` and server-rendered pages, both over :class:`Backend`.

Each page route and its API twin call the same backend function; the page renders the same data the API returns.
Errors are RFC 9457 problem documents on the API and pages that say what to fix everywhere else; nothing leaks a
traceback. Pages work without JavaScript, in Simplified Chinese by default and in English.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import segno
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from mra import __version__
from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.i18n.terms import category_label
from mra.services.access import Principal, Role
from mra.services.platform import DOCUMENT_TYPES, RequestIn
from mra.web.backend import Backend, Forbidden, NotPublished, Refused
from mra.web.limits import BodyLimit, RateLimiter
from mra.web.text import LANGS, negotiate, translator

__all__ = ["COOKIE", "create_app"]

log = logging.getLogger(__name__)
COOKIE = "mra_session"
LANG_COOKIE = "mra_lang"
PROBLEM = "application/problem+json"
_PROBLEM_DOC = {"content": {PROBLEM: {"schema": {"type": "object"}}}, "description": "RFC 9457 problem details"}


class Problem(Exception):
    """An answer other than success: rendered as problem JSON on the API, as a page elsewhere."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str = "",
        errors: list[str] | None = None,
        headers: dict[str, str] | None = None,
        page_key: str = "",
    ) -> None:
        super().__init__(title)
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.headers = headers or {}
        self.page_key = page_key


def _problem_of(e: Exception) -> Problem:
    if isinstance(e, Problem):
        return e
    if isinstance(e, Refused):
        return Problem(422, "request refused", str(e).splitlines()[0], e.reasons)
    if isinstance(e, ValidationFailed):
        return Problem(422, "invalid input", str(e).splitlines()[0], e.reasons)
    if isinstance(e, NotFound):
        return Problem(404, "not found", str(e), page_key="error.not_found")
    if isinstance(e, Forbidden):
        return Problem(403, "forbidden", str(e), page_key="signin.wrong_role")
    if isinstance(e, NotPublished):
        return Problem(503, "accepted, not yet published", str(e), headers={"Retry-After": "30"})
    if isinstance(e, MraError):
        return Problem(422, "cannot be done", str(e).splitlines()[0])
    return Problem(500, "internal error", "the server could not answer; the error is logged", page_key="error.server")


def create_app(backend: Backend) -> FastAPI:
    """The application for ``backend``; ``mra serve`` runs it under uvicorn."""
    app = FastAPI(
        title="mra",
        version=__version__,
        description="The 京津冀 verification platform and bureaus: employers submit certificates for verification, "
        "the public checks verification codes, bureau clerks see decisions with their clauses "
        "(京人社事业发〔2025〕11号 附件2). Errors are RFC 9457 problem documents.",
        docs_url="/docs",
        redoc_url=None,
    )
    env = Environment(loader=PackageLoader("mra.web", "templates"), autoescape=select_autoescape(["html"]))
    limiter = RateLimiter(backend.settings.check_rate_per_minute, backend.settings.check_burst)
    app.state.backend = backend
    app.mount("/static", StaticFiles(packages=[("mra.web", "static")]), name="static")

    # --- helpers ----------------------------------------------------------------------------------------------
    def lang_of(request: Request) -> str:
        q = request.query_params.get("lang")
        if q in LANGS:
            return str(q)
        c = request.cookies.get(LANG_COOKIE)
        if c in LANGS:
            return str(c)
        return negotiate(request.headers.get("accept-language"))

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz")

    def principal_of(request: Request) -> Principal | None:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth[:7].lower() == "bearer " else request.cookies.get(COOKIE)
        if token is None or len(token) > 200:
            return None
        return backend.access.authenticate(token)

    def require(request: Request, role: Role) -> Principal:
        who = principal_of(request)
        if who is None:
            if is_api(request):
                raise Problem(
                    401, "unauthorized", "send Authorization: Bearer TOKEN", headers={"WWW-Authenticate": "Bearer"}
                )
            raise _SignIn(request.url.path)
        if who.role != role:
            raise Problem(
                403, "forbidden", f"this token is for a {who.role}, not a {role}", page_key="signin.wrong_role"
            )
        return who

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        lang = lang_of(request)
        who = principal_of(request)
        html = env.get_template(name).render(
            t=translator(lang),
            lang=lang,
            html_lang="zh-CN" if lang == "zh_CN" else "en",
            other="en" if lang == "zh_CN" else "zh_CN",
            here=quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe=""),
            who=who,
            category=lambda code: category_label(code, lang),
            **ctx,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Language"] = "zh-CN" if lang == "zh_CN" else "en"
        if who is not None:
            response.headers["Cache-Control"] = "no-store"
        return response

    def client_of(request: Request) -> str:
        if backend.settings.trust_forwarded_for:
            fwd = request.headers.get("x-forwarded-for", "").split(",")[0].strip()
            if fwd:
                return fwd[:64]
        return request.client.host if request.client else "unknown"

    def limited(request: Request) -> None:
        wait = limiter.take(client_of(request))
        if wait:
            raise Problem(
                429,
                "too many requests",
                f"at most {backend.settings.check_rate_per_minute} checks a minute per client; retry in {wait} s",
                headers={"Retry-After": str(wait)},
                page_key="error.too_many",
            )

    def check_url(request: Request, code: str) -> str:
        base = backend.settings.public_url or str(request.base_url)
        return base.rstrip("/") + "/check/" + quote(code)

    def qr_svg(url: str) -> str:
        return str(segno.make(url, error="m").svg_inline(scale=4, dark="#000000", light="#ffffff", border=2))

    # --- errors -----------------------------------------------------------------------------------------------
    def answer(request: Request, p: Problem) -> Response:
        if is_api(request) or "application/json" in request.headers.get("accept", "").split(",")[0]:
            body = {"type": "about:blank", "title": p.title, "status": p.status}
            if p.detail:
                body["detail"] = p.detail
            if p.errors:
                body["errors"] = p.errors
            body["instance"] = request.url.path
            return JSONResponse(body, status_code=p.status, media_type=PROBLEM, headers=p.headers)
        t = translator(lang_of(request))
        message = t(p.page_key).format(seconds=p.headers.get("Retry-After", "")) if p.page_key else p.detail
        response = render(request, "error.html", p.status, message=message, errors=p.errors, problem=p)
        response.headers.update(p.headers)
        return response

    @app.exception_handler(Problem)
    async def on_problem(request: Request, e: Problem) -> Response:
        return answer(request, e)

    @app.exception_handler(_SignIn)
    async def on_signin(request: Request, e: _SignIn) -> Response:
        return RedirectResponse(f"/signin?next={quote(e.next)}", status_code=303)

    @app.exception_handler(MraError)
    async def on_mra(request: Request, e: MraError) -> Response:
        return answer(request, _problem_of(e))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError) -> Response:
        errors = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()]
        return answer(request, Problem(422, "invalid input", "the request does not match the API", errors))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, e: StarletteHTTPException) -> Response:
        key = "error.not_found" if e.status_code == 404 else ""
        return answer(request, Problem(e.status_code, str(e.detail), str(e.detail), page_key=key))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, e: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(request, _problem_of(e))

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/docs"):
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self'; "
                "frame-ancestors 'none'",
            )
        return response

    # --- health -----------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["operators"], summary="The process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operators"], summary="The stores open and the broker answers",
             responses={503: _PROBLEM_DOC})
    def readyz() -> dict[str, str]:
        problems = backend.ready()
        if problems:
            raise Problem(503, "not ready", "; ".join(problems), headers={"Retry-After": "5"})
        return {"status": "ready"}

    # --- language and sign-in ---------------------------------------------------------------------------------
    @app.get("/lang/{lang}", include_in_schema=False)
    def switch(lang: str, next: str = "/") -> Response:
        target = next if next.startswith("/") and not next.startswith("//") and len(next) < 500 else "/"
        response = RedirectResponse(target, status_code=303)
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    @app.get("/", response_class=HTMLResponse, tags=["pages"], summary="Home page")
    def home(request: Request) -> HTMLResponse:
        return render(request, "home.html")

    @app.get("/signin", response_class=HTMLResponse, tags=["pages"], summary="Sign-in page")
    def signin_page(request: Request, next: str = "") -> HTMLResponse:
        return render(request, "signin.html", next=_safe_next(next), bad=False)

    @app.post("/signin", response_class=HTMLResponse, tags=["pages"], summary="Sign in with an access token")
    async def signin(request: Request) -> Response:
        form = await request.form()
        token, target = str(form.get("token", ""))[:200], _safe_next(str(form.get("next", "")))
        who = backend.access.authenticate(token)
        if who is None:
            return render(request, "signin.html", 401, next=target, bad=True)
        home_of = {"employer": "/employer", "clerk": "/clerk", "operator": "/ops"}[who.role]
        response = RedirectResponse(target or home_of, status_code=303)
        response.set_cookie(
            COOKIE, token.strip(), httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    @app.post("/signout", tags=["pages"], summary="Sign out")
    def signout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # --- the public check -------------------------------------------------------------------------------------
    @app.get("/check", response_class=HTMLResponse, tags=["pages"], summary="The public check form")
    def check_form(request: Request, code: str = "") -> Response:
        code = code.strip()[:64]
        if code:
            return RedirectResponse(f"/check/{quote(code, safe='')}", status_code=303)
        return render(request, "check.html", result=None)

    @app.get("/api/v1/check/{code}", tags=["public"], summary="Check a verification code",
             responses={429: _PROBLEM_DOC, 422: _PROBLEM_DOC})
    def check_api(request: Request, code: str) -> dict[str, Any]:
        limited(request)
        result = backend.check(code)
        if result["status"] in ("valid", "revoked"):
            result["check_url"] = check_url(request, result["code"])
        return result

    @app.get("/check/{code}", response_class=HTMLResponse, tags=["pages"], summary="The public check page")
    def check_page(request: Request, code: str) -> HTMLResponse:
        limited(request)
        result = backend.check(code)
        qr = qr_svg(check_url(request, result["code"])) if result["status"] in ("valid", "revoked") else ""
        fields = set(backend.settings.check_fields)
        return render(request, "check.html", result=result, qr=qr, fields=fields)

    # --- employers --------------------------------------------------------------------------------------------
    request_schema = RequestIn.model_json_schema(ref_template="#/components/schemas/{model}")
    request_defs = request_schema.pop("$defs", {})

    @app.post(
        "/api/v1/requests",
        tags=["employers"],
        summary="Submit a verification request",
        status_code=201,
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema}}},
            "security": [{"bearer": []}],
        },
        responses={401: _PROBLEM_DOC, 403: _PROBLEM_DOC, 413: _PROBLEM_DOC, 422: _PROBLEM_DOC, 503: _PROBLEM_DOC},
    )
    async def submit_api(request: Request) -> JSONResponse:
        who = require(request, "employer")
        raw = _json_body(await request.body())
        sub = backend.submit(raw, who)
        status = 200 if sub.again else 201
        where = {"Location": f"/api/v1/requests/{sub.request_id}"}
        return JSONResponse(sub.as_dict(), status_code=status, headers=where)

    @app.get("/api/v1/requests", tags=["employers"], summary="This employer's requests",
             openapi_extra={"security": [{"bearer": []}]}, responses={401: _PROBLEM_DOC})
    def list_api(request: Request) -> dict[str, Any]:
        who = require(request, "employer")
        return {"requests": backend.requests_of(who)}

    @app.get("/api/v1/requests/{request_id}", tags=["employers"], summary="One of this employer's requests",
             openapi_extra={"security": [{"bearer": []}]}, responses={401: _PROBLEM_DOC, 404: _PROBLEM_DOC})
    def request_api(request: Request, request_id: str) -> dict[str, Any]:
        who = require(request, "employer")
        data = backend.request(request_id, who)
        if data.get("verification_code"):
            data["check_url"] = check_url(request, data["verification_code"])
        return data

    def form_page(request: Request, who: Principal, values: dict[str, str], reasons: list[str],
                  status: int = 200, note: str = "") -> HTMLResponse:
        return render(
            request, "request_form.html", status, values=values, reasons=reasons, note=note,
            regions=backend.regions(), documents=DOCUMENT_TYPES, employer=who,
        )

    @app.get("/employer", response_class=HTMLResponse, tags=["pages"], summary="An employer's requests")
    def employer_page(request: Request) -> HTMLResponse:
        who = require(request, "employer")
        return render(request, "employer.html", requests=backend.requests_of(who), employer=who)

    @app.get("/employer/new", response_class=HTMLResponse, tags=["pages"], summary="The request form")
    def employer_form(request: Request) -> HTMLResponse:
        who = require(request, "employer")
        return form_page(request, who, {}, [])

    @app.post("/employer/requests", response_class=HTMLResponse, tags=["pages"], summary="Submit the request form")
    async def employer_submit(request: Request) -> Response:
        who = require(request, "employer")
        form = await request.form()
        values = {k: str(v)[:1000] for k, v in form.items() if isinstance(v, str)}
        raw = _request_from_form(values, who)
        try:
            sub = backend.submit(raw, who)
        except Refused as e:
            return form_page(request, who, values, e.reasons, 422)
        except NotPublished:
            return form_page(request, who, values, [], 503, note="employer.unpublished")
        return RedirectResponse(f"/employer/requests/{quote(sub.request_id)}?new=1", status_code=303)

    @app.get("/employer/requests/{request_id}", response_class=HTMLResponse, tags=["pages"],
             summary="One request, with its code once verified")
    def request_page(request: Request, request_id: str, new: int = 0) -> HTMLResponse:
        who = require(request, "employer")
        data = backend.request(request_id, who)
        qr = ""
        if data.get("verification_code"):
            data["check_url"] = check_url(request, data["verification_code"])
            qr = qr_svg(data["check_url"])
        return render(request, "request.html", r=data, qr=qr, new=bool(new))

    # --- clerks -----------------------------------------------------------------------------------------------
    def find(who: Principal, request_id: str, code: str, employer: str) -> list[dict[str, Any]]:
        return backend.clerk(who).find(request_id=request_id[:200], code=code[:64], employer=employer[:200])

    @app.get("/api/v1/clerk/holders", tags=["clerks"], summary="Find holders by request id, code or employer",
             openapi_extra={"security": [{"bearer": []}]}, responses={401: _PROBLEM_DOC, 422: _PROBLEM_DOC})
    def find_api(request: Request, request_id: str = "", code: str = "", employer: str = "") -> dict[str, Any]:
        who = require(request, "clerk")
        return {"jurisdiction": who.jurisdiction, "holders": find(who, request_id, code, employer)}

    @app.get("/api/v1/clerk/holders/{holder_id}", tags=["clerks"], summary="A holder's decisions and history",
             openapi_extra={"security": [{"bearer": []}]}, responses={401: _PROBLEM_DOC, 404: _PROBLEM_DOC})
    def holder_api(request: Request, holder_id: str) -> dict[str, Any]:
        who = require(request, "clerk")
        data = backend.clerk(who).holder(holder_id)
        if data is None:
            raise NotFound(f"holder {holder_id!r} is not known to the {who.jurisdiction} bureau")
        return data

    @app.get("/api/v1/clerk/review", tags=["clerks"], summary="Conditional decisions and decisions under review",
             openapi_extra={"security": [{"bearer": []}]}, responses={401: _PROBLEM_DOC})
    def review_api(request: Request) -> dict[str, Any]:
        who = require(request, "clerk")
        return {"jurisdiction": who.jurisdiction, "decisions": backend.clerk(who).review()}

    @app.get("/clerk", response_class=HTMLResponse, tags=["pages"], summary="The clerk's search page")
    def clerk_page(request: Request, request_id: str = "", code: str = "", employer: str = "") -> HTMLResponse:
        who = require(request, "clerk")
        asked = {"request_id": request_id, "code": code, "employer": employer}
        found: list[dict[str, Any]] | None = None
        reasons: list[str] = []
        if any(v.strip() for v in asked.values()):
            try:
                found = find(who, request_id, code, employer)
            except ValidationFailed as e:
                reasons = [str(e).splitlines()[0], *e.reasons]
        return render(request, "clerk.html", 422 if reasons else 200, asked=asked, found=found, reasons=reasons,
                      clerk=who)

    @app.get("/clerk/review", response_class=HTMLResponse, tags=["pages"], summary="The review list")
    def review_page(request: Request) -> HTMLResponse:
        who = require(request, "clerk")
        view = backend.clerk(who)
        return render(request, "review.html", decisions=view.review(), titles=view.titles(), clerk=who)

    @app.get("/clerk/holders/{holder_id}", response_class=HTMLResponse, tags=["pages"], summary="A holder")
    def holder_page(request: Request, holder_id: str) -> HTMLResponse:
        who = require(request, "clerk")
        data = backend.clerk(who).holder(holder_id)
        if data is None:
            raise Problem(404, "not found", "", page_key="holder.not_found")
        return render(request, "holder.html", h=data, clerk=who)

    @app.get("/clerk/holders/{holder_id}/letter", response_class=HTMLResponse, tags=["pages"],
             summary="A holder's printable decision letter")
    def letter_page(request: Request, holder_id: str) -> HTMLResponse:
        who = require(request, "clerk")
        data = backend.clerk(who).holder(holder_id)
        if data is None:
            raise Problem(404, "not found", "", page_key="holder.not_found")
        today = datetime.now(UTC).date().isoformat()
        return render(request, "letter.html", h=data, clerk=who, today=today)

    # --- operators --------------------------------------------------------------------------------------------
    @app.get("/api/v1/ops/status", tags=["operators"], summary="Counts and each bureau group's lag",
             openapi_extra={"security": [{"bearer": []}]}, responses={401: _PROBLEM_DOC})
    def ops_api(request: Request) -> dict[str, Any]:
        require(request, "operator")
        return backend.status()

    @app.get("/ops", response_class=HTMLResponse, tags=["pages"], summary="The operators' page")
    def ops_page(request: Request) -> HTMLResponse:
        require(request, "operator")
        return render(request, "ops.html", s=backend.status(), ready=backend.ready())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            comps = doc.setdefault("components", {})
            comps.setdefault("schemas", {}).update(request_defs)
            comps.setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def too_large(scope: Any) -> Any:
        path = str(scope.get("path", ""))
        body = {"type": "about:blank", "title": "request body too large", "status": 413,
                "detail": f"at most {backend.settings.max_body_bytes} bytes", "instance": path}
        return JSONResponse(body, status_code=413, media_type=PROBLEM)

    app.add_middleware(BodyLimit, limit=backend.settings.max_body_bytes, refuse=too_large)
    return app


class _SignIn(Exception):
    """A page needs a signed-in user: redirect to the sign-in page, then back."""

    def __init__(self, next: str) -> None:
        super().__init__(next)
        self.next = next


def _safe_next(next: str) -> str:
    return next if next.startswith("/") and not next.startswith("//") and len(next) < 500 else ""


def _json_body(body: bytes) -> object:
    if not body:
        raise Problem(422, "invalid input", "the body must be a JSON request (see examples/request.json)")
    try:
        return json.loads(body)
    except RecursionError:
        raise Problem(422, "invalid input", "the JSON is nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        where = f" at line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise Problem(422, "invalid input", f"the body is not valid UTF-8 JSON{where}") from None


def _request_from_form(v: dict[str, str], who: Principal) -> dict[str, Any]:
    """The form's fields as the request ``mra verify submit`` reads; the employer comes from the token."""

    def get(key: str) -> str:
        return v.get(key, "").strip()

    return {
        "reference": get("reference"),
        "employer": {"name": who.name, "credit_code": who.credit_code, "region": get("employer_region")},
        "holder": {
            "name": get("holder_name"),
            "nationality": get("holder_nationality").upper(),
            "birth_date": get("holder_birth_date"),
            "document_type": get("holder_document_type"),
            "document_number": get("holder_document_number"),
        },
        "certificate": {
            "entry": get("certificate_entry"),
            "issuer": get("certificate_issuer"),
            "number": get("certificate_number"),
            "issued": get("certificate_issued"),
            "expires": get("certificate_expires") or None,
        },
    }
