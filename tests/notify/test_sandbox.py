"""The notices' sandbox takes a shortcut for dict lookups: same output, same refusals as Jinja's."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Undefined
from jinja2.sandbox import SandboxedEnvironment

from mailproc.config.settings import demo_settings
from mailproc.notify.context import (
    reader_for,
    sample_context,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.formats import LocalTime
from mailproc.notify.recipients import Notice
from mailproc.notify.templates import (
    Rendered,
    Sandbox,
    TemplateProblem,
    Templates,
    folder_of,
    roles_of,
)
from mailproc.vocabulary import NoticeKind

SETTINGS = demo_settings(environ={})
SHIPPED = folder_of(SETTINGS)


def plain_sandbox(folder: Path) -> Templates:
    """The same templates, options and filters in Jinja's own SandboxedEnvironment."""
    reference = Templates(folder, sandbox=SandboxedEnvironment)
    for language in ["", "en", *reference.languages()]:
        assert type(reference._environment(language)) is SandboxedEnvironment
    return reference


def every_notice(templates: Templates) -> list[tuple[NoticeKind, str, dict[str, Any], str]]:
    """Each notice kind for each service, recipient role and language (the default and `de`),
    with and without the mail's comment: what `templates check` renders, and more."""
    found = []
    for language in ["", *templates.languages()]:
        for service in sorted(SETTINGS.services):
            facts = sample_facts(SETTINGS, service)
            for kind in NoticeKind:
                for comment in (True, False):
                    cause, occasion = sample_occasion(kind, facts, comment)
                    for role in roles_of(kind, service, SETTINGS):
                        notice = Notice(kind, sample_recipient(role, facts, SETTINGS), cause)
                        reader = reader_for(notice, facts, SETTINGS)
                        reader = replace(reader, language=language) if language else reader
                        context = sample_context(notice, facts, occasion, SETTINGS, reader)
                        found.append((kind, service, context, language))
    return found


def test_every_shipped_template_renders_byte_for_byte_as_in_jinjas_sandbox():
    ours, reference = Templates(SHIPPED), plain_sandbox(SHIPPED)
    assert type(ours.env) is Sandbox and ours.languages() == ["de"]
    notices = every_notice(ours)
    assert {language for *_, language in notices} == {"", "de"}
    assert {kind for kind, *_ in notices} == set(NoticeKind)
    for kind, service, context, language in notices:
        expected: Rendered = reference.render(kind, service, context, language)
        assert ours.render(kind, service, context, language) == expected, (kind, language)


def test_globals_includes_and_dict_methods_behave_as_in_jinjas_sandbox(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    (folder / "_extra.txt").write_text(
        "{% for n in range(incident.number % 4) %}{{ n }}{{ loop.cycle('a', 'b') }}{% endfor %}\n"
        "{% set ns = namespace(seen=0) %}{% for e in history %}{% set ns.seen = ns.seen + 1 %}"
        "{% endfor %}{{ ns.seen }} {{ dict(a=1).items() | list }} {{ joiner(',')() }}\n"
        "{{ incident.keys() | sort | first }} {{ incident.get('ref') }} {{ incident['title'] }}\n"
        "{{ recipient.items | string | truncate(20) }} {{ incident.nothing is defined }}\n"
        "{{ people.actor.name or people.actor.email }} {{ now }} {{ now.zone }}\n",
        encoding="utf-8",
    )
    for body in (folder / "acknowledgment" / "body.txt", folder / "de/acknowledgment/body.txt"):
        body.write_text(body.read_text() + '{% include "_extra.txt" %}\n', encoding="utf-8")
    ours, reference = Templates(folder), plain_sandbox(folder)
    for kind, service, context, language in every_notice(ours):
        if kind is NoticeKind.ACKNOWLEDGMENT:
            rendered = ours.render(kind, service, context, language)
            assert rendered == reference.render(kind, service, context, language)
            assert "INC-42 Cannot send mail" in rendered.text  # the include ran


class Thing:
    """An object that is not a dict: the shortcut must not apply to it."""

    ref = "attribute"

    def __getitem__(self, key: str) -> str:
        return f"item {key}"


class Mapping(dict[str, Any]):
    """A dict subclass can have attributes of its own: not a plain dict."""

    own = "attribute"


@pytest.mark.parametrize(
    "value",
    [
        {"ref": "INC-1", "items": "a key", "__class__": "a key", "mro": "a key", "_x": 1},
        {},
        Mapping(ref="INC-1", own="a key"),
        Thing(),
        ["a"],
        "text",
        LocalTime(datetime(2026, 11, 23, 9, 30, tzinfo=UTC), "Europe/Prague", "de"),
        None,
    ],
    ids=["dict", "empty", "subclass", "object", "list", "str", "localtime", "none"],
)
@pytest.mark.parametrize(
    "name",
    [
        "ref", "missing", "items", "get", "keys", "pop", "update", "copy", "fromkeys",
        "__class__", "__dict__", "__init__", "__globals__", "__subclasses__", "mro", "_x",
        "own", "format", "__getitem__", "upper",
    ],
)  # fmt: skip
def test_an_attribute_lookup_gives_what_jinjas_sandbox_gives(value, name):
    ours, reference = Sandbox(), SandboxedEnvironment()
    got, expected = ours.getattr(value, name), reference.getattr(value, name)
    if isinstance(expected, Undefined):
        assert type(got) is type(expected)
        assert got._undefined_message == expected._undefined_message
        assert got._undefined_exception is expected._undefined_exception
    elif callable(expected):  # a bound method, or the sandbox's wrapper of str.format
        assert type(got) is type(expected) and got.__name__ == expected.__name__
        assert getattr(got, "__self__", None) is getattr(expected, "__self__", None)
    else:
        assert type(got) is type(expected) and got == expected
        assert got is expected or isinstance(value, Thing)  # Thing makes a new str each time


@pytest.mark.parametrize(
    "attack",
    [
        "{{ incident.__class__ }}",
        "{{ incident.__class__.__mro__[1].__subclasses__() }}",
        "{{ incident.get.__globals__ }}",
        "{{ incident.get.__self__.__class__ }}",
        "{{ incident.items.__func__ }}",
        "{{ incident.mro() }}",
        "{{ incident.__init__.__globals__ }}",
        "{{ recipient.__getitem__.__self__ }}",
        "{{ service.solvers.__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(incident) }}",
        "{{ now.__class__.__init__.__globals__ }}",
    ],
)
def test_a_template_still_cannot_reach_python_internals_through_the_context(tmp_path, attack):
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    (folder / "comment" / "body.txt").write_text(f"Hello\n{attack}\n", encoding="utf-8")
    facts = sample_facts(SETTINGS, "email")
    cause, occasion = sample_occasion(NoticeKind.COMMENT, facts)
    notice = Notice(NoticeKind.COMMENT, sample_recipient("reporter", facts, SETTINGS), cause)
    context = sample_context(notice, facts, occasion, SETTINGS)
    with pytest.raises(TemplateProblem) as info:
        Templates(folder).render(NoticeKind.COMMENT, "email", context)
    assert info.value.where == f"{folder / 'comment' / 'body.txt'}:2"
    assert "SecurityError" in info.value.reason or "UndefinedError" in info.value.reason
