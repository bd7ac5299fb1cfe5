"""What the log says about a holder before an employment fact is published about them: whether the
verification platform knows the holder at all, and where they are employed now.

The local platform read model answers the first question quickly where the platform runs on this machine;
otherwise, and for employment, the log itself is read (the verification and holder topics), so the answer is
the same wherever the command runs. Nothing here decides anything: it only keeps typos off the append-only log.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from mra.events.bus import Transport
from mra.events.envelope import DecodeError, decode
from mra.events.schemas import EmploymentEnded, EmploymentStarted
from mra.events.topics import Topics
from mra.services.audit import read_log
from mra.services.platform.intake import Intake
from mra.services.platform.settings import PlatformPaths
from mra.services.platform.store import PlatformStore

__all__ = ["HolderOnLog", "known_here", "read_holder"]


def known_here(state_dir: Path, holder_id: str) -> bool:
    """Whether this state dir's platform read model or intake has a request or a certificate of the holder."""
    paths = PlatformPaths(state_dir)
    for path, kind in ((paths.read_model, PlatformStore), (paths.intake, Intake)):
        if not path.exists():
            continue
        try:
            with closing(kind(path)) as store:
                if store.knows_holder(holder_id):
                    return True
        except sqlite3.Error:
            continue
    return False


@dataclass
class HolderOnLog:
    """One holder as the log has them, and every holder id the verification topic names (for suggestions)."""

    holder_id: str
    known: bool = False
    employed: dict[str, str] = field(default_factory=dict)
    """jurisdiction → employer name of each current employment"""
    holders: set[str] = field(default_factory=set)


def read_holder(transport: Transport, topics: Topics, holder_id: str, *, timeout: float = 120) -> HolderOnLog:
    """Read the verification and holder topics to the end: is ``holder_id`` known to the platform (a request
    or a result names it), and where is it employed now (starts and ends folded in log order)."""
    out = HolderOnLog(holder_id)
    verification = topics.name("verification")
    for record in read_log(transport, [verification, topics.name("holders")], timeout=timeout):
        try:
            data = decode(record).data
        except DecodeError:
            continue
        who = data.subject()
        if record.topic == verification and who:
            out.holders.add(who)
            if who == holder_id:
                out.known = True
        if who != holder_id:
            continue
        if isinstance(data, EmploymentStarted):
            out.employed[data.jurisdiction] = data.employer.name
        elif isinstance(data, EmploymentEnded):
            out.employed.pop(data.jurisdiction, None)
    return out
