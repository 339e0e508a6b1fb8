"""The sync routes of a bundle-served unsubscribe server: the organiser pulls sealed records.

`GET /sync/records?after=N` answers the next sealed records (base64) above cursor N as JSON,
with `more` when there are others; `POST /sync/ack` with `through=N` lets the server forget
the records up to N. Both need `Authorization: Bearer <credential>`, compared in constant
time against the SHA-256 kept in the bundle; anyone else gets 401 and nothing. The records
are opaque here: only the organiser's private key opens them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kzmail.errors import BodyTooLarge, ClientGone, KzmailError
from kzmail.web.pages import parse_form, read_body

PAGE = 500  # records per answer


class SyncRoutes:
    """Handlers around an injected credential hash and record store functions."""

    def __init__(
        self,
        credential_sha256: bytes,
        after: Callable[[int, int], list[tuple[int, bytes]]],
        forget_through: Callable[[int], int],
    ) -> None:
        self._expected = credential_sha256
        self._after = after
        self._forget = forget_through

    def _allowed(self, request: Request) -> bool:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        digest = hashlib.sha256(given.strip().encode()).digest()
        return scheme.lower() == "bearer" and hmac.compare_digest(digest, self._expected)

    @staticmethod
    def _refuse() -> Response:
        return PlainTextResponse("unauthorized\n", 401, headers={"www-authenticate": "Bearer"})

    async def records(self, request: Request) -> Response:
        if not self._allowed(request):
            return self._refuse()
        try:
            cursor = int(request.query_params.get("after", "0"))
        except ValueError:
            return PlainTextResponse("after: not a number\n", 400)
        try:
            found = self._after(cursor, PAGE + 1)
        except KzmailError:
            return PlainTextResponse("busy\n", 503, headers={"retry-after": "60"})
        items = [
            {"seq": seq, "box": base64.b64encode(box).decode("ascii")} for seq, box in found[:PAGE]
        ]
        return JSONResponse({"records": items, "more": len(found) > PAGE})

    async def ack(self, request: Request) -> Response:
        if not self._allowed(request):
            return self._refuse()
        try:
            body = await read_body(request, 1024)
        except (BodyTooLarge, ClientGone):
            return PlainTextResponse("bad request\n", 400, headers={"connection": "close"})
        fields = parse_form(request.headers.get("content-type", ""), body) or {}
        try:
            through = int(fields.get("through", ""))
        except ValueError:
            return PlainTextResponse("through: not a number\n", 400)
        try:
            dropped = self._forget(through)
        except KzmailError:
            return PlainTextResponse("busy\n", 503, headers={"retry-after": "60"})
        return JSONResponse({"forgotten": dropped})

    def routes(self) -> list[Route]:
        return [
            Route("/sync/records", self.records, methods=["GET"]),
            Route("/sync/ack", self.ack, methods=["POST"]),
        ]
