"""Commands need proof of their sender (SQLite and PostgreSQL): a trusted
Authentication-Results header or the personal reply token of our notification; a forged From
changes nothing, is recorded, and its supposed sender gets the explanation."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.safety import CommandAuth, SecurityConfig
from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import get_incident, list_incidents
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.notices import answer, notice_to

ALICE = "Alice <alice@example.org>"
TINA = "Tina <tina@example.com>"


def with_auth(desk: Desk, mode: CommandAuth) -> Desk:
    security = SecurityConfig(command_authentication=mode, trusted_authserv_ids=("mx.example.com",))
    return Desk(desk.settings.model_copy(update={"security": security}), desk.engine, desk.clock)


def opened(desk: Desk) -> tuple[int, str]:
    raw = make_mail(sender=ALICE)
    return desk.handle(raw).incident, message_id_of(raw)


def test_a_forged_solver_command_changes_nothing_and_answers_nobody_outside(desk, engine):
    number, mid = opened(desk)
    forged = make_mail(sender=TINA, subject="Re: [CLOSE]", in_reply_to=mid, authenticated=False)
    outcome = desk.handle(forged)
    assert "refused [CLOSE] (not authenticated" in outcome.summary
    detail = get_incident(engine, number)
    assert detail.incident.status == "New"
    note, rejected = detail.events[-2:]
    assert (note.kind, rejected.kind) == ("note", "command_rejected")
    for event in (note, rejected):
        assert event.detail["reason"].startswith(
            "not authenticated: the From address tina@example.com alone is not proof; reply to "
            "one of our notifications about INC-1"
        )
    with Session(engine) as session:  # no transcript to an address anyone can write
        kinds = session.scalars(select(db.Outbox.kind).where(db.Outbox.id > 2)).all()
    assert kinds == ["note"]
    # the desk hears of it (nobody is assigned: the team), with the proof that is missing
    told = notice_to(engine, "exchange-team@example.com", "note")
    assert "tina@example.com" in told.text and "(DKIM)" in " ".join(told.text.split())


def test_trusted_authentication_results_prove_the_sender(desk, engine):
    number, mid = opened(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid))
    assert get_incident(engine, number).incident.assignee == "tina"


@pytest.mark.parametrize(
    "header",
    [
        "attacker.example.net; dkim=pass header.d=example.com",  # not our server
        "mx.example.com; dkim=pass header.d=evil.example.com.net",  # not aligned
        "mx.example.com; dkim=fail header.d=example.com",  # failed
    ],
)
def test_authentication_results_that_prove_nothing_are_not_proof(desk, engine, header):
    number, mid = opened(desk)
    raw = make_mail(
        sender=TINA,
        subject="Re: [ASSIGN tina]",
        in_reply_to=mid,
        authenticated=False,
        headers={"Authentication-Results": header},
    )
    desk.handle(raw)
    assert get_incident(engine, number).incident.assignee is None


def test_a_forged_header_below_our_servers_own_verdict_is_ignored(desk, engine):
    number, mid = opened(desk)
    forged = make_mail(
        sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid, authenticated=False
    )
    ours = b"Authentication-Results: mx.example.com; dkim=fail header.d=example.com\r\n"
    theirs = b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    desk.handle(ours + theirs + forged)
    assert get_incident(engine, number).incident.assignee is None


def test_the_reply_token_of_our_notification_proves_the_person_it_was_sent_to(desk, engine):
    number, mid = opened(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid))
    notice = notice_to(engine, "tina@example.com")  # her transcript, with her token
    assert re.fullmatch(r"mail-support\+inc-1\.[a-z2-7]{16}@example\.com", notice.reply_to[0].email)
    desk.handle(answer(notice, TINA, "Re: [PRIORITY P1]"))  # no Authentication-Results at all
    assert get_incident(engine, number).incident.priority == "P1"
    # the same address from anyone else proves nothing, even for an admin's name
    desk.handle(answer(notice, "Nora <nora@example.com>", "Re: [PRIORITY P4]"))
    assert get_incident(engine, number).incident.priority == "P1"
    assert get_incident(engine, number).events[-1].kind == "command_rejected"


def test_a_token_proves_nothing_for_another_incident(desk, engine):
    _first, mid = opened(desk)
    second, _ = opened(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid))
    notice = notice_to(engine, "tina@example.com")  # about INC-1
    desk.handle(
        answer(notice, TINA, f"[INC-{second}] [PRIORITY P1]").replace(
            b"In-Reply-To", b"X-In-Reply-To"
        )
    )
    assert get_incident(engine, second).incident.priority != "P1"


def test_the_reporter_closes_by_answering_the_acknowledgment(desk, engine):
    number, _ = opened(desk)
    ack = notice_to(engine, "alice@example.org", "acknowledgment")
    desk.handle(answer(ack, ALICE, "Re: [CLOSE] fixed itself"))
    assert get_incident(engine, number).incident.status == "Closed"
    # the token address is ours: it routes to the service and is nobody's participant address
    assert list_incidents(engine)[0].service == "email"
    with Session(engine) as session:
        assert list(session.scalars(select(db.Participant.email))) == []


def test_a_comment_without_proof_is_kept_as_an_internal_note(desk, engine):
    number, mid = opened(desk)
    outcome = desk.handle(make_mail(sender=ALICE, body="It works again", in_reply_to=mid))
    assert outcome.incident == number and "kept as an internal note" in outcome.summary
    event = get_incident(engine, number).events[-1]
    assert (event.kind, event.detail["text"]) == ("note", "It works again")
    desk.handle(answer(notice_to(engine, "alice@example.org", "acknowledgment"), ALICE, "Re: x"))
    assert get_incident(engine, number).events[-1].kind == "comment"  # her token proves her


def test_reply_token_mode_ignores_authentication_results(desk, engine):
    desk.settings._secret = b"one key for both desks"  # tokens signed by one, read by the other
    strict = with_auth(desk, CommandAuth.REPLY_TOKEN)
    number, mid = opened(strict)
    strict.handle(make_mail(sender=TINA, subject="Re: [PRIORITY P1]", in_reply_to=mid))
    assert get_incident(engine, number).incident.priority != "P1"
    reason = get_incident(engine, number).events[-1].detail["reason"]
    assert reason.endswith("its subject carry your personal token)")
    desk.handle(
        make_mail(sender="Nora <nora@example.com>", subject="Re: [ASSIGN tina]", in_reply_to=mid)
    )
    assigned = notice_to(engine, "tina@example.com", "assigned")  # carries her token
    strict.handle(answer(assigned, TINA, "Re: [PRIORITY P1]"))
    assert get_incident(engine, number).incident.priority == "P1"


def test_authentication_results_mode_ignores_tokens(desk, engine):
    number, mid = opened(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid))
    notice = notice_to(engine, "tina@example.com")
    strict = with_auth(desk, CommandAuth.AUTHENTICATION_RESULTS)
    strict.handle(answer(notice, TINA, "Re: [PRIORITY P1]"))
    assert get_incident(engine, number).incident.priority != "P1"
    strict.handle(answer(notice, TINA, "Re: [PRIORITY P1]", authenticated=True))
    assert get_incident(engine, number).incident.priority == "P1"


def test_mode_none_trusts_the_from_header(desk, engine):
    trusting = with_auth(desk, CommandAuth.NONE)
    number, mid = opened(trusting)
    raw = make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid, authenticated=False)
    trusting.handle(raw)
    assert get_incident(engine, number).incident.assignee == "tina"


def test_commands_in_a_new_mail_need_a_signed_mail(desk, engine):
    unsigned = make_mail(sender=TINA, subject="[PRIORITY P1] DB down", authenticated=False)
    outcome = desk.handle(unsigned)
    detail = get_incident(engine, outcome.incident)
    assert detail.incident.priority == "P2" and detail.events[-1].kind == "command_rejected"
    assert detail.events[-1].detail["reason"].endswith("for example.com (DKIM)")
    signed = desk.handle(make_mail(sender=TINA, subject="[PRIORITY P1] DB down"))
    assert get_incident(engine, signed.incident).incident.priority == "P1"


def test_a_verdict_the_sender_wrote_below_our_borders_received_field_is_not_proof(desk, engine):
    number, mid = opened(desk)
    raw = make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid, authenticated=False)
    # our border added only its Received field; the verdict under it came with the mail
    border = b"Received: from mail.evil.net (mail.evil.net [203.0.113.9]) by mx.example.com\r\n"
    theirs = b"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n"
    desk.handle(border + theirs + raw)
    assert get_incident(engine, number).incident.assignee is None
