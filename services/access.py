"""Who may use the web door: bearer tokens for employers, bureau clerks and operators, and which requests are whose.

An operator issues a token with ``mra access add-employer`` (tied to the employer's unified social credit code),
``add-clerk`` (tied to one jurisdiction) or ``add-operator``. The token is printed once; only its SHA-256 is kept
(the secret is 256 random bits, so a plain hash is enough), in ``access/tokens.json``, created 0600 in a 0700
directory and replaced atomically, so a crash never leaves it half-written. ``access/requests.db`` records which
employer submitted which request: an employer sees only its own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mra.core.errors import MraError, NotFound, ValidationFailed
from mra.core.plugins import Registry
from mra.services.platform.request import credit_code_problem

__all__ = ["ROLES", "AccessStore", "Principal", "Role"]

Role = Literal["employer", "clerk", "operator"]
ROLES: tuple[Role, ...] = ("employer", "clerk", "operator")
_NAME_MAX = 200
_TOKEN = re.compile(r"^mra_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class Principal:
    """A token's holder: an employer (by credit code), a clerk (by jurisdiction) or an operator."""

    token_id: str
    role: Role
    name: str
    credit_code: str | None = None
    jurisdiction: str | None = None
    created_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


class AccessStore:
    """Tokens and request ownership under ``<state dir>/access``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "access"
        self.tokens_path = self.root / "tokens.json"
        self.requests_path = self.root / "requests.db"

    # tokens ------------------------------------------------------------------------------------------------------
    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.tokens_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise MraError(f"{self.tokens_path} is not valid JSON ({e.msg}); restore it from a backup") from None
        if not isinstance(data, dict):
            raise MraError(f"{self.tokens_path} is not a token file; restore it from a backup")
        return data

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        _private_dir(self.root)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tokens.", suffix=".tmp")  # mkstemp makes it 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=2, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.tokens_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _add(self, role: Role, name: str, **scope: str) -> tuple[Principal, str]:
        name = " ".join(name.split())
        if not name:
            raise ValidationFailed("NAME must not be empty")
        if len(name) > _NAME_MAX:
            raise ValidationFailed(f"NAME must be at most {_NAME_MAX} characters, got {len(name)}")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        principal = Principal(token_id, role, name, created_at=created, **scope)
        data = self._read()
        data[token_id] = principal.as_dict() | {"sha256": _digest(secret)}
        self._write(data)
        return principal, f"mra_{token_id}_{secret}"

    def add_employer(self, name: str, credit_code: str) -> tuple[Principal, str]:
        """A token for the employer with this unified social credit code (checked as a request's would be)."""
        code = credit_code.strip().upper()
        problem = credit_code_problem(code)
        if problem:
            raise ValidationFailed(problem.replace("employer.credit_code", "--credit-code"))
        return self._add("employer", name, credit_code=code)

    def add_clerk(self, name: str, jurisdiction: str, registry: Registry) -> tuple[Principal, str]:
        """A token for a clerk of one jurisdiction's bureau."""
        code = jurisdiction.strip().lower()
        registry.jurisdiction(code)  # NotFound names the loaded ones
        return self._add("clerk", name, jurisdiction=code)

    def add_operator(self, name: str) -> tuple[Principal, str]:
        return self._add("operator", name)

    def principals(self) -> list[Principal]:
        fields = {"token_id", "role", "name", "credit_code", "jurisdiction", "created_at"}
        return [
            Principal(**{k: v for k, v in row.items() if k in fields})
            for _, row in sorted(self._read().items(), key=lambda kv: (kv[1].get("created_at", ""), kv[0]))
        ]

    def remove(self, token_id: str) -> Principal:
        data = self._read()
        if token_id not in data:
            raise NotFound(f"no token {token_id!r} (see `mra access list`)")
        gone = next(p for p in self.principals() if p.token_id == token_id)
        del data[token_id]
        self._write(data)
        return gone

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal a presented token stands for, or None; compared in constant time."""
        if not token:
            return None
        m = _TOKEN.match(token.strip())
        if m is None:
            return None
        row = self._read().get(m.group(1))
        if row is None or not hmac.compare_digest(str(row.get("sha256", "")), _digest(m.group(2))):
            return None
        return next((p for p in self.principals() if p.token_id == m.group(1)), None)

    # request ownership -------------------------------------------------------------------------------------------
    @contextmanager
    def _requests(self) -> Iterator[sqlite3.Connection]:
        _private_dir(self.root)
        os.close(os.open(self.requests_path, os.O_CREAT | os.O_WRONLY, 0o600))
        with closing(sqlite3.connect(str(self.requests_path), timeout=30)) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, credit_code TEXT NOT NULL, "
                "submitted_at TEXT NOT NULL)"
            )
            with db:
                yield db

    def own(self, request_id: str, credit_code: str, submitted_at: datetime) -> None:
        """Record that the employer ``credit_code`` submitted ``request_id`` (first submission wins)."""
        with self._requests() as db:
            db.execute(
                "INSERT OR IGNORE INTO requests VALUES (?, ?, ?)",
                (request_id, credit_code.upper(), submitted_at.astimezone(UTC).isoformat()),
            )

    def owner(self, request_id: str) -> str | None:
        with self._requests() as db:
            row = db.execute("SELECT credit_code FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return str(row[0]) if row else None

    def requests_of(self, credit_code: str, limit: int = 200) -> list[str]:
        """The employer's requests, newest first."""
        with self._requests() as db:
            rows = db.execute(
                "SELECT request_id FROM requests WHERE credit_code = ? ORDER BY submitted_at DESC, request_id LIMIT ?",
                (credit_code.upper(), limit),
            ).fetchall()
        return [str(r[0]) for r in rows]
