"""After a send: which of the campaign's sendable subscribers still lack the message.

A run reports what it did; the organiser needs to know what is left, whichever run it was
left by: a permanent failure of an earlier run, a delivery a crash left uncertain, someone
the send had not reached when it paused. `outcome` answers from the journal and the list as
they are now (an address suppressed meanwhile, a bounce say, is no longer sendable), so
"nothing left" means every sendable subscriber has the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from kzmail.services.workspace import Prepared, sendable
from kzmail.state.journal import Delivery, Journal

__all__ = ["NOT_DELIVERED", "Delivery", "Outcome", "outcome"]

NOT_DELIVERED = ("failed", "bounced", "uncertain", "pending", "sending")


@dataclass(frozen=True)
class Outcome:
    """Who of the sendable subscribers does not have the message yet."""

    undelivered: tuple[Delivery, ...] = ()  # tried and not delivered, in the list's order
    untried: int = 0  # not tried yet: the send stopped early (pause, Ctrl-C, --limit)

    @property
    def complete(self) -> bool:
        """True when every sendable subscriber has the message."""
        return not self.undelivered and not self.untried


def outcome(prepared: Prepared, journal: Journal, key: str, *, partial: bool) -> Outcome:
    """Where the run `key` stands for the list's sendable subscribers.

    `partial` says the send stopped before the end of the list; when it did not and the
    journal holds no undelivered row, everyone fed to it was sent and the list is not read
    again (the common case costs one query).
    """
    rows = {d.address: d for d in journal.deliveries(key, NOT_DELIVERED)}
    if not rows and not partial:
        return Outcome()
    undelivered: list[Delivery] = []
    untried = 0
    for subscriber in sendable(prepared, journal):
        row = rows.get(subscriber.email.lower())
        if row is not None:
            undelivered.append(row)
        elif journal.status(key, subscriber.email) is None:
            untried += 1
    return Outcome(tuple(undelivered), untried)
