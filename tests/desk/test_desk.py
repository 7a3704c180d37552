"""The service layer on SQLite and PostgreSQL: one mail, one transaction, exactly once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition, Origin
from mailproc.desk.problems import add_problem, get_problem
from mailproc.store import db
from mailproc.store.queries import get_incident, list_incidents
from tests.support.mailfactory import make_mail, message_id_of

TINA = "Tina Solver <tina@example.com>"
SAM = "Sam <sam@example.com>"


def kinds(engine, number: int) -> list[str]:
    return [e.kind for e in get_incident(engine, number).events]


def count(engine, model) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))


def open_incident(desk: Desk, **kw) -> tuple[int, str]:
    raw = make_mail(**kw)
    outcome = desk.handle(raw)
    assert outcome.disposition is Disposition.PROCESSED
    return outcome.incident, message_id_of(raw)


def test_a_new_mail_becomes_a_new_incident_in_the_service_of_its_address(desk, engine):
    outcome = desk.handle(make_mail(sender="Alice Novák <Alice@Example.org>"))
    assert outcome.summary == "created INC-1 in email"
    incident = get_incident(engine, 1).incident
    assert (incident.status, incident.service, incident.priority) == ("New", "email", "P2")
    assert incident.reporter == "alice@example.org"
    assert incident.title == "Exchange is down"
    created = get_incident(engine, 1).events[0]
    assert created.detail["text"] == "Nobody can send mail since 9:00."


def test_unknown_address_goes_to_the_default_service_and_origin_hint_wins(desk, engine):
    desk.handle(make_mail(to="someone@elsewhere.org"))
    desk.handle(make_mail(to="someone@elsewhere.org"), Origin("imap", service="network"))
    assert [i.service for i in list_incidents(engine)] == ["general", "network"]


def test_ingesting_the_same_mail_again_changes_nothing(desk, engine):
    raw = make_mail()
    first, second = desk.handle(raw), desk.handle(raw)
    assert first.disposition is Disposition.PROCESSED
    assert second.disposition is Disposition.DUPLICATE
    assert second.incident == first.incident
    assert count(engine, db.Incident) == 1
    assert count(engine, db.Event) == 1
    assert count(engine, db.Message) == 1


def test_reply_threads_by_in_reply_to(desk, engine):
    number, mid = open_incident(desk)
    reply = make_mail(subject="Re: whatever", body="More info", in_reply_to=mid, authenticated=True)
    outcome = desk.handle(reply)
    assert outcome.incident == number
    assert kinds(engine, number) == ["created", "comment"]


def test_reply_threads_by_references_alone(desk, engine):
    number, mid = open_incident(desk)
    outcome = desk.handle(make_mail(subject="Re: x", references=["unknown@x", mid]))
    assert outcome.incident == number


def test_reply_threads_by_subject_tag(desk, engine):
    number, _ = open_incident(desk)
    outcome = desk.handle(make_mail(subject=f"Re: [INC-{number}] still down", body="again"))
    assert outcome.incident == number


def test_never_threads_by_title_alone(desk, engine):
    open_incident(desk)
    outcome = desk.handle(make_mail(subject="Re: Exchange is down"))
    assert outcome.summary == "created INC-2 in email"


def test_a_tag_naming_no_incident_opens_a_new_one(desk, engine):
    outcome = desk.handle(make_mail(subject="[INC-999] hello"))
    assert outcome.incident == 1
    assert get_incident(engine, 1).incident.title == "hello"


def test_reply_comment_keeps_only_the_new_text_but_the_original_is_stored(desk, engine):
    number, mid = open_incident(desk)
    body = "It affects sales too.\n\nOn Mon, 23 Nov 2026, Tina wrote:\n> Looking into it.\n"
    desk.handle(make_mail(subject="Re: x", body=body, in_reply_to=mid))
    comment = get_incident(engine, number).events[-1]
    assert comment.detail["text"] == "It affects sales too."
    with Session(engine) as session:
        raws = session.scalars(select(db.Message.raw).order_by(db.Message.id)).all()
    assert b"Looking into it." in raws[-1]


def test_solver_commands_by_reply(desk, engine):
    number, mid = open_incident(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina] [PRIORITY P1]", in_reply_to=mid))
    incident = get_incident(engine, number).incident
    assert (incident.status, incident.assignee, incident.priority) == ("Solution", "tina", "P1")
    assert kinds(engine, number) == ["created", "comment", "assigned", "status", "priority"]


def test_a_refused_command_changes_nothing_and_is_recorded_with_its_reason(desk, engine):
    number, mid = open_incident(desk)
    outcome = desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tinna]", in_reply_to=mid))
    assert "; refused [ASSIGN tinna] (unknown person 'tinna'" in outcome.summary
    detail = get_incident(engine, number)
    assert detail.incident.assignee is None and detail.incident.status == "New"
    rejected = detail.events[-1]
    assert rejected.kind == "command_rejected"
    assert rejected.detail["reason"].startswith("unknown person 'tinna' — did you mean 'tina'?")


def test_commands_in_a_first_mail_from_a_solver(desk, engine):
    outcome = desk.handle(make_mail(sender=SAM, subject="[PRIORITY P1] DB cluster down"))
    incident = get_incident(engine, outcome.incident).incident
    assert incident.priority == "P1" and incident.title == "DB cluster down"


def test_commands_in_a_first_mail_from_a_stranger_are_refused_but_the_incident_exists(desk, engine):
    outcome = desk.handle(make_mail(subject="[PRIORITY P1] please hurry"))
    detail = get_incident(engine, outcome.incident)
    assert detail.incident.priority == "P2"
    assert [e.kind for e in detail.events] == ["created", "command_rejected"]


def test_reporter_may_close_their_own_incident(desk, engine):
    number, mid = open_incident(desk)
    reply = make_mail(subject="Re: [CLOSE]", body="works now", in_reply_to=mid, authenticated=True)
    desk.handle(reply)
    incident = get_incident(engine, number).incident
    assert incident.status == "Closed" and incident.closed_at is not None


def test_a_stranger_reply_is_kept_as_an_internal_note(desk, engine):
    number, mid = open_incident(desk)
    desk.handle(make_mail(sender="mallory@example.net", body="spam", in_reply_to=mid))
    events = get_incident(engine, number).events
    assert events[-1].kind == "note" and events[-1].detail["text"] == "spam"
    assert "neither a solver, the reporter nor a participant" in events[-1].detail["reason"]


def test_a_participant_of_the_original_mail_may_comment(desk, engine):
    number, mid = open_incident(desk, cc="Bob <bob@example.org>")
    desk.handle(
        make_mail(sender="bob@example.org", body="me too", in_reply_to=mid, authenticated=True)
    )
    assert kinds(engine, number)[-1] == "comment"


def test_reply_within_the_reopen_window_reopens(desk, engine, clock):
    number, mid = open_incident(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina] [CLOSE]", in_reply_to=mid))
    clock.advance(days=6)
    outcome = desk.handle(make_mail(body="broken again", in_reply_to=mid, authenticated=True))
    assert outcome.incident == number and "reopened" in outcome.summary
    incident = get_incident(engine, number).incident
    assert incident.status == "Solution" and incident.closed_at is None


def test_reply_after_the_reopen_window_opens_a_follow_up(desk, engine, clock):
    number, mid = open_incident(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [CLOSE]", in_reply_to=mid))
    clock.advance(days=8)
    outcome = desk.handle(make_mail(subject="Re: Exchange is down", in_reply_to=mid))
    assert outcome.incident != number
    new = get_incident(engine, outcome.incident)
    assert new.follow_up_of == number
    assert new.events[0].detail["follow_up_of"] == number
    assert kinds(engine, number)[-1] == "follow_up"


def test_a_solver_reply_on_a_closed_incident_does_not_reopen_it(desk, engine):
    number, mid = open_incident(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [CLOSE]", in_reply_to=mid))
    desk.handle(make_mail(sender=TINA, body="for the record: root cause found", in_reply_to=mid))
    assert get_incident(engine, number).incident.status == "Closed"


def test_relate_binds_the_incident_to_a_known_problem(desk, engine, clock):
    add_problem(engine, clock(), "Cert expired", "Outlook disconnected", "Renew cert")
    number, mid = open_incident(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [RELATE PRB-1]", in_reply_to=mid))
    assert get_incident(engine, number).problems == (1,)
    assert get_problem(engine, 1).incidents == (number,)


def test_unparseable_mail_is_quarantined_with_its_reason_and_kept(desk, engine):
    outcome = desk.handle(b"")
    assert outcome.disposition is Disposition.QUARANTINED and outcome.quarantined
    with Session(engine) as session:
        row = session.scalars(select(db.Message)).one()
    assert row.outcome == "quarantined" and row.reason.startswith("unparseable")
    again = desk.handle(b"")
    assert again.disposition is Disposition.DUPLICATE and again.quarantined


def test_a_bug_while_applying_quarantines_that_mail_only(desk, engine, monkeypatch):
    import mailproc.desk.mail as service

    real = service.classify

    def explode(mail, *args, **kw):
        if "poison" in mail.subject:
            raise RuntimeError("boom")
        return real(mail, *args, **kw)

    monkeypatch.setattr(service, "classify", explode)
    bad = desk.handle(make_mail(subject="poison"))
    good = desk.handle(make_mail(subject="fine"))
    assert bad.disposition is Disposition.QUARANTINED
    assert bad.summary == "internal error: RuntimeError: boom"
    assert good.disposition is Disposition.PROCESSED
    assert count(engine, db.Incident) == 1  # the poison's incident was rolled back


def test_attachments_are_stored_under_names_mailproc_chose(desk, engine):
    raw = make_mail(attachments=[("../../etc/passwd", "application/pdf", b"%PDF-1.4 x")])
    desk.handle(raw)
    with Session(engine) as session:
        row = session.scalars(select(db.Attachment)).one()
        blob = session.get(db.Blob, row.sha256)
    assert row.filename == "passwd"
    assert row.stored_name == "m1-a0.pdf"
    assert (row.size, blob.content) == (10, b"%PDF-1.4 x")


def test_concurrent_deliveries_of_one_mail_apply_it_once(settings, engine, clock):
    raw = make_mail()
    outcomes = []

    def work() -> None:
        outcomes.append(Desk(settings, engine, clock).handle(raw))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o.disposition.value for o in outcomes) == ["duplicate"] * 3 + ["processed"]
    assert count(engine, db.Incident) == 1


def test_resolved_incidents_close_themselves_after_the_timeout(desk, engine, clock):
    outcome = desk.handle(make_mail(to="network-support@example.com"))
    number = outcome.incident
    desk.handle(make_mail(sender=SAM, subject=f"[INC-{number}] [RESOLVE]"))
    clock.advance(days=4)
    assert desk.close_timed_out() == []
    clock.advance(days=1, seconds=1)
    assert desk.close_timed_out() == [number]
    detail = get_incident(engine, number)
    assert detail.incident.status == "Closed" and detail.incident.closed_at == clock.now
    last = detail.events[-1]
    assert (last.kind, last.actor, last.detail["by"]) == ("status", "mailproc", "timeout")
    assert desk.close_timed_out() == []
