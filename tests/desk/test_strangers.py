"""Strangers cannot join a thread or speak for someone (issue 13), on SQLite and PostgreSQL:
the To/Cc of a mail that is not applied are never added; a new report adds at most
`watchers.max_added_per_mail` of them (only from `watchers.allowed_domains` when set) and names
the rest in the history; no notice goes to more than `notifications.max_recipients` people;
and a reply whose sender is not proven changes nothing, is kept as an internal note for the
assignee, and is relayed to nobody."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.config.safety import WatchersConfig
from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail, message_id_of

TINA = "Tina <tina@example.com>"
CC_200 = ", ".join(f"Person {n} <p{n}@outside.example.net>" for n in range(200))


def watchers(engine, number: int = 1) -> list[str]:
    with Session(engine) as session:
        query = select(db.Participant.email).where(db.Participant.incident_id == number)
        return sorted(session.scalars(query))


def queued(engine, kind: str | None = None) -> list[str]:
    with Session(engine) as session:
        query = select(db.Outbox.recipient).where(db.Outbox.status == "pending")
        if kind is not None:
            query = query.where(db.Outbox.kind == kind)
        return list(session.scalars(query.order_by(db.Outbox.id)))


def opened(desk: Desk, **kw) -> str:
    raw = make_mail(**kw)
    desk.handle(raw)
    return message_id_of(raw)


def test_a_strangers_reply_with_200_cc_adds_nobody_and_mails_nobody_outside(desk, engine):
    mid = opened(desk)
    stranger = make_mail(sender="eve@evil.example.net", cc=CC_200, body="hi all", in_reply_to=mid)
    assert "kept as an internal note" in desk.handle(stranger).summary
    assert watchers(engine) == []
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid))
    before = len(queued(engine))
    desk.handle(make_mail(sender=TINA, body="Please restart Outlook.", in_reply_to=mid))
    assert queued(engine)[before:] == ["alice@example.org"]  # the comment: the reporter only


def test_a_new_report_adds_ten_cc_as_watchers_and_names_the_rest(desk, engine):
    mid = opened(desk, cc=CC_200)
    added = watchers(engine)
    assert len(added) == 10 and set(added) <= {f"p{n}@outside.example.net" for n in range(200)}
    skipped = get_incident(engine, 1).events[-1]
    assert skipped.kind == "watchers_not_added"
    assert skipped.detail["reason"] == "more than 10 in one mail (watchers.max_added_per_mail)"
    assert len(skipped.detail["addresses"]) == 50  # the history names the first fifty
    before = len(queued(engine))
    desk.handle(make_mail(sender=TINA, body="Looking into it.", in_reply_to=mid))
    assert len(queued(engine)[before:]) == 11  # the reporter and the ten watchers


def test_only_allowed_domains_become_watchers(settings, engine, clock):
    limited = WatchersConfig(allowed_domains=("example.org",))
    desk = Desk(settings.model_copy(update={"watchers": limited}), engine, clock)
    opened(desk, cc="Bob <bob@example.org>, Eve <eve@evil.example.net>, c@mail.example.org")
    assert watchers(engine) == ["bob@example.org", "c@mail.example.org"]
    skipped = get_incident(engine, 1).events[-1]
    assert skipped.detail == {
        "addresses": ["eve@evil.example.net"],
        "reason": "not in watchers.allowed_domains",
    }


def test_no_notice_goes_to_more_than_max_recipients(settings, engine, clock):
    many = WatchersConfig(max_added_per_mail=500)
    desk = Desk(settings.model_copy(update={"watchers": many}), engine, clock)
    mid = opened(desk, cc=CC_200)
    assert len(watchers(engine)) == 200
    desk.handle(make_mail(sender=TINA, body="Fixed.", in_reply_to=mid))
    comments = queued(engine, "comment")
    assert len(comments) == 20 and comments[0] == "alice@example.org"  # the reporter first


def test_an_unproven_reply_to_a_closed_incident_changes_nothing_and_tells_the_assignee(
    desk, engine
):
    mid = opened(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina] [CLOSE]", in_reply_to=mid))
    before = get_incident(engine, 1)
    with Session(engine) as session:
        due = session.get(db.Incident, 1).resolution_due  # type: ignore[union-attr]
    sent_before = len(queued(engine))
    forged = make_mail(
        sender="Alice <alice@example.org>", body="Still broken, call me.", in_reply_to=mid
    )
    outcome = desk.handle(forged)
    assert "kept as an internal note: not authenticated" in outcome.summary
    after = get_incident(engine, 1)
    assert after.incident.status == before.incident.status == "Closed"  # not reopened
    assert after.incident.closed_at == before.incident.closed_at
    with Session(engine) as session:
        assert session.get(db.Incident, 1).resolution_due == due  # type: ignore[union-attr]
    note = after.events[-1]
    assert (note.kind, note.detail["text"]) == ("note", "Still broken, call me.")
    # the assignee and the service's team, nobody else
    assert set(queued(engine)[sent_before:]) == {"tina@example.com", "exchange-team@example.com"}
    with Session(engine) as session:
        kinds = session.scalars(select(db.Outbox.kind).order_by(db.Outbox.id.desc()).limit(1))
        assert list(kinds) == ["note"]
        assert session.scalar(select(func.count()).select_from(db.Participant)) == 0


def test_a_forged_solver_reply_does_not_stop_the_response_clock(desk, engine):
    mid = opened(desk)

    def response_due():
        with Session(engine) as session:
            return session.get(db.Incident, 1).response_due  # type: ignore[union-attr]

    due = response_due()
    assert due is not None
    forged = make_mail(sender=TINA, body="On it.", in_reply_to=mid, authenticated=False)
    assert "kept as an internal note" in desk.handle(forged).summary
    assert response_due() == due
    desk.handle(make_mail(sender=TINA, body="On it.", in_reply_to=mid))  # proven: responds
    assert response_due() != due


def test_a_subject_of_thousands_of_commands_is_a_few_rows_and_a_short_transcript(desk, engine):
    mid = opened(desk)
    flood = make_mail(sender=TINA, subject="Re: " + "[PRIORITY P1] " * 5000, in_reply_to=mid)
    outcome = desk.handle(flood)
    assert "more than 5 commands in one mail" in outcome.summary
    with Session(engine) as session:
        events = session.scalar(select(func.count()).select_from(db.Event))
        letter = session.scalars(
            select(db.Outbox.letter).where(db.Outbox.kind == "transcript")
        ).one()
    assert events == 2 + 6  # created, the comment, a rejection per command kept and the rest
    assert len(str(letter)) < 20_000  # to tina, who is proven: the refusal in a few lines
    assert get_incident(engine, 1).incident.priority == "P2"


def test_a_forged_flood_of_commands_sends_no_transcript(desk, engine):
    mid = opened(desk)
    forged = make_mail(
        sender="Alice <alice@example.org>", subject="Re: " + "[CLOSE] " * 5000, in_reply_to=mid
    )
    desk.handle(forged)
    with Session(engine) as session:
        transcripts = session.scalars(select(db.Outbox.id).where(db.Outbox.kind == "transcript"))
        assert list(transcripts) == []
