"""SpamAssassin (offline: local tests only, no Bayes, no auto-learning) scores every message of
the example campaign <= 0.0 with no positive rule, and catches the classic mistakes."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.broken import drop_header, html_only, rebuilt
from tests.helpers.campaigns import copy_project
from tests.helpers.deliverability import Example, build_all, tool
from tests.helpers.images import with_article_image

# Rules with a positive score that are allowed, each for a reason that is not a defect:
# HTML_MESSAGE (0.001) is informational and fires on every message that has an HTML part;
# T_TVD_FUZZY_SECTOR (0.01) is an unpublished testing rule ("T_") matching the German words
# "Finanzsektor"/"Sektoren" of the example article. Neither may ever score more than 0.01.
INFORMATIONAL = {"HTML_MESSAGE": 0.001, "T_TVD_FUZZY_SECTOR": 0.01}


@dataclass(frozen=True)
class Verdict:
    score: float
    rules: dict[str, float]

    def problems(self) -> list[str]:
        """Why this message is not clean: a score above 0.0 or any positive rule."""
        found = [
            f"{rule}={score}"
            for rule, score in sorted(self.rules.items())
            if score > 0 and not (rule in INFORMATIONAL and score <= INFORMATIONAL[rule])
        ]
        if self.score > 0.0:
            found.insert(0, f"score={self.score}")
        return found


def spamassassin(messages: list[bytes], scratch: Path) -> list[Verdict]:
    """Score messages with SpamAssassin, a few at a time (each run takes about a second)."""
    command = [
        tool("spamassassin"),
        "-L",
        "-p",
        str(scratch / "user_prefs"),
        "--cf=use_bayes 0",
        "--cf=bayes_auto_learn 0",
        "--cf=use_auto_whitelist 0",
        "--cf=add_header all Tests _TESTSSCORES(,)_",
    ]

    def one(message: bytes) -> Verdict:
        done = subprocess.run(command, input=message, capture_output=True, timeout=120, check=True)
        raw = done.stdout.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        head = re.sub(rb"\r?\n[ \t]+", b" ", raw).decode("utf-8", "replace")
        status = re.search(r"(?m)^X-Spam-Status: \w+, score=(-?[\d.]+)", head)
        tests = re.search(r"(?m)^X-Spam-Tests: (.*)$", head)
        assert status, head
        rules: dict[str, float] = {}
        for item in (tests.group(1) if tests else "").replace(" ", "").split(","):
            if "=" in item:
                rule, score = item.split("=")
                rules[rule] = float(score)
        return Verdict(float(status.group(1)), rules)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(one, messages))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spamassassin")


def test_every_example_message_is_clean(example: Example, scratch: Path, artifacts: Path) -> None:
    verdicts = spamassassin([b.message.data for b in example.built], scratch)
    report = [
        f"{b.subscriber.email}: score={v.score} {v.rules}"
        for b, v in zip(example.built, verdicts, strict=True)
    ]
    (artifacts / "spamassassin.txt").write_text("\n".join(report) + "\n", encoding="utf-8")
    assert len(verdicts) == len(example.built) >= 10
    for built, verdict in zip(example.built, verdicts, strict=True):
        assert verdict.problems() == [], f"{built.subscriber.email}: {verdict}"
        assert verdict.score <= 0.0


def test_a_message_with_an_inline_photo_is_clean(
    tmp_path_factory: pytest.TempPathFactory, scratch: Path
) -> None:
    root = tmp_path_factory.mktemp("photo")
    campaign = copy_project(root)
    with_article_image(campaign)
    example = build_all(campaign, root / ".kzmail")
    messages = [b.message.data for b in example.built[:3]]
    assert all(b"multipart/related" in m and b"image/jpeg" in m for m in messages)
    for verdict in spamassassin(messages, scratch):
        assert verdict.problems() == [], verdict
        assert verdict.score <= 0.0


SHORT_HTML = (
    '<html lang="de"><body><p>Solidarität mit den Streikenden in Kasachstan!</p>'
    '<p><a href="https://news.example.org/u/t">Abmelden</a></p></body></html>'
)
SHORT_TEXT = (
    "Solidarität mit den Streikenden in Kasachstan!\n\n[Abmelden](https://news.example.org/u/t)\n"
)


@pytest.fixture(scope="module")
def broken_verdicts(example: Example, scratch: Path) -> dict[str, Verdict]:
    good = example.built[0]
    factory = example.prepared.factory
    view_in_html = (
        "Diese E-Mail ist im HTML-Format. Bitte öffne sie in einem Programm, "
        "das HTML anzeigen kann, oder sieh sie dir im Browser an.\n"
    )
    short = rebuilt(factory, good, html=SHORT_HTML, text=SHORT_TEXT)
    messages = {
        "no text part": html_only(good.message.data),
        "text part says view in HTML": rebuilt(factory, good, text=view_in_html),
        "no Date": drop_header(good.message.data, "Date"),
        "no Message-ID": drop_header(good.message.data, "Message-ID"),
        # SpamAssassin looks for this mistake in short messages (HTML under 1 kB)
        "List-Unsubscribe without List-Id": drop_header(short, "List-Id"),
        "short, with List-Id": short,
    }
    verdicts = spamassassin(list(messages.values()), scratch)
    return dict(zip(messages, verdicts, strict=True))


@pytest.mark.parametrize(
    ("mistake", "rule"),
    [
        ("no text part", "MIME_HTML_ONLY"),
        ("text part says view in HTML", "MPART_ALT_DIFF"),
        ("no Date", "MISSING_DATE"),
        ("no Message-ID", "MISSING_MID"),
        ("List-Unsubscribe without List-Id", "LIST_PARTIAL_SHORT_MSG"),
    ],
)
def test_classic_mistake_is_caught(
    broken_verdicts: dict[str, Verdict], mistake: str, rule: str
) -> None:
    verdict = broken_verdicts[mistake]
    assert rule in verdict.rules, verdict
    assert verdict.rules[rule] > 0
    assert verdict.problems(), verdict  # the check above would fail on this message


def test_short_message_with_list_id_is_not_flagged(broken_verdicts: dict[str, Verdict]) -> None:
    # the control for the List-Id case: the same short message with its List-Id is fine
    verdict = broken_verdicts["short, with List-Id"]
    assert "LIST_PARTIAL_SHORT_MSG" not in verdict.rules
    assert verdict.problems() == [], verdict
