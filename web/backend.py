"""What the web door asks of mra's services, in one place: the same calls the commands make, nothing decided here.

A submission goes through :func:`~mra.services.platform.prepare` (the validation ``mra verify submit`` applies) and
:func:`~mra.services.platform.publish_submission`; a check through :func:`~mra.services.platform.check_code`; a
clerk's look-ups through :class:`~mra.services.clerk.ClerkView`. The broker connection is opened on first need and
kept for the life of the server.
"""

from __future__ import annotations

import threading
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.hookspecs import PluginConfig
from mra.core.plugins import Registry, load_registry
from mra.events.bus import PublishError, Transport
from mra.events.publisher import Publisher
from mra.services.access import AccessStore, Principal
from mra.services.bureau import BureauStore
from mra.services.bureaus import bureau_db, partition_lag
from mra.services.clerk import ClerkView
from mra.services.platform import (
    PUBLISHER,
    PlatformPaths,
    PlatformStore,
    Submission,
    check_code,
    load_settings,
    prepare,
    publish_submission,
    request_status,
)
from mra.services.runtime import Runtime
from mra.web.settings import WebSettings, load_web_settings

__all__ = ["Backend", "Forbidden", "NotPublished", "Refused"]


class Forbidden(MraError):
    """The principal may not do or see this."""


class Refused(ValidationFailed):
    """A request the platform refused, with every reason; the refusal is recorded as the CLI records it."""

    def __init__(self, sub: Submission, published: bool) -> None:
        super().__init__(f"request {sub.request_id} refused", sub.reasons)
        self.submission = sub
        self.published = published


class NotPublished(MraError):
    """Accepted and kept, but not yet on the bus: submitting the same request again publishes it."""

    def __init__(self, sub: Submission, problem: str) -> None:
        super().__init__(
            f"request {sub.request_id} is accepted and kept, but could not be published: {problem}. "
            "Submit the same request again to publish it."
        )
        self.submission = sub


