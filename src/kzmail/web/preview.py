"""The live preview pages (Starlette): the newsletter at 600 px and 375 px, and its text part.

`GET /` shows a subscriber picker (a plain GET form), the HTML part in two frames side
by side (desktop 600 px, mobile 375 px) and the plain-text part. `GET /frame` is the
newsletter itself, with scripts blocked by its own CSP. A tiny script polls
`GET /version` and reloads the page when the campaign, article or template changed;
recompiling is the injected `PreviewSource`'s job, once per change, not per request.
"""

from __future__ import annotations

import re
from typing import Protocol
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from kzmail.models import Rendered
from kzmail.web.pages import SecurityHeaders, style_hash


class PreviewSource(Protocol):
    """What the pages need: a version that changes with the files, and renders."""

    def refresh(self) -> int:
        """Recompile if a watched file changed; return the current version."""

    @property
    def title(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    def addresses(self) -> list[str]: ...

    def render(self, address: str | None) -> tuple[str, Rendered] | None: ...

    def image(self, cid: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of the campaign's inline image with this Content-ID."""


WIDTHS = (("Desktop", 600), ("Mobile", 375))
_CID = re.compile(r'src="cid:([^"]+)"')
CSS = """
body { margin: 0; background: #e9e6e1; color: #1a1a1a;
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
header { padding: .75rem 1rem; background: #fff; border-bottom: 1px solid #c9c4bc; }
h1 { font-size: 1.1rem; margin: 0 0 .5rem; }
form { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
label { font-weight: bold; }
select, button { font: inherit; padding: .3rem .5rem; }
button { background: #8b0000; color: #fff; border: 0; border-radius: 3px; cursor: pointer; }
:focus-visible { outline: 3px solid #1a1a1a; outline-offset: 2px; }
.error { margin: 1rem; padding: 1rem; background: #fff; border-left: 6px solid #8b0000;
  white-space: pre-wrap; }
.frames { display: flex; gap: 1.5rem; align-items: flex-start; padding: 1rem; }
figure { margin: 0; }
figcaption { font-weight: bold; margin: 0 0 .3rem; }
iframe { display: block; border: 1px solid #c9c4bc; background: #fff; }
.text { padding: 0 1rem 2rem; }
pre { background: #fff; padding: 1rem; max-width: 80ch; white-space: pre-wrap;
  overflow-wrap: anywhere; border: 1px solid #c9c4bc; }
"""
SCRIPT = """(function () {
  "use strict";
  var version = document.documentElement.getAttribute("data-version");
  function poll() {
    fetch("version", {cache: "no-store"}).then(function (r) { return r.text(); })
      .then(function (v) {
        if (v.trim() !== version) { location.reload(); } else { setTimeout(poll, 700); }
      }, function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 700);
  var picker = document.getElementById("to");
  if (picker) { picker.addEventListener("change", function () { picker.form.submit(); }); }
  // grow each frame to its content, so only the page scrolls, never a frame
  Array.prototype.forEach.call(document.querySelectorAll("iframe"), function (frame) {
    function fit() {
      var doc = frame.contentDocument;
      if (doc && doc.documentElement) {
        frame.style.height = doc.documentElement.scrollHeight + "px";
      }
    }
    frame.addEventListener("load", fit);
    fit();
  });
})();
"""
PAGE_CSP = (
    f"default-src 'none'; script-src 'self'; connect-src 'self'; "
    f"style-src {style_hash(CSS)}; frame-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The newsletter: its own inline styles, remote images as a mail client would show them,
# no scripts at all, framed only by the preview page.
FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http: data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
)


class PreviewPages:
    def __init__(self, source: PreviewSource) -> None:
        self.source = source

    async def index(self, request: Request) -> Response:
        version = self.source.refresh()
        wanted = request.query_params.get("to")
        error = self.source.error
        rendered = None if error else self.source.render(wanted)
        address = rendered[0] if rendered else ""
        options = Markup("").join(
            Markup('<option value="{0}"{1}>{0}</option>').format(
                a, Markup(" selected") if a == address else ""
            )
            for a in self.source.addresses()
        )
        parts = [
            Markup(
                '<header><h1>{title}</h1><form method="get" action="">'
                '<label for="to">Subscriber</label><select id="to" name="to">{options}</select>'
                '<button type="submit">Show</button></form></header>'
            ).format(title=self.source.title, options=options)
        ]
        if error:
            parts.append(Markup('<p class="error" role="alert">{}</p>').format(error))
        if rendered:
            query = "frame?" + urlencode({"to": address, "v": version})
            parts.append(Markup('<div class="frames">'))
            for name, width in WIDTHS:
                parts.append(
                    Markup(
                        '<figure><figcaption id="cap-{w}">{name} ({w} px)</figcaption>'
                        '<iframe src="{src}" width="{w}" height="900" title="{name} {w} px"'
                        ' aria-labelledby="cap-{w}"></iframe></figure>'
                    ).format(name=name, w=width, src=query)
                )
            parts.append(
                Markup(
                    '</div><section class="text" aria-labelledby="text-h">'
                    '<h2 id="text-h">Plain-text part</h2><pre>{}</pre></section>'
                ).format(rendered[1].text)
            )
        html = Markup(
            '<!doctype html>\n<html lang="en" data-version="{version}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Preview: {title}</title><style>{css}</style></head>\n<body>{body}"
            '<script src="reload.js"></script></body></html>\n'
        ).format(
            version=version,
            title=self.source.title,
            css=Markup(CSS),  # noqa: S704 - our constant
            body=Markup("").join(parts),
        )
        return HTMLResponse(str(html), headers={"content-security-policy": PAGE_CSP})

    async def frame(self, request: Request) -> Response:
        self.source.refresh()
        rendered = self.source.render(request.query_params.get("to"))
        if rendered is None:
            return PlainTextResponse(self.source.error or "no preview", status_code=503)
        # a browser cannot resolve cid:, so inline images are served by `image` below
        html = _CID.sub(lambda m: f'src="image?{urlencode({"id": m.group(1)})}"', rendered[1].html)
        return HTMLResponse(
            html,
            headers={"content-security-policy": FRAME_CSP, "x-frame-options": "SAMEORIGIN"},
        )

    async def image(self, request: Request) -> Response:
        found = self.source.image(request.query_params.get("id", ""))
        if found is None:
            return Response(status_code=404)
        return Response(found[1], media_type=found[0])

    async def version(self, request: Request) -> Response:
        return PlainTextResponse(str(self.source.refresh()))

    async def script(self, request: Request) -> Response:
        return Response(SCRIPT, media_type="text/javascript")


def preview_app(source: PreviewSource) -> Starlette:
    """The ASGI app behind `kzmail preview --serve` (bound to localhost)."""
    pages = PreviewPages(source)
    routes = [
        Route("/", pages.index),
        Route("/frame", pages.frame),
        Route("/image", pages.image),
        Route("/version", pages.version),
        Route("/reload.js", pages.script),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
    ]
    # Only loopback host names: a web page that rebinds its own name to 127.0.0.1 must not
    # be able to read subscriber data out of the preview (DNS rebinding).
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]"]),
            Middleware(SecurityHeaders, PAGE_CSP, cache="no-store"),
        ],
    )
