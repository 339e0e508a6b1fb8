"""The fixed texts of the default template, per campaign language (`texts:` overrides them).

Each language maps every key of `TEXT_KEYS` to its text; `{name}` and `{email}` stand for
the subscriber's (first) name and address. A language without its own texts gets English,
a regional tag its base language's (`de-AT` -> `de`). Standard library only: `models`
fills a campaign's `texts` from here when it is validated.
"""

from __future__ import annotations

from collections.abc import Mapping

# key -> what it is, for error messages and the scaffold's comments
TEXT_KEYS: Mapping[str, str] = {
    "by": "before the author's name",
    "greeting": "the greeting when the list has a name ({name}: the first name, else the name)",
    "greeting_anonymous": "the greeting without a name",
    "demands": "heading of the demands box",
    "sources": "heading of the list of sources",
    "sent_to": "footer: where this message went ({email}: the subscriber's address)",
    "unsubscribe": "footer: the text of the unsubscribe link",
}
PLACEHOLDERS: Mapping[str, str] = {"greeting": "{name}", "sent_to": "{email}"}

DEFAULT_TEXTS: Mapping[str, Mapping[str, str]] = {
    "de": {
        "by": "Von",
        "greeting": "Hallo {name},",
        "greeting_anonymous": "Hallo,",
        "demands": "Unsere Forderungen",
        "sources": "Quellen",
        "sent_to": "Diese E-Mail ging an {email}.",
        "unsubscribe": "Vom Newsletter abmelden",
    },
    "en": {
        "by": "By",
        "greeting": "Hello {name},",
        "greeting_anonymous": "Hello,",
        "demands": "Our demands",
        "sources": "Sources",
        "sent_to": "This email was sent to {email}.",
        "unsubscribe": "Unsubscribe from this newsletter",
    },
    "ru": {
        "by": "Автор:",
        "greeting": "Здравствуйте, {name}!",
        "greeting_anonymous": "Здравствуйте!",
        "demands": "Наши требования",
        "sources": "Источники",
        "sent_to": "Это письмо отправлено на адрес {email}.",
        "unsubscribe": "Отписаться от рассылки",
    },
}
FALLBACK = "en"


def default_texts(language: str) -> Mapping[str, str]:
    """The shipped texts for a BCP 47 `language` tag (English when none are shipped)."""
    base = language.split("-", 1)[0].lower()
    return DEFAULT_TEXTS.get(base, DEFAULT_TEXTS[FALLBACK])


__all__ = ["DEFAULT_TEXTS", "PLACEHOLDERS", "TEXT_KEYS", "default_texts"]
