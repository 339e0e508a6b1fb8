"""Compile the campaign's MJML template once, then personalise it cheaply per subscriber.

Once per campaign (`compile_campaign`):
  1. every Jinja tag is swapped for an opaque token, so MJML cannot escape `>` in it and
     premailer cannot URL-encode `href="{{ unsubscribe_url }}"`;
     campaign-level variables written as a bare `{{ name }}` are filled in right here,
     escaped and between two marks, so that premailer styles the article's elements too;
  2. MJML -> HTML (mjml-python, no web fonts), CSS inlined by premailer (which also does
     the `<mj-style inline="inline">` inlining that mjml-python ignores);
  3. the plain-text part is derived from that same HTML (`plaintext`): headings, links
     and lists as a person would type them, the hidden preheader left out;
  4. what lies between two marks is lifted out again and handed to Jinja as a value, never
     as source; tokens are turned back into Jinja tags and both parts compiled into
     templates of a sandboxed Jinja, which keeps even a foreign template away from Python's
     internals;
  5. every part that reads no personal value is rendered there and then (`prerender`),
     and the text part wrapped as format=flowed (`flowed`), but for the lines that hold
     a personal value.
Per subscriber (`CompiledTemplate.render`): two pre-compiled Jinja renders of what is left.

Campaign text (article, title, lead, ...) is often written by someone else than the
organiser: it is data, shown exactly as written, and `{{ 7*7 }}` in it stays `{{ 7*7 }}`.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Collection, Mapping
from email.utils import parseaddr
from types import CodeType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from mjml import mjml2html
from premailer import Premailer

from kzmail.errors import TemplateError
from kzmail.models import Campaign, Rendered, Subscriber
from kzmail.render.article import read_article
from kzmail.render.embed import Embedder
from kzmail.render.failures import SUBSCRIBER_NAMES
from kzmail.render.failures import failure as _failure
from kzmail.render.flowed import FILTER, flow, flow_template
from kzmail.render.images import InlineImage
from kzmail.render.plaintext import tidy_lines, tidy_text, to_text
from kzmail.render.prerender import prerender
from kzmail.render.remote import remote_resources

_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_BARE = re.compile(r"^\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)\s*-?\}\}$")
_RAW = re.compile(r"^\{%-?\s*(end)?raw\s*-?%\}$")
_SHADOW = re.compile(r"\{%-?\s*(?:for|set)\s+([A-Za-z_][A-Za-z0-9_, ]*?)\s+(?:in|=)")
_TOKEN_PREFIX = "kzjinja"  # noqa: S105 - a marker, not a secret


class CompiledTemplate:
    """A campaign's template, compiled once; `render` runs per subscriber."""

    def __init__(
        self,
        html: jinja2.Template,
        text: jinja2.Template,
        html_context: Mapping[str, Any],
        text_context: Mapping[str, Any],
        path: str,
        source: str,
        reads: tuple[Collection[str], Collection[str]],
        remote: tuple[str, ...] = (),
        images: tuple[InlineImage, ...] = (),
    ) -> None:
        self._html = html
        self._text = text
        # what `generate` would merge for every render (the template's globals, then the
        # campaign's values), merged once, and only the names each template still reads
        self._html_context = _only({**html.globals, **html_context}, reads[0])
        self._text_context = _only({**text.globals, **text_context}, reads[1])
        self._path = path
        self._source = source
        self._campaign_names = sorted(k for k in html_context if not k.startswith("kz_"))
        self.remote = remote  # URLs the HTML part would fetch from remote hosts
        self.images = images  # local images the HTML part refers to by cid:

    def render(self, subscriber: Subscriber, unsubscribe_url: str) -> Rendered:
        """Personalise both parts for one subscriber (autoescaped HTML, plain text)."""
        person = _Person(
            subscriber.fields,
            email=subscriber.email,
            name=subscriber.name,
            first_name=subscriber.first_name,
        )
        try:
            html = _run(self._html, self._html_context, person, unsubscribe_url)
            text = _run(self._text, self._text_context, person, unsubscribe_url)
        except Exception as exc:
            names = (self._campaign_names, sorted(person))
            raise _failure(exc, self._path, self._source, names) from exc
        return Rendered(html, text)

    def static_text(self) -> list[str]:
        """The template's literal text: the same str objects in every render."""
        found: list[str] = []
        for template in (self._html, self._text):
            _string_constants(template.root_render_func.__code__, found)
        return found


def _only(context: Mapping[str, Any], names: Collection[str]) -> dict[str, Any]:
    return {name: context[name] for name in names if name in context}


