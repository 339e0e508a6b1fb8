"""The campaign's article: read from its Markdown file and rendered to HTML, as data.

CommonMark with raw HTML disabled, so an article cannot carry markup or script of its own;
the HTML it gives is handed to the template as a value, never as template source.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

from kzmail.errors import CampaignError
from kzmail.models import Campaign


def markdown_parser() -> MarkdownIt:
    """The article's Markdown dialect: CommonMark, raw HTML disabled."""
    return MarkdownIt("commonmark", {"html": False, "typographer": False})


def article_html(markdown: str) -> str:
    """Render the article Markdown (CommonMark, raw HTML disabled) to HTML."""
    return str(markdown_parser().render(markdown))


def read_article(campaign: Campaign) -> str:
    """The article Markdown named by the campaign; a problem with it names the article's
    file (and line), not the campaign or the template."""
    path = campaign.article.file
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CampaignError(
            f"cannot read the article: {exc.strerror or exc}", path=path, key="article.file"
        ) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise CampaignError(
            f"the article is not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
            "save it as UTF-8 (the campaign's article.file)",
            path=path,
            line=line,
        ) from exc
