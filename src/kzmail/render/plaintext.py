"""The plain-text part of a message, derived from its compiled HTML once per campaign.

`to_text` reads the HTML (the template with the article's Markdown rendered into it) and
writes the text a person would write: a heading is a line with an underline, emphasis is
plain words, a link is `text <url>`, a list item starts with "- " (or "1. "), a quotation
is quoted. What the reader never sees in the HTML (the hidden preheader, the `<head>`)
is left out. It hands on *logical* text: one line per paragraph, not wrapped yet; the
lines are marked for `flowed.flow`, which wraps them (format=flowed) once the campaign's
values are in place. A text run that is nothing but Jinja block tags (`{% for %}`) gets
a line of its own, so that with `trim_blocks` the line vanishes and leaves the
paragraphs around it as they were.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from html.parser import HTMLParser

# marks at the start of a logical line, read by `flowed.flow` (control characters are
# removed from the text itself, so no text can forge them)
QUOTE = "\x1d"  # one level of quotation
UNDERLINE = "\x1e"  # followed by "=" or "-": underline the line
VERBATIM = "\x1f"  # a line of preformatted text: not wrapped

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_SPACES = re.compile(r"[ \t\n\r\f]+")  # HTML white space; a no-break space is not one
_BLOCKS = frozenset(
    re.findall(
        r"\S+",
        """address article aside blockquote body center dd div dl dt fieldset figcaption
        figure footer form h1 h2 h3 h4 h5 h6 header hr html li main nav ol p pre section
        table tbody td tfoot th thead tr ul""",
    )
)
_SKIPPED = frozenset(re.findall(r"\S+", "head style script title template noscript"))
_VOID = frozenset(
    re.findall(r"\S+", "area base br col embed hr img input link meta source track wbr")
)
_HIDDEN = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all|visibility\s*:\s*hidden", re.I)
_SCHEME = re.compile(r"^(?:https?://|mailto:)", re.I)


@dataclass
class _Entry:
    kind: str  # "para", "item", "control"
    text: str
    group: int = 0  # list items of one list share it


class _Reader(HTMLParser):
    def __init__(self, is_control: Collection[str]) -> None:
        super().__init__(convert_charrefs=True)
        self._is_control = is_control
        self.entries: list[_Entry] = []
        self._inline: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # open elements, and whether hidden
        self._hidden = 0
        self._quote = 0
        self._pre = 0
        self._lists: list[list[int]] = []  # per open list: [group id, next number or 0]
        self._groups = 0
        self._prefix = ""  # the marker of a list item whose first paragraph is to come
        self._item_group = 0
        self._links: list[tuple[str, int]] = []  # open links: href, where their text starts

    # --- the element tree ---------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self._void(tag)
            return
        values = dict(attrs)
        hidden = (
            tag in _SKIPPED or "hidden" in values or bool(_HIDDEN.search(values.get("style") or ""))
        )
        self._stack.append((tag, hidden))
        self._hidden += hidden
        if self._hidden:
            return
        if tag in _BLOCKS:
            self._flush()
        if tag == "blockquote":
            self._quote += 1
        elif tag == "pre":
            self._pre += 1
        elif tag in ("ul", "ol"):
            self._groups += 1
            self._lists.append([self._groups, 1 if tag == "ol" else 0])
        elif tag == "li":
            self._start_item()
        elif tag == "a":
            self._links.append(((values.get("href") or "").strip(), len(self._inline)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            self._void(tag)
        else:
            self.handle_starttag(tag, attrs)
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(open_tag == tag for open_tag, _ in self._stack):
            return
        while self._stack:
            open_tag, hidden = self._stack.pop()
            if not self._hidden:
                self._close(open_tag)
            self._hidden -= hidden
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._inline.append(_CONTROLS.sub("", data))

    def _void(self, tag: str) -> None:
        if self._hidden:
            return
        if tag == "br":
            self._inline.append("\n")
        elif tag == "hr":
            self._flush()
            self._add("para", VERBATIM + "-" * 20)

    def _close(self, tag: str) -> None:
        if tag == "a" and self._links:
            self._link(*self._links.pop())
        elif tag in _BLOCKS:
            if tag[0] == "h" and tag[1:].isdigit():
                self._flush(UNDERLINE + ("=" if tag == "h1" else "-"))
            else:
                self._flush()
            if tag == "blockquote":
                self._quote -= 1
            elif tag == "pre":
                self._pre -= 1
            elif tag in ("ul", "ol") and self._lists:
                self._lists.pop()
            elif tag == "li":
                self._prefix = ""

    # --- what the reader reads ----------------------------------------------------

    def _start_item(self) -> None:
        if not self._lists:
            self._lists.append([0, 0])
        group, number = self._lists[-1]
        indent = "  " * (len(self._lists) - 1)
        self._prefix = f"{indent}{number}. " if number else f"{indent}- "
        if number:
            self._lists[-1][1] += 1
        self._item_group = group

    def _link(self, href: str, start: int) -> None:
        text = _SPACES.sub(" ", "".join(self._inline[start:])).strip()
        if not href or href.startswith("#"):
            return
        bare = _SCHEME.sub("", href).rstrip("/")
        shown = f"<{href}>" if text in ("", href, bare) else f"{text} <{href}>"
        self._inline[start:] = [f" {shown}" if start and not text else shown]

    def _flush(self, mark: str = "") -> None:
        raw, self._inline = "".join(self._inline), []
        if self._pre:
            lines = [VERBATIM + line.rstrip() for line in raw.strip("\n").split("\n")]
        else:
            lines = [_SPACES.sub(" ", part).strip() for part in raw.split("\n")]
        lines = [line for line in lines if line.strip(VERBATIM)]
        if not lines:
            return
        text = "\n".join(lines)
        if self._controls_only(text):
            self._add("control", "".join(text.split()))
            return
        if mark:
            text = mark + text.replace("\n", " ")
        kind = "item" if self._prefix else "para"
        if self._prefix:
            text, self._prefix = self._prefix + text, ""
        self._add(kind, text)

    def _controls_only(self, text: str) -> bool:
        words = text.split()
        return bool(words) and all(word in self._is_control for word in words)

    def _add(self, kind: str, text: str) -> None:
        if self._quote:
            text = "\n".join(QUOTE * self._quote + line for line in text.split("\n"))
        if kind == "item":
            group = self._item_group
        else:
            group = self._lists[-1][0] if kind == "control" and self._lists else 0
        self.entries.append(_Entry(kind, text, group))

    def finish(self) -> list[_Entry]:
        self.close()
        self._flush()
        return self.entries


def _joined(entries: list[_Entry]) -> str:
    """The entries as logical text: a blank line between paragraphs, none between the items
    of one list. A run of block tags goes where it leaves the spacing as it was, whether
    it renders once, never or many times: just before a list's item when the next entry
    is one of them, on the line after a list's last item when it closes a loop over the
    items, else right after the entry before it."""
    out: list[str] = []
    previous: _Entry | None = None
    before: list[str] = []
    owed = False  # a line break already written after the last item of a loop
    for index, entry in enumerate(entries):
        if entry.kind == "control":
            following = next((e for e in entries[index + 1 :] if e.kind != "control"), None)
            if previous is None or (
                entry.group != 0
                and following is not None
                and following.kind == "item"
                and following.group == entry.group
            ):
                before.append(entry.text)
            elif entry.group != 0 and not owed:
                out.append(f"\n{entry.text}")  # ends the last item's line inside the loop
                owed = True
            else:
                out.append(entry.text)
            continue
        if previous is not None:
            same_list = previous.kind == entry.kind == "item" and previous.group == entry.group
            out.append(("\n" if same_list else "\n\n")[owed:])
        owed = False
        out.extend(before)
        before = []
        out.append(entry.text)
        previous = entry
    out.extend(before)
    return "".join(out) + ("" if owed else "\n")


def to_text(html: str, control: Collection[str] = ()) -> str:
    """The logical plain text of HTML (see the module's docstring); `control` holds the
    words that stand for Jinja block tags."""
    reader = _Reader(control)
    reader.feed(html)
    return _joined(reader.finish())


_BLANKS = re.compile(r"\n[ \t]*(\n[ \t]*){2,}")


def tidy_lines(text: str) -> str:
    """Trailing spaces gone (a signature separator `-- ` keeps its own), runs of blank
    lines folded into one."""
    lines = [
        line if line == "-- " else line.rstrip() for line in text.replace("\r\n", "\n").split("\n")
    ]
    return _BLANKS.sub("\n\n", "\n".join(lines))


def tidy_text(text: str) -> str:
    return tidy_lines(text).strip() + "\n"
