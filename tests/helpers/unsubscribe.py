"""The example list's unsubscribe links and the suppressions they record, seen by a test."""

from __future__ import annotations

from kzmail.cli.common import current_workspace
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer
from kzmail.tokens import unsubscribe_url

LIST = "kasachstan.newsletter.arbeiterinnenmacht.example.org"
ADDRESS = "ayse.yilmaz@example.net"


def path_for(list_id: str = LIST, address: str = ADDRESS, *, old: bool = False) -> str:
    """The unsubscribe path (no host) of a fresh token for `address` on `list_id`
    (`old`: in the readable format of links sent before opaque tokens)."""
    signer = load_signer(current_workspace().state)
    token = signer.make_v1(list_id, address) if old else signer.make(list_id, address)
    return unsubscribe_url("", token)


def suppressions() -> list[tuple[str, str, str, float]]:
    """Every suppression in the state folder, read by a journal of our own."""
    journal = Journal(current_workspace().state)
    try:
        return journal.suppressions()
    finally:
        journal.close()
