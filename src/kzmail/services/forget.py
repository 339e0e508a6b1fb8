"""`kzmail forget`: erase one person from the state (DSGVO Art. 17), yet never mail them again.

Their delivery rows (every campaign run) are deleted; a suppression they had (unsubscribed
or bounced) is kept as an HMAC of the address with a key of the state's own, so later
sends still skip them without the state naming them. The database is then rewritten
(VACUUM) and its WAL emptied, so no copy of the rows stays in `state.db` or `-wal`.
Files outside the state folder (reports, exports, previews, the outbox, the lists) are
the organiser's to delete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kzmail.errors import InputError, StateError
from kzmail.lists.rows import clean_address
from kzmail.models import Workspace
from kzmail.state.journal import Journal


@dataclass(frozen=True)
class Forgotten:
    address: str
    deliveries: int
    lists: list[str]  # where they stay suppressed, by hash only


def forget(
    ws: Workspace, address: str, confirm: Callable[[str], bool] = lambda _: True
) -> Forgotten | None:
    """Erase `address` from the state after `confirm(address)`; None if not confirmed."""
    try:
        clean = clean_address(address).lower()
    except ValueError as exc:
        raise InputError(f"not an address: {exc}", key="ADDRESS") from exc
    if not confirm(clean):
        return None
    journal = Journal(ws.state, ws.clock)
    try:
        deliveries, lists = journal.forget_address(clean)
        if not journal.scrub():
            raise StateError(
                "erased, but another kzmail (serve, send?) holds the state open, "
                "so old copies may remain in state.db-wal: stop it and run "
                "`kzmail forget` again"
            )
    finally:
        journal.close()
    return Forgotten(clean, deliveries, lists)
