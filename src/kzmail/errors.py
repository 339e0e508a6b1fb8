"""kzmail's own exceptions: the CLI turns each into one clear line and an exit code.

    KzmailError
    ├── InputError              a user mistake in a file: names file, line and key/field
    │   ├── CampaignError       campaign YAML: missing key, bad value, wrong path
    │   ├── TemplateError       MJML/Jinja template: syntax, unknown field
    │   └── SubscriberListError a subscriber list that cannot be read at all
    ├── StateError              the state folder or database cannot be used
    ├── SigningError            DKIM signatures cannot be made (the signing process failed)
    └── DeliveryError           a message could not be handed to the relay
        ├── TransientDeliveryError (DeliveryError, ConnectionError)  4xx, timeout, disconnect
        └── PermanentDeliveryError                                   5xx, refused recipient
            └── UnknownRecipientError   5xx "no such user": the address is suppressed
"""

from __future__ import annotations

from pathlib import Path


class KzmailError(Exception):
    """Root of every error kzmail raises on purpose."""

    exit_code = 1


class InputError(KzmailError):
    """A mistake in a file the user wrote; the message names file, line and key."""

    exit_code = 2

    def __init__(self, reason: str, *, path: Path | str | None = None,
                 line: int | None = None, key: str | None = None) -> None:
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


class SubscriberListError(InputError):
    """A subscriber list cannot be read at all (not: a single bad row)."""


class StateError(KzmailError):
    """The state folder (secret, database) cannot be read or written."""


class SigningError(KzmailError):
    """No DKIM signature can be made: the signing process did not start or has died.

    Raised before the message concerned is handed to the relay, so it was not sent.
    """


class DeliveryError(KzmailError):
    """A message could not be delivered to the relay."""

    def __init__(self, message: str, *, code: int | None = None, stage: str = "") -> None:
        self.code = code
        self.stage = stage          # connect | mail | rcpt | data: where it went wrong
        super().__init__(message)


class TransientDeliveryError(DeliveryError, ConnectionError):
    """Worth retrying later: 4xx replies, timeouts, dropped connections."""


class PermanentDeliveryError(DeliveryError):
    """Not worth retrying: 5xx replies, refused recipients."""


class UnknownRecipientError(PermanentDeliveryError):
    """The relay says this mailbox does not exist (550 5.1.1 and friends)."""
