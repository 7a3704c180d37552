"""Templates: the sandbox holds, typos fail loudly with file:line, overrides and edits apply."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mailproc.config.settings import demo_settings
from mailproc.notify.context import build_context, sample_facts, sample_occasion, sample_recipient
from mailproc.notify.recipients import Notice
from mailproc.notify.templates import (
    TemplateProblem,
    Templates,
    check_templates,
    folder_of,
    shipped_folder,
)
from mailproc.vocabulary import NoticeKind

SETTINGS = demo_settings(environ={})
SHIPPED = folder_of(SETTINGS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(SHIPPED, copy)
    return copy


def context(kind=NoticeKind.ACKNOWLEDGMENT, service="email", **incident):
    facts = sample_facts(SETTINGS, service)
    cause, occasion = sample_occasion(kind, facts)
    notice = Notice(kind, sample_recipient("reporter", facts, SETTINGS), cause)
    ctx = build_context(notice, facts, occasion, SETTINGS)
    ctx["incident"].update(incident)
    return ctx


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_shipped_templates_render_for_every_notice_and_service():
    assert check_templates(Templates(SHIPPED), SETTINGS) == []
    folders = {p.name for p in SHIPPED.iterdir() if p.is_dir()}
    assert folders == {k.value for k in NoticeKind} | {"de"}
    assert {p.name for p in (SHIPPED / "de").iterdir() if p.is_dir()} == {
        k.value for k in NoticeKind
    }


def test_template_syntax_in_user_text_stays_inert():
    payloads = [
        "{{ 7*7 }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "${7*7} #{7*7} <%= 7*7 %>",
    ]
    for payload in payloads:
        rendered = Templates(SHIPPED).render(
            NoticeKind.ACKNOWLEDGMENT, "email", context(title=payload)
        )
        assert payload in rendered.subject and payload in rendered.text
        assert "49" not in rendered.subject
        assert payload.replace("'", "&#39;").replace("<", "&lt;")[:20] in (rendered.html or "")


def test_user_text_is_escaped_in_html_only():
    rendered = Templates(SHIPPED).render(
        NoticeKind.ACKNOWLEDGMENT, "email", context(title="<script>alert(1)</script> & co")
    )
    assert "<script>alert(1)</script> & co" in rendered.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in (rendered.html or "")
    assert "<script>" not in (rendered.html or "")


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ incident.__class__.__init__.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ recipient.items.__self__.__class__ }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
    ],
)
def test_a_template_cannot_reach_python_internals(folder, attack):
    write(folder / "acknowledgment" / "body.txt", f"Hello\n\n{attack}\n")
    with pytest.raises(TemplateProblem) as info:
        Templates(folder).render(NoticeKind.ACKNOWLEDGMENT, "email", context())
    assert info.value.where == f"{folder / 'acknowledgment' / 'body.txt'}:3"
    assert "SecurityError" in info.value.reason or "UndefinedError" in info.value.reason


def test_a_typo_fails_loudly_with_file_and_line(folder):
    write(folder / "closed" / "body.txt", "a\nb\n{{ incident.titel }}\n")
    problems = check_templates(Templates(folder), SETTINGS)
    assert [str(p) for p in problems] == [
        f"{folder / 'closed' / 'body.txt'}:3: UndefinedError: 'dict object' has no attribute "
        "'titel'"
    ]


def test_syntax_errors_and_missing_files_are_reported_with_their_file(folder):
    write(folder / "moved" / "subject.txt", "{% if %}\n")
    (folder / "priority" / "body.txt").unlink()
    write(folder / "related" / "body.txt", '{% include "_nothing.txt" %}\n')
    found = {str(p) for p in check_templates(Templates(folder), SETTINGS)}
    assert found == {
        f"{folder / 'moved' / 'subject.txt'}:1: syntax error: Expected an expression, "
        "got 'end of statement block'",
        f"{folder / 'priority' / 'body.txt'}: missing",
        f"{folder / 'related' / 'body.txt'}:1: includes '_nothing.txt', which does not exist",
    }


def test_a_service_folder_overrides_the_whole_event_for_that_service(folder):
    override = folder / "services" / "network" / "acknowledgment"
    write(override / "subject.txt", "Network desk got it: {{ incident.title }}")
    write(override / "body.txt", "Network team here.\n")
    templates = Templates(folder)
    network = templates.render(NoticeKind.ACKNOWLEDGMENT, "network", context(service="network"))
    assert network.subject == "Network desk got it: Cannot send mail"
    assert network.text == "Network team here.\n" and network.html is None
    email = templates.render(NoticeKind.ACKNOWLEDGMENT, "email", context())
    assert email.subject.startswith("[INC-42] We received your report") and email.html


def test_edits_take_effect_without_a_restart_within_the_recheck_time(folder):
    now = [100.0]
    templates = Templates(folder, recheck=1.0, clock=lambda: now[0])
    body = folder / "comment" / "body.txt"
    assert "commented on" in templates.render(NoticeKind.COMMENT, "email", context()).text
    write(body, "Edited: {{ comment }}\n")
    later = body.stat().st_mtime + 5
    os.utime(body, (later, later))
    now[0] += 1.5
    rendered = templates.render(NoticeKind.COMMENT, "email", context(NoticeKind.COMMENT))
    assert rendered.text == "Edited: Still down.\n"


def test_a_new_service_override_is_seen_after_the_recheck_time(folder):
    now = [100.0]
    templates = Templates(folder, recheck=1.0, clock=lambda: now[0])
    assert templates.event_dir(NoticeKind.COMMENT, "network") == "comment"
    override = folder / "services" / "network" / "comment"
    override.mkdir(parents=True)
    write(override / "subject.txt", "Network: {{ incident.title }}")
    write(override / "body.txt", "Net.\n")
    assert templates.event_dir(NoticeKind.COMMENT, "network") == "comment"  # not yet looked
    now[0] += 1.5
    assert templates.event_dir(NoticeKind.COMMENT, "network") == "services/network/comment"


def test_shipped_templates_are_found_in_a_wheel_and_in_a_checkout(tmp_path):
    checkout = tmp_path / "checkout"
    (checkout / "mailproc").mkdir(parents=True)
    (checkout / "templates").mkdir()
    assert shipped_folder(checkout / "mailproc") == checkout / "templates"
    wheel = tmp_path / "site-packages" / "mailproc" / "_templates"
    wheel.mkdir(parents=True)
    assert shipped_folder(wheel.parent) == wheel


def test_the_configured_folder_wins(tmp_path):
    settings = SETTINGS.model_copy(
        update={"notifications": SETTINGS.notifications.model_copy(update={"templates": tmp_path})}
    )
    assert folder_of(settings) == tmp_path


def test_compiled_templates_serve_the_next_process_until_the_file_changes(
    folder, tmp_path, monkeypatch
):
    compiled = tmp_path / "compiled"
    compiled.mkdir(mode=0o700)
    first = Templates(folder, compiled=compiled)
    assert "commented on" in first.render(NoticeKind.COMMENT, "email", context()).text
    assert any(compiled.iterdir())
    compiles: list[str | None] = []
    original = type(first.env).compile

    def counted(env, source, name=None, filename=None, raw=False, defer_init=False):
        compiles.append(name)
        return original(env, source, name, filename, raw, defer_init)

    monkeypatch.setattr(type(first.env), "compile", counted)
    second = Templates(folder, compiled=compiled)  # as in the next process
    assert "commented on" in second.render(NoticeKind.COMMENT, "email", context()).text
    assert compiles == []
    write(folder / "comment" / "body.txt", "Edited: {{ comment }}\n")
    third = Templates(folder, compiled=compiled)
    rendered = third.render(NoticeKind.COMMENT, "email", context(NoticeKind.COMMENT))
    assert rendered.text == "Edited: Still down.\n"
    assert compiles == ["comment/body.txt"]
