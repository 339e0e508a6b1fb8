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
    """The article Markdown named by the campaign."""
    try:
        return campaign.article.file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(
            f"cannot read article: {exc}", path=campaign.source_path, key="article.file"
        ) from exc