class _Person(dict[str, str]):
    """A subscriber as templates see it, `subscriber.city` or `subscriber["city"]`.

    Jinja tries an attribute first: on a plain dict that fails, with an exception, for
    every field of every message; here the field is found at once.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> str:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_PERSON_ATTRIBUTES = frozenset(dir(_Person))


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, with a short way to a subscriber's field (`subscriber.name`).

    The sandbox checks every attribute a template reads; a field is a str from the list,
    never a way into Python, and reading it is most of the per-subscriber work, so it is
    looked up at once. Anything else, `subscriber.__class__` included, is checked.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is _Person and attribute not in _PERSON_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _run(
    template: jinja2.Template, context: dict[str, Any], person: _Person, unsubscribe_url: str
) -> tuple[str, ...]:
    """`template.generate(context, ...)` without its two copies of the campaign's values
    for every render: the one fresh dict here is the template's context itself."""
    values = {**context, "subscriber": person, "unsubscribe_url": unsubscribe_url}
    return tuple(template.root_render_func(template.new_context(values, shared=True)))


def _string_constants(code: CodeType, found: list[str]) -> None:
    for const in code.co_consts:
        if isinstance(const, str):
            found.append(const)
        elif isinstance(const, CodeType):
            _string_constants(const, found)


def _campaign_values(campaign: Campaign, article: str) -> dict[str, Any]:
    return {
        "title": campaign.article.title,
        "author": campaign.article.author,
        "lead": campaign.article.lead,
        "preheader": campaign.preheader,
        "list_name": campaign.list_name,
        "reason": campaign.reason,
        "language": campaign.language,
        "texts": campaign.texts.model_dump(),
        "subject": campaign.subject,
        "article": Markup(article),  # noqa: S704 - our own Markdown render, raw HTML off
        "demands": list(campaign.demands),
        "sources": [{"title": s.title, "url": s.url} for s in campaign.article.sources],
    }


class _Marks:
    """The marks that keep a campaign value filled into the template apart from it:
    `around(i, text)` puts the i-th value between an opening and a closing mark and
    writes each `{` in it as a mark too, so that no part of it can read as a Jinja tag
    even if MJML or the CSS inliner moved it out from between its marks (then the left-over
    marks say so). Random per compile, so no campaign text can forge one."""

    def __init__(self) -> None:
        self.prefix = prefix = f"kz{secrets.token_hex(8)}"
        self.pair = re.compile(
            re.escape(prefix) + r"o(\d+)x(\s*)(.*?)(\s*)" + re.escape(prefix) + r"c\1x", re.DOTALL
        )
        self.any = re.compile(re.escape(prefix) + r"(?:[oc](\d+)x|b)")
        self._edges = re.compile(re.escape(prefix) + r"[oc]\d+x")

    def around(self, index: int, text: str) -> str:
        hidden = text.replace("{", f"{self.prefix}b")
        return f"{self.prefix}o{index}x{hidden}{self.prefix}c{index}x"

    def show(self, text: str) -> str:
        """`text` as it was before it went between marks."""
        return text.replace(f"{self.prefix}b", "{")

    def plain(self, text: str) -> str:
        """The whole document with every value filled in, as a reader would get it."""
        return self.show(self._edges.sub("", text))


def _protect(
    source: str, values: Mapping[str, Any], path: str, marks: _Marks
) -> tuple[str, dict[str, str], list[str]]:
    """Swap Jinja tags for tokens; fill bare campaign-level `{{ name }}` tags in place,
    between marks; return the names filled in, in order."""
    if _TOKEN_PREFIX in source:
        raise TemplateError(f"the template must not contain the text {_TOKEN_PREFIX!r}", path=path)
    for match in _SHADOW.finditer(source):
        for name in match.group(1).replace(" ", "").split(","):
            if name in values or name in SUBSCRIBER_NAMES:
                raise TemplateError(
                    f"do not reuse the name {name!r} for a loop or set "
                    "variable: it is a campaign variable",
                    path=path,
                )
    tokens: dict[str, str] = {}
    filled: list[str] = []
    raw = [False]  # inside `{% raw %}`: tags are text, nothing is filled in

    def swap(match: re.Match[str]) -> str:
        tag = match.group(0)
        bare = _BARE.match(tag)
        edge = _RAW.match(tag)
        if edge is not None:
            raw[0] = edge.group(1) is None
        elif bare and bare.group(1) in values and not raw[0]:
            filled.append(bare.group(1))
            return marks.around(len(filled) - 1, str(escape(values[bare.group(1)])))
        token = f"{_TOKEN_PREFIX}{len(tokens)}x"
        tokens[token] = tag
        return token

    return _TAG.sub(swap, source), tokens, filled


_VALUE = "kz_value{}"  # the name a lifted campaign value has in the template


