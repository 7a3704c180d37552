"""Queries by mail (SQLite and PostgreSQL): [LIST], [MINE], [HELP], [STATUS] are answered by
return mail, proven like commands, change nothing, and never answer automatic mail."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.notices import answer, notice_to

ALICE = "Alice <alice@example.org>"
TINA = "Tina <tina@example.com>"


def count(engine, model) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def setup_queue(desk: Desk) -> None:
    first = make_mail(sender=ALICE, subject="Outlook disconnected")
    desk.handle(first)  # INC-1, email
    desk.handle(make_mail(sender=ALICE, subject="VPN drops", to="network-support@example.com"))
    desk.handle(make_mail(sender="Bob <bob@example.org>", subject="Printer jam", to="x@y.org"))
    assign = make_mail(sender=TINA, subject="Re: [ASSIGN]", in_reply_to=message_id_of(first))
    desk.handle(assign)


def test_a_solvers_list_and_mine_are_answered_and_change_nothing(desk, engine):
    setup_queue(desk)
    incidents, events = count(engine, db.Incident), count(engine, db.Event)
    outcome = desk.handle(make_mail(sender=TINA, subject="[LIST] [MINE]"))  # DKIM-signed
    assert (outcome.incident, outcome.summary) == (None, "[LIST] [MINE] answered")
    assert (count(engine, db.Incident), count(engine, db.Event)) == (incidents, events)
    answered = notice_to(engine, "tina@example.com", "answer")
    text = answered.text
    assert answered.subject == "Open incidents of email, general (2) (and 1 more)"
    assert "INC-1  Outlook disconnected" in text and "INC-3  Printer jam" in text
    assert "INC-2" not in text  # network: not one of tina's services
    assert "Assigned to you (1)\n  INC-1  Outlook disconnected" in text


def test_list_of_one_service_and_its_refusals(desk, engine):
    setup_queue(desk)
    desk.handle(make_mail(sender=TINA, subject="[LIST email]"))
    assert "Open incidents of email (1)" in notice_to(engine, "tina@example.com", "answer").text
    desk.handle(make_mail(sender=TINA, subject="[LIST network]"))
    refused = notice_to(engine, "tina@example.com", "answer").text
    assert "no service 'network' of yours; yours: email, general" in refused


def test_a_reporter_asks_for_the_status_of_her_reports_by_replying(desk, engine):
    setup_queue(desk)
    secret = "The relay's admin password is in the vault, row 3."
    desk.handle(make_mail(sender=TINA, subject="Re: [INC-1] [NOTE]", body=secret))
    ack = notice_to(engine, "alice@example.org", "acknowledgment")
    outcome = desk.handle(answer(ack, ALICE, "[STATUS]"))
    assert outcome.summary == "[STATUS] answered"
    text = notice_to(engine, "alice@example.org", "answer").text
    assert "Your open reports (2)" in text
    assert "INC-1  Outlook disconnected\n      status Solution, with tina" in text
    assert "vault" not in text and "note" not in text.lower()  # the note stays inside
    # nothing was added to the incident the reply threads onto
    assert [e.kind for e in get_incident(engine, 1).events][-1] == "note"


def test_queries_are_proven_like_commands_and_list_is_for_solvers(desk, engine):
    setup_queue(desk)
    forged = make_mail(sender=TINA, subject="[MINE]", authenticated=False)
    assert desk.handle(forged).summary.startswith("[MINE] refused: not authenticated")
    said = notice_to(engine, "tina@example.com", "answer").text
    assert "[MINE] not answered" in said and "not authenticated" in said
    # the refusal's own Reply-To carries the desk's token: replying to it proves the sender
    refusal = notice_to(engine, "tina@example.com", "answer")
    assert desk.handle(answer(refusal, TINA, "[MINE]")).summary == "[MINE] answered"
    ack = notice_to(engine, "alice@example.org", "acknowledgment")
    desk.handle(answer(ack, ALICE, "[LIST]"))
    assert (
        "[LIST] is for the desk's solvers" in notice_to(engine, "alice@example.org", "answer").text
    )


def test_help_lists_what_this_sender_may_do_in_this_status(desk, engine):
    setup_queue(desk)
    ack = notice_to(engine, "alice@example.org", "acknowledgment")
    desk.handle(answer(ack, ALICE, "Re: [INC-2] [HELP]"))  # her last acknowledgment: INC-2
    text = notice_to(engine, "alice@example.org", "answer").text
    assert "What you can do with INC-2 (New)" in text
    assert "In status New you can use: [CLOSE]" in text
    desk.handle(make_mail(sender=TINA, subject="[HELP]"))
    general = notice_to(engine, "tina@example.com", "answer").text
    assert "[MERGE INC-n]" in general and "[LIST], [LIST service], [MINE]" in general


def test_automatic_mail_is_never_answered(desk, engine):
    setup_queue(desk)
    robot = make_mail(sender=TINA, subject="[LIST]", headers={"Auto-Submitted": "auto-replied"})
    desk.handle(robot)
    with Session(engine) as session:
        answers = session.scalar(
            select(func.count()).select_from(db.Outbox).where(db.Outbox.kind == "answer")
        )
    assert answers == 0


def test_with_plain_reply_addresses_an_answers_message_id_proves_the_reply(settings, engine, clock):
    # issue 14's `reply_address = "plain"`: no token in the Reply-To; the answer's signed
    # Message-ID, named by the reply's In-Reply-To, proves the sender instead
    plain = settings.notifications.model_copy(update={"reply_address": "plain"})
    desk = Desk(settings.model_copy(update={"notifications": plain}), engine, clock)
    setup_queue(desk)
    desk.handle(make_mail(sender=TINA, subject="[MINE]", authenticated=False))
    refusal = notice_to(engine, "tina@example.com", "answer")
    (reply_to,) = refusal.reply_to
    assert "+" not in reply_to.email
    assert desk.handle(answer(refusal, TINA, "[MINE]")).summary == "[MINE] answered"
