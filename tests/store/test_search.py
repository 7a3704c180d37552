"""`incidents search` (SQLite FTS5, PostgreSQL full-text): every word, as a prefix, anywhere
in an incident's title, comments and notes; the newest activity first; nothing of the query
language gets through."""

from __future__ import annotations

import json

from mailproc.store.search import search
from tests.support.mailfactory import make_mail, message_id_of

TINA = "Tina <tina@example.com>"


def test_every_word_anywhere_in_titles_comments_and_notes(desk, engine):
    first = make_mail(subject="Printer on floor 4 jams", body="Paper jam again.")
    desk.handle(first)
    desk.handle(make_mail(subject="VPN drops", body="Every hour the tunnel drops."))
    note = make_mail(
        sender=TINA,
        subject="Re: [INC-1] [NOTE]",
        body="The fuser unit is worn out; ordered.",
        in_reply_to=message_id_of(first),
    )
    desk.handle(note)
    assert [h.number for h in search(engine, "printer fuser")] == [1]  # title + note
    assert [h.number for h in search(engine, "print")] == [1]  # a prefix
    assert [h.number for h in search(engine, "tunnel")] == [2]
    assert search(engine, "printer tunnel") == []  # every word, in one incident
    (hit,) = search(engine, "fuser")
    assert [(m.kind, m.excerpt) for m in hit.matches] == [
        ("note", "The fuser unit is worn out; ordered.")
    ]


def test_query_syntax_is_only_words(desk, engine):
    desk.handle(make_mail(subject="Outlook NEAR crash", body='He said "OR" * (x)'))
    for hostile in ('" OR *', "NEAR(a b)", "a & b | !c:*", "'; DROP TABLE events; --", ""):
        search(engine, hostile)  # never a syntax error, whatever is typed
    assert [h.number for h in search(engine, 'outlook" OR "zebra')] == []  # OR is a word
    assert [h.number for h in search(engine, "outlook crash")] == [1]


def test_the_command_line_search(cli, tmp_path):
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(subject="Printer jams on floor 4"))
    cli("ingest", str(mail))
    out = cli("incidents", "search", "floor", "print").stdout
    assert out.startswith("INC-1     email      New        Printer jams on floor 4\n")
    assert "alice@example.org (created): Printer jams on floor 4" in out
    found = json.loads(cli("incidents", "search", "printer", "--json").stdout)
    assert [h["ref"] for h in found] == ["INC-1"]
    assert cli("incidents", "search", "nothing").stdout == "no incident holds all of these words\n"


def test_postgresql_finds_the_words_through_its_index(pg_url):
    from sqlalchemy import text

    from mailproc.store.db import make_engine
    from mailproc.store.schema import upgrade
    from mailproc.store.search import _POSTGRES

    engine = make_engine(pg_url)
    upgrade(engine)
    try:
        with engine.connect() as connection:
            connection.execute(text("SET enable_seqscan = off"))
            plan = connection.execute(
                text(f"EXPLAIN {_POSTGRES.text}"), {"q": "printer:*", "n": 10}
            ).scalars()
            assert "ix_events_search" in "\n".join(plan)
    finally:
        engine.dispose()
