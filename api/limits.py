"""Request body limits, enforced while the body streams in (413 before the rest is read)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: `limits` maps a method and path to the most bytes its body may have (the
    uploads); every other request's body may have `default` bytes."""

    def __init__(self, app: ASGIApp, limits: dict[tuple[str, str], int], default: int):
        self.app, self.limits, self.default = app, limits, default

    def _limit_for(self, scope: Scope) -> int:
        for (method, prefix), limit in self.limits.items():
            if scope["method"] == method and scope["path"].rstrip("/") == prefix:
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self._limit_for(scope)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await self._reject(send, limit)
        received = 0
        exceeded = replaced = False

        async def counting_receive():
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message):
            # The framework may turn our exception into its own 400; answer 413 instead.
            nonlocal replaced
            if exceeded:
                if not replaced:
                    replaced = True
                    await self._reject(send, limit)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if not replaced:
                await self._reject(send, limit)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        body = json.dumps(
            {"error": "PayloadTooLarge", "detail": f"the request body is larger than {limit} bytes"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
