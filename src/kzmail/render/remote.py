"""Find what an HTML message would fetch from other hosts the moment it is opened.

A remote image (`<img src="https://...">`), a CSS `background` or `url(...)`, a `srcset` or a
`<link rel="stylesheet">` tells its host the reader's IP address, mail client and the time
they read the message: for readers under surveillance, that is a list of who reads us.
Links (`<a href>`) fetch nothing until clicked, so they are not resources.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
# `url(...)` anywhere in CSS, and `@import "..."` without url()
_CSS_URL = re.compile(
    r"""url\(\s*(['"]?)([^'")]*)\1\s*\)|@import\s+(['"])([^'"]+)\3""", re.IGNORECASE
)
# attributes that make a client fetch their URL when it shows the message
_FETCHED = frozenset({"src", "background", "poster", "data", "lowsrc", "dynsrc"})
_LINKS_FETCHED = frozenset({"stylesheet", "icon", "preload", "prefetch", "image_src"})


class _Finder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name in _FETCHED:
                self._add(value)
            elif name in ("srcset", "imagesrcset"):
                for candidate in value.split(","):
                    self._add(candidate.strip().split(" ")[0])
            elif name == "style":
                self._css(value)
        if tag == "link" and _LINKS_FETCHED & set(values.get("rel", "").lower().split()):
            self._add(values.get("href", ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def _css(self, css: str) -> None:
        for match in _CSS_URL.finditer(css):
            self._add(match.group(2) or match.group(4) or "")

    def _add(self, url: str) -> None:
        if _REMOTE.match(url) and url.strip() not in self.found:
            self.found.append(url.strip())


def remote_resources(html: str) -> tuple[str, ...]:
    """Every remote http(s) URL that `html` loads when shown, in order, each once."""
    finder = _Finder()
    finder.feed(html)
    finder.close()
    return tuple(finder.found)


def host(url: str) -> str:
    """The host a remote resource URL names (lower case), or the URL if it names none."""
    try:
        name = urlsplit(url.strip()).hostname
    except ValueError:
        name = None
    return name or url


def remote_hosts(urls: tuple[str, ...] | list[str]) -> list[str]:
    """The hosts of `urls`, in order, each once."""
    return list(dict.fromkeys(host(url) for url in urls))


__all__ = ["host", "remote_hosts", "remote_resources"]
