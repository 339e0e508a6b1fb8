"""Wrap the plain-text part as format=flowed (RFC 3676), once per campaign where possible.

`flow` takes logical text (one line per paragraph, marked by `plaintext.to_text`) and
wraps each line at `WIDTH` characters: a soft break ends its line with a space, a hard
break does not, so a client that knows format=flowed can re-flow the paragraphs and one
that does not shows tidy lines. Lines that start with a space, ">" or "From " are
space-stuffed; quotations get "> " per level; a signature separator `-- ` keeps its
space. A word longer than a line (a long URL) stays whole on a line of its own: broken,
it would no longer be a link.

`flow_template` does this to the text template once its campaign-level parts are
rendered (`prerender`): every line that is the same for everyone is wrapped there and
then, and only a line with a personal value in it (the greeting, the footer) is wrapped
per subscriber, by the `flowed` filter.
"""

from __future__ import annotations

import re

from jinja2 import nodes

from kzmail.render.plaintext import QUOTE, UNDERLINE, VERBATIM

WIDTH = 76  # a line's length with its soft-break space; with space-stuffing at most 77
SIGNATURE = "-- "
FILTER = "flowed"
_CHUNK = re.compile(r"[^ ]+ *")


def _stuffed(line: str) -> str:
    return " " + line if line.startswith((" ", ">", "From ")) else line


def _wrap(line: str, width: int) -> list[str]:
    """Greedy wrapping at spaces; every row but the last keeps its space(s) at the end."""
    body = line.lstrip(" ")
    chunks = _CHUNK.findall(body)
    if not chunks:
        return [line]
    chunks[0] = line[: len(line) - len(body)] + chunks[0]
    rows: list[str] = []
    row = ""
    for chunk in chunks:
        if row and len(row) + len(chunk) > width:
            rows.append(row)
            row = chunk
        else:
            row += chunk
    rows.append(row)
    return rows


def _flow_line(line: str, width: int) -> list[str]:
    if line == SIGNATURE:
        return [line]
    depth = len(line) - len(line.lstrip(QUOTE))
    line = line[depth:]
    prefix = ">" * depth + " " if depth else ""
    stuff = (lambda row: row) if depth else _stuffed
    if line.startswith(VERBATIM):
        return [prefix + stuff(line[1:].rstrip())]
    underline = ""
    if line.startswith(UNDERLINE):
        underline, line = line[1:2], line[2:]
    line = line.rstrip(" \t")
    if not line:
        return [prefix.rstrip()] if depth else [""]
    rows = _wrap(line, width - len(prefix))
    flowed = [prefix + stuff(row) for row in rows]
    if underline:
        flowed.append(prefix + underline * max(len(row.rstrip(" ")) for row in rows))
    return flowed


_AS_IS = (" ", ">", "From ", QUOTE, UNDERLINE, VERBATIM)


def flow(text: str, width: int = WIDTH) -> str:
    """Logical text, wrapped as format=flowed; line breaks stay "\\n"."""
    short = len(text) <= width and "\n" not in text and not text.startswith(_AS_IS)
    if short and (not text.endswith((" ", "\t")) or text == SIGNATURE):
        return text  # one short line, as most personal lines are: nothing to do
    return "\n".join(row for line in text.split("\n") for row in _flow_line(line, width))


def _filtered(body: list[nodes.Node], lineno: int) -> nodes.FilterBlock:
    block = nodes.FilterBlock(body, nodes.Filter(None, FILTER, [], [], None, None))
    block.set_lineno(lineno)
    return block


def flow_template(body: list[nodes.Node], folded: bool) -> list[nodes.Node]:
    """The text template's body with its lines wrapped: static lines now, lines with a
    personal value per render. A template that was not `folded` (see `prerender`) has
    its parts entangled: it is wrapped whole, per render."""
    lineno = body[0].lineno if body else 1
    if not folded:
        return [_filtered(body, lineno)] if body else body
    lines: list[list[str | nodes.Node]] = [[]]
    for node in body:
        parts: list[str | nodes.Node] = []
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    parts.append(child.data)
                else:
                    parts.append(nodes.Output([child], lineno=child.lineno))
        else:
            parts.append(node)
        for part in parts:
            if isinstance(part, str):
                first, *rest = part.split("\n")
                lines[-1].append(first)
                lines.extend([piece] for piece in rest)
            else:
                lines[-1].append(part)
    out: list[nodes.Node] = []
    static: list[str] = []
    for number, line in enumerate(lines):
        end = "\n" if number < len(lines) - 1 else ""
        if all(isinstance(part, str) for part in line):
            static.append(flow("".join(str(part) for part in line)) + end)
            continue
        if static:
            out.append(nodes.Output([nodes.TemplateData("".join(static))], lineno=lineno))
        pieces = [
            nodes.Output([nodes.TemplateData(part)], lineno=lineno)
            if isinstance(part, str)
            else part
            for part in line
            if part != ""
        ]
        out.append(_filtered(pieces, lineno))
        static = [end]
    if "".join(static):
        out.append(nodes.Output([nodes.TemplateData("".join(static))], lineno=lineno))
    return out
