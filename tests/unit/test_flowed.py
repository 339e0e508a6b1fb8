"""The text part's wrapping (format=flowed, RFC 3676) and its reading of the HTML."""

from __future__ import annotations

import pytest

from kzmail.render.flowed import flow
from kzmail.render.plaintext import to_text
from tests.helpers.flowed import unflow, unflowed_lines

LONG = (
    "Seit Jahresbeginn erschüttern Massenproteste das Land. Sie begannen am Sonntag, den "
    "2. Januar, in Schangaösen inmitten der westlichen Region Mangghystau, das das Zentrum "
    "der für die Wirtschaft des Lands entscheidenden Öl- und Gasindustrie bildet."
)
URL = "https://www.fr.de/politik/" + "kasachstan-unruhen-tote-demonstration-" * 3 + "x.html"


@pytest.mark.parametrize(
    "paragraphs",
    [
        [LONG, "", LONG + " " + LONG, "", "Kurz."],
        ["From here on " + LONG, "From the start", " indented " + LONG, ">not a quote " + LONG],
        [("two  spaces  stay " * 12).rstrip(), "", "Hallo Anna,", "", "-- ", "Newsletter"],
        [f"Ein Link {URL} im Text, danach geht es weiter mit {LONG}"],
        ["x" * 200 + " kurz", "ein Wort"],
    ],
)
def test_unflowing_gives_back_the_paragraphs(paragraphs: list[str]) -> None:
    flowed = flow("\n".join(paragraphs))
    assert unflow(flowed) == "\n".join(paragraphs)
    for line in flowed.split("\n"):
        assert len(line) <= 78 or line.strip() in (URL, "x" * 200)


def test_soft_breaks_end_in_a_space_and_hard_breaks_do_not() -> None:
    lines = flow(LONG + "\n" + "Zweiter Absatz.").split("\n")
    assert len(lines) == 5
    assert all(line.endswith(" ") for line in lines[:3])
    assert not lines[3].endswith(" ") and lines[4] == "Zweiter Absatz."
    assert all(50 <= len(line) <= 76 for line in lines[:3])


def test_lines_that_a_reader_would_misread_are_space_stuffed() -> None:
    assert flow("From Berlin") == " From Berlin"
    assert flow("> no quote") == " > no quote"
    assert flow(" indented") == "  indented"
    assert flow("Fromage") == "Fromage"
    wrapped = flow("a " * 37 + "From here")  # a continuation line is stuffed too
    assert wrapped.split("\n")[1] == " From here"


def test_the_signature_separator_keeps_its_space() -> None:
    assert flow("Gruß\n-- \nDie Gruppe") == "Gruß\n-- \nDie Gruppe"
    assert unflowed_lines("Gruß\n-- \nDie Gruppe") == [(0, "Gruß"), (0, "-- "), (0, "Die Gruppe")]


def test_trailing_spaces_of_a_hard_line_are_dropped() -> None:
    assert flow("Ende.   \nNeu") == "Ende.\nNeu"


def test_a_quotation_is_quoted_on_every_line() -> None:
    logical = to_text(f"<blockquote><p>{LONG}</p></blockquote>")
    flowed = flow(logical)
    lines = flowed.rstrip("\n").split("\n")
    assert len(lines) == 4 and all(line.startswith("> ") for line in lines)
    assert unflowed_lines(flowed.rstrip("\n")) == [(1, LONG)]


def test_headings_are_underlined_to_their_length() -> None:
    flowed = flow(to_text("<h1>Solidarität</h1><h2>Zuckerbrot und Peitsche</h2><p>x</p>"))
    assert flowed == (
        "Solidarität\n===========\n\nZuckerbrot und Peitsche\n-----------------------\n\nx\n"
    )


def test_markdown_s_html_becomes_plain_words_links_and_items() -> None:
    html = (
        '<div style="display:none;max-height:0px">Vorschautext</div>'
        "<p>Am <strong>Freitag</strong> um <em>18 Uhr</em>, siehe "
        '<a href="https://example.org/aufruf">den Aufruf</a> und '
        '<a href="https://example.org">example.org</a>.</p>'
        "<ul><li>eins</li><li><p>zwei</p></li></ul><ol><li>erstens</li><li>zweitens</li></ol>"
    )
    assert to_text(html) == (
        "Am Freitag um 18 Uhr, siehe den Aufruf <https://example.org/aufruf> und "
        "<https://example.org>.\n\n- eins\n- zwei\n\n1. erstens\n2. zweitens\n"
    )


def test_block_tags_of_a_loop_over_items_leave_one_item_per_line() -> None:
    # `for` and `endfor` stand for Jinja block tags: each rendered item must end its line
    out = to_text("<h2>H</h2><ul>for<li>d</li>endfor</ul><p>P</p>", control={"for", "endfor"})
    assert out == "\x1e-H\n\nfor- d\nendfor\nP\n"
    once, twice = (
        out.replace("for- d\nendfor", "- d\n"),
        out.replace("for- d\nendfor", "- d\n- d\n"),
    )
    assert "\n\n- d\n\nP" in once and "- d\n- d\n\nP" in twice
