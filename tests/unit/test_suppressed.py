"""The in-memory copy of a list's suppressions: exact, current, and no query per subscriber."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kzmail.models import ANY_LIST
from kzmail.state import suppressed
from kzmail.state.journal import Journal
from tests.helpers.journals import open_watched

LIST = "news.example.org"


def test_own_and_other_processes_suppressions_are_honoured(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    assert not journal.is_suppressed(LIST, "a@example.org")  # the copy is loaded
    journal.suppress(LIST, "A@Example.org", "unsubscribed")
    assert journal.is_suppressed(LIST, "a@EXAMPLE.org")  # at once
    other = Journal(tmp_path)  # e.g. `kzmail serve`
    other.suppress(LIST, "b@example.org", "unsubscribed")
    other.suppress(ANY_LIST, "c@example.org", "bounced")
    other.suppress("other.example.org", "d@example.org", "unsubscribed")
    other.close()
    time.sleep(suppressed.FRESH * 1.5)
    assert journal.is_suppressed(LIST, "b@example.org")
    assert journal.is_suppressed(LIST, "c@example.org")  # every list's
    assert not journal.is_suppressed(LIST, "d@example.org")  # another list's only
    assert journal.is_suppressed("other.example.org", "d@example.org")
    journal.close()


def test_checking_a_list_does_not_query_per_subscriber(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suppressed, "FRESH", 60.0)
    journal, db = open_watched(tmp_path)
    journal.suppress(LIST, "x@example.org", "unsubscribed")
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    hits = sum(
        journal.is_suppressed(LIST, f"{'x' if i % 100 == 0 else i}@example.org")
        for i in range(1000)
    )
    assert hits == 10
    assert len(statements) == 2  # data_version and one load, for 1,000 look-ups
    journal.close()
