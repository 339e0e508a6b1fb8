"""What kzmail's small web pages share: security headers, bounded bodies, forms, a page shell.

Pages are plain HTML with one inline stylesheet allowed by its CSP hash (so they work
under any path prefix a reverse proxy adds), no scripts unless a page says so, and no
third-party assets. Request bodies are read only up to a limit, and forms are parsed
with the standard library (urlencoded and multipart/form-data).
"""

from __future__ import annotations

import base64
import hashlib
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qs

from markupsafe import Markup, escape
from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kzmail.errors import BodyTooLarge, ClientGone

STYLE = """
:root { color-scheme: light; }
body { margin: 0; background: #f2efeb; color: #1a1a1a;
  font: 17px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 34rem; margin: 2rem auto; padding: 1.5rem; background: #fff;
  border-top: 6px solid #8b0000; }
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 1rem; }
p { margin: 0 0 1rem; overflow-wrap: anywhere; }
button { font: inherit; font-weight: bold; color: #fff; background: #8b0000; border: 0;
  border-radius: 4px; padding: .75rem 1.5rem; cursor: pointer; min-height: 44px; }
button:hover { background: #6d0000; }
button:focus-visible, a:focus-visible, select:focus-visible { outline: 3px solid #1a1a1a;
  outline-offset: 3px; }
a { color: #8b0000; }
.note { color: #4a4a4a; font-size: .95rem; }
"""


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inline `<style>` content."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(css.encode()).digest()).decode() + "'"


STYLE_HASH = style_hash(STYLE)

PAGE_CSP = (
    f"default-src 'none'; style-src {STYLE_HASH}; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


class SecurityHeaders:
    """ASGI middleware: every response gets the security headers (and a default CSP)."""

    def __init__(self, app: ASGIApp, csp: str = PAGE_CSP, *, cache: str | None = None) -> None:
        self.app = app
        self.headers = {**SECURITY_HEADERS, "content-security-policy": csp}
        if cache is not None:
            self.headers["cache-control"] = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)  # a route may set its own CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def read_body(request: Request, limit: int, drain: int = 64 * 1024) -> bytes:
    """The whole request body, or `BodyTooLarge` once it passes `limit` bytes.

    A modest excess (up to `drain` bytes) is read and dropped first, so the client gets
    to see the 413 page instead of a connection reset; anything bigger is cut off.
    `ClientGone` if the connection ends before the body does.
    """
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise BodyTooLarge
    if declared is not None and int(declared) > limit + drain:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit + drain:
                raise BodyTooLarge
            if size <= limit:
                chunks.append(chunk)
    except ClientDisconnect:
        raise ClientGone from None
    if size > limit:
        raise BodyTooLarge
    return b"".join(chunks)


def parse_form(content_type: str, body: bytes, max_fields: int = 20) -> dict[str, str] | None:
    """Fields of an urlencoded or multipart/form-data body; None if it is malformed."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            parsed = parse_qs(
                body.decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=True,
                max_num_fields=max_fields,
            )
        except (UnicodeDecodeError, ValueError):
            return None
        return {name: values[0] for name, values in parsed.items()}
    if kind == "multipart/form-data":
        return _parse_multipart(content_type, body, max_fields)
    return None


def _parse_multipart(content_type: str, body: bytes, max_fields: int) -> dict[str, str] | None:
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or message.defects:
        return None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if part.defects or not isinstance(name, str) or not isinstance(payload, bytes):
            return None
        try:
            fields.setdefault(name, payload.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        if len(fields) > max_fields:
            return None
    return fields


def page(
    language: str,
    title: str,
    body: Markup | str,
    status: int = 200,
    *,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A small, complete HTML page; `body` is escaped unless it is `Markup`."""
    html = (
        "<!doctype html>\n"
        f'<html lang="{escape(language)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><main>\n<h1>{escape(title)}</h1>\n{escape(body)}\n</main></body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=headers)
