"""Wire the unsubscribe web app to the state folder and the campaigns, and run it.

`kzmail serve` loads every campaign it is given (or finds in `campaigns/`) to know each
list's name and language, checks tokens with the current and retired secrets, and
records each unsubscribe in the state database's suppression list, which every later
`check`, `send` and `clean` honours. `kzmail secret rotate` lives here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kzmail import campaign_file
from kzmail.errors import CampaignError, KzmailError, NoCampaignFile, StateError
from kzmail.models import Workspace
from kzmail.state.journal import Journal
from kzmail.state.secret import RETIRED_FILE, SECRET_FILE, load_signer, rotate_secret
from kzmail.tokens import RetiredSecret, TokenSigner
from kzmail.web.server import bind, make_server
from kzmail.web.unsubscribe import ListInfo, UnsubscribeApp, unsubscribe_app

DEFAULT_PORT = 8025
REASONS = {"one-click": "unsubscribe: one-click", "page": "unsubscribe: web page"}


def campaign_files(ws: Workspace, sources: Sequence[Path]) -> list[Path]:
    """Campaign files named, or found in named folders (default: `campaigns/`)."""
    found: list[Path] = []
    for source in sources or [ws.campaigns]:
        if source.is_dir():
            found += sorted(p for p in source.glob("*.y*ml") if p.suffix in {".yaml", ".yml"})
        elif source.is_file():
            found.append(source)
        else:
            raise CampaignError("no such campaign file or folder", path=source)
    if not found:
        raise NoCampaignFile(
            "no campaign file (*.yaml) found: the unsubscribe service needs "
            "one to know each list's name and language",
            path=", ".join(map(str, sources or [ws.campaigns])),
        )
    return found


class LiveLists(Mapping[str, ListInfo]):
    """list_id -> ListInfo from the campaign files, read again when they change.

    At most once per `interval` seconds a lookup looks at the files (the folders are listed
    again, so a campaign added after `serve` started is served too). A file that no longer
    loads (a draft being edited) is reported once through `on_problem` and keeps its last
    good list, so its readers can still unsubscribe; the other files are served as they are.
    """

    def __init__(
        self,
        ws: Workspace,
        sources: Sequence[Path],
        on_problem: Callable[[str], None] = lambda _: None,
        interval: float = 1.0,
    ) -> None:
        self._ws, self._sources, self._report = ws, list(sources), on_problem
        self._interval = interval
        self._checked = -interval
        self._stamps: dict[Path, tuple[int, int, int]] = {}
        self._by_file: dict[Path, tuple[str, ListInfo]] = {}
        self._lists: dict[str, ListInfo] = {}
        self.refresh(force=True)

    def _files(self) -> list[Path]:
        try:
            return campaign_files(self._ws, self._sources)
        except CampaignError:
            return list(self._stamps)  # a folder vanished for a moment: keep what we have

    def refresh(self, *, force: bool = False) -> None:
        now = self._ws.clock()
        if not force and now - self._checked < self._interval:
            return
        self._checked = now
        stamps: dict[Path, tuple[int, int, int]] = {}
        for path in self._files():
            try:
                found = path.stat()
            except OSError:
                continue
            stamps[path] = (found.st_mtime_ns, found.st_size, found.st_ino)
            if self._stamps.get(path) != stamps[path]:
                self._load(path)
        for gone in set(self._by_file) - set(stamps):
            del self._by_file[gone]
        self._stamps = stamps
        lists: dict[str, ListInfo] = {}
        for path in stamps:
            if path in self._by_file:
                list_id, info = self._by_file[path]
                lists.setdefault(list_id, info)
        self._lists = lists

    def _load(self, path: Path) -> None:
        try:
            campaign = campaign_file.load(path)
        except KzmailError as exc:
            kept = " (its list is still served as before)" if path in self._by_file else ""
            self._report(f"{exc}{kept}")
            return
        info = ListInfo(campaign.list_name or campaign.name, campaign.language)
        self._by_file[path] = (campaign.list_id, info)

    def __getitem__(self, list_id: str) -> ListInfo:
        self.refresh()
        return self._lists[list_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)


def list_directory(paths: Sequence[Path]) -> dict[str, ListInfo]:
    """list_id -> (list name, language) from the campaign files; the first file wins."""
    lists: dict[str, ListInfo] = {}
    for path in paths:
        campaign = campaign_file.load(path)
        lists.setdefault(
            campaign.list_id, ListInfo(campaign.list_name or campaign.name, campaign.language)
        )
    return lists


class JournalRecorder:
    """Records unsubscribes over one long-lived connection, in one thread of its own.

    An SQLite connection belongs to the thread that opened it, and opening and closing
    one per request costs a WAL checkpoint each time (see
    docs/decisions/0006-one-connection-for-unsubscribes.md).
    """

    def __init__(self, state: Path) -> None:
        self._state = state
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kzmail-journal")
        self._journal: Journal | None = None

    def _record(self, list_id: str, address: str, via: str) -> None:
        try:
            if self._journal is None:
                self._journal = Journal(self._state)
            self._journal.suppress(list_id, address, REASONS.get(via, "unsubscribe"))
        except KzmailError as exc:
            if self._journal is not None:  # start afresh with the next request
                self._journal.close()
                self._journal = None
            raise StateError(f"cannot record the unsubscribe: {exc}") from exc

    def __call__(self, list_id: str, address: str, via: str) -> None:
        try:
            self._thread.submit(self._record, list_id, address, via).result(timeout=60)
        except TimeoutError:
            raise StateError("the state database did not answer within 60 s") from None


class CurrentSigner:
    """The signer for the secrets on disk now: `secret rotate` needs no restart of `serve`.

    Each call costs two `stat`s; the files are read again only when one has changed.
    """

    def __init__(self, state: Path) -> None:
        self._state = state
        self._stamp: tuple[int, ...] = ()
        self._signer: TokenSigner | None = None

    def _now(self) -> tuple[int, ...]:
        stamp: list[int] = []
        for name in (SECRET_FILE, RETIRED_FILE):
            try:
                info = (self._state / name).stat()
                stamp += [info.st_mtime_ns, info.st_ino, info.st_size]
            except OSError:
                stamp += [-1, -1, -1]
        return tuple(stamp)

    def __call__(self) -> TokenSigner:
        stamp = self._now()
        if self._signer is None or stamp != self._stamp:
            self._signer = load_signer(self._state)
            self._stamp = self._now()
        return self._signer


def build_app(
    ws: Workspace,
    sources: Sequence[Path] = (),
    on_problem: Callable[[str], None] = lambda _: None,
) -> tuple[UnsubscribeApp, Mapping[str, ListInfo]]:
    """The unsubscribe app for these campaigns (reloaded when they change) and the current
    state folder. A campaign that does not load is reported through `on_problem`; if none
    loads, the first problem is raised."""
    problems: list[str] = []
    campaign_files(ws, sources)  # no campaign at all: one clear error

    def report(problem: str) -> None:
        problems.append(problem)
        on_problem(problem)

    lists = LiveLists(ws, sources, report)
    if not lists:
        campaign_file.load(campaign_files(ws, sources)[0])  # raises the first file's error
        raise CampaignError(problems[0] if problems else "no campaign could be loaded")
    state = ws.state
    language = next(iter(lists.values())).language
    signer = CurrentSigner(state)
    signer()  # a damaged secret stops `serve` at once
    return unsubscribe_app(signer, lists, JournalRecorder(state), language), lists


@dataclass(frozen=True)
class Serving:
    url: str
    lists: Mapping[str, ListInfo]


def serve(
    ws: Workspace,
    sources: Sequence[Path],
    host: str,
    port: int,
    on_ready: Callable[[Serving], None] = lambda _: None,
    on_problem: Callable[[str], None] = lambda _: None,
) -> None:
    """Run the unsubscribe service until interrupted (from a server bundle if `ws.state`
    is one: then no campaign is read)."""
    from kzmail.services.bundle import is_bundle
    from kzmail.services.server import build_bundle_app

    lists: Mapping[str, ListInfo]
    if is_bundle(ws.state):
        signer = CurrentSigner(ws.state)
        signer()  # a damaged secret stops `serve` at once
        application, lists = build_bundle_app(ws, signer)
    else:
        application, lists = build_app(ws, sources, on_problem)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    on_ready(Serving(f"http://{host}:{bound}", lists))
    make_server(application, sock).run(sockets=[sock])


def rotate(ws: Workspace, grace_days: float) -> RetiredSecret:
    """Make a new unsubscribe secret; old links keep working for `grace_days`."""
    return rotate_secret(ws.state, grace_days * 86400, clock=ws.clock)
