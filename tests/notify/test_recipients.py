"""Who hears of what: events to notices, recipients by role, overrides, one notice per person."""

from __future__ import annotations

import pytest

from mailproc.config.settings import demo_settings, settings_from_dict
from mailproc.inbound.subject import parse_subject
from mailproc.notify.recipients import (
    Parties,
    Person,
    change_notices,
    direct_notices,
    kind_of,
    transcript,
    wants_transcript,
)
from mailproc.vocabulary import EventKind, NoticeKind, Priority
from mailproc.workflow.decision import Decision, Happening, IncidentView, Refusal

SETTINGS = demo_settings(environ={})
ALICE = Person("alice@example.org", "Alice")
TINA = Person("tina@example.com", "tina")


def parties(sender: Person = TINA, assignee: Person | None = TINA, **kw) -> Parties:
    values = dict(
        reporter=ALICE,
        assignee=assignee,
        watchers=("bob@example.org",),
        team="exchange-team@example.com",
        first_line="servicedesk@example.com",
        sender=sender,
    )
    values.update(kw)
    return Parties(**values)


def notices_of(happenings, who=None, settings=SETTINGS, service="email"):
    found = change_notices(happenings, who or parties(), settings, service)
    return {(n.kind.value, n.recipient.email) for n in found}


def status(before: str, after: str, by: str = "CLOSE") -> Happening:
    return Happening(EventKind.STATUS, {"from": before, "to": after, "by": by})


@pytest.mark.parametrize(
    ("happening", "service", "kind"),
    [
        (Happening(EventKind.CREATED, {}), "email", NoticeKind.NEW_INCIDENT),
        (Happening(EventKind.COMMENT, {"text": "x"}), "email", NoticeKind.COMMENT),
        (Happening(EventKind.ASSIGNED, {"from": None, "to": "tina"}), "email", NoticeKind.ASSIGNED),
        (Happening(EventKind.ASSIGNED, {"from": "tina", "to": None}), "email", None),
        (Happening(EventKind.MOVED, {"from": "a", "to": "b"}), "email", NoticeKind.MOVED),
        (Happening(EventKind.PRIORITY, {"from": "P3", "to": "P1"}), "email", NoticeKind.PRIORITY),
        (Happening(EventKind.RELATED, {"problem": 1}), "email", NoticeKind.RELATED),
        (status("Solution", "Closed"), "email", NoticeKind.CLOSED),
        (status("New", "Solution", "ASSIGN"), "email", None),
        (status("Closed", "Solution", "reply"), "email", NoticeKind.REOPENED),
        (status("New", "Resolved", "RESOLVE"), "network", NoticeKind.RESOLVED),
        (status("Resolved", "Closed", "timeout"), "network", NoticeKind.CLOSED),
        (status("Resolved", "New", "reply"), "network", NoticeKind.REOPENED),
        (Happening(EventKind.COMMAND_REJECTED, {}), "email", None),
        (Happening(EventKind.FOLLOW_UP, {"incident": 2}), "email", None),
    ],
)
def test_each_event_maps_to_its_notice(happening, service, kind):
    assert kind_of(happening, SETTINGS, service) is kind


def test_default_recipients_of_each_event():
    reporter_sends = parties(sender=ALICE)
    comment = Happening(EventKind.COMMENT, {"text": "x"})
    assert notices_of([comment], reporter_sends) == {
        ("comment", "tina@example.com"),
        ("comment", "bob@example.org"),
    }
    nora = parties(sender=Person("nora@example.com"))
    assert notices_of([Happening(EventKind.ASSIGNED, {"to": "tina"})], nora) == {
        ("assigned", "tina@example.com"),
        ("assigned", "alice@example.org"),
    }
    assert notices_of([Happening(EventKind.MOVED, {"from": "a", "to": "b"})], nora) == {
        ("moved", "exchange-team@example.com")
    }
    assert notices_of([Happening(EventKind.PRIORITY, {"to": "P1"})], nora) == {
        ("priority", "tina@example.com")
    }
    assert notices_of([Happening(EventKind.CREATED, {})], reporter_sends) == {
        ("new_incident", "servicedesk@example.com")
    }
    assert notices_of([status("Closed", "Solution", "reply")], reporter_sends) == {
        ("reopened", "tina@example.com")
    }


