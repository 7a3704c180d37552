"""The solver's desk end to end: mail in over IMAP, notices out over SMTP into real mailboxes,
read there and answered as a mail client answers (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from mailproc.desk.admin import actor_for, correct
from mailproc.desk.digest import send_digests
from mailproc.desk.escalations import Escalator
from mailproc.notify.outbox import Outbox
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail
from tests.support.world import mail_world, reply, text_of

ALICE = "Alice Novák <alice@example.org>"
TINA = "Tina Solver <tina@example.com>"
SECRET = "The relay's admin password is in the vault, row 3."


def test_a_solver_acts_from_the_team_notice_and_notes_never_reach_the_reporter(
    dovecot, smtp_server, database_url
):
    with mail_world(dovecot, smtp_server, database_url) as world:
        report = make_mail(sender=ALICE, subject="Outlook is disconnected", authenticated=False)
        assert world.turn(report) == "1 processed, 0 duplicate, 0 quarantined"
        team_notice = world.last("servicedesk@example.com", "New incident")
        number = get_incident(world.engine, 1).incident.number

        # the first answer from the list's notice: applied, and its text stays internal
        world.turn(reply(team_notice, TINA, "[ASSIGN]", SECRET), minutes=5)
        detail = get_incident(world.engine, number)
        assert (detail.incident.assignee, detail.incident.status) == ("tina", "Solution")
        assert [e.detail["text"] for e in detail.events if e.kind == "note"] == [SECRET]

        # a [NOTE] in answer to another notice (here her transcript) stays internal as well
        transcript = world.last("tina@example.com", "Commands applied")
        world.turn(reply(transcript, TINA, "[NOTE]", "Second thought: " + SECRET), minutes=5)
        assert SECRET in text_of(world.last("exchange-team@example.com", "Internal note"))

        # the reporter writes again and is answered publicly; the notes never reached her
        world.turn(
            reply(world.last("alice@example.org", "Assigned"), ALICE, "", "Any news?"), minutes=5
        )
        comment = world.last("tina@example.com", "New comment")
        world.turn(reply(comment, TINA, "", "Restart Outlook, please."), minutes=5)
        received = world.inbox("alice@example.org")
        assert any("Restart Outlook" in text_of(m) for m in received)
        assert not any(SECRET in text_of(m) or SECRET in m.as_string() for m in received)


def test_a_reports_png_and_log_reach_the_team_notice_attached(dovecot, smtp_server, database_url):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    log = b"09:00:01 relay.example.com: connection timed out\n" * 200
    files = [("screenshot.png", "image/png", png), ("outlook.log", "text/plain", log)]
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.turn(make_mail(sender=ALICE, subject="Outlook hangs", attachments=files))
        team_notice = world.last("servicedesk@example.com", "New incident")
        attached = {
            part.get_filename(): part.get_content() for part in team_notice.iter_attachments()
        }
        assert attached == {"screenshot.png": png, "outlook.log": log.decode()}
        (ack,) = world.inbox("alice@example.org")
        assert list(ack.iter_attachments()) == []


def test_wait_stops_the_clock_and_the_reporters_answer_from_her_mailbox_resumes_it(
    dovecot, smtp_server, database_url
):
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.turn(make_mail(sender=ALICE, subject="Printer offline", authenticated=False))
        team_notice = world.last("servicedesk@example.com", "New incident")
        world.turn(reply(team_notice, TINA, "[ASSIGN]", "Taking it."), minutes=10)
        transcript = world.last("tina@example.com", "Commands applied")
        world.turn(reply(transcript, TINA, "[WAIT]", "Which floor is the printer on?"), minutes=10)
        with Session(world.engine) as session:
            waiting = session.get(db.Incident, 1)
            assert (waiting.status, waiting.resolution_due) == ("Waiting", None)

        asked = world.last("alice@example.org", "Your answer is needed")
        assert "Which floor is the printer on?" in text_of(asked)
        world.turn(reply(asked, ALICE, "", "Floor 4, next to the kitchen."), days=1)
        with Session(world.engine) as session:
            resumed = session.get(db.Incident, 1)
            assert resumed.status == "Solution" and resumed.resolution_due is not None
        told = world.last("tina@example.com", "The reporter answered")
        assert "Floor 4, next to the kitchen." in text_of(told)


def test_a_merge_moves_the_thread_the_duplicates_reporter_answers_land_on_the_target(
    dovecot, smtp_server, database_url
):
    bob = "Bob <carol@example.org>"  # a second reporter with a mailbox here
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.turn(make_mail(sender=ALICE, subject="Outlook disconnected"))
        world.turn(make_mail(sender=bob, subject="Mail is broken"), minutes=5)
        duplicate_notice = world.last("servicedesk@example.com", "Mail is broken")
        world.turn(reply(duplicate_notice, TINA, "[PUBLIC] [MERGE INC-1]", "Same as INC-1."))

        told = world.last("carol@example.org", "Merged into INC-1")
        assert "the work goes on in INC-1" in " ".join(text_of(told).split())
        world.turn(reply(told, bob, "", "Still broken here."), minutes=5)
        detail = get_incident(world.engine, 1)
        assert (detail.events[-1].kind, detail.events[-1].detail["text"]) == (
            "comment",
            "Still broken here.",
        )
        assert get_incident(world.engine, 2).merged_into == 1


def test_the_digest_arrives_at_its_time_and_a_reply_to_it_asks_the_queue(
    dovecot, smtp_server, database_url
):
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.clock.now = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # a Friday
        world.turn(make_mail(sender=ALICE, subject="Outlook disconnected"))
        team_notice = world.last("servicedesk@example.com", "New incident")
        world.turn(reply(team_notice, TINA, "[ASSIGN]", "Mine."), minutes=5)
        outbox = Outbox(world.settings)
        world.clock.now = datetime(2026, 11, 23, 6, 58, tzinfo=UTC)  # Monday, 07:58 in Prague
        assert send_digests(world.settings, world.engine, world.clock, outbox) == 0
        world.clock.advance(minutes=2)
        assert send_digests(world.settings, world.engine, world.clock, outbox) >= 1
        world.send()
        digest = world.last("tina@example.com", "Your queue")
        assert "INC-1  Outlook disconnected" in text_of(digest)

        assert (
            world.turn(reply(digest, TINA, "[MINE]")) == "1 processed, 0 duplicate, 0 quarantined"
        )
        answered = world.last("tina@example.com", "Assigned to you")
        assert "INC-1  Outlook disconnected" in text_of(answered)


def test_an_escalation_storm_arrives_as_one_mail_whose_reply_acknowledges_each_incident(
    dovecot, smtp_server, database_url
):
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
        for n in range(6):  # around the clock, P3: response within 4 h
            world.write(make_mail(to="network-support@example.com", subject=f"Switch {n} down"))
        world.poll()
        world.send()
        world.clock.advance(hours=3, minutes=5)  # past 75 %: level 1, to the first line
        assert Escalator(world.settings, world.engine, world.clock).run() == 6
        world.send()
        late = [m for m in world.inbox("servicedesk@example.com") if "attention" in m["Subject"]]
        assert len(late) == 1  # one mail, not six
        (folded,) = late
        assert all(f"[ACK INC-{n}]" in text_of(folded) for n in range(1, 7))

        summary = world.turn(reply(folded, "Sam <sam@example.com>", "[ACK INC-1] [ACK INC-2]"))
        assert summary == "1 processed, 0 duplicate, 0 quarantined"
        kinds = [get_incident(world.engine, n).events[-1].kind for n in (1, 2, 3)]
        assert kinds == ["acknowledged", "acknowledged", "escalated"]
        assert "[ACK INC-1] acknowledged" in text_of(world.last("sam@example.com"))


def test_a_watcher_added_by_cc_and_an_administrators_correction_reach_real_mailboxes(
    dovecot, smtp_server, database_url
):
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.turn(make_mail(sender=ALICE, subject="VPN drops every hour"))
        team_notice = world.last("servicedesk@example.com", "New incident")
        world.turn(reply(team_notice, TINA, "[CC +not-an-address]"), minutes=5)
        refused = text_of(world.last("tina@example.com", "Commands refused"))
        assert "'+not-an-address' is not an address" in refused
        world.turn(reply(team_notice, TINA, "[ASSIGN] [CC +carol@example.org]"), minutes=5)
        assert world.inbox("carol@example.org") == []  # a watcher hears of what comes next

        # the administrator closes it from the command line, with a word for the reporter
        root = actor_for(world.settings, None, "root")
        world.clock.advance(minutes=5)
        done = correct(world.settings, world.engine, world.clock, 1, "[CLOSE]", root, "Fixed.")
        assert done.applied and not done.refused
        world.send()
        assert "Fixed." in text_of(world.last("alice@example.org", "Closed"))
        assert "Fixed." in text_of(world.last("carol@example.org"))
        closed = [e for e in get_incident(world.engine, 1).events if e.kind == "status"][-1]
        assert (closed.actor, closed.detail["to"]) == ("cli:root", "Closed")
