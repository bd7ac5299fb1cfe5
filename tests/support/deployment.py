"""A deployment as mra provisions it, on the test's broker: keys and a trust store, the platform, the bureaus.

Tests of what an attacker who can write to the bus can do start from here: the genuine parts run as in
production (signed, verified by default), and the attacker is whatever the test adds beside them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from mra.core.plugins import Registry, load_registry
from mra.events.bus import Transport
from mra.events.envelope import Envelope, decode
from mra.events.publisher import Publisher
from mra.events.schemas import CatalogueEditionPublished, EmployerRef, EmploymentStarted
from mra.events.signing import Mode
from mra.events.topics import Topics
from mra.services.audit import read_log
from mra.services.bureaus import Bureau, open_bureau
from mra.services.demo import REGISTER, REQUESTS, T0
from mra.services.files import private_dir, private_file
from mra.services.keys import init_keys, standard_identities
from mra.services.platform import Platform, load_settings, prepare, publish_submission, request_status
from mra.services.runtime import Runtime

__all__ = ["T0", "Deployment"]


class Deployment:
    """One state directory provisioned as ``mra broker start`` does (every identity's key, a trust store in
    ``mode``), the platform with the demo's issuer register, and bureaus opened on demand."""

    def __init__(self, home: Path, bootstrap: str, topics: Topics, mode: Mode | None = Mode.PER_EVENT) -> None:
        self.home = home
        self.topics = topics
        self.registry: Registry = load_registry()
        self.runtime = Runtime(home, bootstrap, topics)
        self.transport: Transport = self.runtime.connect(client_id="mra-test-deployment")
        self.transport.ensure_topics(topics.all())
        private_dir(home)  # as the command line makes it (Ctx.ensure_state_dir)
        register = private_file(home / "platform" / "issuer-register.json")  # the operator's copy, kept private
        register.write_text(json.dumps(REGISTER, ensure_ascii=False))
        if mode is not None:
            init_keys(home, standard_identities(self.registry.jurisdictions), mode)
        self.settings = load_settings(home, issuer_timeout_s=5.0)
        self._platform: Platform | None = None
        self.bureaus: dict[str, Bureau] = {}
        self._publishers: dict[str, Publisher] = {}

    @property
    def platform(self) -> Platform:
        if self._platform is None:
            self._platform = Platform(
                self.transport, self.topics, self.home, registry=self.registry, settings=self.settings, clock=lambda: T0
            )
        return self._platform

    def publisher(self, identity: str) -> Publisher:
        """The genuine publisher of ``identity``, signing with its key from this state directory."""
        if identity not in self._publishers:
            self._publishers[identity] = self.runtime.publisher(self.transport, identity)
        return self._publishers[identity]

    def bureau(self, j: str) -> Bureau:
        if j not in self.bureaus:
            self.bureaus[j] = open_bureau(
                self.runtime, j, registry=self.registry, transport=self.transport, group=False
            )
        return self.bureaus[j]

    def settle(self, *jurisdictions: str) -> None:
        """The platform, then each bureau named, read to the end of the log."""
        self.platform.run(until_idle=True, timeout=60)
        for j in jurisdictions:
            stats = self.bureau(j).run(until_idle=True, timeout=60)
            assert stats.idle, stats

    def catalogue(self, j: str = "beijing") -> None:
        pub = self.publisher(f"{j}-intake")
        for edition in self.registry.catalogues(j):
            pub.publish(CatalogueEditionPublished(edition=edition), time=datetime(2025, 9, 4, 16, tzinfo=UTC))
        pub.flush()

    def submit(self, who: str = "Jane Smith") -> Any:
        sub = prepare(REQUESTS[who], state_dir=self.home, registry=self.registry, settings=self.settings, now=T0)
        publish_submission(sub, self.publisher("platform-intake"))
        return sub

    def employ(self, holder_id: str, j: str = "beijing", on: date = date(2025, 10, 8)) -> None:
        pub = self.publisher(f"{j}-intake")
        pub.publish(
            EmploymentStarted(
                holder_id=holder_id,
                jurisdiction=j,
                employer=EmployerRef(name="示例有限公司", credit_code="91110108MA01K7QH2J", region=j),
                started=on,
                years_in_scope=3,
                in_scope=True,
            ),
            time=datetime.combine(on, datetime.min.time(), UTC),
        )
        pub.flush()

    def verified_and_employed(self, who: str = "Jane Smith", j: str = "beijing") -> tuple[str, str]:
        """A holder verified by the platform and employed in ``j``, decided there: (holder id, verification code)."""
        self.catalogue(j)
        sub = self.submit(who)
        self.employ(sub.holder_id, j)
        self.settle(j)
        code = request_status(self.home, sub.request_id).get("verification_code")
        assert code, request_status(self.home, sub.request_id)
        return sub.holder_id, str(code)

    def eligible(self, j: str, holder_id: str) -> list[str]:
        """The benefit codes ``j``'s bureau holds as eligible (or conditional) for the holder now."""
        return sorted(
            d.code
            for d in self.bureau(j).store.active_decisions(holder_id)
            if d.outcome.value in ("eligible", "conditional")
        )

    def log(self, logical: str) -> list[Envelope]:
        return [decode(r) for r in read_log(self.transport, [self.topics.name(logical)], timeout=60)]

    def dead_letters(self) -> list[dict[str, str]]:
        """Every dead letter's reason and the original's type and id."""
        out = []
        for r in read_log(self.transport, [self.topics.name("deadletter")], timeout=60):
            h = {k: bytes(v or b"").decode(errors="replace") for k, v in r.headers}
            out.append({"reason": h.get("mra_dlq_reason", ""), "type": h.get("ce_type", ""), "id": h.get("ce_id", "")})
        return out

    def close(self) -> None:
        for b in self.bureaus.values():
            b.close()
        if self._platform is not None:
            self._platform.close()
        self.transport.close()
