"""Every event's notification, through the Desk, the outbox and a real SMTP server.

SQLite and PostgreSQL; the aiosmtpd capture is what a mail server would have received.
"""

from __future__ import annotations

import logging
import shutil

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from mailproc.config.settings import SmtpConfig, settings_from_dict
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.desk.problems import add_problem, update_problem
from mailproc.notify.sender import send_pending
from mailproc.notify.templates import folder_of
from mailproc.signing import vouches
from mailproc.store import db
from mailproc.store.queries import get_incident
from mailproc.vocabulary import ProblemStatus
from tests.support.mailfactory import make_mail, message_id_of

ALICE = "Alice Novák <alice@example.org>"
TINA = "Tina Solver <tina@example.com>"
SAM = "Sam <sam@example.com>"
NORA = "Nora <nora@example.com>"


class Mailer:
    """Flushes the outbox to the capture and hands back what arrived since the last flush."""

    def __init__(self, settings, engine, clock, capture):
        smtp = SmtpConfig(host=capture.host, port=capture.port, security="none")
        self.settings = settings.model_copy(update={"smtp": smtp})
        self.engine, self.clock, self.capture, self.seen = engine, clock, capture, 0

    def flush(self):
        send_pending(self.settings, self.engine, self.clock)
        new = self.capture.messages[self.seen :]
        self.seen += len(new)
        return {(m.rcpt_tos[0], _kind(m)): m for m in new}


def _kind(captured) -> str:
    subject = captured.subject or ""
    words = subject.split("]", 1)[1].split(":", 1)[0].strip()
    return words


@pytest.fixture
def mailer(settings, engine, clock, smtp_server) -> Mailer:
    return Mailer(settings, engine, clock, smtp_server)


def opened(desk: Desk, **kw) -> tuple[int, str]:
    raw = make_mail(sender=ALICE, **kw)
    outcome = desk.handle(raw)
    assert outcome.disposition is Disposition.PROCESSED
    return outcome.incident, message_id_of(raw)


def reply(desk: Desk, sender: str, subject: str, body: str = "", **kw):
    """A genuine reply: its sender proven (by default) as our mail server vouches for it."""
    kw.setdefault("authenticated", True)
    return desk.handle(make_mail(sender=sender, subject=subject, body=body, **kw))


def text_of(captured) -> str:
    msg = captured.message
    part = msg.get_body(("plain",)) if msg.is_multipart() else msg
    return part.get_content()


def test_a_new_incident_acknowledges_the_reporter_and_alerts_the_first_line(desk, mailer):
    _number, original = opened(desk, subject="Exchange is down")
    sent = mailer.flush()
    assert set(sent) == {
        ("alice@example.org", "We received your report"),
        ("servicedesk@example.com", "New incident in E-mail (Exchange)"),
    }
    ack = sent["alice@example.org", "We received your report"]
    msg = ack.message
    assert msg["Subject"] == "[INC-1] We received your report: Exchange is down"
    assert msg["In-Reply-To"] == f"<{original}>" and msg["References"] == f"<{original}>"
    assert msg["Auto-Submitted"] == "auto-replied"
    local, _, domain = msg["Reply-To"].rpartition("@")
    assert domain == "example.com" and local.startswith("mail-support+INC-1.")
    key = desk.settings.signing_key
    assert vouches([key], [msg["Reply-To"]], 1, "alice@example.org")
    assert not vouches([key], [msg["Reply-To"]], 1, "mallory@example.net")
    assert msg["From"] == "Service desk <mail-support@example.com>"
    assert msg["X-Mailproc-Loop"] == "mail-support@example.com"
    assert ack.mail_from == "mail-support@example.com"
    assert "recorded it as INC-1" in text_of(ack) and "reply to this mail" in text_of(ack)
    alert = sent["servicedesk@example.com", "New incident in E-mail (Exchange)"].message
    assert alert["Auto-Submitted"] == "auto-generated"
    assert "Nobody can send mail since 9:00." in alert.get_content()
    assert "Set its priority with [PRIORITY P1..P4]" in " ".join(alert.get_content().split())


