"""`mailproc incidents search TEXT`: the incidents whose titles, comments or notes hold every
word, best first, with where each word was found.

The database finds the candidate texts — SQLite through the FTS5 table `events_search`, whose
rows the Desk writes with the events (mailproc.store.db.Rows.add_words), PostgreSQL through the
GIN index over the events' `to_tsvector('simple', …)` (migration 0014) — holding
any of the words as a word prefix; an incident is a hit when its events together hold all of
them (a word in the title, another in a comment). No stemming, for a desk's mail comes in
several languages; "print" finds "printer" and "printing". The first 10,000 characters of
each text are indexed (a text may be megabytes). For administrators: notes are searched and
shown, marked internal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from mailproc.store import db

MAX_WORDS = 10
CANDIDATES = 5000  # events read at most per search: bounded time whatever the database
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Match:
    at: datetime
    actor: str
    kind: str  # created (title and first text), comment, note (internal)
    excerpt: str


@dataclass(frozen=True, slots=True)
class Hit:
    number: int
    service: str
    status: str
    title: str
    matches: tuple[Match, ...]

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


@dataclass(frozen=True, slots=True)
class _Said:
    """One searchable text, as the database found it."""

    incident: int
    kind: str
    actor: str
    at: datetime
    text: str


def words_of(query: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:MAX_WORDS]


def search(engine: Engine, query: str, limit: int = 20) -> list[Hit]:
    words = words_of(query)
    if not words:
        return []
    with Session(engine) as session:
        by_incident: dict[int, list[_Said]] = defaultdict(list)
        for said in _candidates(session, words):
            by_incident[said.incident].append(said)
        found = [n for n, texts in by_incident.items() if _holds_all(texts, words)]
        found.sort(key=lambda n: max(t.at for t in by_incident[n]), reverse=True)
        rows = {
            row.id: row
            for row in session.scalars(select(db.Incident).where(db.Incident.id.in_(found[:limit])))
        }
        return [_hit(rows[n], by_incident[n], words) for n in found[:limit] if n in rows]


# The expression and the condition of the PostgreSQL index (migration 0014), as written there:
# the planner uses the index only for this very expression.
_POSTGRES = text(
    "SELECT id FROM events WHERE kind IN ('created', 'comment', 'note') "
    "AND to_tsvector('simple'::regconfig, left(coalesce(detail ->> 'title', '') || ' ' || "
    "coalesce(detail ->> 'text', ''), 10000)) @@ to_tsquery('simple'::regconfig, :q) "
    "ORDER BY id DESC LIMIT :n"
)
_SQLITE = text(
    "SELECT incident_id, kind, actor, at, words FROM events_search "
    "WHERE events_search MATCH :q ORDER BY rowid DESC LIMIT :n"
)


def _candidates(session: Session, words: Sequence[str]) -> list[_Said]:
    """The newest texts holding any of the words (at most CANDIDATES)."""
    if session.get_bind().dialect.name == "postgresql":
        q = " | ".join(f"{w}:*" for w in words)
        ids = session.scalars(_POSTGRES, {"q": q, "n": CANDIDATES}).all()
        events = session.scalars(select(db.Event).where(db.Event.id.in_(ids))).all() if ids else ()
        return [_Said(e.incident_id, e.kind, e.actor, e.at, _text_of(e)) for e in events]
    q = " OR ".join(f'"{w}"*' for w in words)  # each quoted: nothing of FTS5's syntax gets in
    rows = session.execute(_SQLITE, {"q": q, "n": CANDIDATES})
    return [_Said(int(r.incident_id), r.kind, r.actor, _stored_time(r.at), r.words) for r in rows]


def _stored_time(value: object) -> datetime:
    """The FTS5 table keeps the time as SQLite keeps any time: text, UTC without a zone."""
    moment = datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC)


def _text_of(event: db.Event) -> str:
    detail = event.detail
    return f"{detail.get('title', '')} {detail.get('text', '')}".strip()[: db.SEARCHED]


def _tokens(said: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(said)}


def _holds_all(texts: Iterable[_Said], words: Sequence[str]) -> bool:
    tokens: set[str] = set()
    for said in texts:
        tokens |= _tokens(said.text)
    return all(any(t.startswith(w) for t in tokens) for w in words)


def _hit(row: db.Incident, texts: list[_Said], words: Sequence[str]) -> Hit:
    matches = tuple(
        Match(t.at, t.actor, t.kind, excerpt(t.text, words))
        for t in sorted(texts, key=lambda t: t.at)
    )
    return Hit(row.id, row.service, row.status, row.title, matches)


def excerpt(said: str, words: Sequence[str], width: int = 100) -> str:
    """The text around the first word found, on one line."""
    flat = " ".join(said.split())
    lower = flat.lower()
    at = min((i for w in words if (i := _starts(lower, w)) >= 0), default=0)
    start = max(0, at - width // 3)
    piece = flat[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(flat) else "")


def _starts(lower: str, word: str) -> int:
    match = re.search(rf"(?<!\w){re.escape(word)}", lower)
    return match.start() if match else -1
