"""Template compilation: the known MJML/premailer/Jinja traps, escaping and the text part."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kzmail import campaign, render
from kzmail.errors import TemplateError
from kzmail.models import Subscriber

URL = "https://news.example.org/u/TOKEN.abc?x=1&y=2"


def _compile(project: Path, template: str | None = None) -> render.CompiledTemplate:
    path = project / "campaigns/kasachstan.yaml"
    if template is not None:
        (project / "templates/newsletter.mjml").write_text(template, encoding="utf-8")
    return render.compile_campaign(campaign.load(path))


def _mjml(body: str, head: str = "") -> str:
    return (f"<mjml><mj-head>{head}</mj-head><mj-body><mj-section><mj-column>"
            f"<mj-text>{body}</mj-text></mj-column></mj-section></mj-body></mjml>")


def test_unsubscribe_href_survives_premailer(project: Path) -> None:
    # premailer alone rewrites href="{{ unsubscribe_url }}" into {{%20unsubscribe_url%20}}
    compiled = _compile(project, _mjml('<a href="{{ unsubscribe_url }}">weg</a>'))
    out = compiled.render(Subscriber("a@example.org", "A"), URL)
    assert 'href="https://news.example.org/u/TOKEN.abc?x=1&amp;y=2"' in out.html
    assert "%20" not in out.html
    assert f"({URL})" in out.text


def test_greater_than_inside_jinja_tag_survives_mjml(project: Path) -> None:
    # MJML escapes ">" to "&gt;" inside text, which would break `{% if ... > ... %}`
    body = "{% if demands|length > 2 %}viele{% else %}wenige{% endif %}"
    out = _compile(project, _mjml(body)).render(Subscriber("a@example.org"), URL)
    assert "viele" in out.html
    assert "wenige" not in out.html


def test_inline_mj_style_is_inlined_by_premailer(project: Path) -> None:
    # mjml-python ignores <mj-style inline="inline">; premailer must do the inlining
    head = '<mj-style inline="inline">.hl { color: #8b0000; }</mj-style>'
    out = _compile(project, _mjml('<p class="hl">rot</p>', head)).render(
        Subscriber("a@example.org"), URL)
    assert re.search(r'<p class="hl" style="[^"]*color:\s*#8b0000', out.html)


def test_subscriber_fields_are_autoescaped_and_never_evaluated(project: Path) -> None:
    compiled = _compile(project)
    evil = Subscriber("a@example.org", "<script>alert(1)</script> {{ 7*7 }} {% if 1 %}x{% endif %}")
    out = compiled.render(evil, URL)
    assert "<script>alert(1)</script>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert "{{ 7*7 }}" in out.text
    assert "49" not in out.html.replace("#49", "")
    assert "{% if 1 %}x{% endif %}" in out.text


def test_unknown_field_fails_loudly(project: Path) -> None:
    compiled = _compile(project, _mjml("Hallo {{ subscriber.nmae }}"))
    with pytest.raises(TemplateError, match="nmae"):
        compiled.render(Subscriber("a@example.org", "A"), URL)


def test_jinja_syntax_error_is_a_template_error(project: Path) -> None:
    with pytest.raises(TemplateError, match=r"newsletter\.mjml"):
        _compile(project, _mjml("{% if subscriber.name %}unclosed"))


def test_extra_columns_are_fields(project: Path) -> None:
    compiled = _compile(project, _mjml("aus {{ subscriber.city }}"))
    out = compiled.render(Subscriber("a@example.org", "A", {"city": "Köln"}), URL)
    assert "aus Köln" in out.html
    assert "aus Köln" in out.text


def test_example_template_has_every_part(project: Path) -> None:
    compiled = _compile(project)
    out = compiled.render(Subscriber("anna@example.org", "Müller, Anna"), URL)
    c = campaign.load(project / "campaigns/kasachstan.yaml")
    for part in (out.html, out.text):
        assert "Müller, Anna" in part
        assert "anna@example.org" in part
        assert "Unsere Forderungen" in part
        for source in c.article.sources:
            assert source.url in part
    assert 'href="https://news.example.org/u/TOKEN.abc?x=1&amp;y=2"' in out.html
    assert URL in out.text
    for demand in c.demands:
        assert demand in out.text
    # article styles were inlined: the article was filled in before premailer ran
    assert re.search(r"<h2 style=\"[^\"]*color:\s*#8b0000", out.html)
    assert "fonts.googleapis" not in out.html
    assert "<img" not in out.html
    assert '<html lang="de"' in out.html
    assert "view in" not in out.text.lower()
    assert "view in html" not in out.text.lower()


def test_text_part_reads_like_the_article(project: Path) -> None:
    out = _compile(project).render(Subscriber("a@example.org", "Jürgen"), URL)
    assert "Hallo Jürgen," in out.text
    assert "## Zuckerbrot und Peitsche" in out.text
    assert "Öl- und Gasindustrie" in out.text
    assert "<p" not in out.text
    assert "&amp;" not in out.text
    assert "\n\n\n" not in out.text


def test_template_is_compiled_once_not_per_subscriber(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"mjml": 0, "premailer": 0}
    real_mjml, real_inline = render.mjml2html, render._inline_css  # type: ignore[attr-defined]

    def counting_mjml(*args: object, **kwargs: object) -> str:
        calls["mjml"] += 1
        return real_mjml(*args, **kwargs)  # type: ignore[arg-type]

    def counting_inline(html: str) -> str:
        calls["premailer"] += 1
        return real_inline(html)

    monkeypatch.setattr(render, "mjml2html", counting_mjml)
    monkeypatch.setattr(render, "_inline_css", counting_inline)
    compiled = _compile(project)
    for i in range(20):
        compiled.render(Subscriber(f"p{i}@example.org", f"P {i}"), URL)
    assert calls == {"mjml": 1, "premailer": 1}


def test_loop_variable_may_not_shadow_campaign_variable(project: Path) -> None:
    with pytest.raises(TemplateError, match="title"):
        _compile(project, _mjml("{% for title in demands %}{{ title }}{% endfor %}"))


def test_a_misspelt_campaign_variable_fails_when_the_campaign_compiles(project: Path) -> None:
    # campaign-level parts are rendered once, at compile time: the mistake shows before
    # anything is sent, naming the variable and its line
    with pytest.raises(TemplateError, match="'titel'") as caught:
        _compile(project, _mjml("{{ subscriber.name }}\n{{ titel | upper }}"))
    assert caught.value.line == 2


def test_campaign_level_loops_are_rendered_once_with_the_same_output(project: Path) -> None:
    compiled = _compile(project, _mjml("{% for d in demands %}<li>{{ d }}</li>{% endfor %}"
                                       "{{ subscriber.name }}"))
    out = compiled.render(Subscriber("a@example.org", "<A>"), URL)
    assert "&lt;A&gt;" in out.html and "<li>" in out.html
    # the loop's output is one literal of the compiled template: the same object each time
    again = compiled.render(Subscriber("b@example.org", "B"), URL)
    static = {id(text) for text in compiled.static_text()}
    loop_chunk = next(c for c in out.html_chunks if "<li>" in c)
    assert id(loop_chunk) in static
    assert any(c is loop_chunk for c in again.html_chunks)


@pytest.mark.parametrize("expression", ["{{ subscriber.name + 1 }}", "{{ title + 1 }}"])
def test_an_expression_that_raises_is_one_template_error(project: Path, expression: str) -> None:
    # a personal part fails per subscriber, a campaign-level one when the campaign compiles:
    # either way a TemplateError naming the template, never a bare TypeError
    with pytest.raises(TemplateError, match=r"newsletter\.mjml.*TypeError"):
        _compile(project, _mjml(expression)).render(Subscriber("a@example.org", "A"), URL)
