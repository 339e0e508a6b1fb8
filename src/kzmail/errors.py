"""kzmail's own exceptions: the CLI turns each into one clear line and an exit code.

    KzmailError
    ├── InputError              a user mistake in a file: names file, line and key/field
    │   ├── CampaignError       campaign YAML: missing key, bad value, wrong path
    │   ├── TemplateError       MJML/Jinja template: syntax, unknown field
    │   ├── ImageError          a local image: missing, not an image, no alt text, a bomb
    │   └── SubscriberListError a subscriber list that cannot be read at all
    │       ├── NoCampaignFile  no campaign named, and none found in campaigns/
    │       └── SeveralCampaigns no campaign named, and several found in campaigns/
    ├── StateError              the state folder or database cannot be used
    │   ├── ListenError         the web server cannot listen where it was asked to
    │   └── SyncError           the unsubscribe server cannot be reached or refuses to sync
    ├── SigningError            DKIM signatures cannot be made (the signing process failed)
    ├── MailboxError (KzmailError, ConnectionError)  the reply mailbox's server went away
    ├── Interrupted             a second Ctrl-C stopped a send at once (exit code 130)
    └── DeliveryError           a message could not be handed to the relay
        ├── TransientDeliveryError (DeliveryError, ConnectionError)  4xx, timeout, disconnect
        ├── UnreachableRelayError (DeliveryError, ConnectionError)   refused, unknown host, TLS
        └── PermanentDeliveryError                                   5xx, refused recipient
            └── UnknownRecipientError   5xx "no such user": the address is suppressed

Errors that stay inside one stage (never shown to the user as such) live here too:

    DkimKeyError (ValueError)        a DKIM key cannot be read or used (becomes CampaignError)
    UnsafeAddressError (ValueError)  an address that could inject a header or a recipient
    Refused, Lost                    a pipelined SMTP transaction was refused / cut off
    BodyTooLarge, ClientGone         a web request's body is too big / its client went away

Every boundary maps foreign errors once, `raise ... from exc`, so the cause stays chained
(the CLI shows it with `KZMAIL_DEBUG=1`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class KzmailError(Exception):
    """Root of every error kzmail raises on purpose."""

    exit_code = 1


class InputError(KzmailError):
    """A mistake in a file the user wrote; the message names file, line and key."""

    exit_code = 2

    def __init__(
        self,
        reason: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = str(path) if path is not None else None
        self.line = line
        self.key = key
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.reason}"


class CampaignError(InputError):
    """The campaign file is missing, unparsable or has an invalid key."""


class TemplateError(InputError):
    """The template does not compile or references an unknown field."""


class ImageError(InputError):
    """A local image the article or template names cannot be sent inline: missing, not
    an image, without alt text, or declaring more pixels than allowed."""


class SubscriberListError(InputError):
    """A subscriber list cannot be read at all (not: a single bad row)."""


class NoCampaignFile(CampaignError):
    """No campaign file was named and none was found where one is looked for."""


class SeveralCampaigns(CampaignError):
    """No campaign file was named and several were found: which one is meant is unknown."""


class StateError(KzmailError):
    """The state folder (secret, database) cannot be read or written."""


class ListenError(StateError):
    """The server cannot listen where it was asked to."""


class SyncError(StateError):
    """The unsubscribe server could not be reached, refused the credential, or sent
    records this kzmail cannot read."""


class SigningError(KzmailError):
    """No DKIM signature can be made: the signing process did not start or has died.

    Raised before the message concerned is handed to the relay, so it was not sent.
    """


class MailboxError(KzmailError, ConnectionError):
    """The reply mailbox's server (IMAP) dropped the connection or refused a change."""


class Interrupted(KzmailError):
    """The user stopped the command at once (a second Ctrl-C): exit code 130, like a shell."""

    exit_code = 130


class DeliveryError(KzmailError):
    """A message could not be delivered to the relay."""

    def __init__(self, message: str, *, code: int | None = None, stage: str = "") -> None:
        self.code = code
        self.stage = stage  # connect | mail | rcpt | data: where it went wrong
        super().__init__(message)


class TransientDeliveryError(DeliveryError, ConnectionError):
    """Worth retrying later: 4xx replies, timeouts, dropped connections."""


class UnreachableRelayError(DeliveryError, ConnectionError):
    """No conversation with the relay at all: the connection is refused, the host is unknown,
    or TLS fails (its certificate does not verify, say). The next subscriber would fare no
    better, so the send pauses at once; the message says what to check."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: 5xx replies, refused recipients."""


class UnknownRecipientError(PermanentDeliveryError):
    """The relay says this mailbox does not exist (550 5.1.1 and friends)."""


class DkimKeyError(ValueError):
    """The private key cannot be read, parsed or used for DKIM."""


class UnsafeAddressError(ValueError):
    """An address that could smuggle a header or a second recipient."""


class SmtpReply(Protocol):
    """What `Refused` needs of a reply (`kzmail.models.Reply` is one)."""

    @property
    def code(self) -> int: ...

    @property
    def text(self) -> str: ...


class Refused(Exception):
    """The relay answered a command of the transaction with an error code."""

    def __init__(self, reply: SmtpReply, stage: str) -> None:
        super().__init__(str(reply))
        self.reply = reply
        self.stage = stage


class Lost(Exception):
    """The connection dropped or stalled while waiting for the reply to `stage`."""

    def __init__(self, cause: Exception, stage: str) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause
        self.stage = stage


class BodyTooLarge(Exception):
    """The request body is bigger than the page accepts."""


class ClientGone(Exception):
    """The client went away (or was cut off) before its body was complete: no one to answer."""
