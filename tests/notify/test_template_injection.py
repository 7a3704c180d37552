"""Known template-injection payloads, put in every field a user controls, stay inert text in
every notice's templates, for every service: printed as written (escaped in HTML), never run."""

from __future__ import annotations

import html
from dataclasses import replace

import pytest

from mailproc.config.settings import demo_settings
from mailproc.notify.context import (
    HistoryEntry,
    ProblemFacts,
    build_context,
    sample_context,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.letter import tagged_subject
from mailproc.notify.recipients import DEFAULT_RECIPIENTS, CommandLine, Notice, Person
from mailproc.notify.templates import Templates, folder_of
from mailproc.vocabulary import DESK_NOTICES, NoticeKind

SETTINGS = demo_settings(environ={})
TEMPLATES = Templates(folder_of(SETTINGS))
PAYLOADS = [
    "{{ 7*7 }}",
    "{{7*'7'}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{ config.items() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
    "{% raw %}{{ 7*7 }}{% endraw %}",
    "{# a comment #}",
    "<script>alert(1)</script>",
]
EVALUATED = ("49", "7777777", "uid=", "<class", "subclasses of", "Undefined")


def poisoned(kind: NoticeKind, service: str, payload: str):
    """The sample incident with the payload in every field a mail's author writes."""
    facts = sample_facts(SETTINGS, service)
    said = HistoryEntry(facts.updated_at, "alice@example.org", "comment", {"text": payload})
    history = (
        *(
            replace(e, detail={**e.detail, "text": payload, "title": payload})
            for e in facts.history
        ),
        said,
    )
    problem = ProblemFacts(7, payload, payload, payload, "known_error")
    facts = replace(
        facts, title=payload, reporter_name=payload, history=history, problems=(problem,)
    )
    cause, occasion = sample_occasion(kind, facts)
    occasion = replace(
        occasion,
        actor=Person("alice@example.org", payload),
        happenings=tuple(
            replace(h, detail={**h.detail, "text": payload}) for h in occasion.happenings
        ),
        commands=tuple(
            CommandLine(f"[{payload}]", False, payload, payload) for _ in occasion.commands
        ),
        known_errors=(problem,) if occasion.known_errors else (),
        problem=problem if occasion.problem else None,
    )
    role = DEFAULT_RECIPIENTS[kind][0]
    recipient = replace(sample_recipient(role, facts, SETTINGS), name=payload)
    if kind in DESK_NOTICES:  # about no one incident: the payload in every text it lists
        context = sample_context(Notice(kind, recipient, cause), facts, occasion, SETTINGS)
        return _poison(context, payload)
    return build_context(Notice(kind, recipient, cause), facts, occasion, SETTINGS)


_WRITTEN = {"title", "summary", "plain", "reason", "refused", "asked", "name"}


def _poison(value, payload):
    """Every text a user may have written, in a desk notice's context, made the payload."""
    if isinstance(value, dict):
        return {
            k: payload if k in _WRITTEN and isinstance(v, str) else _poison(v, payload)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_poison(v, payload) for v in value]
    return value


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_stay_inert_in_every_template(payload):
    for service in SETTINGS.services:
        for kind in NoticeKind:
            rendered = TEMPLATES.render(kind, service, poisoned(kind, service, payload))
            subject = tagged_subject(rendered.subject, 42)
            text = subject + "\n" + rendered.text
            where = f"{service}/{kind.value}"
            assert payload in text, where  # shown as written
            assert not any(mark in text.replace(payload, "") for mark in EVALUATED), where
            if rendered.html is not None:
                assert html.escape(payload, quote=False) in rendered.html.replace("&#39;", "'")
                assert "<script>" not in rendered.html, where
