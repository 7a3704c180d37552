"""Merging duplicates and watching (SQLite and PostgreSQL): [MERGE INC-n] folds an incident
into another — its texts, watchers, files and mail threading follow, it closes as a duplicate,
later replies land on the target — and is refused with the reason into itself, an unknown or
closed incident, or in a cycle; [CC +address] and [CC -address] add and drop watchers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.notices import answer, notice_to

ALICE = "Alice <alice@example.org>"
BOB = "Bob <bob@example.org>"
TINA = "Tina <tina@example.com>"
PNG = b"\x89PNG\r\n\x1a\nshot"


def report(desk: Desk, sender: str, subject: str, **kw) -> tuple[int, str]:
    raw = make_mail(sender=sender, subject=subject, **kw)
    return desk.handle(raw).incident, message_id_of(raw)


def command(desk: Desk, number: int, subject: str, body: str = "") -> str:
    raw = make_mail(sender=TINA, subject=f"Re: [INC-{number}] {subject}", body=body or "ok")
    return desk.handle(raw).summary


def test_a_merge_moves_texts_watchers_files_and_the_thread(desk, engine, clock):
    target, _ = report(desk, ALICE, "Outlook disconnected")
    duplicate, first = report(
        desk,
        BOB,
        "Mail does not work",
        cc="Carol <carol@example.org>",
        attachments=[("shot.png", "image/png", PNG)],
    )
    clock.advance(minutes=5)
    summary = command(desk, duplicate, f"[MERGE INC-{target}]", "Same as the Outlook one.")
    assert f"applied [MERGE INC-{target}]" in summary

    gone = get_incident(engine, duplicate)
    assert (gone.incident.status, gone.merged_into) == ("Closed", target)
    kept = get_incident(engine, target)
    assert kept.merged == (duplicate,)
    merged = kept.events[-1]
    assert merged.kind == "merged" and merged.detail["incident"] == duplicate
    assert [(t["kind"], t["text"]) for t in merged.detail["texts"]] == [
        ("created", "Nobody can send mail since 9:00."),
        ("comment", "Same as the Outlook one."),
    ]
    with Session(engine) as session:
        watchers = set(
            session.scalars(
                select(db.Participant.email).where(db.Participant.incident_id == target)
            )
        )
    assert {"bob@example.org", "carol@example.org"} <= watchers
    assert [a.filename for a in kept.attachments] == ["shot.png"]

    told = notice_to(engine, "bob@example.org", "merged")
    assert f"Merged into INC-{target}" in told.subject
    # the duplicate's reporter answers the old thread: it lands on the target, as a comment
    clock.advance(minutes=5)
    later = desk.handle(answer(told, BOB, f"Re: [INC-{duplicate}] still down"))
    assert later.incident == target
    assert get_incident(engine, target).events[-1].kind == "comment"
    late = make_mail(sender=BOB, subject="Re: Mail does not work", in_reply_to=first)
    assert desk.handle(late).incident == target


def test_bad_merges_are_refused_with_the_reason(desk, engine):
    one, _ = report(desk, ALICE, "Printer")
    two, _ = report(desk, BOB, "Printer again")
    closed, _ = report(desk, BOB, "Old printer")
    command(desk, closed, "[CLOSE]")
    reasons = {
        f"[MERGE INC-{one}]": f"INC-{one} cannot be merged into itself",
        "[MERGE INC-99]": "unknown incident INC-99",
        f"[MERGE INC-{closed}]": f"INC-{closed} is Closed (closed): merge into an open incident",
        "[MERGE printer]": "'printer' is not an incident number. Syntax: [MERGE INC-n]",
    }
    for subject, reason in reasons.items():
        assert reason in command(desk, one, subject), subject
    assert get_incident(engine, one).incident.status == "New"
    del two


def test_a_merge_that_would_make_a_cycle_is_refused(settings, engine, clock):
    # a workflow whose CLOSE leaves the duplicate open (kind resolved): only the cycle guard
    # stops merging the target back into it
    workflows = dict(settings.workflows)
    resolved = workflows["resolved"]
    transitions = {**resolved.transitions}
    from mailproc.vocabulary import Verb

    transitions[Verb.CLOSE] = {"New": "Resolved"}
    workflows["resolved"] = resolved.model_copy(update={"transitions": transitions})
    desk = Desk(settings.model_copy(update={"workflows": workflows}), engine, clock)
    one, _ = report(desk, ALICE, "VPN", to="network-support@example.com")
    two, _ = report(desk, BOB, "VPN too", to="network-support@example.com")
    sam = "Sam <sam@example.com>"
    raw = make_mail(sender=sam, subject=f"Re: [INC-{two}] [MERGE INC-{one}]")
    assert "applied" in desk.handle(raw).summary
    back = make_mail(sender=sam, subject=f"Re: [INC-{one}] [MERGE INC-{two}]")
    summary = desk.handle(back).summary
    # INC-one's own mail is no longer redirected, since INC-one is not a duplicate
    assert f"INC-{two} is itself merged into this one (INC-{two} → INC-{one}): that is a cycle" in (
        summary
    )


def test_cc_adds_and_drops_watchers_and_refuses_what_is_not_an_address(desk, engine):
    number, _ = report(desk, ALICE, "Printer", cc="Carol <carol@example.org>")
    assert "applied" in command(desk, number, "[CC +dave@example.org -carol@example.org]")
    with Session(engine) as session:
        watchers = set(
            session.scalars(
                select(db.Participant.email).where(db.Participant.incident_id == number)
            )
        )
    assert watchers == {"dave@example.org"}
    events = [(e.kind, e.detail) for e in get_incident(engine, number).events][-2:]
    assert events == [
        ("watcher_added", {"email": "dave@example.org"}),
        ("watcher_removed", {"email": "carol@example.org"}),
    ]
    assert "'+not-an-address' is not an address" in command(desk, number, "[CC +not-an-address]")
    assert "carol@example.org is not a watcher" in command(desk, number, "[CC -carol@example.org]")
    assert "the desk's own address" in command(desk, number, "[CC +support@example.com]")
    # dave now hears of comments
    command(desk, number, "", "Toner ordered.")
    assert "Toner ordered." in notice_to(engine, "dave@example.org", "comment").text


def test_a_colleague_not_on_the_thread_is_kept_as_a_note_and_the_assignee_is_told(desk, engine):
    number, first = report(desk, ALICE, "Printer jam on floor 4")
    command(desk, number, "[ASSIGN]")
    colleague = make_mail(
        sender="Dave <dave@example.org>",  # neither reporter, watcher nor solver
        subject=f"Re: [INC-{number}] Printer jam on floor 4",
        body="Same here on floor 4.",
        in_reply_to=first,
    )
    outcome = desk.handle(colleague)
    assert "kept as an internal note" in outcome.summary
    kept = get_incident(engine, number)
    note = kept.events[-1]
    assert (note.kind, note.detail["text"]) == ("note", "Same here on floor 4.")
    assert kept.incident.status == "Solution"  # it changes nothing
    told = notice_to(engine, "tina@example.com", "note")
    assert "Same here on floor 4." in told.text
    with Session(engine) as session:
        to_alice = session.scalars(
            select(db.Outbox.kind).where(db.Outbox.recipient == "alice@example.org")
        ).all()
    assert "comment" not in to_alice
