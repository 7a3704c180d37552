"""The solver's desk end to end: mail in over IMAP, notices out over SMTP into real mailboxes,
read there and answered as a mail client answers (SQLite and PostgreSQL)."""

from __future__ import annotations

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
        world.write(make_mail(sender=ALICE, subject="Outlook is disconnected", authenticated=False))
        assert world.poll() == "1 processed, 0 duplicate, 0 quarantined"
        world.send()
        team_notice = world.last("servicedesk@example.com", "New incident")
        number = get_incident(world.engine, 1).incident.number

        # the first answer from the list's notice: applied, and its text stays internal
        world.write(reply(team_notice, TINA, "[ASSIGN]", SECRET))
        world.clock.advance(minutes=5)
        world.poll()
        detail = get_incident(world.engine, number)
        assert (detail.incident.assignee, detail.incident.status) == ("tina", "Solution")
        assert [e.detail["text"] for e in detail.events if e.kind == "note"] == [SECRET]
        world.send()

        # a [NOTE] in answer to another notice (here her transcript) stays internal as well
        transcript = world.last("tina@example.com", "Commands applied")
        world.write(reply(transcript, TINA, "[NOTE]", "Second thought: " + SECRET))
        world.clock.advance(minutes=5)
        world.poll()
        world.send()
        assert SECRET in text_of(world.last("exchange-team@example.com", "Internal note"))

        # the reporter writes again and is answered publicly; the notes never reached her
        world.write(reply(world.last("alice@example.org", "Assigned"), ALICE, "", "Any news?"))
        world.clock.advance(minutes=5)
        world.poll()
        world.send()
        comment = world.last("tina@example.com", "New comment")
        world.write(reply(comment, TINA, "", "Restart Outlook, please."))
        world.clock.advance(minutes=5)
        world.poll()
        world.send()
        received = world.inbox("alice@example.org")
        assert any("Restart Outlook" in text_of(m) for m in received)
        assert not any(SECRET in text_of(m) or SECRET in m.as_string() for m in received)


def test_a_reports_png_and_log_reach_the_team_notice_attached(dovecot, smtp_server, database_url):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    log = b"09:00:01 relay.example.com: connection timed out\n" * 200
    files = [("screenshot.png", "image/png", png), ("outlook.log", "text/plain", log)]
    with mail_world(dovecot, smtp_server, database_url) as world:
        world.write(make_mail(sender=ALICE, subject="Outlook hangs", attachments=files))
        world.poll()
        world.send()
        team_notice = world.last("servicedesk@example.com", "New incident")
        attached = {
            part.get_filename(): part.get_content() for part in team_notice.iter_attachments()
        }
        assert attached == {"screenshot.png": png, "outlook.log": log.decode()}
        (ack,) = world.inbox("alice@example.org")
        assert list(ack.iter_attachments()) == []
