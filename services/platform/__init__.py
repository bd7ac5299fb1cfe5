"""The certificate verification platform (京人社事业发〔2025〕11号 附件2), as an event-driven service.

附件2 has four steps, and the platform has a part for each:

一 申请查验 (apply): :func:`~mra.services.platform.intake.prepare` reads an employer's request, refuses what is
   invalid with every reason (:mod:`mra.services.platform.request`), and keeps the holder's personal fields in the
   platform's local intake store; :func:`~mra.services.platform.intake.publish_submission` puts the request on the
   verification topic. Only a pseudonym travels (:mod:`mra.services.platform.intake`).
二 在线受理 (accept): a valid request is accepted at once, with an expected completion time from a per-issuer
   turnaround setting (the notice publishes none: mra's default is 5 working days; see
   :mod:`mra.services.platform.settings`).
三 核验结果 (result): :class:`Platform` (this module) consumes the verification topic into its read model
   (:mod:`mra.services.platform.store`), asks the issuer's connector about every open request (with a timeout,
   retries and backoff), and publishes the result: a verification code for a genuine certificate, the reason for
   any other. An unreachable issuer defers the request, which stays open. Results go through the store's outbox,
   so a platform killed at any point re-publishes the same events under the same ids.
四 责任确认 (responsibility): every result and every check carries :data:`DISCLAIMER`
   (the checks themselves: :mod:`mra.services.platform.queries`).

This module also re-exports the names callers take from ``mra.services.platform``.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mra.core.catalogue import normalise
from mra.core.connectors import CertificateClaim, IssuerAnswer, IssuerConnector, IssuerStatus
from mra.core.errors import NotFound
from mra.core.hookspecs import PluginConfig
from mra.core.ids import stable_id
from mra.core.models import CatalogueEdition, CatalogueEntry
from mra.core.plugins import Registry, load_registry
from mra.events.bus import Transport
from mra.events.consumer import Processor
from mra.events.schemas import CertificateVerified, VerificationDeferred, VerificationRejected
from mra.events.topics import Topics
from mra.services.codes import new_code, read_code
from mra.services.keys import consumer_guard, open_publisher
from mra.services.platform.intake import (
    Intake,
    Submission,
    holder_key,
    mask_name,
    prepare,
    publish_submission,
)
from mra.services.platform.queries import check_code, request_status, revoke_code
from mra.services.platform.request import RequestIn, add_working_days, credit_code_problem
from mra.services.platform.settings import (
    CST,
    DISCLAIMER,
    DOCUMENT_TYPES,
    PUBLISHER,
    SETTINGS,
    PlatformPaths,
    PlatformSettings,
    load_settings,
)
from mra.services.platform.store import PlatformStore
from mra.services.privacy import ErasedHolder, PersonalData, holder_pseudonym
from mra.services.privacy import fold as _fold
from mra.services.privacy import keyed as _keyed
from mra.services.register import RegisterConnector

__all__ = [
    "CST",
    "DISCLAIMER",
    "DOCUMENT_TYPES",
    "PUBLISHER",
    "SETTINGS",
    "Intake",
    "Platform",
    "PlatformPaths",
    "PlatformSettings",
    "PlatformStats",
    "PlatformStore",
    "RequestIn",
    "Submission",
    "add_working_days",
    "check_code",
    "credit_code_problem",
    "holder_key",
    "holder_pseudonym",
    "load_settings",
    "mask_name",
    "prepare",
    "publish_submission",
    "request_status",
    "revoke_code",
]

log = logging.getLogger(__name__)


@dataclass
class PlatformStats:
    """What one :meth:`Platform.run` did."""

    consumed: int = 0
    asked: int = 0
    verified: int = 0
    rejected: int = 0
    deferred: int = 0
    relayed: int = 0
    open: int = 0
    idle: bool = False
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def _call(connector: IssuerConnector, claim: CertificateClaim, timeout: float) -> IssuerAnswer:
    """One call, cut off at ``timeout``: a connector that hangs or raises makes the issuer unreachable."""
    box: list[IssuerAnswer | BaseException] = []

    def target() -> None:
        try:
            box.append(connector.check(claim, timeout))
        except BaseException as e:
            box.append(e)

    worker = threading.Thread(target=target, name=f"issuer-{connector.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not box:
        return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail=f"{connector.name}: no answer within {timeout:g}s")
    answer = box[0]
    if isinstance(answer, BaseException):
        return IssuerAnswer(
            status=IssuerStatus.UNREACHABLE, detail=f"{connector.name} failed: {type(answer).__name__}: {answer}"
        )
    if not isinstance(answer, IssuerAnswer):
        return IssuerAnswer(
            status=IssuerStatus.UNREACHABLE, detail=f"{connector.name} answered {type(answer).__name__}"
        )
    return answer


class Platform:
    """The running platform: folds the verification topic, asks issuers, publishes results."""

    def __init__(
        self,
        transport: Transport,
        topics: Topics,
        state_dir: Path,
        *,
        registry: Registry | None = None,
        settings: PlatformSettings | None = None,
        clock: Callable[[], datetime] | None = None,
        poll_ms: int = 200,
    ) -> None:
        self.paths = PlatformPaths(state_dir)
        self.settings = settings or load_settings(state_dir)
        self.registry = registry or load_registry(config=PluginConfig(state_dir=state_dir))
        self.clock = clock or (lambda: datetime.now(UTC))
        self.store = PlatformStore(self.paths.read_model)
        self.intake = Intake(self.paths.intake)
        self.key = holder_key(self.paths)
        self.personal = PersonalData.at(state_dir)
        self.publisher = open_publisher(state_dir, transport, topics, PUBLISHER)
        self.guard = consumer_guard(state_dir, transport, topics, self.paths.root / "checkpoints.db")
        self.processor = Processor(
            transport,
            topics,
            ["verification"],
            self.guard.wrap(self.store),
            None,
            poll_ms=poll_ms,
            validate=self.guard.validate,
        )
        self.stop_event = self.processor.stop_event
        self._asked: set[str] = set()

    def close(self) -> None:
        self.processor.close()
        self.store.close()
        self.intake.close()
        self.personal.close()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self, until_idle: bool = False, timeout: float | None = None) -> PlatformStats:
        """Consume, ask and publish until stopped, or with ``until_idle`` until nothing is left to do now.

        Every open request is asked once per run (a deferred one again, whatever its retry time); a running
        platform asks a deferred request again when its retry time comes.
        """
        stats = PlatformStats()
        started = time.monotonic()
        stats.relayed += self.relay()
        while not self.stop_event.is_set():
            left = None if timeout is None else timeout - (time.monotonic() - started)
            if left is not None and left <= 0:
                stats.errors.append(f"stopped after {timeout:g}s without becoming idle")
                break
            consumed = self.processor.run(until_idle=True, timeout=left)
            stats.consumed += consumed.applied
            if not consumed.idle:
                continue
            asked = self.work(stats, retry_due=not until_idle)
            if asked == 0 and until_idle:
                stats.idle = True
                break
        stats.open = len(self.store.open_requests())
        stats.seconds = time.monotonic() - started
        return stats

    def work(self, stats: PlatformStats, retry_due: bool = True) -> int:
        """Ask about every open request not yet asked in this run (and, with ``retry_due``, every one due again)."""
        now = self.clock()
        asked = 0
        for row in self.store.open_requests():
            if self.stop_event.is_set():
                break
            due = retry_due and row["retry_at"] is not None and datetime.fromisoformat(row["retry_at"]) <= now
            if row["request_id"] in self._asked and not due:
                continue
            self._asked.add(row["request_id"])
            outcome = self.ask(row)
            asked += 1
            stats.asked += 1
            setattr(stats, outcome, getattr(stats, outcome) + 1)
            stats.relayed += self.relay()
        return asked

    # one request -----------------------------------------------------------------------------------------------
    def ask(self, row: sqlite3.Row) -> str:
        """Ask the issuer about one open request and put the result in the outbox; say which it was."""
        try:
            edition, entry = self.registry.find_entry(row["entry_id"])
        except NotFound:
            return self._defer(row, f"catalogue entry {row['entry_id']} is not in the loaded catalogues")
        taken = self.intake.get(row["request_id"])
        if taken is None or not taken["name"]:
            return self._defer(row, "the holder's details are not in this platform's intake store")
        try:
            name = self.personal.open(row["holder_id"], "name", taken["name"])
            number = self.personal.open(row["holder_id"], "certificate_number", row["certificate_number"])
            checks = (self.personal.keyed(row["holder_id"], "name", _fold(name)), _keyed(self.key, "name", _fold(name)))
        except ErasedHolder:
            answer = IssuerAnswer(status=IssuerStatus.NOT_FOUND, detail="the holder's personal data was erased")
            return self._rejected(row, answer, reason="erased")
        if row["name_hmac"] and not any(hmac.compare_digest(row["name_hmac"], c) for c in checks):
            return self._defer(row, "the intake store's record does not match the request on the topic")
        claim = CertificateClaim(
            entry_id=entry.id,
            issuer=row["issuer"],
            certificate_number=number,
            holder_name=name,
            issued=date.fromisoformat(row["issued"]) if row["issued"] else None,
            expires=date.fromisoformat(row["expires"]) if row["expires"] else None,
        )
        answer = self._ask_issuer(entry, claim)
        if answer.status is IssuerStatus.GENUINE:
            return self._verified(row, edition, entry, number)
        if answer.status is IssuerStatus.UNREACHABLE:
            return self._defer(row, answer.detail or "the issuer could not be reached")
        return self._rejected(row, answer)

    def connector(self, entry: CatalogueEntry) -> IssuerConnector:
        """The plugin connector that serves ``entry``, else mra's file-backed register."""
        plugged = self.registry.issuer_connector(entry, self.settings.connector_settings())
        return plugged if plugged is not None else RegisterConnector(self.settings.issuer_register, entry)

    def _ask_issuer(self, entry: CatalogueEntry, claim: CertificateClaim) -> IssuerAnswer:
        try:
            connector = self.connector(entry)
        except Exception as e:
            return IssuerAnswer(status=IssuerStatus.UNREACHABLE, detail=f"no connector: {type(e).__name__}: {e}")
        s = self.settings
        answer = IssuerAnswer(status=IssuerStatus.UNREACHABLE)
        for attempt in range(s.issuer_attempts):
            if attempt and self.stop_event.wait(s.issuer_backoff_s * 2 ** (attempt - 1)):
                break
            answer = _call(connector, claim, s.issuer_timeout_s)
            if answer.status is not IssuerStatus.UNREACHABLE:
                return answer
            log.info("issuer %s unreachable (attempt %d): %s", connector.name, attempt + 1, answer.detail)
        return answer

    def _new_code(self) -> str:
        while True:
            printed = new_code(self.settings.code)
            if not self.store.code_taken(read_code(printed, self.settings.code).compact):
                return printed

    def _verified(self, row: sqlite3.Row, edition: CatalogueEdition, entry: CatalogueEntry, number: str) -> str:
        now, rid = self.clock(), row["request_id"]
        data = CertificateVerified(
            request_id=rid,
            holder_id=row["holder_id"],
            # keyed under the platform's secret: an unkeyed hash of a certificate number could be reversed by
            # trying the issuer's numbers
            certificate_key=stable_id(
                "certificate", _keyed(self.key, "certificate", entry.id, normalise(entry.issuer_text), _fold(number))
            ),
            entry_id=entry.id,
            issuer=row["issuer"],
            verification_code=self._new_code(),
            verified_at=now,
            verified_by=edition.jurisdiction,
            expires=date.fromisoformat(row["expires"]) if row["expires"] else None,
            disclaimer=DISCLAIMER,
        )
        with self.store.transaction() as db:
            self.store.enqueue(db, stable_id("verification.certificate_verified", rid), rid, data, now)
            self.store.mark_answered(db, rid)
        return "verified"

    def _rejected(self, row: sqlite3.Row, answer: IssuerAnswer, reason: str | None = None) -> str:
        now, rid = self.clock(), row["request_id"]
        data = VerificationRejected(
            request_id=rid, holder_id=row["holder_id"], reason=reason or answer.status.value, detail=answer.detail
        )
        with self.store.transaction() as db:
            self.store.enqueue(db, stable_id("verification.rejected", rid), rid, data, now)
            self.store.mark_answered(db, rid)
        return "rejected"

    def _defer(self, row: sqlite3.Row, detail: str) -> str:
        now, rid = self.clock(), row["request_id"]
        attempt = int(row["attempts"]) + 1
        delay = min(self.settings.retry_after_s * 2 ** (attempt - 1), self.settings.retry_max_s)
        retry_at = now + timedelta(seconds=delay)
        data = VerificationDeferred(
            request_id=rid, holder_id=row["holder_id"], attempt=attempt, retry_at=retry_at, detail=detail
        )
        with self.store.transaction() as db:
            self.store.enqueue(db, stable_id("verification.deferred", rid, attempt), rid, data, now)
            self.store.mark_deferred(db, rid, attempt, retry_at)
        return "deferred"

    def relay(self) -> int:
        """Publish what the outbox holds, in order, under the ids and times it was written with."""
        return self.store.relay(self.publisher)
