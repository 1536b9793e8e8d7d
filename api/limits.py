"""Request body size limit, enforced before FastAPI parses anything (problem+json 413)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_MEDIA_TYPE, TYPE_BASE


def _replay(body: bytes, receive: Receive, first: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if first is not None and not sent:
            sent = True
            return first
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodySizeLimit:
    """Rejects bodies over ``max_bytes`` by Content-Length, or while streaming chunked uploads."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_bytes:
                await self._reject(scope, send, int(length))
                return
            await self.app(scope, receive, send)  # the server enforces the declared length
            return
        # Unknown length (chunked): buffer up to the limit before the app sees anything, so the
        # rejection is a clean 413 rather than a parse error half-way through the body.
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(bytes(body), receive, first=message), send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._reject(scope, send, len(body))
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _reject(self, scope: Scope, send: Send, size: int) -> None:
        body = json.dumps({
            "type": TYPE_BASE + "request_too_large", "title": "Content Too Large", "status": 413,
            "detail": f"request body is {size} bytes or more; the limit is {self.max_bytes} bytes "
                      "(MEOW_MAX_BODY_BYTES)",
            "instance": scope.get("path"), "code": "request_too_large", "errors": None}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