@dataclass
class Backend:
    """The services one server uses, for one state dir and cluster."""

    state_dir: Path
    bootstrap: str | None = None
    settings: WebSettings = field(default_factory=WebSettings)
    registry: Registry | None = None

    def __post_init__(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.runtime = Runtime(self.state_dir, self.bootstrap)
        if self.registry is None:
            self.registry = load_registry(config=PluginConfig(state_dir=self.state_dir))
        self.access = AccessStore(self.state_dir)
        self._lock = threading.Lock()
        self._transport: Transport | None = None
        self._publisher: Publisher | None = None

    @classmethod
    def at(cls, state_dir: Path, bootstrap: str | None = None) -> Backend:
        return cls(state_dir, bootstrap, load_web_settings(state_dir))

    @property
    def reg(self) -> Registry:
        assert self.registry is not None
        return self.registry

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()
            self._transport = self._publisher = None

    def _connect(self) -> tuple[Transport, Publisher]:
        """The kept connection and publisher (call with the lock held)."""
        if self._transport is None or self._publisher is None:
            transport = self.runtime.connect("mra-web")
            try:
                self._publisher = self.runtime.publisher(transport, PUBLISHER)
            except BaseException:
                transport.close()
                raise
            self._transport = transport
        return self._transport, self._publisher

    # employers ---------------------------------------------------------------------------------------------------
    def regions(self) -> list[str]:
        return sorted({r for j in self.reg.jurisdictions.values() for r in j.regions})

    def submit(self, raw: object, employer: Principal) -> Submission:
        """Submit ``raw`` (a request as ``examples/request.json``) for ``employer``; refused requests raise
        :class:`Refused` with every reason. The employer block must name the token's credit code."""
        if isinstance(raw, dict):
            block = raw.get("employer")
            code = block.get("credit_code") if isinstance(block, dict) else None
            if isinstance(code, str) and code.strip().upper() != (employer.credit_code or ""):
                raise Forbidden("employer.credit_code is not the credit code this access token was issued for")
        sub = prepare(
            raw,
            state_dir=self.state_dir,
            registry=self.reg,
            settings=load_settings(self.state_dir),
            now=datetime.now(UTC),
        )
        assert employer.credit_code is not None
        self.access.own(sub.request_id, employer.credit_code, sub.submitted_at)
        problem = ""
        try:
            with self._lock:
                _, publisher = self._connect()
                publish_submission(sub, publisher)
        except (MraError, PublishError) as e:
            problem = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.close()
        if sub.status == "refused":
            raise Refused(sub, not problem)
        if problem:
            raise NotPublished(sub, problem)
        return sub

    def request(self, request_id: str, employer: Principal) -> dict[str, Any]:
        """The employer's view of one of its requests; another employer's request reads as not found."""
        owner = self.access.owner(request_id.strip())
        if owner is None or owner != employer.credit_code:
            raise NotFound(f"no verification request {request_id!r} of this employer is known here")
        data = request_status(self.state_dir, request_id)
        if data.get("status") == "verified":
            with closing(self._platform()) as store:
                row = store.request(request_id.strip())
            data["holder_id"] = row["holder_id"] if row is not None else None
        return data

    def requests_of(self, employer: Principal) -> list[dict[str, Any]]:
        assert employer.credit_code is not None
        return [self.request(rid, employer) for rid in self.access.requests_of(employer.credit_code)]

    # the public --------------------------------------------------------------------------------------------------
    def check(self, code: str) -> dict[str, Any]:
        """The public check, limited to the fields the settings show beyond the status."""
        try:
            full = check_code(self.state_dir, code, registry=self.reg)
        except ValidationFailed as e:  # the wrong length: a mistyped code to whoever typed it
            return {"code": code.strip().upper()[:64], "status": "mistyped", "detail": str(e).split(": ", 1)[-1]}
        shown = set(self.settings.check_fields)
        keep = {"code", "status", "detail", "disclaimer"}
        if full["status"] in ("valid", "revoked"):
            keep |= {"revoked_at"} if full["status"] == "revoked" else set()
            keep |= {"entry_id", "entry_name"} if "entry" in shown else set()
            keep |= {"issuer"} if "issuer" in shown else set()
            keep |= {"verified_at", "verified_by"} if "verified" in shown else set()
            keep |= {"certificate_expires", "certificate_expired"} if "expires" in shown else set()
            keep |= {"holder"} if "holder" in shown else set()
        return {k: v for k, v in full.items() if k in keep}

    # clerks ------------------------------------------------------------------------------------------------------
    def clerk(self, principal: Principal) -> ClerkView:
        assert principal.jurisdiction is not None
        return ClerkView(
            self.state_dir, bureau_db(self.runtime, principal.jurisdiction), principal.jurisdiction, self.reg
        )

    # operators ---------------------------------------------------------------------------------------------------
    def _platform(self) -> PlatformStore:
        return PlatformStore(PlatformPaths(self.state_dir).read_model)

    def ready(self) -> list[str]:
        """What stands in the way of serving: empty when ready."""
        problems: list[str] = []
        try:
            self._platform().close()
        except Exception as e:
            problems.append(f"the platform's read model cannot be opened: {type(e).__name__}: {e}")
        try:
            with self._lock:
                self._connect()
        except Exception as e:
            self.close()
            problems.append(f"the broker cannot be reached: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return problems

    def status(self) -> dict[str, Any]:
        """Counts of the platform and every bureau, and each bureau group's lag."""
        with closing(self._platform()) as store:
            platform = {
                "requests": store.counts(),
                "revoked_codes": store.revoked_count(),
                "open": len(store.open_requests()),
                "unpublished": len(store.unsent()),
                "events_applied": store.applied_count(),
            }
        bureaus: dict[str, Any] = {}
        for code in sorted(self.reg.jurisdictions):
            path = bureau_db(self.runtime, code)
            if not path.exists():
                bureaus[code] = {"running": False}
                continue
            bstore = BureauStore(path, code, self.reg)
            try:
                entry: dict[str, Any] = {"counts": bstore.counts()}
                try:
                    with self._lock:
                        transport, _ = self._connect()
                        lag = partition_lag(transport, self.runtime, bstore)
                    entry["lag_total"] = sum(int(str(p["lag"])) for p in lag)
                    entry["partitions"] = lag
                except Exception as e:
                    entry["lag_total"] = None
                    entry["lag_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
                bureaus[code] = entry
            finally:
                bstore.close()
        return {"platform": platform, "bureaus": bureaus}
