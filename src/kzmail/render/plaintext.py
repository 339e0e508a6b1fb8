"""The plain-text part of a message, derived from its HTML once per campaign.

`to_text` reads the compiled HTML (links kept as `[text](url)`, images and tables left
out, no hard wraps: they would split the personal tokens and URLs); `tidy_text` strips
trailing spaces and folds runs of blank lines.
"""

from __future__ import annotations

import re

import html2text


def to_text(html: str) -> str:
    """A readable plain-text reading of HTML, links kept as `[text](url)`."""
    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wraps: they would split tokens and URLs
    converter.ignore_images = True
    converter.ignore_tables = True
    converter.ignore_emphasis = False
    converter.unicode_snob = True
    converter.protect_links = False
    converter.single_line_break = False
    return str(converter.handle(html))


_BLANKS = re.compile(r"\n[ \t]*(\n[ \t]*){2,}")


def tidy_lines(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines))


def tidy_text(text: str) -> str:
    return tidy_lines(text).strip() + "\n"
