"""Every public method of the journal fails with StateError, never with sqlite3.Error."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kzmail.errors import StateError
from kzmail.state.journal import Journal


@pytest.fixture
def closed(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / ".kzmail")
    journal.close()  # every later call fails inside sqlite3 ("closed database")
    return journal


def test_a_failing_database_is_a_state_error_that_keeps_its_cause(closed: Journal) -> None:
    with pytest.raises(StateError) as caught:
        closed.suppress("list", "a@example.org", "unsubscribe")
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    assert str(closed.path) in str(caught.value)


def test_generators_are_mapped_too(closed: Journal) -> None:
    with pytest.raises(StateError):
        list(closed.deliveries("run", ("sent",)))
    with pytest.raises(StateError):
        closed.is_suppressed_anywhere("a@example.org")