def test_nobody_is_told_of_their_own_change():
    closing = status("Solution", "Closed")
    assert notices_of([closing], parties(sender=ALICE)) == set()
    assert notices_of([closing], parties(sender=TINA)) == {("closed", "alice@example.org")}


def test_one_mail_gives_each_person_one_notice_the_most_important():
    happenings = [
        Happening(EventKind.COMMENT, {"text": "done"}),
        Happening(EventKind.RELATED, {"problem": 1}),
        status("Solution", "Closed"),
    ]
    assert notices_of(happenings) == {
        ("closed", "alice@example.org"),
        ("comment", "bob@example.org"),
    }


def test_our_own_addresses_never_receive_notices():
    own = parties(sender=ALICE, watchers=("support@example.com", "bob@example.org"))
    assert notices_of([Happening(EventKind.COMMENT, {"text": "x"})], own) == {
        ("comment", "tina@example.com"),
        ("comment", "bob@example.org"),
    }


def test_recipients_are_configured_per_event_and_per_service():
    data = demo_settings(environ={}).model_dump(exclude={"source"})
    data["notifications"]["recipients"] = {"comment": ["reporter", "team"]}
    data["services"]["network"]["notify"] = {
        "comment": [],
        "closed": ["Reporter", "Boss@Example.org"],
    }
    settings = settings_from_dict(data, "test", {})
    comment = [Happening(EventKind.COMMENT, {"text": "x"})]
    team = {("comment", "alice@example.org"), ("comment", "exchange-team@example.com")}
    assert notices_of(comment, settings=settings, service="email") == team
    assert notices_of(comment, settings=settings, service="network") == set()
    closing = [status("Resolved", "Closed")]
    assert notices_of(closing, settings=settings, service="network") == {
        ("closed", "alice@example.org"),
        ("closed", "boss@example.org"),
    }


def test_a_recipient_that_is_neither_role_nor_address_is_a_configuration_error():
    data = demo_settings(environ={}).model_dump(exclude={"source"})
    data["notifications"]["recipients"] = {"comment": ["the boss"]}
    with pytest.raises(Exception, match=r"notifications\.recipients\.comment\.0"):
        settings_from_dict(data, "test", {})


def test_answers_go_to_the_sender_and_reporter():
    ack = direct_notices(NoticeKind.ACKNOWLEDGMENT, parties(sender=ALICE), SETTINGS, "email")
    assert [(n.recipient.email, n.recipient.role) for n in ack] == [
        ("alice@example.org", "reporter")
    ]
    transcript_to = direct_notices(NoticeKind.TRANSCRIPT, parties(), SETTINGS, "email")
    assert [n.recipient.email for n in transcript_to] == ["tina@example.com"]


def test_transcript_always_on_refusal_and_on_success_as_configured():
    view = IncidentView(1, "email", "New", Priority.P3, None, "alice@example.org")
    success = Decision(view, applied=("[CLOSE]",))
    refused = Decision(view, refused=(Refusal("[CLOSE]", "no"),))
    quiet = SETTINGS.model_copy(
        update={
            "notifications": SETTINGS.notifications.model_copy(
                update={"transcript_on_success": False}
            )
        }
    )
    assert wants_transcript(success, SETTINGS) and wants_transcript(refused, quiet)
    assert not wants_transcript(success, quiet)
    assert not wants_transcript(None, SETTINGS)


def test_transcript_lines_give_the_correct_syntax_of_refused_commands():
    commands = parse_subject("[ASIGN sam] [PRIORITY P1] [CLOSE now]").commands
    view = IncidentView(1, "email", "New", Priority.P3, None, "alice@example.org")
    decision = Decision(
        view,
        refused=(
            Refusal("[ASIGN sam]", "unknown command"),
            Refusal("[CLOSE now]", "CLOSE takes no argument"),
            Refusal("[PRIORITY P1]", "not applied"),
        ),
    )
    lines = transcript(commands, decision, SETTINGS.language)
    assert [(line.text, line.applied, line.syntax) for line in lines] == [
        ("[ASIGN sam]", False, "[ASSIGN person], or [ASSIGN] to take it yourself"),
        ("[PRIORITY P1]", False, "[PRIORITY P1|P2|P3|P4|critical|high|medium|low]"),
        ("[CLOSE now]", False, "[CLOSE]"),
    ]
    # a mistyped word is mended into a command that can be copied as it is
    assert [line.example for line in lines] == ["[ASSIGN sam]", "[PRIORITY P1]", ""]
