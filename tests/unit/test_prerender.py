"""Prerendering: campaign-level parts rendered once, output exactly as a full render's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jinja2
import pytest
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from kzmail.render.failures import SUBSCRIBER_NAMES
from kzmail.render.prerender import prerender


class CountedList(list[str]):
    """A campaign value that counts how often a template loops over it."""

    loops = 0

    def __iter__(self) -> Iterator[str]:
        CountedList.loops += 1
        return super().__iter__()


def _env(autoescape: bool = True) -> jinja2.Environment:
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined, autoescape=autoescape, keep_trailing_newline=True
    )


TEMPLATE = (
    "<h1>{{ title }}</h1>{% if subscriber.name %}Hallo {{ subscriber.name }}"
    "{% for d in demands %}[{{ d }}]{% endfor %}{% else %}Hallo{% endif %}"
    "<ul>{% for d in demands %}<li>{{ d | upper }}</li>{% endfor %}</ul>"
    '{{ article }} <a href="{{ unsubscribe_url }}">{{ subscriber.email }}</a>'
    "{% if demands | length > 1 %}viele{% endif %}\n"
)
PEOPLE = [
    {"name": "<b>Änne</b>", "email": "a@example.org"},
    {"name": "", "email": "b@example.org"},
    {"name": "{{ 7*7 }}", "email": "c@example.org"},
]


def _values() -> dict[str, Any]:
    return {
        "title": "Öl & <Gas>",
        "demands": CountedList(["frei", "<sofort>"]),
        "article": Markup("<p>Text &amp; mehr</p>"),
    }


@pytest.mark.parametrize("autoescape", [True, False])
def test_output_is_exactly_the_full_render(autoescape: bool) -> None:
    env = _env(autoescape)
    folded, _ = prerender(env, TEMPLATE, _values(), SUBSCRIBER_NAMES)
    whole = env.from_string(TEMPLATE)
    for person in PEOPLE:
        personal = {"subscriber": person, "unsubscribe_url": "https://x.example/u?a=1&b=<2>"}
        assert folded.render(**_values(), **personal) == whole.render(**_values(), **personal)


def test_campaign_level_loops_run_once_not_per_subscriber() -> None:
    values = _values()
    CountedList.loops = 0
    folded, reads = prerender(_env(), TEMPLATE, values, SUBSCRIBER_NAMES)
    assert CountedList.loops == 2  # the two loops, once each, at compile time
    for person in PEOPLE:
        folded.render(**values, subscriber=person, unsubscribe_url="u")
    # not even the loop inside the `if` on a personal value runs again
    assert CountedList.loops == 2
    assert reads == {"subscriber", "unsubscribe_url"}


def test_a_template_without_personal_parts_reads_nothing_per_subscriber() -> None:
    folded, reads = prerender(
        _env(),
        "<p>{{ title }}</p>{% for d in demands %}{{ d }}{% endfor %}",
        _values(),
        SUBSCRIBER_NAMES,
    )
    assert reads == set()
    assert folded.render() == "<p>Öl &amp; &lt;Gas&gt;</p>frei&lt;sofort&gt;"


def test_templates_that_set_variables_are_left_whole() -> None:
    source = (
        "{% set greeting = 'Hallo ' ~ title %}{{ greeting }} {{ subscriber.name }}"
        "{% for d in demands %}{{ d }}{% endfor %}"
    )
    values = _values()
    CountedList.loops = 0
    folded, reads = prerender(_env(), source, values, SUBSCRIBER_NAMES)
    assert CountedList.loops == 0  # nothing rendered ahead
    assert "title" in reads and "demands" in reads
    out = folded.render(**values, subscriber={"name": "A"})
    assert out == "Hallo Öl &amp; &lt;Gas&gt; Afrei&lt;sofort&gt;"


def test_a_misspelt_campaign_variable_fails_at_compile_time() -> None:
    with pytest.raises(jinja2.UndefinedError, match="titel"):
        prerender(_env(), "<h1>{{ titel }}</h1>{{ subscriber.name }}", _values(), SUBSCRIBER_NAMES)


def test_a_personal_name_alone_is_personal() -> None:
    # `{{ unsubscribe_url }}` is a bare Name node: it must not be rendered ahead (it would
    # fail, the campaign's values do not hold it)
    folded, reads = prerender(_env(), "{{ unsubscribe_url }}", {}, SUBSCRIBER_NAMES)
    assert reads == {"unsubscribe_url"}
    assert folded.render(unsubscribe_url="https://x/?a&b") == "https://x/?a&amp;b"


def test_rendered_ahead_campaign_text_is_never_parsed_again() -> None:
    # what a campaign-level part renders to is literal text of the compiled template
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True)
    values = {"title": "{{ 7*7 }} {% if 1 %}x{% endif %}", "demands": ["{{ 6*7 }}"]}
    folded, _ = prerender(
        env,
        "<h1>{{ title }}</h1>{% for d in demands %}{{ d }}{% endfor %}{{ subscriber.name }}",
        values,
        SUBSCRIBER_NAMES,
    )
    assert folded.render(subscriber={"name": "{{ 1+1 }}"}) == (
        "<h1>{{ 7*7 }} {% if 1 %}x{% endif %}</h1>{{ 6*7 }}{{ 1+1 }}"
    )


def test_a_sandboxed_environment_refuses_internals_when_rendering_ahead() -> None:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True)
    with pytest.raises(SecurityError):
        prerender(
            env, "{{ cycler.__init__.__globals__ }}{{ subscriber.name }}", {}, SUBSCRIBER_NAMES
        )
