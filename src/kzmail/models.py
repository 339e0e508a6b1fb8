"""Validated data shared by every stage: the campaign settings and one subscriber.

The campaign models are pydantic (validated once, at the edge, by `campaign_file.load`);
everything downstream trusts them. Nothing here does I/O.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kzmail.languages import PLACEHOLDERS, default_texts
from kzmail.text import CONTROL_CHARS, DNS_LABEL, PLAIN_ADDRESS


def _single_line(value: str) -> str:
    if CONTROL_CHARS.search(value):
        raise ValueError("must be a single line without control or bidi characters")
    return value


def _mailbox(value: str) -> str:
    """Accept `addr` or `Name <addr>` holding exactly one plain ASCII address."""
    _single_line(value)
    _, addr = parseaddr(value)
    if not PLAIN_ADDRESS.fullmatch(addr) or value.count("@") != 1:
        raise ValueError(
            f"{value!r} is not one plain e-mail address (use 'Name "
            "<addr@example.org>', an IDN domain in its xn-- form)"
        )
    return value


_HTTPS_URL = re.compile(r"^https://[^\s/]+(/\S*)?$", re.IGNORECASE)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Model):
    title: str
    url: str = Field(pattern=r"^https?://\S+$")


class Article(_Model):
    title: str
    author: str
    lead: str = ""
    file: Path
    sources: list[Source] = []


class SmtpSettings(_Model):
    host: str = "local"
    port: int = Field(587, ge=0, le=65535)
    tls: Literal["none", "starttls", "ssl"] = "starttls"
    username: str = ""
    password_env: str = ""
    timeout: float = Field(30.0, gt=0)
    verify_certificate: bool = True  # TLS certificate verification (off only for tests)
    ca_file: Path | None = None  # extra CA bundle, e.g. a relay's self-signed cert

    @property
    def is_local(self) -> bool:
        """True for the embedded sink (no real relay)."""
        return self.host == "local"


class RateSettings(_Model):
    per_second: float = Field(0, ge=0)
    per_minute: int = Field(0, ge=0)
    per_hour: int = Field(0, ge=0)
    per_day: int = Field(0, ge=0)
    connections: int = Field(4, ge=1, le=64)
    messages_per_connection: int = Field(100, ge=1)  # then a fresh connection


class RetrySettings(_Model):
    """Transient failures (4xx, timeouts, drops) are retried; after too many in a row, pause."""

    attempts: int = Field(4, ge=1, le=50)  # per recipient, the first one included
    backoff: float = Field(2.0, ge=0)  # first delay in seconds, doubled each time
    backoff_max: float = Field(120.0, ge=0)
    pause_after: int = Field(10, ge=1)  # consecutive failed attempts -> pause


class RelaySettings(SmtpSettings):
    """One of several relays sharing the work; `rate` is this relay's own limits."""

    rate: RateSettings = RateSettings()


class UnsubscribeSettings(_Model):
    url: str
    mailto: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.lower().startswith("https://"):
            scheme = value.partition("://")[0] + "://" if "://" in value else value[:20]
            raise ValueError(
                f"must start with https:// (not {scheme!r}), because each link carries the "
                "subscriber's personal unsubscribe token, which must not travel in clear "
                "text, and mail providers (one-click unsubscribe, RFC 8058) only honour "
                "HTTPS links"
            )
        if not _HTTPS_URL.fullmatch(value):
            raise ValueError(
                "must be a web address like https://news.example.org/ with a host name "
                "and no spaces"
            )
        return value

    @field_validator("mailto")
    @classmethod
    def _mailto(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = _mailbox(value.removeprefix("mailto:").strip())
        if parseaddr(address)[0] or "<" in address:
            raise ValueError(
                "give the bare address (it goes into a mailto: URL), not 'Name <address>'"
            )
        return address


class DkimSettings(_Model):
    """DKIM signing: `d=` domain, `s=` selector and the PEM private key (RSA or Ed25519)."""

    domain: str = Field(pattern=rf"^{DNS_LABEL}(\.{DNS_LABEL})+$")
    selector: str = Field(pattern=rf"^{DNS_LABEL}(\.{DNS_LABEL})*$")
    key_file: Path


class ListColumns(_Model):
    """Explicit header names that override column detection (`subscribers: {columns: ...}`)."""

    email: str | None = None
    name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    unsubscribed: str | None = None


class ListSource(_Model):
    """One subscriber list file and, optionally, how to read it."""

    path: Path
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    columns: ListColumns = ListColumns()

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (try utf-8, cp1252, latin-1, utf-16)"
            ) from None

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(
            value.lower(), value
        )
        if len(value) != 1 or value in '"\r\n':
            raise ValueError("must be one character such as ',', ';', '|' or 'tab'")
        return value


class InboxSettings(_Model):
    """Where `kzmail inbox CAMPAIGN` reads bounces and replies, and when soft bounces count."""

    source: str | None = None  # an mbox, a Maildir, or imap(s)://user@host[:port]/FOLDER
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    soft_limit: int = Field(3, ge=1, le=100)  # soft bounces in this many campaigns: suppress


