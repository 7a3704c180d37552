"""Automatic mail through the Desk (SQLite and PostgreSQL): kept, never answered, never an
incident; bounces of our notifications in the incident's history; undeliverable addresses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.cli.report import incident_detail
from mailproc.config.safety import BouncesConfig
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.safety import undeliverable
from mailproc.safety.views import automatic_mail
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.bounces import dsn, vacation_reply
from tests.support.mailfactory import make_mail, message_id_of

ALICE = "Alice Novák <alice@example.org>"
TINA = "Tina <tina@example.com>"


def outbox(engine) -> list[db.Outbox]:
    with Session(engine) as session:
        return list(session.scalars(select(db.Outbox).order_by(db.Outbox.id)))


def opened(desk: Desk, **kw) -> tuple[int, str]:
    raw = make_mail(sender=ALICE, **kw)
    outcome = desk.handle(raw)
    assert outcome.disposition is Disposition.PROCESSED
    return outcome.incident, message_id_of(raw)


def scored(engine, when=None) -> list[undeliverable.Mark]:
    """Every address with a bounce score, as `undeliverable list` shows them."""
    config = BouncesConfig()
    return undeliverable.listing(engine, when or datetime(2026, 11, 23, 9, tzinfo=UTC), config)


def to_alice(engine) -> db.Outbox:
    """The latest notice to alice."""
    return [r for r in outbox(engine) if r.recipient == "alice@example.org"][-1]


def ack_of(engine, recipient: str = "alice@example.org") -> db.Outbox:
    return next(
        r for r in outbox(engine) if r.kind == "acknowledgment" and r.recipient == recipient
    )


def test_an_auto_reply_to_our_acknowledgment_is_recorded_but_changes_and_sends_nothing(
    desk, engine, clock
):
    number, _ = opened(desk)
    before, updated = len(outbox(engine)), get_incident(engine, number).incident.updated_at
    clock.advance(minutes=5)
    ack = ack_of(engine)
    outcome = desk.handle(vacation_reply(ALICE, ack.message_id, ack.subject))
    assert outcome.disposition is Disposition.PROCESSED and outcome.automatic
    assert outcome.incident == number
    assert "recorded on INC-1, not answered" in outcome.summary
    assert len(outbox(engine)) == before  # no transcript, no comment notice, nothing
    detail = get_incident(engine, number)
    assert [e.kind for e in detail.events] == ["created", "automatic_mail"]
    assert detail.events[-1].detail["kind"] == "autoreply"
    assert detail.incident.updated_at == updated  # nor does it keep an incident alive
    (kept,) = automatic_mail(engine)
    assert (kept.kind, kept.incident, kept.sender) == ("autoreply", number, "alice@example.org")


def test_automatic_mail_opens_no_incident_and_its_commands_are_never_applied(desk, engine):
    number, mid = opened(desk)
    desk.handle(make_mail(sender=TINA, subject="Re: [CLOSE]", in_reply_to=mid))
    assert get_incident(engine, number).incident.status == "Closed"
    # The reporter's vacation responder echoes a subject with a command in it
    echo = vacation_reply(ALICE, mid, f"Re: [INC-{number}] [REOPEN]")
    outcome = desk.handle(echo)
    assert outcome.automatic and get_incident(engine, number).incident.status == "Closed"
    bulk = make_mail(sender="news@lists.example.org", headers={"List-Id": "<news.example.org>"})
    listed = desk.handle(bulk)
    assert listed.automatic and listed.incident is None and "kept, not answered" in listed.summary
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(db.Incident)) == 1
        kinds = set(session.scalars(select(db.Message.outcome)))
    assert kinds == {"processed", "automatic"}
    assert [m.kind for m in automatic_mail(engine)] == ["bulk", "autoreply"]
    assert [m.kind for m in automatic_mail(engine, kind="bulk")] == ["bulk"]


def test_one_bounce_scores_the_address_but_only_repeated_ones_suspend_it(desk, engine, clock):
    number, mid = opened(desk)
    ack = ack_of(engine)
    outcome = desk.handle(dsn(ack.message_id, "alice@example.org"))
    assert outcome.automatic and outcome.incident == number
    assert "bounce of our acknowledgment recorded on INC-1" in outcome.summary
    assert "permanent, bounce score 1.0 of 3" in outcome.summary
    bounced = get_incident(engine, number).events[-1]
    assert bounced.kind == "bounced" and bounced.actor == "mailer-daemon@mx.example.org"
    assert bounced.detail == {
        "recipient": "alice@example.org",
        "status": "5.1.1",
        "action": "failed",
        "diagnostic": "smtp; 550 5.1.1 <alice@example.org>: Recipient address rejected: "
        "User unknown",
        "notice": "acknowledgment",
        "permanent": True,
        "score": 1.0,
    }
    (mark,) = scored(engine)
    assert (mark.address, mark.status, mark.incident) == ("alice@example.org", "5.1.1", number)
    assert (mark.score, mark.suspended_at) == (1.0, None)
    # one hard bounce (a mailbox full for an hour, say) stops nothing
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN tina]", in_reply_to=mid))
    assert to_alice(engine).status == "pending"
    # a burst of bounces within a day counts once; bounces on four days in a row (the score
    # halves in a week) suspend her
    desk.handle(dsn(to_alice(engine).message_id, "alice@example.org"))
    assert scored(engine)[0].score == 1.0
    for _day in range(3):
        clock.advance(days=1)
        desk.handle(dsn(ack.message_id, "alice@example.org", status="5.2.2"))
    (mark,) = scored(engine, clock.now)
    assert mark.score >= 3 and mark.suspended_at == clock.now
    assert mark.probe_at == clock.now + timedelta(days=7)
    desk.handle(make_mail(sender=TINA, subject="Re: [PRIORITY P1]", in_reply_to=mid))
    row = to_alice(engine)
    assert row.status == "suppressed"
    assert row.error.startswith("address undeliverable since 2026-11-26 09:00: 5.2.2")
    text = incident_detail(get_incident(engine, number))
    assert f"{row.kind} → alice@example.org: suppressed: address undeliverable" in text
    assert "acknowledgment to alice@example.org bounced: 5.1.1" in text
    # a week later the next notice goes out as a probe
    clock.advance(days=7)
    desk.handle(make_mail(sender=TINA, subject="Re: [PRIORITY P2]", in_reply_to=mid))
    assert to_alice(engine).status == "pending"
    # ... whose bounce suspends her again at once, though the score has faded
    desk.handle(dsn(to_alice(engine).message_id, "alice@example.org"))
    (mark,) = scored(engine, clock.now)
    assert mark.score < 3 and mark.suspended_at == clock.now
    # once the administrator clears it, mail goes to her again
    assert undeliverable.clear(engine, "Alice@Example.org") and scored(engine) == []
    assert not undeliverable.clear(engine, "alice@example.org")
    desk.handle(make_mail(sender=TINA, subject="Re: [CLOSE]", in_reply_to=mid))
    assert to_alice(engine).status == "pending"


def test_a_temporary_bounce_adds_less_to_the_score(desk, engine):
    number, _ = opened(desk)
    ack = ack_of(engine)
    outcome = desk.handle(dsn(ack.message_id, "alice@example.org", "4.2.2", "delayed"))
    assert outcome.incident == number
    event = get_incident(engine, number).events[-1]
    assert (event.kind, event.detail["permanent"], event.detail["status"]) == (
        "bounced",
        False,
        "4.2.2",
    )
    ((address, score, suspended),) = [(m.address, m.score, m.suspended_at) for m in scored(engine)]
    assert (address, score, suspended) == ("alice@example.org", 0.5, None)


def test_a_bounce_with_only_the_returned_headers_is_understood(desk, engine):
    number, _ = opened(desk)
    ack = ack_of(engine)
    raw = dsn(ack.message_id, "alice@example.org", headers_only=True)
    assert desk.handle(raw).incident == number
    assert [m.address for m in scored(engine)] == ["alice@example.org"]


def test_a_bounce_marks_only_the_address_our_mail_went_to_and_must_name_our_mail(desk, engine):
    number, _ = opened(desk)
    ack = ack_of(engine)
    # a forwarding address failed further on: the address we wrote to is the dead one
    other = desk.handle(dsn(ack.message_id, "alice@old-employer.example"))
    assert other.incident == number
    assert [m.address for m in scored(engine)] == ["alice@example.org"]
    undeliverable.clear(engine, "alice@example.org")
    # a bounce naming no mail of ours, or a made-up id in our shape, marks nobody
    made_up = ack.message_id.replace("mp1.1.", "mp1.2.", 1)
    for returned in ("whatever@example.net", made_up):
        outcome = desk.handle(dsn(returned, "alice@example.org"))
        assert outcome.automatic and outcome.incident is None
    assert scored(engine) == []
    events = [e.kind for e in get_incident(engine, number).events]
    assert events == ["created", "bounced"]  # nothing for the bounces not tied to our mail


def test_a_bounce_of_a_mail_no_longer_in_the_outbox_is_tied_by_its_signature(
    desk, engine, settings
):
    number, _ = opened(desk)
    ack = ack_of(engine)
    with Session(engine) as session, session.begin():
        session.execute(db.Outbox.__table__.delete())
    raw = dsn(ack.message_id, "alice@example.org")
    assert desk.handle(raw).incident == number
    assert [m.address for m in scored(engine)] == ["alice@example.org"]
    # the signature carries a keyed tag of the recipient: another address is not marked
    with Session(engine) as session, session.begin():
        session.execute(db.Undeliverable.__table__.delete())
    desk.handle(dsn(ack.message_id, "tina@example.com"))
    assert scored(engine) == []


def test_a_bounce_of_a_desk_letter_counts_in_the_score_without_an_incident(desk, engine):
    """An answer to a query, a digest or folded escalations belong to no incident: their
    bounces still count against the address, or a dead solver mailbox would get them forever."""
    desk.handle(make_mail(sender=TINA, subject="[MINE]", authenticated=True))
    letter = next(r for r in outbox(engine) if r.kind == "answer")
    assert letter.incident_id is None
    outcome = desk.handle(dsn(letter.message_id, "tina@example.com"))
    assert outcome.automatic and outcome.incident is None
    assert "bounce of our answer recorded (no incident)" in outcome.summary
    ((address, score, incident),) = [(m.address, m.score, m.incident) for m in scored(engine)]
    assert (address, score, incident) == ("tina@example.com", 1.0, None)
