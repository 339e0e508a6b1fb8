"""The journal's marks log: appended per commit, folded into `deliveries` in sorted
batches, and never lost: a crash leaves it to the next process, which replays it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kzmail.state import journal as journal_module
from kzmail.state.journal import DB_FILE, Journal
from tests.helpers.journals import open_watched

RUN = "log"


def table_rows(state: Path, table: str) -> int:
    db = sqlite3.connect(state / DB_FILE)
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        db.close()


def test_a_crash_leaves_the_log_and_the_next_process_replays_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from kzmail.state.journal import Journal
        j = Journal(Path({str(state)!r}))
        for i in range(50):
            j.mark("{RUN}", f"a{{i}}@x.test", "sending", message_id=f"<{{i}}@x>", name="A")
            if i < 40:
                j.mark("{RUN}", f"a{{i}}@x.test", "sent", code=250, detail="250 ok",
                       durable=False)
        j.mark("{RUN}", "a45@x.test", "sent", code=250, durable=False)   # never committed
        os._exit(0)           # no close, no merge: as if killed
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    # the last `sent` was never committed; everything else is in the log, not yet merged
    assert table_rows(state, "marks") == 50 + 40
    assert table_rows(state, "deliveries") == 0
    journal = Journal(state)  # replays the log
    assert table_rows(state, "marks") == 0
    assert journal.counts(RUN) == {"sent": 40, "sending": 10}
    uncertain = [d.address for d in journal.settle_interrupted(RUN)]
    assert sorted(uncertain) == sorted(f"a{i}@x.test" for i in range(40, 50))
    sent = next(iter(journal.deliveries(RUN, ("sent",))))
    assert (sent.address, sent.attempts, sent.code, sent.message_id, sent.name) == (
        "a0@x.test",
        1,
        250,
        "<0@x>",
        "A",
    )
    journal.close()


def test_the_log_is_folded_in_batches_and_later_marks_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "MERGE_EVERY", 7)
    state = tmp_path / "state"
    journal = Journal(state)
    other = Journal(state)  # another process, e.g. `kzmail status`
    for attempt in range(3):  # the same addresses, three tries each
        for i in range(5):
            journal.mark(RUN, f"b{i}@x.test", "sending", durable=False)
            journal.flush()
            journal.mark(
                RUN,
                f"b{i}@x.test",
                "pending" if attempt < 2 else "sent",
                code=451 if attempt < 2 else 250,
                durable=False,
            )
    journal.flush()
    assert table_rows(state, "marks") < 7  # folded in as it went
    assert other.counts(RUN) == {"sent": 5}  # the other process folds the rest in to read
    assert table_rows(state, "marks") == 0
    rows = list(other.deliveries(RUN, ("sent",)))
    assert {(d.attempts, d.code) for d in rows} == {(3, 250)}
    journal.close()
    other.close()


def test_a_resumed_run_does_not_fold_the_log_for_every_look_up(tmp_path: Path) -> None:
    # a resumed run asks for each subscriber's status before mailing them: those are
    # addresses this run has not marked yet, so the look-up need not fold the log first
    state = tmp_path / "state"
    journal = Journal(state)
    journal.mark(RUN, "early@x.test", "sent", code=250)  # the interrupted run
    journal.close()
    journal, db = open_watched(state)
    folds: list[str] = []
    db.set_trace_callback(
        lambda sql: folds.append(sql) if sql.startswith("DELETE FROM marks") else None
    )
    assert journal.status(RUN, "early@x.test") == "sent"
    for i in range(100):
        address = f"a{i}@x.test"
        assert journal.status(RUN, address) is None
        journal.mark(RUN, address, "sending", message_id=f"<{i}@x>", durable=False)
        journal.flush()
        journal.mark(RUN, address, "sent", code=250, durable=False)
    assert folds == []
    # an address this connection has marked is still answered from the marks
    assert journal.status(RUN, "A99@x.test") == "sent"
    assert journal.retryable(RUN, "a99@x.test") is False
    assert len(folds) == 1
    journal.close()
