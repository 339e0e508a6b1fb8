"""Privacy: by default nothing in a message loads from anywhere (no tracking pixel, no remote
image, font or stylesheet), links go straight to their target (no click redirect), and each
recipient gets a message of their own: one RCPT, one To, no other subscriber's address."""

from __future__ import annotations

import re
from pathlib import Path

from kzmail.cli.common import current_workspace
from kzmail.services import send
from kzmail.tokens import unsubscribe_url
from tests.helpers.broken import parse, rebuilt
from tests.helpers.campaigns import use_relay
from tests.helpers.deliverability import Example
from tests.helpers.smtp import Received, SmtpServer

# Everything in HTML that a mail client fetches by itself when the message is opened.
_LOADS = [
    re.compile(
        r"<(?:img|script|iframe|embed|source|video|audio|input)\b[^>]*\bsrc\s*=\s*[\"']?"
        r"([^\"'\s>]+)",
        re.IGNORECASE,
    ),
    re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE),
    re.compile(r"\bbackground\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE),
    re.compile(r"url\(\s*[\"']?([^\"')\s]+)", re.IGNORECASE),
    re.compile(r"@import\s+[\"']([^\"']+)", re.IGNORECASE),
    re.compile(r"<object\b[^>]*\bdata\s*=\s*[\"']?([^\"'\s>]+)", re.IGNORECASE),
]
_HREF = re.compile(r'<a\s[^>]*href="([^"]+)"', re.IGNORECASE)


def remote_load_problems(markup: str) -> list[str]:
    """Every resource the HTML would load on opening (pixels, images, fonts, CSS, frames)."""
    return [
        f"loads {url}"
        for pattern in _LOADS
        for url in pattern.findall(markup)
        if not url.startswith(("cid:", "data:", "#"))
    ]


def redirect_problems(markup: str, allowed: set[str]) -> list[str]:
    """Every link must be one the campaign wrote (article, sources, unsubscribe), unchanged."""
    links = {link.replace("&amp;", "&") for link in _HREF.findall(markup)}
    return [f"link not written by the campaign: {link}" for link in sorted(links - allowed)]


def recipient_problems(received: list[Received], addresses: set[str]) -> list[str]:
    """One RCPT and one To per message, To == RCPT, nobody else's address anywhere inside."""
    problems = []
    for item in received:
        if len(item.rcpt_tos) != 1:
            problems.append(f"{len(item.rcpt_tos)} recipients in one envelope: {item.rcpt_tos}")
            continue
        (rcpt,) = item.rcpt_tos
        message = parse(item.data)
        to = message["To"].addresses if message["To"] else ()
        if [a.addr_spec for a in to] != [rcpt]:
            problems.append(f"RCPT {rcpt} but To {[a.addr_spec for a in to]}")
        for header in ("Cc", "Bcc"):
            if message[header] is not None:
                problems.append(f"{header} header in the message for {rcpt}")
        text = item.data.decode("ascii", "replace").lower()
        for other in addresses - {rcpt}:
            if other.lower() in text or other.lower().replace("@", "=40") in text:
                problems.append(f"the message for {rcpt} shows {other}")
    return problems


def _campaign_links(example: Example) -> set[str]:
    campaign = example.prepared.campaign
    article = campaign.article.file.read_text(encoding="utf-8")
    links = set(re.findall(r"\]\((https?://[^)\s]+)\)", article))
    links |= {s.url for s in campaign.article.sources}
    return links


# --- what kzmail builds passes -------------------------------------------------------------


def test_nothing_is_loaded_from_anywhere(example: Example) -> None:
    for built in example.built:
        assert remote_load_problems(built.parts.html) == [], built.subscriber.email
        assert "<img" not in built.parts.html.lower()  # so no pixel either
        assert "fonts.googleapis" not in built.parts.html


def test_links_are_not_rewritten(example: Example) -> None:
    allowed = _campaign_links(example)
    for built in example.built:
        campaign, signer = example.prepared.campaign, example.prepared.signer
        own = unsubscribe_url(
            campaign.unsubscribe.url, signer.make(campaign.list_id, built.subscriber.email)
        )
        assert redirect_problems(built.parts.html, allowed | {own}) == []
        assert redirect_problems(built.parts.html, allowed)  # the unsubscribe link is there


def test_each_recipient_gets_a_message_of_their_own(project: Path, smtp_server: SmtpServer) -> None:
    campaign = project / "campaigns" / "kasachstan.yaml"
    use_relay(campaign, smtp_server)
    result = send.send(current_workspace(), campaign, confirm=lambda _: True)
    received = smtp_server.handler.messages
    addresses = {r for item in received for r in item.rcpt_tos}
    assert result.report.sent == len(received) == len(addresses) >= 10
    assert recipient_problems(received, addresses) == []


# --- each check fails on a deliberately broken message --------------------------------------


def test_remote_load_check_catches_pixel_fonts_and_images() -> None:
    broken = [
        '<img src="https://t.example/open.gif?u=1" width="1" height="1" alt="">',
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">',
        '<style>@import "https://fonts.example/f.css";</style>',
        '<td background="https://cdn.example/bg.png">',
        '<div style="background-image:url(https://cdn.example/x.png)">',
    ]
    for markup in broken:
        assert remote_load_problems(f"<html><body>{markup}</body></html>"), markup


def test_redirect_check_catches_click_tracking(example: Example) -> None:
    built = example.built[0]
    tracked = re.sub(
        r'href="(https?://[^"]+)"',
        lambda m: f'href="https://click.example/r?u={m.group(1)}"',
        built.parts.html,
    )
    allowed = _campaign_links(example) | {"https://news.example/u/t"}
    assert redirect_problems(tracked, allowed)


def test_recipient_check_catches_shared_messages(example: Example) -> None:
    one, two = example.built[0], example.built[1]
    addresses = {one.subscriber.email, two.subscriber.email}
    shared = Received(
        "n@example.org", [one.subscriber.email, two.subscriber.email], one.message.data
    )
    assert recipient_problems([shared], addresses)
    cc = Received(
        "n@example.org",
        [one.subscriber.email],
        f"Cc: {two.subscriber.email}\r\n".encode() + one.message.data,
    )
    assert recipient_problems([cc], addresses)
    # a template that greets with the wrong subscriber's address in the body
    leaky = rebuilt(
        example.prepared.factory, one, html=one.parts.html + f"<p>{two.subscriber.email}</p>"
    )
    assert recipient_problems([Received("n@example.org", [one.subscriber.email], leaky)], addresses)
