"""Reading a format=flowed text part as a receiving client does (RFC 3676, section 4.2),
written from the RFC and not from kzmail's encoder, so that it can check that encoder."""

from __future__ import annotations


def unflowed_lines(text: str) -> list[tuple[int, str]]:
    """The logical lines of flowed text: (quote depth, text). A line that ends in a space
    (not the signature separator "-- ") flows into the next one of the same depth."""
    out: list[tuple[int, str]] = []
    open_line: tuple[int, str] | None = None
    for line in text.replace("\r\n", "\n").split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # space-stuffing, or the space after quote marks
        if open_line is not None and open_line[0] != depth:
            out.append(open_line)  # a change of depth ends a paragraph (4.5)
            open_line = None
        joined = content if open_line is None else open_line[1] + content
        if content.endswith(" ") and content != "-- ":
            open_line = (depth, joined)
        else:
            out.append((depth, joined))
            open_line = None
    if open_line is not None:
        out.append(open_line)
    return out


def unflow(text: str) -> str:
    """Flowed text re-flowed into one line per paragraph, quotes as "> " per level."""
    return "\n".join(("> " * depth if depth else "") + line for depth, line in unflowed_lines(text))
