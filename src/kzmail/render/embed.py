"""Find the local images the article and the template name, and send them inside the message.

Takes the article's Markdown and the template's source before they are compiled; hands on
the same texts with each local image's address replaced by `cid:<its Content-ID>`, and the
images themselves (`Embedder.images`, shrunk and stripped by `render.images`), which the
message stage puts in a multipart/related part (`render.related`). An image given as a URL
(`https://...`) is left as it is: remote images stay governed by `allow_remote_images`.
A local image needs alt text: readers whose client shows no images, and screen readers,
get the words instead. The article may be someone else's text, so its images must lie in
its own folder or below; the template's (the organiser's own) may lie anywhere.
Every image is processed once per campaign, however often it is named.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from markdown_it.token import Token

from kzmail.errors import ImageError
from kzmail.render.article import markdown_parser
from kzmail.render.images import InlineImage, load_image

# a scheme (https:, cid:, data:, ...) or a network path (//host/...): not a local file
_NOT_LOCAL = re.compile(r"^\s*(?:[A-Za-z][A-Za-z0-9+.-]*:|//)")
_IMAGE_TAG = re.compile(r"<(mj-image|img)\b([^>]*)>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def is_local(src: str) -> bool:
    """Whether an image address names a file on disk (not a URL, not a Jinja expression)."""
    return bool(src.strip()) and not _NOT_LOCAL.match(src) and "{" not in src


class Embedder:
    """Collects a campaign's local images; each file is loaded once, however often named."""

    def __init__(self, domain: str) -> None:
        self._domain = domain
        self._by_path: dict[Path, InlineImage] = {}

    @property
    def images(self) -> tuple[InlineImage, ...]:
        return tuple(self._by_path.values())

    def cid(self, src: str, origin: Path, line: int, alt: str, *, confined: bool = False) -> str:
        """`cid:...` for the local image `src` names, relative to the file `origin`; with
        `confined`, the image must lie in `origin`'s folder or below it."""
        if not alt.strip():
            raise ImageError(
                f"the image {src} has no alt text: describe it for readers who do not see it"
                ' (Markdown: ![what it shows](file); MJML: alt="what it shows")',
                path=origin,
                line=line,
            )
        path = (origin.parent / unquote(src.strip())).resolve()
        if confined and not path.is_relative_to(origin.parent.resolve()):
            raise ImageError(
                f"the image {src} lies outside the article's folder: an article may come "
                "from someone else and must not reach into the organiser's other files; "
                "copy the image next to the article",
                path=origin,
                line=line,
            )
        found = self._by_path.get(path)
        if found is None:
            found = load_image(
                path, number=len(self._by_path) + 1, domain=self._domain, origin=origin, line=line
            )
            self._by_path[path] = found
        return f"cid:{found.cid}"

    def article(self, markdown: str, origin: Path) -> str:
        """The article's HTML with its local images referred to by `cid:`."""
        md = markdown_parser()
        tokens = md.parse(markdown)
        for block in tokens:
            if block.type == "inline" and block.children and block.map:
                self._article_line(block.children, origin, block.map[0] + 1)
        return str(md.renderer.render(tokens, md.options, {}))

    def _article_line(self, children: list[Token], origin: Path, line: int) -> None:
        for child in children:
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            src = str(child.attrs.get("src", ""))
            if child.type == "image" and is_local(src):
                child.attrs["src"] = self.cid(src, origin, line, child.content, confined=True)

    def template(self, source: str, origin: Path) -> str:
        """The template's source with `<mj-image>`/`<img>` local `src` replaced by `cid:`."""

        def swap(match: re.Match[str]) -> str:
            attributes = {
                m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                for m in _ATTRIBUTE.finditer(match.group(2))
            }
            src = attributes.get("src", "")
            if not is_local(src):
                return match.group(0)
            line = source.count("\n", 0, match.start()) + 1
            cid = self.cid(src, origin, line, attributes.get("alt", ""))
            rest = _ATTRIBUTE.sub(
                lambda m: f'src="{cid}"' if m.group(1).lower() == "src" else m.group(0),
                match.group(2),
            )
            return f"<{match.group(1)}{rest}>"

        return _IMAGE_TAG.sub(swap, source)


__all__ = ["Embedder", "is_local"]
