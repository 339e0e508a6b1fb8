"""`kzmail preview --serve`: keep the campaign compiled, recompile when its files change.

`LivePreview` watches the campaign file and what it names (template, article, subscriber
list) by their modification times. Each check is a few `stat` calls; only a change
recompiles, through `workspace.prepare`, once. A mistake in a file does not stop the server:
the page shows the one-line error until the file is fixed.
"""

from __future__ import annotations

import webbrowser
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from kzmail.errors import KzmailError
from kzmail.lists.checker import ListChecker
from kzmail.models import Rendered, Subscriber, Workspace, pick_subscriber
from kzmail.services import workspace
from kzmail.web.preview import preview_app
from kzmail.web.server import bind, make_server

DEFAULT_PORT = 8026
PICKER_LIMIT = 200  # the picker lists the first subscribers; any other works by address
PLACEHOLDER = Subscriber(email="subscriber@example.org", name="")

Signature = tuple[tuple[str, int, int], ...]


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), info.st_mtime_ns, info.st_size)


class LivePreview:
    """The compiled campaign, current with its files; renders per subscriber, cached."""

    def __init__(self, ws: Workspace, path: Path, picker_limit: int = PICKER_LIMIT) -> None:
        self.workspace = ws
        self.path = path
        self._limit = picker_limit
        self._version = 0
        self._watched: list[Path] = [path]
        self._signature: Signature = ()
        self._prepared: workspace.Prepared | None = None
        self._subscribers: list[Subscriber] = []
        self._failure: KzmailError | None = None
        self._cache: dict[str, tuple[str, Rendered]] = {}

    @property
    def title(self) -> str:
        return self._prepared.campaign.subject if self._prepared else str(self.path)

    @property
    def error(self) -> str | None:
        return None if self._failure is None else str(self._failure)

    def _now(self) -> Signature:
        return tuple(_stat(path) for path in self._watched)

    def refresh(self) -> int:
        """Recompile if a watched file changed since the last check; the current version."""
        if self._now() != self._signature:
            self._load()
            self._signature = self._now()
            self._version += 1
        return self._version

    def _load(self) -> None:
        self._cache.clear()
        try:
            prepared = workspace.prepare(self.workspace, self.path)
            campaign = prepared.campaign
            self._watched = [
                self.path,
                campaign.template,
                campaign.article.file,
                *campaign.list_paths,
            ]
            found: list[Subscriber] = []
            with ListChecker(campaign.subscribers) as checker:
                for item in checker.subscribers():
                    found.append(item)
                    if len(found) >= self._limit:
                        break
        except KzmailError as exc:
            self._failure = exc
            return
        self._prepared, self._subscribers, self._failure = prepared, found, None

    def raise_failure(self) -> None:
        """Raise the error that stops the preview, if there is one."""
        if self._failure is not None:
            raise self._failure

    def addresses(self) -> list[str]:
        return [s.email for s in self._subscribers]

    def _subscriber(self, address: str | None) -> Subscriber:
        wanted = (address or "").strip() or None  # none given: the first
        found = pick_subscriber(self._subscribers, wanted)
        if found is None and wanted and self._prepared is not None:
            with ListChecker(self._prepared.campaign.subscribers) as checker:
                found = pick_subscriber(checker.subscribers(), wanted)
        if found is not None:
            return found
        return self._subscribers[0] if self._subscribers else PLACEHOLDER

    def image(self, cid: str) -> tuple[str, bytes] | None:
        images = self._prepared.template.images if self._prepared is not None else ()
        return next(((i.content_type, i.data) for i in images if i.cid == cid), None)

    def render(self, address: str | None) -> tuple[str, Rendered] | None:
        """(address, both parts) for that subscriber (default: the first), or None on error."""
        if self._prepared is None or self._failure is not None:
            return None
        key = (address or "").strip().lower()
        if key not in self._cache:
            subscriber = self._subscriber(address)
            try:
                parts, _ = self._prepared.render(subscriber)
            except KzmailError as exc:  # shown until the next change of a file
                self._failure = exc
                return None
            self._cache[key] = (subscriber.email, parts)
        return self._cache[key]


def serve_preview(
    ws: Workspace,
    path: Path | None,
    *,
    port: int = DEFAULT_PORT,
    address: str | None = None,
    open_browser: bool = True,
    on_ready: Callable[[str], None] = lambda _: None,
) -> None:
    """Serve the live preview on localhost until interrupted; open it in the browser."""
    preview = LivePreview(ws, workspace.resolve_campaign(ws, path))
    preview.refresh()
    preview.raise_failure()
    sock = bind("127.0.0.1", port)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    if address:
        url += "?" + urlencode({"to": address})
    on_ready(url)
    if open_browser:
        webbrowser.open(url)
    make_server(preview_app(preview), sock).run(sockets=[sock])
