"""Internal notes and acting from the team notice (SQLite and PostgreSQL).

A note is seen by the solvers, the teams and the admins, never by the reporter or outside
watchers, whatever a template prints; a solver's answer to a team notice is a note unless it
says [PUBLIC], and a solver of the service may act from the team notice with its token.
"""

from __future__ import annotations

import json
import shutil
from io import StringIO

from mailproc.config.settings import NotificationsConfig
from mailproc.desk.mail import Desk
from mailproc.notify.templates import folder_of
from mailproc.store.export import write_jsonl
from mailproc.store.queries import get_incident
from mailproc.vocabulary import NoticeKind
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.notices import answer, letters_to, notice_to

ALICE = "Alice <alice@example.org>"
TINA = "Tina <tina@example.com>"
SECRET = "the relay password is in the vault"


def opened(desk: Desk, **kw) -> tuple[int, str]:
    raw = make_mail(sender=ALICE, **kw)
    return desk.handle(raw).incident, message_id_of(raw)


def test_a_solvers_first_assign_from_the_team_notice_is_applied(desk, engine):
    number, _ = opened(desk)
    team_notice = notice_to(engine, "servicedesk@example.com", "new_incident")
    reply = answer(team_notice, TINA, f"Re: [INC-{number}] Exchange is down [ASSIGN]")
    outcome = desk.handle(reply)  # no DKIM: the list's token is the proof
    assert "applied [ASSIGN]" in outcome.summary
    detail = get_incident(engine, number)
    assert (detail.incident.assignee, detail.incident.status) == ("tina", "Solution")


def test_the_team_token_proves_nothing_for_someone_who_does_not_solve_the_service(desk, engine):
    number, _ = opened(desk, to="network-support@example.com")  # tina does not solve network
    team_notice = notice_to(engine, "servicedesk@example.com", "new_incident")
    for sender in (TINA, "Bob <bob@example.com>"):
        desk.handle(answer(team_notice, sender, f"Re: [INC-{number}] [ASSIGN sam]"))
    assert get_incident(engine, number).incident.assignee is None


def test_a_solvers_answer_to_the_team_notice_is_a_note_unless_it_says_public(desk, engine):
    number, _ = opened(desk)
    team_notice = notice_to(engine, "servicedesk@example.com", "new_incident")
    desk.handle(answer(team_notice, TINA, f"Re: [INC-{number}] Exchange", body=SECRET))
    desk.handle(answer(team_notice, TINA, f"Re: [INC-{number}] [PUBLIC]", body="On it."))
    kinds = [(e.kind, e.detail.get("text")) for e in get_incident(engine, number).events]
    assert kinds[-2:] == [("note", SECRET), ("comment", "On it.")]
    texts = [mail.text for mail in letters_to(engine, "alice@example.org")]
    assert any("On it." in text for text in texts)
    assert not any(SECRET in text for text in texts)


def test_a_note_on_a_new_report_is_refused_and_nothing_else_of_it_applied(desk, engine):
    raw = make_mail(sender=TINA, subject="[NOTE] [PRIORITY P1] Printer jam")
    outcome = desk.handle(raw)
    assert "refused [NOTE] ([NOTE] makes a reply to an incident internal" in outcome.summary
    assert get_incident(engine, outcome.incident).incident.priority == "P2"


def dumping_templates(tmp_path, settings):
    """Templates that print everything they are given: history texts, comment, note, changes.
    What reaches a recipient is then exactly what the context lets through."""
    folder = tmp_path / "templates"
    shutil.copytree(folder_of(settings), folder)
    dump = (
        "{% for e in history %}{{ e.kind }}: {{ e.text }} / {{ e.summary }}\n{% endfor %}"
        "comment={{ comment }} note={{ note }} changes={{ changes | join('; ') }}\n"
    )
    for kind in NoticeKind:
        (folder / kind.value / "body.txt").write_text(dump)
    return folder


def test_a_note_never_reaches_the_reporter_whatever_the_templates_print(
    settings, engine, clock, tmp_path
):
    recipients = {
        NoticeKind.REOPENED: ("assignee", "reporter"),
        NoticeKind.NOTE: ("assignee", "team", "watchers", "reporter"),  # refused for notes
    }
    notifications = NotificationsConfig(
        templates=dumping_templates(tmp_path, settings), recipients=recipients
    )
    desk = Desk(settings.model_copy(update={"notifications": notifications}), engine, clock)
    number, first = opened(desk, cc="Carol <carol@example.org>")  # carol: an outside watcher
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [ASSIGN]", in_reply_to=first))
    clock.advance(minutes=5)
    note = make_mail(sender=TINA, subject=f"Re: [INC-{number}] [NOTE]", body=SECRET)
    assert desk.handle(note).summary == f"internal note on INC-{number}"
    clock.advance(minutes=5)
    close = make_mail(sender=TINA, subject=f"Re: [INC-{number}] [CLOSE]", body="Restored.")
    desk.handle(close)
    clock.advance(minutes=5)
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [REOPEN]"))
    clock.advance(minutes=5)
    closing = answer(notice_to(engine, "alice@example.org"), ALICE, f"Re: [INC-{number}] [CLOSE]")
    assert "applied [CLOSE]" in desk.handle(closing).summary  # answered by a transcript

    team = letters_to(engine, "exchange-team@example.com")
    assert any(SECRET in m.text for m in team)  # the team reads the note
    for outsider in ("alice@example.org", "carol@example.org"):
        letters = letters_to(engine, outsider)
        assert letters, outsider
        assert not any(SECRET in m.text or "internal note" in m.text for m in letters)
    subjects = " ".join(m.subject for m in letters_to(engine, "alice@example.org"))
    for kind in ("received", "Assigned", "Closed", "Reopened", "Commands applied"):
        assert kind in subjects


def test_notes_are_marked_internal_in_the_history_and_left_out_of_a_public_export(desk, engine):
    number, _ = opened(desk)
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [NOTE]", body=SECRET))
    event = get_incident(engine, number).events[-1]
    assert (event.kind, event.detail["text"]) == ("note", SECRET)

    def exported(public: bool) -> str:
        out = StringIO()
        write_jsonl(engine, out, public=public)
        return out.getvalue()

    assert SECRET in exported(False)
    public = json.loads(exported(True))
    assert [e["kind"] for e in public["events"]] == ["created"]
