"""The sender is the addr-spec (issue 13): a display name holding another address is a
warning sign shown to the solvers; a From that names no single sender is quarantined."""

from __future__ import annotations

import pytest

from mailproc.desk.mail import Disposition
from mailproc.inbound.parse import parse_mail
from mailproc.store.queries import get_incident
from tests.support.notices import notice_to


def mail(sender_lines: str, subject: str = "help") -> bytes:
    return (
        f"{sender_lines}To: support@example.com\r\nSubject: {subject}\r\n"
        "Message-ID: <s.1@evil.example.net>\r\n\r\nplease\r\n"
    ).encode()


def test_the_address_in_brackets_is_the_sender_whatever_the_name_says() -> None:
    parsed = parse_mail(mail("From: tina@example.com <attacker@evil.net>\r\n"))
    assert parsed.sender is not None and parsed.sender.email == "attacker@evil.net"
    assert parsed.sender_warning == "display name looks like another address: tina@example.com"
    assert parsed.sender_fault is None


def test_a_name_that_is_the_senders_own_address_is_no_warning() -> None:
    parsed = parse_mail(mail('From: "tina@example.com" <Tina@Example.com>\r\n'))
    assert parsed.sender_warning is None


@pytest.mark.parametrize(
    ("sender_lines", "fault"),
    [
        ("", "no From field"),
        ("From: a@example.org\r\nFrom: b@example.org\r\n", "2 From fields"),
        ("From: a@example.org, b@example.org\r\n", "2 addresses in From"),
        ("From: Team: a@example.org;\r\n", "a group in From (group syntax names no sender)"),
        ("From: undisclosed-recipients:;\r\n", "a group in From (group syntax names no sender)"),
        ("From: Just A Name\r\n", "no address in From"),
    ],
)
def test_a_from_that_names_no_single_sender_is_quarantined(desk, engine, sender_lines, fault):
    outcome = desk.handle(mail(sender_lines))
    assert outcome.disposition is Disposition.QUARANTINED
    assert outcome.summary == f"malformed From: {fault}"


def test_the_warning_is_in_the_history_and_in_the_solvers_notice(desk, engine):
    outcome = desk.handle(mail("From: tina@example.com <attacker@evil.net>\r\n"))
    incident = get_incident(engine, outcome.incident)
    assert incident.incident.reporter == "attacker@evil.net"
    warning = [e for e in incident.events if e.kind == "sender_warning"]
    assert warning[0].detail == {
        "warning": "display name looks like another address: tina@example.com"
    }
    first_line = notice_to(engine, "servicedesk@example.com", "new_incident")
    assert "WARNING: the sender may not be who they seem" in first_line.text
    acknowledgment = notice_to(engine, "attacker@evil.net", "acknowledgment")
    assert "WARNING" not in acknowledgment.text and "tina@example.com" not in acknowledgment.text
