"""Template compilation: the known MJML/premailer/Jinja traps, escaping and the text part."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from premailer import Premailer

from kzmail import campaign_file as campaign
from kzmail.errors import TemplateError
from kzmail.models import Subscriber
from kzmail.render import template as render
from tests.helpers.flowed import unflow

URL = "https://news.example.org/u/TOKEN.abc?x=1&y=2"


def _compile(project: Path, template: str | None = None) -> render.CompiledTemplate:
    path = project / "campaigns/kasachstan.yaml"
    if template is not None:
        (project / "templates/newsletter.mjml").write_text(template, encoding="utf-8")
    return render.compile_campaign(campaign.load(path))


def _mjml(body: str, head: str = "") -> str:
    return (
        f"<mjml><mj-head>{head}</mj-head><mj-body><mj-section><mj-column>"
        f"<mj-text>{body}</mj-text></mj-column></mj-section></mj-body></mjml>"
    )


def test_unsubscribe_href_survives_premailer(project: Path) -> None:
    # premailer alone rewrites href="{{ unsubscribe_url }}" into {{%20unsubscribe_url%20}}
    compiled = _compile(project, _mjml('<a href="{{ unsubscribe_url }}">weg</a>'))
    out = compiled.render(Subscriber("a@example.org", "A"), URL)
    assert 'href="https://news.example.org/u/TOKEN.abc?x=1&amp;y=2"' in out.html
    assert "%20" not in out.html
    assert f"weg <{URL}>" in out.text


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
        Subscriber("a@example.org"), URL
    )
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
        assert demand in unflow(out.text)
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
    assert "Zuckerbrot und Peitsche\n-----------------------\n" in out.text
    assert "#" not in out.text
    assert "Öl- und Gasindustrie" in out.text
    assert "<p" not in out.text
    assert "&amp;" not in out.text
    assert "\n\n\n" not in out.text


def test_template_is_compiled_once_not_per_subscriber(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"mjml": 0, "premailer": 0}
    real_mjml = render.mjml2html  # type: ignore[attr-defined]

    def counting_mjml(*args: object, **kwargs: object) -> str:
        calls["mjml"] += 1
        return real_mjml(*args, **kwargs)  # type: ignore[arg-type]

    def counting_premailer(*args: Any, **kwargs: Any) -> Premailer:
        calls["premailer"] += 1  # one Premailer per inlining of the CSS
        return Premailer(*args, **kwargs)

    monkeypatch.setattr(render, "mjml2html", counting_mjml)
    monkeypatch.setattr(render, "Premailer", counting_premailer)
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
    compiled = _compile(
        project, _mjml("{% for d in demands %}<li>{{ d }}</li>{% endfor %}{{ subscriber.name }}")
    )
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


# campaign text is data, never template source ---------------------------------------------

CAMPAIGN_FILE = "campaigns/kasachstan.yaml"
# what the campaign's text values are called in the YAML file (as `key: "..."` lines)
TEXT_KEYS = ("title", "author", "lead", "reason", "list_name", "preheader")


def _payload(marker: str) -> str:
    """Jinja that, evaluated, would create the folder `marker` in the working directory."""
    return "{{ cycler.__init__.__globals__.os.mkdir('" + marker + "') }}"


def _set_text(project: Path, key: str, value: str) -> None:
    path = project / CAMPAIGN_FILE
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(f"{key}:"):
            indent = line[: len(line) - len(stripped)]
            lines[index] = f"{indent}{key}: '{value}'\n".replace("('", "(''").replace("')", "'')")
            break
    else:
        raise AssertionError(f"no {key!r} line in the campaign")
    path.write_text("".join(lines), encoding="utf-8")


def _set_article(project: Path, markdown: str) -> None:
    (project / "campaigns/kasachstan.md").write_text(markdown, encoding="utf-8")


def test_jinja_in_the_article_is_shown_as_written(project: Path) -> None:
    _set_article(project, "Rechne: {{ 7*7 }} und {% if true %}ja{% endif %} {# nein #}\n")
    out = _compile(project).render(Subscriber("a@example.org", "A"), URL)
    for part in (out.html, out.text):
        assert "{{ 7*7 }}" in part
        assert "{% if true %}ja{% endif %} {# nein #}" in part
    assert "Rechne: 49" not in out.html + out.text


@pytest.mark.parametrize("key", TEXT_KEYS)
def test_a_payload_in_a_campaign_text_runs_nothing(project: Path, key: str) -> None:
    payload = _payload(f"pwned-{key}")
    _set_text(project, key, payload)
    out = _compile(project).render(Subscriber("a@example.org", "A"), URL)
    assert not (project / f"pwned-{key}").exists()
    shown = payload.replace("'", "&#39;")  # autoescape writes ' as &#39;
    assert shown in out.html or payload in out.html
    if key != "preheader":  # the preheader is hidden from the text part
        assert payload in out.text


def test_a_payload_in_the_article_runs_nothing(project: Path) -> None:
    payload = _payload("pwned-article")
    _set_article(project, f"Hallo `{payload}`\n")  # a code span: `__init__` stays as is
    out = _compile(project).render(Subscriber("a@example.org", "A"), URL)
    assert not (project / "pwned-article").exists()
    assert payload in out.text


def test_the_article_cannot_add_a_tracking_pixel(project: Path) -> None:
    pixel = "{{ ('<img src=https://t.example/p.gif?u=' ~ subscriber.email ~ '>')|safe }}"
    _set_article(project, f"Text {pixel}\n")
    out = _compile(project).render(Subscriber("anna@example.org", "A"), URL)
    assert "<img" not in out.html
    assert "t.example/p.gif?u=anna@example.org" not in out.html
    assert "&lt;img src=https://t.example/p.gif?u=" in out.html
    assert pixel in unflow(out.text)


def test_the_template_s_own_placeholders_in_a_value_stay_text(project: Path) -> None:
    # the compiler's stand-ins for template tags must not be reachable from campaign text
    _set_article(project, "kzjinja0x kzjinja1x kzjinja2x kzjinja3x\n")
    out = _compile(project).render(Subscriber("anna@example.org", "A"), URL)
    assert "kzjinja0x kzjinja1x kzjinja2x kzjinja3x" in out.html
    assert "kzjinja0x kzjinja1x kzjinja2x kzjinja3x" in out.text


@pytest.mark.parametrize(
    "expression",
    [
        "{{ cycler.__init__.__globals__ }}",
        "{{ subscriber.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
    ],
)
def test_the_template_runs_in_a_sandbox(project: Path, expression: str) -> None:
    # even a template from elsewhere cannot reach Python's internals: one clear error
    with pytest.raises(TemplateError, match=r"newsletter\.mjml.*(unsafe|sandbox)") as caught:
        _compile(project, _mjml(f"<p>{expression}</p>")).render(
            Subscriber("a@example.org", "A"), URL
        )
    assert "\n" not in str(caught.value)


def test_a_value_the_css_inliner_takes_apart_is_refused_not_run(project: Path) -> None:
    # premailer reorders and drops declarations of a style: part of the lead would land
    # outside the value, in template source; it is refused instead of compiled
    _set_text(project, "lead", "a; color: {{ 7*7 }}; x: y")
    template = _mjml(
        '<p style="font-family: {{ lead }}">a</p>',
        '<mj-style inline="inline">p { color: blue; }</mj-style>',
    )
    with pytest.raises(TemplateError, match=r"\{\{ lead \}\}.*style"):
        _compile(project, template)


def test_a_campaign_variable_inside_raw_stays_a_tag(project: Path) -> None:
    out = _compile(project, _mjml("{% raw %}{{ title }}{% endraw %}")).render(
        Subscriber("a@example.org", "A"), URL
    )
    assert "{{ title }}" in out.html and "{{ title }}" in out.text


def test_remote_resources_are_found_in_values_template_and_loops(project: Path) -> None:
    _set_article(project, "![Foto](https://images.example/foto.jpg)\n\n[Link](https://a.example/)")
    template = _mjml(
        '<img src="https://logo.example/{{ subscriber.name }}.png">{{ article }}'
        '{% for s in sources %}<img src="{{ s.url }}/icon.png">{% endfor %}'
        '<a href="{{ unsubscribe_url }}">weg</a>'
    )
    hosts = [
        re.sub(r"^https?://([^/]+).*$", r"\1", url) for url in _compile(project, template).remote
    ]
    assert hosts == [
        "logo.example",
        "images.example",
        "socialismkz.info",
        "anticapitalistresistance.org",
        "www.fr.de",
    ]
