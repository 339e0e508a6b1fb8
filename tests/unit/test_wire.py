"""Message bytes in SMTP wire form, and the journal's one-commit-per-message bookkeeping."""

from __future__ import annotations

import quopri
import random
from pathlib import Path

from kzmail.cli.common import current_workspace
from kzmail.delivery.smtp import wire_ready
from kzmail.render.message import ChunkEncoder
from kzmail.state.journal import Journal


def test_quoted_printable_chunks_round_trip_and_keep_lines_short() -> None:
    rng = random.Random(11)
    static = ["shared text that every subscriber gets\n.and a dotted line " * 3]
    encoder = ChunkEncoder(static)
    texts = [
        "Hallo Jürgen,\n.dot\nspace at end \n" + "ü" * 90 + "\n",
        "",
        "=\r\n.\r\nx\ry",
        "." + "x" * 200 + "\n" + "y" * 75 + "." + "z" * 10,
        ".c { color: red }\n",
    ]
    texts += [
        "".join(rng.choice("ab =.\t\n\r€ü<>") for _ in range(rng.randint(0, 300)))
        for _ in range(300)
    ]
    for text in texts:
        # lone CRs and CRLFs become LF inside one chunk (below); rendered chunks carry none,
        # so none is ever split across two chunks
        assert quopri.decodestring(encoder.encode((text,))).decode().replace(
            "\r\n", "\n"
        ) == text.replace("\r\n", "\n").replace("\r", "\n")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 6))))
        chunks = tuple(text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True))
        encoded = encoder.encode((static[0], *chunks))
        text = static[0] + text
        lines = encoded.split(b"\r\n")
        assert all(len(line) <= 76 for line in lines), max(lines, key=len)
        assert b"\r" not in encoded.replace(b"\r\n", b"")
        # no line starts with a dot: the bytes need no SMTP dot-stuffing
        assert not any(line.startswith(b".") for line in lines)
        want = text.replace("\r\n", "\n").replace("\r", "\n")
        assert quopri.decodestring(encoded).decode().replace("\r\n", "\n") == want


def test_wire_ready_stuffs_dots_and_refuses_bare_line_ends() -> None:
    assert wire_ready(b"a\r\n.b\r\n") == b"a\r\n..b\r\n"
    assert wire_ready(b".x\r\ny") == b"..x\r\ny\r\n"
    assert wire_ready(b"a\nb\r\n") is None
    assert wire_ready(b"a\rb\r\n") is None


def test_sent_rides_with_the_next_commit_and_a_crash_leaves_it_sending(tmp_path: Path) -> None:
    writer = Journal(tmp_path)
    writer.mark("run", "a@x.org", "sending", message_id="<1@x>", name="A")
    writer.mark("run", "a@x.org", "sent", code=250, detail="250 ok", durable=False)
    reader = Journal(tmp_path)  # another process, e.g. after kill -9 now
    assert reader.status("run", "a@x.org") == "sending"
    writer.mark("run", "b@x.org", "sending", message_id="<2@x>")
    assert reader.status("run", "a@x.org") == "sent"
    assert reader.status("run", "b@x.org") == "sending"
    assert [d.address for d in reader.settle_interrupted("run")] == ["b@x.org"]
    assert writer.status("run", "b@x.org") == "uncertain"
    writer.close()
    reader.close()


def test_the_example_message_goes_to_data_as_it_is(project: Path) -> None:
    from kzmail.services import workspace as app

    prepared = app.prepare(current_workspace(), project / "campaigns/kasachstan.yaml")
    journal = Journal(project / ".kzmail")
    for subscriber in list(app.sendable(prepared, journal))[:3]:
        message = prepared.build(subscriber)
        assert message.wire_safe
        assert wire_ready(message.data) == message.data
