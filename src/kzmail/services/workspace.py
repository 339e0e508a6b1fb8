"""The one place that wires concrete pieces together: campaign -> render -> message.

Sending lives in `services.send` (send, retry, status, report), built on `prepare` here.

Commands call these functions; they return plain results and raise `KzmailError`s,
and never print (the CLI does that).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kzmail import campaign_file
from kzmail.dkim.pool import SignPool
from kzmail.dkim.signer import DkimSigner
from kzmail.errors import CampaignError, DkimKeyError, InputError
from kzmail.lists.checker import ListChecker
from kzmail.models import Campaign, Rendered, Subscriber, Workspace, pick_subscriber
from kzmail.private import open_private
from kzmail.render.images import InlineImage
from kzmail.render.message import MessageFactory, Outgoing
from kzmail.render.remote import host
from kzmail.render.template import CompiledTemplate, compile_campaign
from kzmail.state.journal import Journal
from kzmail.state.secret import load_secret
from kzmail.tokens import TokenSigner, unsubscribe_url


def resolve_campaign(ws: Workspace, path: Path | None) -> Path:
    """The campaign named, or the only one in the workspace's `campaigns/`."""
    return path if path is not None else campaign_file.find_single(ws.campaigns)


@dataclass
class Prepared:
    """A campaign compiled once: everything per-subscriber work needs."""

    campaign: Campaign
    template: CompiledTemplate
    factory: MessageFactory
    signer: TokenSigner
    dkim: DkimSigner | None = None

    def render(self, subscriber: Subscriber) -> tuple[Rendered, Outgoing]:
        """Both parts and the finished message for one subscriber."""
        return self._render(subscriber, defer_signature=False)

    def _render(
        self, subscriber: Subscriber, *, defer_signature: bool
    ) -> tuple[Rendered, Outgoing]:
        token = self.signer.make(self.campaign.list_id, subscriber.email)
        url = unsubscribe_url(self.campaign.unsubscribe.url, token)
        parts = self.template.render(subscriber, url)
        message = self.factory.build(subscriber, parts, url, defer_signature=defer_signature)
        verp = self.campaign.bounce_address
        if verp is not None:  # bounces come back to an address naming this delivery
            sender = verp.replace("{token}", self.signer.verp(message.message_id))
            message = dataclasses.replace(message, envelope_from=sender)
        return parts, message

    def build(self, subscriber: Subscriber) -> Outgoing:
        return self._render(subscriber, defer_signature=False)[1]

    def build_unsealed(self, subscriber: Subscriber) -> Outgoing:
        """Like `build`, but a signed campaign's message waits for the `sealer`."""
        return self._render(subscriber, defer_signature=True)[1]

    def sign_pool(self, workers: int = 1) -> SignPool | None:
        """Signing processes for the campaign's DKIM key (None without one); start, close."""
        return SignPool(self.dkim.key, workers=workers) if self.dkim is not None else None

    def sealer(self, pool: SignPool) -> Callable[[Outgoing], Awaitable[Outgoing]]:
        """The `Sender`'s `seal`: signs an unsealed message's digest in `pool`."""
        seal, sign = self.factory.seal, pool.sign

        async def sealed(message: Outgoing) -> Outgoing:
            unsigned = message.unsigned
            if unsigned is None:
                return message
            return seal(message, await sign(unsigned.digest))

        return sealed


def prepare(ws: Workspace, path: Path) -> Prepared:
    """Load and validate the campaign, compile its template: once per campaign."""
    campaign = campaign_file.load(path)
    template = compile_campaign(campaign)
    try:
        dkim = DkimSigner(campaign.dkim) if campaign.dkim is not None else None
    except DkimKeyError as exc:  # checked on load already; the file may change in between
        raise CampaignError(str(exc), path=campaign.source_path, key="dkim.key_file") from exc
    factory = MessageFactory(
        campaign,
        mailto=campaign.unsubscribe.mailto,
        static_text=template.static_text(),
        signer=dkim,
        images=template.images,
    )
    return Prepared(
        campaign=campaign,
        template=template,
        factory=factory,
        signer=TokenSigner(load_secret(ws.state)),
        dkim=dkim,
    )