def test_the_acknowledgment_is_multipart_with_an_html_part(desk, mailer):
    opened(desk, subject="<b>Exchange</b> & mail down")
    ack = mailer.flush()["alice@example.org", "We received your report"].message
    assert ack.get_content_type() == "multipart/alternative"
    html = ack.get_body(("html",)).get_content()
    assert "&lt;b&gt;Exchange&lt;/b&gt; &amp; mail down" in html
    assert "<b>Exchange</b> & mail down" in ack.get_body(("plain",)).get_content()


def test_the_acknowledgment_offers_up_to_three_matching_known_errors(desk, engine, mailer, clock):
    now = clock()
    for title, symptoms, workaround, status in [
        ("Exchange certificate expired", "Outlook says disconnected", "Renew it", "open"),
        ("Exchange queue stuck", "mail cannot be sent", "Restart transport", "known_error"),
        ("Outlook profile broken", "Outlook disconnected from Exchange", "New profile", "open"),
        ("Exchange disk full", "mail stops", "Free disk space", "open"),
        ("Exchange outage of 2025", "Outlook disconnected", "Old news", "resolved"),
        ("Exchange migration", "Outlook disconnected", "", "open"),
        ("Printer jam", "paper stuck in tray", "Open tray B", "open"),
    ]:
        add_problem(engine, now, title, symptoms, workaround, ProblemStatus(status))
    opened(desk, subject="Exchange: Outlook disconnected", body="Outlook cannot send mail.")
    text = text_of(mailer.flush()["alice@example.org", "We received your report"])
    offered = {n for n in range(1, 8) if f"PRB-{n}:" in text}
    assert len(offered) == 3 and offered <= {1, 2, 3, 4}
    assert "Renew it" in text or "Restart transport" in text


def test_a_monitoring_systems_mail_opens_an_incident_but_gets_no_acknowledgment(
    settings, engine, clock, mailer
):
    security = settings.security.model_copy(update={"accept_automatic_from": ("nagios@x.org",)})
    desk = Desk(settings.model_copy(update={"security": security}), engine, clock)
    generated = {"Auto-Submitted": "auto-generated"}
    raw = make_mail(sender="nagios@x.org", headers=generated, subject="DB down")
    assert desk.handle(raw).incident == 1
    assert set(mailer.flush()) == {("servicedesk@example.com", "New incident in E-mail (Exchange)")}
    assert desk.handle(make_mail(headers=generated, subject="DB down")).incident is None
    opened(desk, headers={"X-Auto-Response-Suppress": "All"}, to="support@example.com")
    assert set(mailer.flush()) == {
        ("servicedesk@example.com", "New incident in General IT support")
    }


def test_assignment_tells_the_solver_what_to_do_and_the_reporter_who(desk, mailer):
    _number, mid = opened(desk)
    mailer.flush()
    reply(desk, NORA, "Re: [ASSIGN tina]", in_reply_to=mid)
    sent = mailer.flush()
    assert set(sent) == {
        ("tina@example.com", "Assigned to tina"),
        ("alice@example.org", "Assigned to tina"),
        ("nora@example.com", "Commands applied"),
    }
    solver = " ".join(text_of(sent["tina@example.com", "Assigned to tina"]).split())
    assert "Restore normal service as fast as possible" in solver
    assert "[RELATE PRB-n]" in solver and "[CLOSE]" in solver
    reporter = text_of(sent["alice@example.org", "Assigned to tina"])
    assert "tina is now working on your incident INC-1" in reporter
    assert "[ASSIGN tina]  applied" in text_of(sent["nora@example.com", "Commands applied"])


def test_a_comment_goes_to_the_other_side_and_the_watchers(desk, mailer):
    _number, mid = opened(desk, cc="Bob <bob@example.org>")
    reply(desk, TINA, "Re: [ASSIGN]", in_reply_to=mid)
    mailer.flush()
    reply(desk, ALICE, "Re: it is still down", "Since an hour.", in_reply_to=mid)
    assert set(mailer.flush()) == {
        ("tina@example.com", "New comment"),
        ("bob@example.org", "New comment"),
    }
    reply(desk, TINA, "Re: x", "Try again now.", in_reply_to=mid)
    sent = mailer.flush()
    assert set(sent) == {("alice@example.org", "New comment"), ("bob@example.org", "New comment")}
    assert "Try again now." in text_of(sent["alice@example.org", "New comment"])


