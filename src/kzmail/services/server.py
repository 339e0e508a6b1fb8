"""Serve unsubscribe links from a server bundle alone (`KZMAIL_STATE_DIR=BUNDLE kzmail serve`).

The bundle (see `services.bundle`) gives the secrets to check tokens, each list's name,
language and page texts, the organiser's public sealing key and the credential's hash.
Each unsubscribe becomes one sealed record (`kzmail.sealing`) in `records.db`: the folder
never holds an address in any readable form, and nothing is printed about a request. The
sync routes hand the records to the organiser's `kzmail sync`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kzmail.errors import StateError
from kzmail.models import Workspace
from kzmail.sealing import seal
from kzmail.services.bundle import read_bundle
from kzmail.state.records import RecordStore
from kzmail.web.sync import SyncRoutes
from kzmail.web.unsubscribe import ListInfo, UnsubscribeApp, unsubscribe_app

UNSUBSCRIBE = "unsubscribe"  # the record kind this server writes; sign-ups will add another


class SealedRecorder:
    """Seals each unsubscribe to the organiser's key and keeps the box."""

    def __init__(self, store: RecordStore, public_key: bytes, clock: Callable[[], float]) -> None:
        self._store = store
        self._public = public_key
        self._clock = clock

    def __call__(self, list_id: str, address: str, via: str) -> None:
        record = {
            "kind": UNSUBSCRIBE,
            "list_id": list_id,
            "address": address.lower(),
            "via": via,
            "at": round(self._clock(), 3),
        }
        self._store.add(seal(self._public, record))


def _lists(data: dict[str, Any], path: Path) -> dict[str, ListInfo]:
    try:
        return {
            list_id: ListInfo(info["name"], info["language"], info.get("texts"))
            for list_id, info in data["lists"].items()
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"{path}: lists: each needs a name and a language ({exc})") from None


def build_bundle_app(
    ws: Workspace, signer: Callable[[], Any]
) -> tuple[UnsubscribeApp, dict[str, ListInfo]]:
    """The unsubscribe app with sync routes, for the bundle in `ws.state`."""
    data = read_bundle(ws.state)
    lists = _lists(data, ws.state)
    if not lists:
        raise StateError(f"{ws.state}: the bundle serves no list")
    try:
        public = bytes.fromhex(str(data["seal_public"]))
        credential = bytes.fromhex(str(data["credential_sha256"]))
    except (KeyError, ValueError):
        raise StateError(f"{ws.state}: the bundle has no valid seal_public/credential") from None
    store = RecordStore(ws.state)
    sync = SyncRoutes(credential, store.after, store.forget_through)
    language = next(iter(lists.values())).language
    recorder = SealedRecorder(store, public, ws.clock)
    return unsubscribe_app(signer, lists, recorder, language, sync.routes()), lists
