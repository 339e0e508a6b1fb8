"""Message bytes in SMTP wire form, and the journal's one-commit-per-message bookkeeping."""

from __future__ import annotations

import quopri
import random
from pathlib import Path

from kzmail.journal import Journal
from kzmail.message import QuotedPrintable
from kzmail.transport import wire_ready


def test_quoted_printable_per_line_round_trips_and_keeps_lines_short() -> None:
    rng = random.Random(11)
    qp = QuotedPrintable(capacity=50, once=20)
    texts = ["Hallo Jürgen,\n.dot\nspace at end \n" + "ü" * 90 + "\n", "", "=\r\n.\r\nx\ry",
             "." + "x" * 200 + "\n" + "y" * 75 + "." + "z" * 10, ".c { color: red }\n"]
    texts += ["".join(rng.choice("ab =.\t\n\r€ü<>") for _ in range(rng.randint(0, 300)))
              for _ in range(300)]
    for text in texts:
        encoded, dotted = qp.encode(text)
        lines = encoded.split(b"\r\n")
        assert all(len(line) <= 76 for line in lines)
        assert b"\r" not in encoded.replace(b"\r\n", b"")
        # no line starts with a dot: the bytes need no SMTP dot-stuffing
        assert not dotted
        assert not any(line.startswith(b".") for line in lines)
        want = text.replace("\r\n", "\n").replace("\r", "\n")
        assert quopri.decodestring(encoded).decode().replace("\r\n", "\n") == want


def test_the_line_cache_stays_bounded() -> None:
    qp = QuotedPrintable(capacity=100, once=50)
    for i in range(5000):
        qp(f"shared line\npersonal line {i}\n")
    assert len(qp._cache) <= 100
    assert len(qp._seen_once) <= 50
    assert "shared line" in qp._cache


def test_wire_ready_stuffs_dots_and_refuses_bare_line_ends() -> None:
    assert wire_ready(b"a\r\n.b\r\n") == b"a\r\n..b\r\n"
    assert wire_ready(b".x\r\ny") == b"..x\r\ny\r\n"
    assert wire_ready(b"a\nb\r\n") is None
    assert wire_ready(b"a\rb\r\n") is None


def test_sent_rides_with_the_next_commit_and_a_crash_leaves_it_sending(tmp_path: Path) -> None:
    writer = Journal(tmp_path)
    writer.mark("run", "a@x.org", "sending", message_id="<1@x>", name="A")
    writer.mark("run", "a@x.org", "sent", code=250, detail="250 ok", durable=False)
    reader = Journal(tmp_path)              # another process, e.g. after kill -9 now
    assert reader.status("run", "a@x.org") == "sending"
    writer.mark("run", "b@x.org", "sending", message_id="<2@x>")
    assert reader.status("run", "a@x.org") == "sent"
    assert reader.status("run", "b@x.org") == "sending"
    assert [d.address for d in reader.settle_interrupted("run")] == ["b@x.org"]
    assert writer.status("run", "b@x.org") == "uncertain"
    writer.close()
    reader.close()


def test_the_example_message_goes_to_data_as_it_is(project: Path) -> None:
    from kzmail import app

    prepared = app.prepare(project / "campaigns/kasachstan.yaml")
    journal = Journal(project / ".kzmail")
    for subscriber in list(app.sendable(prepared, journal))[:3]:
        message = prepared.build(subscriber)
        assert message.wire_safe
        assert wire_ready(message.data) == message.data