def test_a_move_tells_the_new_team_and_a_priority_change_the_solver(desk, mailer):
    _number, mid = opened(desk)
    reply(desk, TINA, "Re: [ASSIGN]", in_reply_to=mid)
    mailer.flush()
    reply(desk, NORA, "Re: [PRIORITY P1]", in_reply_to=mid)
    assert ("tina@example.com", "Priority P2 → P1") in mailer.flush()
    reply(desk, NORA, "Re: [MOVE network]", in_reply_to=mid)
    sent = mailer.flush()
    assert ("network-team@example.com", "Moved to Network") in sent
    assert "moved from service email to Network" in text_of(
        sent["network-team@example.com", "Moved to Network"]
    )


def test_relating_a_problem_sends_the_reporter_its_workaround(desk, engine, mailer, clock):
    add_problem(engine, clock(), "Certificate expired", workaround="Use webmail meanwhile.")
    _number, mid = opened(desk)
    mailer.flush()
    reply(desk, TINA, "Re: [RELATE PRB-1]", in_reply_to=mid)
    sent = mailer.flush()
    related = text_of(sent["alice@example.org", "Known problem PRB-1"])
    assert "PRB-1: Certificate expired" in related and "Use webmail meanwhile." in related


def test_resolved_closed_and_reopened_tell_reporter_and_solver(desk, mailer, clock):
    _number, mid = opened(desk, to="network-support@example.com")
    reply(desk, SAM, "Re: [ASSIGN]", in_reply_to=mid)
    mailer.flush()
    reply(desk, SAM, "Re: [RESOLVE]", "Rebooted the switch.", in_reply_to=mid)
    sent = mailer.flush()
    assert ("alice@example.org", "Resolved") in sent
    assert "Rebooted the switch." in text_of(sent["alice@example.org", "Resolved"])
    reply(desk, ALICE, "Re: no, still broken", "Still no network.", in_reply_to=mid)
    assert set(mailer.flush()) == {("sam@example.com", "Reopened")}
    reply(desk, SAM, "Re: [CLOSE]", in_reply_to=mid)
    assert ("alice@example.org", "Closed") in mailer.flush()


def test_closing_by_timeout_tells_the_reporter(desk, mailer, clock):
    number, mid = opened(desk, to="network-support@example.com")
    reply(desk, SAM, "Re: [RESOLVE]", in_reply_to=mid)
    mailer.flush()
    clock.advance(days=6)
    assert desk.close_timed_out() == [number]
    sent = mailer.flush()
    assert set(sent) == {("alice@example.org", "Closed")}
    assert sent["alice@example.org", "Closed"].message["Auto-Submitted"] == "auto-generated"


def test_a_refusal_always_gets_a_transcript_with_the_right_syntax(settings, engine, clock, mailer):
    quiet = settings.model_copy(
        update={
            "notifications": settings.notifications.model_copy(
                update={"transcript_on_success": False}
            )
        }
    )
    desk = Desk(quiet, engine, clock)
    _number, mid = opened(desk)
    mailer.flush()
    reply(desk, TINA, "Re: [PRIORITY P1]", in_reply_to=mid)
    assert ("tina@example.com", "Commands applied") not in mailer.flush()
    reply(desk, TINA, "Re: [PRIORITY P2] [MOVE netwrk]", in_reply_to=mid)
    text = text_of(mailer.flush()["tina@example.com", "Commands refused"])
    assert "[MOVE netwrk]  refused: unknown service 'netwrk' — did you mean 'network'?" in text
    assert "syntax: [MOVE service]" in text
    assert "[PRIORITY P2]  refused: not applied, because another command" in text
    assert "as one was refused, nothing was changed" in text


def test_strangers_get_no_transcript(desk, mailer):
    _number, mid = opened(desk)
    mailer.flush()
    outcome = reply(desk, "Mallory <mallory@example.net>", "Re: [CLOSE]", in_reply_to=mid)
    assert "refused" in outcome.summary
    # only the desk hears of it: an internal note to the service's team (nobody is assigned)
    assert set(mailer.flush()) == {("exchange-team@example.com", "Kept aside")}


