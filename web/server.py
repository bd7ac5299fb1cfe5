"""Running the application under uvicorn, in the foreground (``mra serve``) or beside other services (``mra up``)."""

from __future__ import annotations

import threading
from pathlib import Path

import click
import uvicorn

from mra.web.app import create_app
from mra.web.backend import Backend

__all__ = ["WebServer", "run"]


class WebServer:
    """A uvicorn server in a thread, stopped with :meth:`stop`."""

    def __init__(self, state_dir: Path, bootstrap: str | None, host: str, port: int) -> None:
        self.backend = Backend.at(state_dir, bootstrap)
        config = uvicorn.Config(create_app(self.backend), host=host, port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mra-web", daemon=True)
        self.address = f"http://{host}:{port}/"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.backend.close()


def run(state_dir: Path, bootstrap: str | None, host: str, port: int) -> None:
    backend = Backend.at(state_dir, bootstrap)
    click.echo(f"serving http://{host}:{port}/ (API at /api/v1, OpenAPI at /openapi.json); Ctrl-C to stop", err=True)
    try:
        uvicorn.run(create_app(backend), host=host, port=port, log_level="warning", access_log=False)
    finally:
        backend.close()
