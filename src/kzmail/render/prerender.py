"""Render, once per campaign, every part of a Jinja template that is the same for everyone.

`<ul>{% for d in demands %}<li>{{ d }}</li>{% endfor %}</ul>` reads campaign values only:
its output is the same for every subscriber, so rendering it per subscriber is wasted work.
`prerender` renders each such part once, with the campaign's values, and puts its output
back into the template as literal text (escaped exactly as the full render would escape
it). A part that names a personal variable (`subscriber`, `unsubscribe_url`) stays as it
is; the branches of an `{% if %}` on a personal value are prerendered in turn. What is left
for each subscriber is the personal parts and the literal text between them.

Only templates whose parts do not depend on one another are prerendered: one that sets
variables or uses macros, blocks, includes or imports is compiled whole, as written.
A campaign-level expression is evaluated once (`{{ [1, 2] | random }}` gives everyone the
same), as the campaign's content is the same for everyone.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes

# nodes that let one part of a template see what another part set up
_ENTANGLED = (
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.Import,
    nodes.FromImport,
    nodes.Include,
    nodes.Extends,
    nodes.Block,
    nodes.Scope,
    nodes.OverlayScope,
    nodes.EvalContextModifier,
)


def prerender(
    env: jinja2.Environment,
    source: str,
    values: Mapping[str, Any],
    personal: Collection[str],
    reshape: Callable[[list[nodes.Node], bool], list[nodes.Node]] | None = None,
    *,
    fold: Callable[[str], str] | None = None,
) -> tuple[jinja2.Template, frozenset[str]]:
    """The template with its impersonal parts rendered, and the names it still reads.

    `fold`, if given, tidies each stretch of literal text the rendering leaves (the text
    part folds the blank lines around a section an `{% if %}` left out). `reshape`, if
    given, gets the body so rendered (and whether it could be) and returns the body to
    compile: a last pass over the literal text (the text part's wrapping).

    Raises what rendering would raise (e.g. `jinja2.UndefinedError` for a misspelt
    campaign variable), now rather than at the first subscriber.
    """
    tree = env.parse(source)
    folded = next(tree.find_all(_ENTANGLED), None) is None
    if folded:
        tree.body = _Folder(env, values, frozenset(personal)).body(tree.body)
        if fold is not None:
            tree.body = _joined(tree.body, fold)
    if reshape is not None:
        tree.body = reshape(tree.body, folded)
    return env.from_string(tree), frozenset(meta.find_undeclared_variables(tree))


class _Folder:
    def __init__(
        self, env: jinja2.Environment, values: Mapping[str, Any], personal: frozenset[str]
    ) -> None:
        self._env = env
        self._values = values
        self._personal = personal

    def body(self, statements: list[nodes.Node]) -> list[nodes.Node]:
        folded: list[nodes.Node] = []
        for node in statements:
            if isinstance(node, nodes.Output):
                folded.append(
                    nodes.Output(
                        [self._expression(child) for child in node.nodes], lineno=node.lineno
                    )
                )
            elif not self._is_personal(node):
                folded.append(nodes.Output([self._rendered(node)], lineno=node.lineno))
            else:
                if isinstance(node, nodes.If):  # the test is personal, the branches
                    node.body = self.body(node.body)  # may not be
                    for branch in node.elif_:
                        branch.body = self.body(branch.body)
                    node.else_ = self.body(node.else_)
                folded.append(node)
        return folded

    def _expression(self, node: nodes.Expr) -> nodes.Expr:
        if isinstance(node, nodes.TemplateData) or self._is_personal(node):
            return node
        return self._rendered(nodes.Output([node], lineno=node.lineno))

    def _rendered(self, node: nodes.Node) -> nodes.TemplateData:
        template = self._env.from_string(nodes.Template([node], lineno=node.lineno))
        return nodes.TemplateData(template.render(self._values), lineno=node.lineno)

    def _is_personal(self, node: nodes.Node) -> bool:
        names = [node] if isinstance(node, nodes.Name) else []
        return any(name.name in self._personal for name in (*names, *node.find_all(nodes.Name)))


def _joined(statements: list[nodes.Node], fold: Callable[[str], str]) -> list[nodes.Node]:
    """`statements` with each run of literal text as one `fold`ed piece."""
    joined: list[nodes.Node] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            joined.append(nodes.Output([nodes.TemplateData(fold("".join(pending)))]))
            pending.clear()

    for node in statements:
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                if isinstance(child, nodes.TemplateData):
                    pending.append(child.data)
                else:
                    flush()
                    joined.append(nodes.Output([child], lineno=node.lineno))
            continue
        flush()
        if isinstance(node, nodes.If):
            node.body = _joined(node.body, fold)
            for branch in node.elif_:
                branch.body = _joined(branch.body, fold)
            node.else_ = _joined(node.else_, fold)
        joined.append(node)
    flush()
    return joined


__all__ = ["prerender"]