def _lift(
    text: str, marks: _Marks, filled: list[str], path: str, *, html: bool
) -> tuple[str, dict[str, Any]]:
    """Replace each marked campaign value by a `{{ name }}` that reads it, and return the
    values: what the template compiler sees of campaign text is a variable, never text.

    The whitespace around a value stays outside it, so the text part's tidying can fold
    blank lines across it as it would across the value itself.
    """
    lifted: dict[str, Any] = {}

    def lift(match: re.Match[str]) -> str:
        name = _VALUE.format(len(lifted))
        value = marks.show(match.group(3))
        lifted[name] = Markup(value) if html else tidy_lines(value)  # noqa: S704 - escaped
        return f"{match.group(2)}{{{{ {name} }}}}{match.group(4)}"  # when filled in

    skeleton = marks.pair.sub(lift, text)
    stray = marks.any.search(skeleton)
    if stray is not None:
        name = filled[int(stray.group(1))] if stray.group(1) else "a campaign value"
        raise TemplateError(
            f"{{{{ {name} }}}} stands where MJML or the CSS inliner takes "
            "it apart (inside a style?): use it in text or in an attribute",
            path=path,
            key=name,
        )
    return skeleton, lifted


_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){2,}")


def _fold_blank_lines(text: str) -> str:
    return _BLANK_RUN.sub("\n\n", text)


def _restore(text: str, tokens: Mapping[str, str]) -> str:
    if not tokens:
        return text
    return re.sub(_TOKEN_PREFIX + r"\d+x", lambda m: tokens.get(m.group(0), m.group(0)), text)


def _inline_css(html: str) -> str:
    # cssutils logs every property it does not know (mso-*, etc.): quiet, not an error.
    return str(
        Premailer(
            html,
            allow_network=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
            remove_classes=False,
            keep_style_tags=False,
            strip_important=False,
        ).transform()
    )


def _environment(autoescape: bool) -> jinja2.Environment:
    # The text part is text/plain: HTML escaping would corrupt it, so autoescape is off there;
    # its block tags were placed by `plaintext` so that no line break needs trimming.
    # Sandboxed: the template is the organiser's, but may come from elsewhere.
    env = _Sandbox(
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
    )
    if not autoescape:
        env.filters[FILTER] = flow
    return env


def compile_campaign(campaign: Campaign) -> CompiledTemplate:
    """Compile MJML, inline CSS and derive the text part: once per campaign."""
    path = str(campaign.template)
    try:
        source = campaign.template.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template ({exc})", path=path) from exc
    try:
        _environment(True).parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"Jinja syntax error: {exc.message}", path=path, line=exc.lineno
        ) from exc
    embedder = Embedder(parseaddr(campaign.from_)[1].rpartition("@")[2])
    article = embedder.article(read_article(campaign), campaign.article.file)
    source = embedder.template(source, campaign.template)
    values = _campaign_values(campaign, article)
    marks = _Marks()
    protected, tokens, filled = _protect(source, values, path, marks)
    try:
        html = mjml2html(protected, fonts={}, disable_comments=True)
    except Exception as exc:
        raise TemplateError(f"MJML does not compile: {exc}", path=path) from exc
    html = _inline_css(html).replace("\r\n", "\n")
    control = {token for token, tag in tokens.items() if not tag.startswith("{{")}
    text, text_lifted = _lift(to_text(html, control), marks, filled, path, html=False)
    html_source = html
    html, html_lifted = _lift(html, marks, filled, path, html=True)
    html_values = {**values, **html_lifted}
    text_values = {**values, "article": to_text(article), **text_lifted}
    try:  # what is the same for every subscriber is rendered here, once
        html_template, html_reads = prerender(
            _environment(True), _restore(html, tokens), html_values, SUBSCRIBER_NAMES
        )
        text_template, text_reads = prerender(
            _environment(False),
            _restore(tidy_text(text), tokens),
            text_values,
            SUBSCRIBER_NAMES,
            reshape=flow_template,
            fold=_fold_blank_lines,  # a section left out leaves no run of blank lines
        )
    except Exception as exc:
        raise _failure(exc, path, source, (sorted(values), None)) from exc
    return CompiledTemplate(
        html_template,
        text_template,
        html_values,
        text_values,
        path,
        source,
        reads=(html_reads, text_reads),
        remote=_remote(marks.plain(html_source), html_template),
        images=embedder.images,
    )


def _remote(html: str, template: jinja2.Template) -> tuple[str, ...]:
    """What the HTML part fetches from remote hosts: found in the compiled HTML with the
    campaign's values in place, and in what prerendering made of loops over them."""
    found = list(remote_resources(html))
    chunks: list[str] = []
    _string_constants(template.root_render_func.__code__, chunks)
    for chunk in chunks:
        found += remote_resources(chunk)
    return tuple(dict.fromkeys(found))
