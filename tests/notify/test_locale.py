"""Notices in the reader's language and time zone: who reads in what, the language folders
with their fallback, the filters, and every shipped template in English and German."""

from __future__ import annotations

import logging
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailproc.config.locale import language_tag, read_directory, text_in
from mailproc.config.settings import ConfigError, demo_settings, settings_from_dict
from mailproc.notify.context import (
    build_context,
    reader_for,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.context import sample_context as shipped_sample
from mailproc.notify.formats import format_amount, format_datetime
from mailproc.notify.readers import mail_language, reader_of
from mailproc.notify.recipients import DEFAULT_RECIPIENTS, Notice
from mailproc.notify.templates import Templates, check_templates, coverage, folder_of
from mailproc.vocabulary import DESK_NOTICES, NoticeKind, Party

BASE = demo_settings(environ={})
SHIPPED = folder_of(BASE)


def settings_with(**extra):
    data = BASE.model_dump(exclude={"source"}, exclude_none=True)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return settings_from_dict(data, "test", {"MAILPROC_SECRET": "test"})


# --- who reads in what ----------------------------------------------------------------------


def test_a_readers_language_and_zone_come_from_the_most_specific_source(tmp_path):
    listed = tmp_path / "people.csv"
    listed.write_text(
        "email,name,language,zone\n"
        "Alice@Example.org,Alice Novák,de,Europe/Berlin\n"
        "bob@example.org,,pt_br,\n",
        encoding="utf-8",
    )
    settings = settings_with(
        locale={"language": "en", "zone": "UTC", "directory": str(listed)},
        directory={"carol@example.org": {"zone": "Asia/Tokyo"}},
        people={**BASE.model_dump()["people"], "sam": {"email": "sam@example.com",
                "zone": "America/Sao_Paulo", "language": "pt-BR", "services": ["network"]}},
        services={**BASE.model_dump(exclude_none=True)["services"],
                  "general": {"title": "General", "language": "cs"}},
    )  # fmt: skip
    cases = {
        ("alice@example.org", "email"): ("Alice Novák", "de", "Europe/Berlin"),
        ("bob@example.org", "email"): ("", "pt-BR", "Europe/Prague"),  # office calendar's zone
        ("carol@example.org", "general"): ("", "cs", "Asia/Tokyo"),  # the service's language
        ("sam@example.com", "network"): ("sam", "pt-BR", "America/Sao_Paulo"),
        ("dave@example.org", "network"): ("", "en", "UTC"),  # 24x7 has no zone: the desk's
    }
    for (email, service), expected in cases.items():
        reader = reader_of(email, settings, service)
        assert (reader.name, reader.language, reader.zone) == expected, email
    alice = reader_of("alice@example.org", settings, "email")
    assert alice.origins == {"name": str(listed), "language": str(listed), "zone": str(listed)}
    assert reader_of("sam@example.com", settings, "network").origins["zone"] == "people.sam"


def test_the_mails_language_counts_only_when_switched_on_and_only_for_strangers():
    headers = {"content-language": ["de-DE, en"]}
    assert mail_language(headers) == "de-DE"
    assert mail_language({"accept-language": ["pt-br;q=0.9, en"]}) == "pt-BR"
    assert mail_language({"content-language": ["<script>"]}) is None
    assert reader_of("x@example.org", BASE, "email", hint="de").language == "en"  # off
    on = settings_with(locale={"mail_language": True})
    assert reader_of("x@example.org", on, "email", hint="de").language == "de"
    assert reader_of("tina@example.com", on, "email", hint="de").language == "en"  # listed


@pytest.mark.parametrize(
    ("text", "tag"), [("de", "de"), ("DE", "de"), ("pt_br", "pt-BR"), ("zh-hant-tw", "zh-Hant-TW")]
)
def test_language_tags_are_written_as_template_folders_are_named(text, tag):
    assert language_tag(text) == tag


def test_directory_files_name_the_line_and_the_fault(tmp_path):
    bad = tmp_path / "people.csv"
    bad.write_text("email,language\nalice@example.org,Klingon!\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"people.csv: line 2: language: 'Klingon!' is not"):
        read_directory(bad)
    header = tmp_path / "h.csv"
    header.write_text("mail,language\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must name the columns"):
        read_directory(header)
    toml = tmp_path / "people.toml"
    toml.write_text('["Alice@Example.org"]\nzone = "Europe/Berlin"\nname = "Alice"\n')
    assert read_directory(toml)["alice@example.org"].zone == "Europe/Berlin"
    with pytest.raises(ConfigError, match=r"locale.directory: .*cannot read"):
        settings_with(locale={"directory": str(tmp_path / "missing.csv")})


def test_texts_per_language_fall_back_to_the_base_language_then_the_desks():
    text = {"en": "Network", "de": "Netzwerk", "pt": "Rede"}
    assert text_in(text, "de-AT", "en") == "Netzwerk"
    assert text_in(text, "pt-BR", "en") == "Rede"
    assert text_in(text, "fr", "en") == "Network"
    assert text_in("Network", "de", "en") == "Network"


# --- the filters ----------------------------------------------------------------------------

MOMENT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_times_and_durations_in_the_readers_language_and_zone():
    assert format_datetime(MOMENT, "Europe/Berlin", "de") == "23.11.2026, 10:00 MEZ"
    assert format_datetime(MOMENT, "America/Sao_Paulo", "pt-BR", "long") == (
        "23 de novembro de 2026 06:00 BRT"
    )
    assert (
        format_datetime(MOMENT, "Asia/Tokyo", "en", "short") == "11/23/26, 6:00\u202fPM"
    )  # CLDR: a narrow no-break space
    assert format_amount(timedelta(hours=26, minutes=30), "de") == "1 Tag, 2 Stunden und 30 Minuten"
    assert format_amount(timedelta(seconds=0.2), "en") == "1 second"  # rounded up


def test_templates_choose_a_format_with_the_filters(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    (folder / "de" / "comment" / "subject.txt").write_text(
        '{{ incident.created|date("long") }} · {{ incident.created|time }} · '
        "{{ now|datetime('EEEE HH:mm') }} · {{ escalation }}\n",
        encoding="utf-8",
    )
    context, language = sample_context(NoticeKind.COMMENT, "de", "Europe/Berlin")
    rendered = Templates(folder).render(NoticeKind.COMMENT, "email", context, language)
    assert rendered.subject == "23. November 2026 · 10:00 · Montag 10:30 · None\n"


# --- language folders -----------------------------------------------------------------------


def sample_context(kind, language, zone, service="email", role=None):
    facts = sample_facts(BASE, service)
    cause, occasion = sample_occasion(kind, facts)
    recipient = sample_recipient(role or DEFAULT_RECIPIENTS[kind][0], facts, BASE)
    notice = Notice(kind, recipient, cause)
    reader = replace(reader_for(notice, facts, BASE), language=language, zone=zone)
    if kind in DESK_NOTICES:  # about no one incident: its sample payload
        return shipped_sample(notice, facts, occasion, BASE, reader), language
    return build_context(notice, facts, occasion, BASE, reader=reader), language


def _roles(kind):
    return [r for r in DEFAULT_RECIPIENTS[kind] if r != Party.WATCHERS] or [Party.REPORTER]


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_shipped_template_renders_in_both_languages_without_utc(kind, language):
    """A reader in Berlin: every time in local time, no UTC left; a typo in a template would
    fail as a TemplateProblem (StrictUndefined)."""
    templates = Templates(SHIPPED)
    for service in BASE.services:
        for role in _roles(kind):
            context, _ = sample_context(kind, language, "Europe/Berlin", service, role)
            rendered = templates.render(kind, service, context, language)
            for text in (rendered.subject, rendered.text, rendered.html or ""):
                assert "UTC" not in text and "+00:00" not in text, text
            if language == "de":
                assert "Hello" not in rendered.text and "What to do now" not in rendered.text
    assert templates.languages() == ["de"]


def test_check_renders_every_language_and_coverage_names_the_missing_kinds(tmp_path, caplog):
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    shutil.rmtree(folder / "de" / "alert")
    (folder / "pt-BR" / "closed").mkdir(parents=True)
    (folder / "pt-BR" / "closed" / "subject.txt").write_text("Fechado: {{ incident.title }}\n")
    (folder / "pt-BR" / "closed" / "body.txt").write_text("{{ incident.closed|datetime }}\n")
    templates = Templates(folder)
    assert check_templates(templates, BASE) == []
    report = coverage(templates, BASE)
    assert report["de"] == ["alert"]
    assert len(report["pt-BR"]) == len(NoticeKind) - 1 and "closed" not in report["pt-BR"]
    caplog.clear()
    caplog.set_level(logging.WARNING, "mailproc.notify.templates")
    fresh = Templates(folder)
    for _ in range(3):
        context, _ = sample_context(NoticeKind.ALERT, "de", "Europe/Berlin")
        rendered = fresh.render(NoticeKind.ALERT, "email", context, "de")
    assert rendered.subject.startswith("[INC-42] mailproc stopped answering")  # the default
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"templates: no de/alert/ in {folder}; de readers get the default alert/"]


def test_a_language_folder_must_hold_the_kinds_files(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    (folder / "de" / "closed" / "subject.txt").unlink()
    problems = check_templates(Templates(folder), BASE)
    assert any(
        p.where.endswith("de/closed/subject.txt") and p.reason == "missing" for p in problems
    )


def test_includes_are_looked_up_in_the_readers_language_first(tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(SHIPPED, folder)
    (folder / "de" / "_reply.txt").write_text("-- Antwort an {{ reply.address }}\n")
    context, _ = sample_context(NoticeKind.CLOSED, "de", "Europe/Berlin")
    text = Templates(folder).render(NoticeKind.CLOSED, "email", context, "de").text
    assert text.rstrip().endswith("-- Antwort an mail-support@example.com")
    context, _ = sample_context(NoticeKind.CLOSED, "en", "Europe/Berlin")
    english = Templates(folder).render(NoticeKind.CLOSED, "email", context, "en").text
    assert "To add something, reply to this mail" in english
