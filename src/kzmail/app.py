"""The one place that wires concrete pieces together: campaign -> render -> message.

Sending lives in `service_send` (send, retry, status, report), built on `prepare` here.

Commands call these functions; they return plain results and raise `KzmailError`s,
and never print (the CLI does that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import campaign as campaign_file
from . import subscribers as subscriber_list
from .errors import InputError
from .journal import Journal
from .message import MessageFactory, Outgoing
from .models import Campaign, Rendered, Subscriber
from .render import CompiledTemplate, compile_campaign
from .subscribers import Problem
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
    return Prepared(campaign=campaign, template=compile_campaign(campaign),
                    factory=MessageFactory(campaign, mailto=campaign.unsubscribe.mailto),
                    signer=TokenSigner(load_secret(state_dir())))


@dataclass
class ListSummary:
    """The subscriber list after checks: counts and every problem row."""

    rows: int = 0
    valid: int = 0
    suppressed: int = 0
    problems: list[Problem] = field(default_factory=list)


def sendable(prepared: Prepared, journal: Journal,
             summary: ListSummary | None = None) -> Iterator[Subscriber]:
    """Stream the valid, unsuppressed subscribers; tally everything into `summary`."""
    summary = summary if summary is not None else ListSummary()
    list_id = prepared.campaign.list_id
    for item in subscriber_list.read(prepared.campaign.subscribers):
        summary.rows += 1
        if isinstance(item, Problem):
            summary.problems.append(item)
        elif journal.is_suppressed(list_id, item.email):
            summary.suppressed += 1
        else:
            summary.valid += 1
            yield item


def check_list(prepared: Prepared, journal: Journal) -> ListSummary:
    summary = ListSummary()
    for _ in sendable(prepared, journal, summary):
        pass
    return summary


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
    where = prepared.campaign.subscribers
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