def test_the_sla_clock_can_queue_an_escalation_to_the_team(desk, engine, mailer, clock):
    number, _ = opened(desk)
    mailer.flush()
    with Session(engine) as session, session.begin():
        queued = desk.outbox.queue_escalation(
            session, number, clock(), reason="resolution due in 30 minutes", level=2
        )
    assert [recipient for recipient, _ in queued] == ["exchange-team@example.com"]
    sent = mailer.flush()
    escalation = sent["exchange-team@example.com", "Escalation (level 2)"]
    assert "INC-1 needs attention: resolution due in 30 minutes" in text_of(escalation)
    with Session(engine) as session, session.begin():
        desk.outbox.queue_escalation(
            session,
            number,
            clock(),
            reason="breached",
            level=3,
            recipients=["servicedesk@example.com", "duty-manager@example.com"],
        )
    assert set(mailer.flush()) == {
        ("servicedesk@example.com", "Escalation (level 3)"),
        ("duty-manager@example.com", "Escalation (level 3)"),
    }


def test_resolving_a_problem_tells_the_reporters_of_its_open_incidents(desk, engine, mailer, clock):
    add_problem(engine, clock(), "Certificate expired", workaround="webmail")
    first, mid1 = opened(desk, subject="mail down")
    _second, mid2 = opened(desk, subject="again")
    for mid in (mid1, mid2):
        reply(desk, TINA, "Re: [RELATE PRB-1]", in_reply_to=mid)
    reply(desk, TINA, "Re: [ASSIGN] [CLOSE]", in_reply_to=mid2)
    mailer.flush()
    update_problem(engine, 1, clock(), status=ProblemStatus.RESOLVED, outbox=desk.outbox)
    sent = mailer.flush()
    assert set(sent) == {("alice@example.org", "Fixed")}
    assert sent["alice@example.org", "Fixed"].subject.startswith(f"[INC-{first}] Fixed")
    update_problem(engine, 1, clock(), status=ProblemStatus.RESOLVED, outbox=desk.outbox)
    assert mailer.flush() == {}


def test_recipients_follow_the_configuration_per_event_and_service(settings, engine, clock, mailer):
    data = settings.model_dump(exclude={"source"})
    data["services"]["email"]["notify"] = {"new_incident": [], "acknowledgment": ["reporter"]}
    data["notifications"]["recipients"] = {"new_incident": ["team", "boss@example.org"]}
    desk = Desk(settings_from_dict(data, "test", {"MAILPROC_SECRET": "t"}), engine, clock)
    opened(desk)
    assert set(mailer.flush()) == {("alice@example.org", "We received your report")}
    opened(desk, to="network-support@example.com")
    assert set(mailer.flush()) == {
        ("alice@example.org", "We received your report"),
        ("network-team@example.com", "New incident in Network"),
        ("boss@example.org", "New incident in Network"),
    }


def test_a_service_template_folder_overrides_the_default(settings, engine, clock, mailer, tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(folder_of(settings), folder)
    override = folder / "services" / "network" / "acknowledgment"
    override.mkdir(parents=True)
    (override / "subject.txt").write_text("Network desk: {{ incident.title }}")
    (override / "body.txt").write_text("The network team has {{ incident.ref }}.\n")
    notifications = settings.notifications.model_copy(update={"templates": folder})
    desk = Desk(settings.model_copy(update={"notifications": notifications}), engine, clock)
    opened(desk, to="network-support@example.com", subject="switch dead")
    opened(desk, subject="mail dead")
    mailer.flush()
    by_subject = {m.subject: m for m in mailer.capture.messages}
    network = by_subject["[INC-1] Network desk: switch dead"].message
    assert network.get_content_type() == "text/plain"
    assert network.get_content().strip() == "The network team has INC-1."
    assert "[INC-2] We received your report: mail dead" in by_subject


def test_a_broken_template_fails_its_notice_not_the_mail(settings, engine, clock, tmp_path):
    folder = tmp_path / "templates"
    shutil.copytree(folder_of(settings), folder)
    (folder / "acknowledgment" / "body.txt").write_text("Hi\n{{ ''.__class__.__mro__ }}\n")
    notifications = settings.notifications.model_copy(update={"templates": folder})
    desk = Desk(settings.model_copy(update={"notifications": notifications}), engine, clock)
    number, _ = opened(desk)
    detail = get_incident(engine, number)
    fates = {(n.kind, n.status) for n in detail.notifications}
    assert fates == {("acknowledgment", "failed"), ("new_incident", "pending")}
    failed = next(n for n in detail.notifications if n.status == "failed")
    assert failed.error.startswith(f"{folder / 'acknowledgment' / 'body.txt'}:2: SecurityError")


def test_notices_are_written_in_the_transaction_of_the_change(desk, engine, monkeypatch):
    def crash(*args):
        raise RuntimeError("crash after the notices were queued")

    monkeypatch.setattr("mailproc.desk.writes.Writes.remember", crash)
    outcome = desk.handle(make_mail())
    assert outcome.disposition is Disposition.QUARANTINED
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(db.Outbox)) == 0
        assert session.scalar(select(func.count()).select_from(db.Incident)) == 0


