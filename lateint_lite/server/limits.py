"""What one HTTP request may ask of the server, and the body-size guard that enforces the first."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from .http_errors import RequestTooLargeError, error_payload

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ServerLimits:
    """Upper bounds per request: body bytes, ``k``, queries in one search_many, ids in one rerank."""

    max_body_bytes: int = 8 * 1024 * 1024
    max_k: int = 1000
    max_queries: int = 256
    max_ids: int = 10_000

    def to_dict(self) -> dict[str, int]:
        return {
            "max_body_bytes": self.max_body_bytes,
            "max_k": self.max_k,
            "max_queries": self.max_queries,
            "max_ids": self.max_ids,
        }


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413, by Content-Length up front and
    otherwise by reading the body (at most ``max_bytes`` of it) before the app sees it, since
    chunked uploads declare no length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than {self.max_bytes} bytes"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_too_large(send, too_large)
            return
        messages, received = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await _send_too_large(send, too_large)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


async def _send_too_large(send: Send, message: str) -> None:
    """A 413 response in the server's error shape, sent before the body is read."""
    body = json.dumps(error_payload(RequestTooLargeError.__name__, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
