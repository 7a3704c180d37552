"""`mailproc incidents search TEXT`: the incidents whose titles, comments or notes hold every
word, best first, with where each word was found.

The database finds the candidate events — SQLite through the FTS5 table `events_search`,
PostgreSQL through the GIN index over `to_tsvector('simple', …)` (migration 0010) — holding
any of the words as a word prefix; an incident is a hit when its events together hold all of
them (a word in the title, another in a comment). No stemming, for a desk's mail comes in
several languages; "print" finds "printer" and "printing". For administrators: notes are
searched and shown, marked internal.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

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


def words_of(query: str) -> list[str]:
    return list(dict.fromkeys(w.lower() for w in _WORD.findall(query)))[:MAX_WORDS]


def search(engine: Engine, query: str, limit: int = 20) -> list[Hit]:
    words = words_of(query)
    if not words:
        return []
    with Session(engine) as session:
        events = _candidates(session, words)
        by_incident: dict[int, list[db.Event]] = defaultdict(list)
        for event in events:
            by_incident[event.incident_id].append(event)
        found = [n for n, evs in by_incident.items() if _holds_all(evs, words)]
        found.sort(key=lambda n: -max(e.id for e in by_incident[n]))  # recent activity first
        rows = {
            row.id: row
            for row in session.scalars(select(db.Incident).where(db.Incident.id.in_(found[:limit])))
        }
        return [_hit(rows[n], by_incident[n], words) for n in found[:limit] if n in rows]


# The expression and the condition of the PostgreSQL index (migration 0010), as written there:
# the planner uses the index only for this very expression.
_POSTGRES = text(
    "SELECT id FROM events WHERE kind IN ('created', 'comment', 'note') "
    "AND to_tsvector('simple'::regconfig, coalesce(detail ->> 'title', '') || ' ' || "
    "coalesce(detail ->> 'text', '')) @@ to_tsquery('simple'::regconfig, :q) "
    "ORDER BY id DESC LIMIT :n"
)
_SQLITE = text(
    "SELECT rowid FROM events_search WHERE events_search MATCH :q ORDER BY rowid DESC LIMIT :n"
)


def _candidates(session: Session, words: Sequence[str]) -> Sequence[db.Event]:
    """The newest events holding any of the words (at most CANDIDATES)."""
    if session.get_bind().dialect.name == "postgresql":
        query, q = _POSTGRES, " | ".join(f"{w}:*" for w in words)
    else:  # each word quoted: nothing of FTS5's query syntax gets in
        query, q = _SQLITE, " OR ".join(f'"{w}"*' for w in words)
    ids = session.scalars(query, {"q": q, "n": CANDIDATES}).all()
    if not ids:
        return []
    return session.scalars(select(db.Event).where(db.Event.id.in_(ids))).all()


def _said(event: db.Event) -> str:
    detail = event.detail
    return f"{detail.get('title', '')} {detail.get('text', '')}".strip()


def _tokens(text_: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text_)}


def _holds_all(events: Iterable[db.Event], words: Sequence[str]) -> bool:
    tokens: set[str] = set()
    for event in events:
        tokens |= _tokens(_said(event))
    return all(any(t.startswith(w) for t in tokens) for w in words)


def _hit(row: db.Incident, events: list[db.Event], words: Sequence[str]) -> Hit:
    matches = tuple(
        Match(e.at, e.actor, e.kind, excerpt(_said(e), words))
        for e in sorted(events, key=lambda e: e.id)
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