# --- threading ------------------------------------------------------------------------------


def test_a_reply_to_a_notification_threads_even_with_the_tag_edited_away(desk, engine, mailer):
    number, _ = opened(desk)
    ack = mailer.flush()["alice@example.org", "We received your report"].message
    ack_id = ack["Message-ID"].strip("<>")
    outcome = reply(desk, ALICE, "Re: my report", "More details.", in_reply_to=ack_id)
    assert outcome.summary == f"comment on INC-{number}"


def test_notices_to_one_person_form_one_thread(desk, mailer):
    _number, original = opened(desk)
    ack = mailer.flush()["alice@example.org", "We received your report"].message
    reply(desk, TINA, "Re: [ASSIGN]", "On it.", in_reply_to=original)
    assigned = mailer.flush()["alice@example.org", "Assigned to tina"].message
    assert assigned["In-Reply-To"] == ack["Message-ID"]
    refs = assigned["References"].split()
    assert refs[:2] == [f"<{original}>", ack["Message-ID"]]


def test_a_signed_reference_threads_without_the_table(desk, engine, mailer):
    number, _ = opened(desk)
    ack_id = mailer.flush()["alice@example.org", "We received your report"].message["Message-ID"]
    with Session(engine) as session, session.begin():
        session.execute(delete(db.ThreadRef).where(db.ThreadRef.message_id == ack_id.strip("<>")))
    outcome = reply(desk, ALICE, "Re: hello", "More.", references=[ack_id.strip("<>")])
    assert outcome.summary == f"comment on INC-{number}"


def test_a_forged_reference_does_not_thread_and_is_logged(desk, mailer, caplog):
    opened(desk)
    forged = "mp1.1.aaaaaaaa.bbbbbbbb.cccccccccccccccc@example.com"
    with caplog.at_level(logging.WARNING, logger="mailproc.desk.mail"):
        outcome = reply(desk, "Mallory <mallory@example.net>", "Re: hi", "x", in_reply_to=forged)
    assert outcome.summary == "created INC-2 in email"
    assert "claims INC-1 but its signature is not ours" in caplog.text


def test_injection_attempts_in_a_mail_reach_no_header(desk, mailer):
    """Encoded words can carry CR LF, U+2028 and NEL into a decoded header."""
    raw = (
        b"From: =?utf-8?q?Eve=0D=0A=E2=80=A8Bcc=3A_x=C2=85To=3A_y?= <alice@example.org>\r\n"
        b"To: mail-support@example.com\r\n"
        b"Subject: =?utf-8?q?Help=0D=0ABcc=3A_evil=40example=2Enet=E2=80=A8To=3A_evil=40"
        b"example=2Enet=C2=85Cc=3A_evil=40example=2Enet?= [PRIORITY P1]\r\n"
        b"Message-ID: <injection@test.example>\r\n\r\nHelp.\r\n"
    )
    assert desk.handle(raw).disposition is Disposition.PROCESSED
    sent = mailer.flush()
    assert {rcpt for rcpt, _ in sent} == {"alice@example.org", "servicedesk@example.com"}
    for captured in sent.values():
        msg = captured.message
        assert len(captured.rcpt_tos) == 1 and msg.get_all("Bcc") is None
        assert len(msg.get_all("To")) == 1 and "evil" not in msg["To"].addresses[0].addr_spec
