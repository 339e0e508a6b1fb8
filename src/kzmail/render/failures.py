"""What a template that fails to render is told: one line naming the template, its line
and the name at fault, and what there is instead.

A misspelt name is said to be a campaign value or a subscriber's field, with the names
that exist (and the closest one); any other exception an expression raises is named too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection

import jinja2
from jinja2.exceptions import SecurityError

from kzmail.errors import TemplateError

# names the template sees besides the campaign-level ones
SUBSCRIBER_NAMES = ("subscriber", "unsubscribe_url")

_UNDEFINED = re.compile(r"has no attribute '([^']+)'|'([^']+)' is undefined")


def failure(
    exc: Exception,
    path: str,
    source: str,
    names: tuple[Collection[str], Collection[str] | None] = ((), None),
) -> TemplateError:
    """One clear line for a template that fails to render, whatever the expression raised
    (`{{ subscriber.name + 1 }}` is a TypeError, not a Jinja error). `names` are the
    campaign's values and, when a subscriber was being rendered, that subscriber's fields."""
    if isinstance(exc, jinja2.UndefinedError):
        return _unknown_field(exc, path, source, *names)
    if isinstance(exc, SecurityError):
        return TemplateError(f"the template sandbox refuses this: {exc}", path=path)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateError(f"Jinja syntax error: {exc.message}", path=path)
    if isinstance(exc, jinja2.TemplateError):
        return TemplateError(str(exc), path=path)
    return TemplateError(f"an expression fails: {type(exc).__name__}: {exc}", path=path)


def _unknown_field(
    exc: jinja2.UndefinedError,
    path: str,
    source: str,
    campaign: Collection[str],
    fields: Collection[str] | None,
) -> TemplateError:
    """Name the misspelt name, whether it was taken for a campaign value or a subscriber's
    field, what there is instead, and the template line where it is used."""
    message = exc.message or ""
    found = _UNDEFINED.search(message)
    attribute, name = (found.group(1), found.group(2)) if found else (None, None)
    word = attribute or name or ""
    line = None
    if word:
        for number, text in enumerate(source.splitlines(), 1):
            if re.search(r"\b" + re.escape(word) + r"\b", text) and ("{{" in text or "{%" in text):
                line = number
                break
    if attribute is not None and "_Person object" in message:
        known = sorted(fields or ())
        reason = (
            f"unknown subscriber field {attribute!r}{_suggestion(attribute, known)}; "
            f"this list's fields are {_listed('subscriber.', known)}"
        )
        return TemplateError(reason, path=path, line=line, key=f"subscriber.{attribute}")
    if attribute is not None:
        reason = (
            f"unknown field {attribute!r} of a campaign value "
            "(a source has title and url; subscriber fields are subscriber.NAME)"
        )
        return TemplateError(reason, path=path, line=line, key=attribute)
    known = sorted(campaign)
    reason = (
        f"unknown campaign value {word!r}{_suggestion(word, [*known, *SUBSCRIBER_NAMES])}; "
        f"the campaign values are {_listed('', known)}, and per subscriber "
        "subscriber.NAME (a column of the list) and unsubscribe_url"
    )
    return TemplateError(reason, path=path, line=line, key=word or None)


def _suggestion(word: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _listed(prefix: str, names: Collection[str]) -> str:
    return ", ".join(prefix + name for name in names) if names else "(none)"
