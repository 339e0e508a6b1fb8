"""The one place that wires concrete pieces together: campaign -> render -> message -> send.

Commands call these functions; they return plain results and raise `KzmailError`s,
and never print (the CLI does that).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import campaign as campaign_file
from . import subscribers as subscriber_list
from .dkim import DkimKeyError, DkimSigner
from .errors import CampaignError, InputError, SubscriberListError
from .journal import Journal
from .listcheck import ListChecker, ListSummary
from .message import MessageFactory, Outgoing
from .models import Campaign, Rendered, Subscriber
from .ratelimit import RateLimiter, windows_for
from .render import CompiledTemplate, compile_campaign
from .sender import Progress, Sender, SendReport, Transport
from .sink import EmbeddedSink
from .transport import RelayConfig, SmtpTransport
from .unsubscribe import TokenSigner, load_secret, unsubscribe_url

DEFAULT_CAMPAIGNS = Path("campaigns")


def state_dir() -> Path:
    """The state folder: `$KZMAIL_STATE_DIR`, else `.kzmail/` in the current directory."""
    return Path(os.environ.get("KZMAIL_STATE_DIR") or ".kzmail")


def resolve_campaign(path: Path | None) -> Path:
    """The campaign named, or the only one in `campaigns/`."""
    return path if path is not None else campaign_file.find_single(DEFAULT_CAMPAIGNS)


@dataclass
class Prepared:
    """A campaign compiled once: everything per-subscriber work needs."""

    campaign: Campaign
    template: CompiledTemplate
    factory: MessageFactory
    signer: TokenSigner

    def render(self, subscriber: Subscriber) -> tuple[Rendered, Outgoing]:
        """Both parts and the finished message for one subscriber."""
        token = self.signer.make(self.campaign.list_id, subscriber.email)
        url = unsubscribe_url(self.campaign.unsubscribe.url, token)
        parts = self.template.render(subscriber, url)
        return parts, self.factory.build(subscriber, parts, url)

    def build(self, subscriber: Subscriber) -> Outgoing:
        return self.render(subscriber)[1]


def prepare(path: Path) -> Prepared:
    """Load and validate the campaign, compile its template: once per campaign."""
    campaign = campaign_file.load(path)
    template = compile_campaign(campaign)
    try:
        dkim = DkimSigner(campaign.dkim) if campaign.dkim is not None else None
    except DkimKeyError as exc:   # checked on load already; the file may change in between
        raise CampaignError(str(exc), path=campaign.source_path, key="dkim.key_file") from None
    factory = MessageFactory(campaign, mailto=campaign.unsubscribe.mailto,
                             static_text=template.static_text(), signer=dkim)
    return Prepared(campaign=campaign, template=template, factory=factory,
                    signer=TokenSigner(load_secret(state_dir())))


def list_checker(prepared: Prepared, journal: Journal, **options: Any) -> ListChecker:
    """The one checking path for the campaign's lists (see listcheck); close it after use."""
    return ListChecker(prepared.campaign.subscribers, list_id=prepared.campaign.list_id,
                       suppressions=journal, **options)


def sendable(prepared: Prepared, journal: Journal) -> Iterator[Subscriber]:
    """Stream the valid, unsuppressed, first-seen subscribers of every list."""
    with list_checker(prepared, journal) as checker:
        yield from checker.subscribers()


def check_list(prepared: Prepared, journal: Journal) -> ListSummary:
    with list_checker(prepared, journal) as checker:
        return checker.check()


@dataclass(frozen=True)
class PreviewFiles:
    subscriber: str
    html: Path
    text: Path
    eml: Path


def _find(prepared: Prepared, journal: Journal, address: str | None) -> Subscriber:
    for subscriber in sendable(prepared, journal):
        if address is None or subscriber.email.lower() == address.strip().lower():
            return subscriber
    where = prepared.campaign.list_paths[0]
    if address is None:
        raise InputError("no valid subscriber in the list", path=where)
    raise InputError(f"{address} is not a valid subscriber of this list", path=where)


def preview(path: Path | None, *, address: str | None = None,
            out_dir: Path = Path("preview")) -> PreviewFiles:
    """Write the .html, .txt and .eml one subscriber would get; return their paths."""
    prepared = prepare(resolve_campaign(path))
    journal = Journal(state_dir())
    try:
        subscriber = _find(prepared, journal, address)
    finally:
        journal.close()
    parts, message = prepared.render(subscriber)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / prepared.campaign.name
    files = PreviewFiles(subscriber.email, stem.with_suffix(".html"), stem.with_suffix(".txt"),
                         stem.with_suffix(".eml"))
    files.html.write_text(parts.html, encoding="utf-8")
    files.text.write_text(parts.text, encoding="utf-8")
    files.eml.write_bytes(message.data)
    return files


@dataclass(frozen=True)
class SendPlan:
    """What `send` is about to do, shown to the user before it starts."""

    campaign: Campaign
    summary: ListSummary
    relay: str
    outbox: Path | None
    dry_run: bool
    to: str | None


@dataclass
class SendResult:
    plan: SendPlan
    report: SendReport
    built: int = 0


