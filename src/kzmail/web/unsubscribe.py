"""The unsubscribe web app (Starlette): the page behind every `<unsubscribe.url>/u/<token>`.

`GET /u/<token>` shows which address (masked: `a…@example.org`) and list the link is for,
in the list's language, with one button; it never unsubscribes (link scanners open every
URL). `POST /u/<token>` with `List-Unsubscribe=One-Click` (RFC 8058; urlencoded or
multipart, no cookies, no CSRF token, since mail providers post it blind) hands (list id,
address) to `record` and answers 200; posting again answers the same. Bad, forged and
expired tokens get one plain page that says nothing about any address. `GET /healthz` answers `ok`.
The app never opens the database itself: `record` is injected by the service layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kzmail.errors import BodyTooLarge, ClientGone, KzmailError
from kzmail.tokens import Refusal, TokenSigner
from kzmail.web.pages import SecurityHeaders, page, parse_form, read_body

BODY_LIMIT = 4096  # a one-click body is 26 bytes; a multipart one a few hundred
ONE_CLICK = ("List-Unsubscribe", "One-Click")


@dataclass(frozen=True)
class ListInfo:
    """What the page says about a list: its name and the language to say it in."""

    name: str
    language: str
    texts: Mapping[str, str] | None = field(default=None, compare=False)  # else by language


# (list_id, address, via) -> None; via is "one-click" (mail provider) or "page" (button)
Recorder = Callable[[str, str, str], None]

TEXTS: dict[str, dict[str, str]] = {
    "de": {
        "title": "Vom Newsletter abmelden",
        "question": "Soll die Adresse {address} vom Verteiler „{list}“ abgemeldet werden?",
        "button": "Jetzt abmelden",
        "note": "Erst der Knopf meldet ab. Das Öffnen dieser Seite allein ändert nichts.",
        "done_title": "Abgemeldet",
        "done": "Die Adresse {address} ist vom Verteiler „{list}“ abgemeldet. "
        "Von diesem Verteiler kommen keine E-Mails mehr an sie.",
        "bad_title": "Link ungültig",
        "bad": "Dieser Abmelde-Link ist ungültig oder abgelaufen. Bitte nutze den Link aus "
        "der neuesten E-Mail oder antworte auf sie mit der Bitte um Abmeldung.",
        "malformed_title": "Anfrage unvollständig",
        "malformed": "Diese Anfrage konnte nicht gelesen werden. Bitte nutze den Knopf auf "
        "der Abmelde-Seite.",
        "large_title": "Anfrage zu groß",
        "large": "Diese Anfrage ist zu groß.",
        "busy_title": "Gerade nicht möglich",
        "busy": "Die Abmeldung konnte gerade nicht gespeichert werden. Bitte versuche es in "
        "ein paar Minuten noch einmal.",
        "notfound_title": "Nicht gefunden",
        "notfound": "Diese Seite gibt es nicht.",
        "method_title": "Nicht erlaubt",
        "method": "Diese Anfrage ist hier nicht erlaubt.",
    },
    "en": {
        "title": "Unsubscribe from the newsletter",
        "question": "Unsubscribe the address {address} from the list “{list}”?",
        "button": "Unsubscribe now",
        "note": "Only the button unsubscribes. Opening this page alone changes nothing.",
        "done_title": "Unsubscribed",
        "done": "The address {address} is unsubscribed from the list “{list}”. "
        "It will get no more e-mail from this list.",
        "bad_title": "Invalid link",
        "bad": "This unsubscribe link is invalid or has expired. Please use the link in the "
        "latest e-mail, or reply to it asking to be unsubscribed.",
        "malformed_title": "Incomplete request",
        "malformed": "This request could not be read. Please use the button on the "
        "unsubscribe page.",
        "large_title": "Request too large",
        "large": "This request is too large.",
        "busy_title": "Not possible right now",
        "busy": "The unsubscribe could not be saved just now. Please try again in a few minutes.",
        "notfound_title": "Not found",
        "notfound": "There is no such page.",
        "method_title": "Not allowed",
        "method": "This request is not allowed here.",
    },
}


def texts_for(language: str) -> dict[str, str]:
    """The page texts for a BCP 47 tag (`de-AT` -> `de`), English if we have none."""
    return TEXTS.get(language.split("-", 1)[0].lower(), TEXTS["en"])


def _texts(info: ListInfo) -> Mapping[str, str]:
    """A list's page texts: its own (from a server bundle), else its language's."""
    return {**texts_for(info.language), **(info.texts or {})}


class UnsubscribeService:
    """Request handlers around an injected signer, list directory and recorder."""

    def __init__(
        self,
        signer: Callable[[], TokenSigner],
        lists: Mapping[str, ListInfo],
        record: Recorder,
        default_language: str = "en",
    ) -> None:
        self.signer = signer
        self.lists = lists  # may change while serving (campaigns reloaded)
        self.record = record
        self.default_language = default_language

    def _plain(
        self,
        key: str,
        status: int,
        language: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        text = texts_for(language or self.default_language)
        return page(
            language or self.default_language,
            text[f"{key}_title"],
            Markup("<p>{}</p>").format(text[key]),
            status,
            headers=headers,
        )

    def _resolve(self, request: Request) -> tuple[str, str, ListInfo] | Response:
        """(list_id, address, list) from the token, or the refusal page."""
        checked = self.signer().check(str(request.path_params["token"]))
        if isinstance(checked, Refusal):
            return self._plain("bad", 400 if checked is Refusal.MALFORMED else 403)
        list_id, address = checked
        info = self.lists.get(list_id)
        if info is None:  # genuine, but for a list this server does not serve
            return self._plain("bad", 400)
        return list_id, address, info

    async def show(self, request: Request) -> Response:
        resolved = self._resolve(request)
        if isinstance(resolved, Response):
            return resolved
        _, address, info = resolved
        text = _texts(info)
        body = Markup(
            "<p>{question}</p>\n"
            '<form method="post">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<input type="hidden" name="via" value="page">'
            '<button type="submit">{button}</button></form>\n'
            '<p class="note">{note}</p>'
        ).format(
            question=_fill(text["question"], address, info.name),
            button=text["button"],
            note=text["note"],
        )
        return page(info.language, text["title"], body)

    async def unsubscribe(self, request: Request) -> Response:
        resolved = self._resolve(request)
        if isinstance(resolved, Response):
            return resolved
        list_id, address, info = resolved
        try:
            body = await read_body(request, BODY_LIMIT)
        except BodyTooLarge:
            return self._plain("large", 413, info.language, {"connection": "close"})
        except ClientGone:  # nothing recorded; the answer goes nowhere
            return self._plain("malformed", 400, info.language, {"connection": "close"})
        fields = parse_form(request.headers.get("content-type", ""), body)
        if fields is None or fields.get(ONE_CLICK[0]) != ONE_CLICK[1]:
            return self._plain("malformed", 400, info.language)
        via = "page" if fields.get("via") == "page" else "one-click"
        try:
            await run_in_threadpool(self.record, list_id, address, via)
        except KzmailError:
            return self._plain("busy", 503, info.language, {"retry-after": "60"})
        text = _texts(info)
        return page(
            info.language,
            text["done_title"],
            Markup("<p>{}</p>").format(_fill(text["done"], address, info.name)),
        )

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def http_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        headers = exc.headers if isinstance(exc, HTTPException) else None
        key = "method" if status == 405 else "notfound" if status == 404 else "malformed"
        return self._plain(key, status, headers=dict(headers or {}))


def masked(address: str) -> str:
    """A hint that lets the reader recognise their address, not a stranger learn it:
    `a…@example.org`."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}…@{domain}"


def _fill(template: str, address: str, list_name: str) -> Markup:
    """The sentence with the masked address and the list name escaped and emphasised."""
    return escape(template).format(
        address=Markup("<strong>{}</strong>").format(masked(address)), list=list_name
    )


UnsubscribeApp = Starlette  # so callers outside web/ can name the type without starlette


def unsubscribe_app(
    signer: Callable[[], TokenSigner],
    lists: Mapping[str, ListInfo],
    record: Recorder,
    default_language: str = "en",
    extra_routes: Sequence[Route] = (),
) -> UnsubscribeApp:
    """The ASGI app `kzmail serve` runs behind the organisers' HTTPS reverse proxy.

    `signer()` gives the signer to check a token with (it may change: secret rotation);
    `lists` may be a mapping that changes (campaigns reloaded); `extra_routes` are the
    sync routes of a bundle-served server.
    """
    service = UnsubscribeService(signer, lists, record, default_language)
    routes = [
        *extra_routes,
        Route("/u/{token}", service.show, methods=["GET"]),
        Route("/u/{token}", service.unsubscribe, methods=["POST"]),
        Route("/healthz", service.healthz, methods=["GET"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders, cache="no-store")],
        exception_handlers={404: service.http_error, 405: service.http_error},
    )