_WATCHED = "learns the IP address of every reader who opens the message, and when"


def remote_problems(prepared: Prepared) -> list[str]:
    """One line per remote host the HTML part loads something from (an image, a style),
    naming its first URL: a problem for `check`, a refusal for `send`, unless the campaign
    sets `allow_remote_images: true`."""
    by_host: dict[str, list[str]] = {}
    for url in prepared.template.remote:
        by_host.setdefault(host(url), []).append(url)
    allowed = prepared.campaign.allow_remote_images
    lines = []
    for name, urls in by_host.items():
        more = f" and {len(urls) - 1} more" if len(urls) > 1 else ""
        advice = (
            "allowed by allow_remote_images"
            if allowed
            else "remove it, or set allow_remote_images: true in the campaign"
        )
        lines.append(
            str(
                CampaignError(
                    f"remote resource from {name} ({urls[0]}{more}): its host {_WATCHED}; {advice}",
                    path=prepared.campaign.source_path,
                )
            )
        )
    return lines


def refuse_remote(prepared: Prepared) -> None:
    """Stop a send whose message loads remote resources, unless the campaign allows them."""
    if prepared.campaign.allow_remote_images or not prepared.template.remote:
        return
    hosts = ", ".join(dict.fromkeys(host(url) for url in prepared.template.remote))
    raise CampaignError(
        f"the message loads images or styles from remote hosts ({hosts}): "
        f"each {_WATCHED}; remove them, or set allow_remote_images: true to send "
        "anyway",
        path=prepared.campaign.source_path,
    )


def list_checker(prepared: Prepared, journal: Journal, **options: Any) -> ListChecker:
    """The one checking path for the campaign's lists (see `lists.checker`); close it after use."""
    return ListChecker(
        prepared.campaign.subscribers,
        list_id=prepared.campaign.list_id,
        suppressions=journal,
        **options,
    )


def sendable(prepared: Prepared, journal: Journal) -> Iterator[Subscriber]:
    """Stream the valid, unsuppressed, first-seen subscribers of every list."""
    with list_checker(prepared, journal) as checker:
        yield from checker.subscribers()


@dataclass(frozen=True)
class PreviewFiles:
    subscriber: str
    html: Path
    text: Path
    eml: Path


def find_subscriber(prepared: Prepared, journal: Journal, address: str | None) -> Subscriber:
    found = pick_subscriber(sendable(prepared, journal), address)
    if found is not None:
        return found
    where = prepared.campaign.list_paths[0]
    if address is None:
        raise InputError("no valid subscriber in the list", path=where)
    raise InputError(f"{address} is not a valid subscriber of this list", path=where)


def preview(
    ws: Workspace, path: Path | None, *, address: str | None = None, out_dir: Path = Path("preview")
) -> PreviewFiles:
    """Write the .html, .txt and .eml one subscriber would get; return their paths."""
    prepared = prepare(ws, resolve_campaign(ws, path))
    journal = Journal(ws.state, ws.clock)
    try:
        subscriber = find_subscriber(prepared, journal, address)
    finally:
        journal.close()
    parts, message = prepared.render(subscriber)
    stem = out_dir / prepared.campaign.name
    files = PreviewFiles(
        subscriber.email,
        stem.with_suffix(".html"),
        stem.with_suffix(".txt"),
        stem.with_suffix(".eml"),
    )
    html, images = _local_images(parts.html, prepared.template.images, stem)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for target, data in (
            (files.html, html.encode()),
            (files.text, parts.text.encode()),
            (files.eml, message.data),
            *images,
        ):
            with open_private(target, "wb") as handle:  # they name the subscriber
                handle.write(data)
    except OSError as exc:
        raise InputError(
            f"cannot write the preview: {exc.strerror or exc}", path=out_dir, key="--out"
        ) from exc
    return files


def _local_images(
    html: str, images: Sequence[InlineImage], stem: Path
) -> tuple[str, list[tuple[Path, bytes]]]:
    """The preview's HTML with each `cid:` image written beside it, so a browser shows it."""
    files = []
    for image in images:
        target = stem.with_name(f"{stem.name}-{image.filename}")
        html = html.replace(f"cid:{image.cid}", target.name)
        files.append((target, image.data))
    return html, files
