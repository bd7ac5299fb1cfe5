"""A real PostgreSQL server for the tests: ``MRA_TEST_POSTGRES_URL``, else one started for the session.

The server is Debian's (``/usr/lib/postgresql/*/bin``; ``.ci/run`` installs the ``postgresql`` package where it is
missing), in a temporary directory, on a free loopback port. PostgreSQL refuses to run as root, so as root it runs
as the ``postgres`` system user (``runuser``). Each test gets its own database schema through
:func:`fresh_schema`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "fresh_schema", "postgres_url"]


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("no PostgreSQL server here: apt-get install postgresql (.ci/run does)")


class PostgresServer:
    """initdb + pg_ctl in a temporary directory, as an unprivileged user."""

    def __init__(self) -> None:
        from mra.events.broker import free_port

        self.bin = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="mra-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.root, self.user)
            os.chmod(self.root, 0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.root)

    def start(self) -> str:
        init = self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "mra", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr[-600:]}")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB"
        )
        started = self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        if started.returncode != 0:
            log = (self.root / "server.log").read_text(errors="replace")[-800:]
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr[-400:]} {log}")
        return f"postgresql://mra@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    env = os.environ.get("MRA_TEST_POSTGRES_URL")
    if env:
        yield env
        return
    server = PostgresServer()
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def fresh_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"