class Texts(_Model):
    """The template's fixed texts; `Campaign` fills what `texts:` leaves out from the
    defaults of the campaign's language (`kzmail.languages`)."""

    by: str
    greeting: str
    greeting_anonymous: str
    demands: str
    sources: str
    sent_to: str
    unsubscribe: str

    _one_line = field_validator("*")(_single_line)

    @field_validator(*PLACEHOLDERS)
    @classmethod
    def _placeholder(cls, value: str, info: Any) -> str:
        wanted = PLACEHOLDERS[info.field_name]
        if wanted not in value:
            raise ValueError(f"must contain {wanted} (where it goes in the text)")
        return value


class Campaign(_Model):
    """A campaign file, validated; paths already resolved against the file's folder."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    subject: str = Field(min_length=1, max_length=250)
    from_: str = Field(alias="from")
    reply_to: str | None = None
    language: str = Field("de", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    template: Path  # the packaged default when the file names none (campaign_file)
    texts: Texts
    list_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z0-9-]+$")
    list_name: str = ""
    reason: str = ""
    preheader: str = ""
    article: Article
    demands: list[str] = []
    subscribers: list[ListSource] = Field(min_length=1)
    smtp: SmtpSettings = SmtpSettings()
    rate: RateSettings = RateSettings()
    relays: list[RelaySettings] = []
    retry: RetrySettings = RetrySettings()
    unsubscribe: UnsubscribeSettings
    outbox: Path | None = None
    dkim: DkimSettings | None = None
    inbox: InboxSettings = InboxSettings()
    # VERP: the envelope sender per delivery, e.g. bounces+{token}@example.org
    bounce_address: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]{1,20}\+\{token\}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$"
    )
    allow_remote_images: bool = False  # remote images tell their host who reads, and when
    source_path: Path = Path("campaign.yaml")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    _one_line = field_validator("subject", "list_name", "preheader")(_single_line)
    _from = field_validator("from_")(_mailbox)

    @model_validator(mode="before")
    @classmethod
    def _default_texts(cls, data: Any) -> Any:
        """`texts:` over the defaults of the campaign's `language`."""
        if not isinstance(data, dict):
            return data
        language = data.get("language", "de")
        given = data.get("texts")
        if given is None:
            given = {}
        if not isinstance(given, dict):
            return data  # pydantic names the key and the problem
        base = default_texts(language if isinstance(language, str) else "de")
        return {**data, "texts": {**base, **given}}

    @field_validator("reply_to")
    @classmethod
    def _reply_to(cls, value: str | None) -> str | None:
        return None if value is None else _mailbox(value)

    @property
    def list_paths(self) -> list[Path]:
        """The subscriber list files, in the order given."""
        return [source.path for source in self.subscribers]


# The list id of a suppression that holds for every list (a bounce: the address is gone).
ANY_LIST = "*"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One recipient: a single clean address, a display name and extra template fields."""

    email: str
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0
    first_name: str = ""  # from a first-name column, for the greeting


def pick_subscriber(subscribers: Iterable[Subscriber], address: str | None) -> Subscriber | None:
    """The first of `subscribers` with `address` (case and surrounding spaces ignored), the
    first of all when `address` is None, or None; stops reading at the one it returns."""
    wanted = None if address is None else address.strip().lower()
    for subscriber in subscribers:
        if wanted is None or subscriber.email.lower() == wanted:
            return subscriber
    return None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One subscriber's personalised parts, as the chunks the template produced.

    Keeping chunks lets the message stage reuse the encoding of the template's static
    text (the same string objects for every subscriber) and encode only what differs.
    """

    html_chunks: tuple[str, ...]
    text_chunks: tuple[str, ...]

    @classmethod
    def of(cls, html: str, text: str) -> Rendered:
        return cls((html,), (text,))

    @property
    def html(self) -> str:
        return "".join(self.html_chunks)

    @property
    def text(self) -> str:
        return "".join(self.text_chunks)


class Reply(NamedTuple):
    code: int
    text: str

    def __str__(self) -> str:
        return f"{self.code} {self.text}"


@dataclass(frozen=True)
class Workspace:
    """What a command works with, decided once by the CLI and handed to every service.

    Nothing below the CLI reads the environment, the current directory or the clock on its
    own: tests (and a future server) pass their own.
    """

    state: Path  # the state folder (journal, secret)
    root: Path = Path(".")  # where `campaigns/` and `outbox/` are
    environ: Mapping[str, str] = field(default_factory=dict)  # smtp.password_env, DNS
    clock: Callable[[], float] = time.time

    @property
    def campaigns(self) -> Path:
        """Where a campaign is looked for when none is named."""
        return self.root / "campaigns"

    def outbox(self, campaign: str) -> Path:
        """The embedded sink's Maildir for a campaign that does not name one."""
        return self.root / "outbox" / campaign