def _relay_config(campaign: Campaign) -> RelayConfig:
    smtp = campaign.smtp
    password = ""
    if smtp.username:
        if not smtp.password_env:
            raise CampaignError("smtp.username is set: name the environment variable that "
                                "holds the password", path=campaign.source_path,
                                key="smtp.password_env")
        password = os.environ.get(smtp.password_env, "")
        if not password:
            raise CampaignError(f"environment variable {smtp.password_env} is not set",
                                path=campaign.source_path, key="smtp.password_env")
    return RelayConfig(host=smtp.host, port=smtp.port, tls=smtp.tls, username=smtp.username,
                       password=password, timeout=smtp.timeout)


def _limited(items: Iterator[Subscriber], limit: int | None) -> Iterator[Subscriber]:
    for count, item in enumerate(items):
        if limit is not None and count >= limit:
            return
        yield item


def send(path: Path, *, dry_run: bool = False, to: str | None = None, limit: int | None = None,
         confirm: Callable[[SendPlan], bool] = lambda _: True,
         on_start: Callable[[int], None] = lambda _: None,
         on_progress: Callable[[Progress], None] = lambda _: None) -> SendResult:
    """Check the list, ask `confirm`, then build (dry run) or send every message."""
    prepared = prepare(path)
    campaign = prepared.campaign
    journal = Journal(state_dir())
    checker = list_checker(prepared, journal)
    try:
        summary = checker.check()
        if summary.errors:
            first = summary.errors[0]
            raise SubscriberListError(first.reason, path=first.file, line=first.line or None)
        if summary.sendable:
            prepared.render(_find(prepared, journal, None))   # a template mistake stops us here
        local = campaign.smtp.is_local
        outbox = (campaign.outbox or Path("outbox") / campaign.name) if local else None
        relay = "embedded sink" if local else f"{campaign.smtp.host}:{campaign.smtp.port}"
        plan = SendPlan(campaign, summary, relay, outbox, dry_run, to)
        config = None if local or dry_run else _relay_config(campaign)
        if to is not None:
            recipients: Iterator[Subscriber] = iter([_test_recipient(prepared, journal, to)])
        else:
            recipients = _limited(checker.subscribers(), limit)
        if summary.sendable == 0 and to is None:
            raise InputError("no sendable subscriber in the list",
                             path=campaign.list_paths[0])
        if not confirm(plan):
            return SendResult(plan, SendReport())
        on_start(1 if to else min(summary.sendable,
                                  limit if limit is not None else summary.sendable))
        if dry_run:
            built = 0
            for subscriber in recipients:
                prepared.build(subscriber)
                built += 1
                on_progress(Progress(subscriber.email, "built"))
            return SendResult(plan, SendReport(), built)
        report = asyncio.run(_deliver(prepared, journal, recipients, config, outbox,
                                      test_only=to is not None, on_progress=on_progress))
        return SendResult(plan, report)
    finally:
        checker.close()
        journal.close()


def _test_recipient(prepared: Prepared, journal: Journal, address: str) -> Subscriber:
    """`--to`: the list's own entry for that address if any, else a bare subscriber."""
    try:
        return _find(prepared, journal, address)
    except InputError:
        pass
    try:
        return Subscriber(email=subscriber_list.clean_address(address))
    except ValueError as exc:
        raise InputError(str(exc), key="--to") from None


def _empty_maildir(folder: Path) -> None:
    """Remove earlier rehearsal messages; only Maildir message files, nothing else."""
    for sub in ("new", "cur", "tmp"):
        for item in (folder / sub).glob("*"):
            if item.is_file():
                item.unlink()


async def _deliver(prepared: Prepared, journal: Journal, recipients: Iterator[Subscriber],
                   config: RelayConfig | None, outbox: Path | None, *, test_only: bool,
                   on_progress: Callable[[Progress], None]) -> SendReport:
    campaign = prepared.campaign
    connections = campaign.rate.connections
    limiter = RateLimiter(windows_for(campaign.rate))
    run_key = campaign.name
    if test_only:
        run_key = f"{campaign.name}#test"
        journal.forget(run_key)
    if config is None:
        assert outbox is not None
        run_key = f"{campaign.name}#sink" if not test_only else run_key
        if not test_only:
            journal.forget(run_key)          # the sink is a rehearsal: start it afresh
            _empty_maildir(outbox)
        async with EmbeddedSink(outbox) as sink:
            local = RelayConfig(host=sink.host, port=sink.port, tls="none")
            return await _run(prepared, journal, recipients, local, connections, limiter,
                              run_key, on_progress)
    return await _run(prepared, journal, recipients, config, connections, limiter, run_key,
                      on_progress)


async def _run(prepared: Prepared, journal: Journal, recipients: Iterator[Subscriber],
               config: RelayConfig, connections: int, limiter: RateLimiter, run_key: str,
               on_progress: Callable[[Progress], None]) -> SendReport:
    transports: list[Transport] = [SmtpTransport(config) for _ in range(connections)]
    sender = Sender(run_key=run_key, envelope_from=prepared.factory.envelope_from,
                    build=prepared.build, transports=transports, limiter=limiter, log=journal,
                    on_progress=on_progress)
    return await sender.run(recipients)
