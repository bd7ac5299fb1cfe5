"""Limits the web door keeps: checks per client (a token bucket) and the size of a request body."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit", "RateLimiter"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RateLimiter:
    """Per-client token buckets: ``burst`` at once, then ``per_minute`` on average. Keeps at most ``clients``
    buckets (the least recently seen go first), so a flood of addresses cannot exhaust memory."""

    def __init__(
        self, per_minute: int, burst: int, clients: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clients = clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, client: str) -> int:
        """0 when ``client`` may go ahead, else the whole seconds until it may (for ``Retry-After``)."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            wait = 0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.clients:
                self._buckets.popitem(last=False)
            return wait


class BodyLimit:
    """ASGI middleware: a body larger than ``limit`` bytes is refused with 413, whether it declares its length or
    not; one within the limit is read here and handed on whole."""

    def __init__(self, app: ASGIApp, limit: int, refuse: Callable[[Scope], ASGIApp]) -> None:
        self.app = app
        self.limit = limit
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    await self.refuse(scope)(scope, receive, send)
                    return
        chunks: list[bytes] = []
        seen = 0
        while True:  # bodies are small: read it whole here, refuse it before the app sees any of it
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = bytes(message.get("body", b""))
            seen += len(chunk)
            if seen > self.limit:
                await self.refuse(scope)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
