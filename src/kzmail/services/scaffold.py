"""`kzmail new`: a campaign to start from, in the organiser's language.

Takes a project root, a campaign name and a language; writes `campaigns/NAME.yaml` (every
key commented), `campaigns/NAME.md` (a short sample article) and `NAME-subscribers.csv` (two
sample rows at example domains), and never overwrites a file. What it writes passes
`kzmail check` and `kzmail preview` as it stands.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from kzmail.errors import InputError
from kzmail.languages import default_texts
from kzmail.models import Campaign, Workspace

_NAME = re.compile(Campaign.model_fields["name"].metadata[0].pattern)

# what a new campaign says in each language: the sample the organiser replaces
SAMPLES: dict[str, dict[str, str]] = {
    "de": {
        "subject": "Einladung zum nächsten Treffen",
        "from_name": "Unsere Gruppe",
        "list_name": "Newsletter unserer Gruppe",
        "reason": "Du erhältst diese E-Mail, weil du unseren Newsletter abonniert hast.",
        "preheader": "Wann und wo wir uns treffen, und worum es geht.",
        "title": "Einladung zum nächsten Treffen",
        "lead": "Worum es geht, in einem Satz.",
        "article": "Hier steht der Artikel, in Markdown.\n\n## Eine Zwischenüberschrift\n\n"
        "Ein Absatz mit einem [Link](https://example.org/) und **fettem** Text.\n",
    },
    "en": {
        "subject": "Invitation to our next meeting",
        "from_name": "Our group",
        "list_name": "Our group's newsletter",
        "reason": "You get this email because you subscribed to our newsletter.",
        "preheader": "When and where we meet, and what it is about.",
        "title": "Invitation to our next meeting",
        "lead": "What it is about, in one sentence.",
        "article": "The article goes here, in Markdown.\n\n## A subheading\n\n"
        "A paragraph with a [link](https://example.org/) and **bold** text.\n",
    },
    "ru": {
        "subject": "Приглашение на следующую встречу",
        "from_name": "Наша группа",
        "list_name": "Рассылка нашей группы",
        "reason": "Вы получили это письмо, потому что подписались на нашу рассылку.",
        "preheader": "Когда и где мы встречаемся и о чём пойдёт речь.",
        "title": "Приглашение на следующую встречу",
        "lead": "О чём речь, в одном предложении.",
        "article": "Здесь текст статьи, в формате Markdown.\n\n## Подзаголовок\n\n"
        "Абзац со [ссылкой](https://example.org/) и **жирным** текстом.\n",
    },
}
LANGUAGES = tuple(SAMPLES)
_LIST = "email,first_name,last_name\nalex.beispiel@example.org,Alex,Beispiel\n" + (
    "sam.example@example.net,Sam,Example\n"
)


@dataclass(frozen=True)
class NewCampaign:
    """What `new_campaign` wrote."""

    campaign: Path
    article: Path
    subscribers: Path


def new_campaign(ws: Workspace, name: str, language: str) -> NewCampaign:
    """Write a new campaign `name` in `language` under `ws.root`; refuse to overwrite."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"{name!r} is not a campaign name: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    sample = SAMPLES.get(language)
    if sample is None:
        raise InputError(f"no sample campaign in {language!r}; choose one of {', '.join(SAMPLES)}")
    made = NewCampaign(
        ws.campaigns / f"{name}.yaml",
        ws.campaigns / f"{name}.md",
        ws.root / f"{name}-subscribers.csv",
    )
    for path in (made.campaign, made.article, made.subscribers):
        if path.exists():
            raise InputError("exists already; `kzmail new` never overwrites a file", path=path)
    ws.campaigns.mkdir(parents=True, exist_ok=True)
    made.campaign.write_text(_campaign_yaml(name, language, sample), encoding="utf-8")
    made.article.write_text(sample["article"], encoding="utf-8")
    made.subscribers.write_text(_LIST, encoding="utf-8")
    return made


def _campaign_yaml(name: str, language: str, sample: dict[str, str]) -> str:
    skeleton = files("kzmail").joinpath("assets", "new", "campaign.yaml").read_text("utf-8")
    texts = "\n".join(
        f"#   {key}: {json.dumps(text, ensure_ascii=False)}"
        for key, text in default_texts(language).items()
    )
    values = {key: value.replace('"', "'") for key, value in sample.items() if key != "article"}
    return Template(skeleton).substitute(
        values,
        name=name,
        language=language,
        list_id=re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-").lower() or "list",
        texts=texts,
    )


__all__ = ["LANGUAGES", "NewCampaign", "new_campaign"]
