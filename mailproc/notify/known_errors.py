"""Known errors that may explain a new incident, for the reporter's acknowledgment.

The words of the subject and body are matched against the titles and symptoms of problems that
are not resolved and have a workaround. PostgreSQL ranks them with its full-text search
(English stemming and stop words, so "sending" finds "send"); elsewhere a portable ranking by
shared words does the same job less cleverly. Either way at most three come back: a hint, not
a search page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from mailproc.notify.context import ProblemFacts
from mailproc.store import db
from mailproc.vocabulary import ProblemStatus

LIMIT = 3
MAX_WORDS = 64
_WORD = re.compile(r"[^\W_]{3,}")
_STOP_WORDS = """and are but can cannot for from has have not our that the this was were what when
with you your since does did any all out its into nobody there their they them then"""
_STOP = frozenset(_STOP_WORDS.split())


def words(text: str) -> list[str]:
    """Distinct lower-case words of three letters or more, stop words left out, in order."""
    found: dict[str, None] = {}
    for match in _WORD.finditer(text):  # lazily: a long body must not become a list of words
        word = match.group().lower()
        if word not in _STOP:
            found[word] = None
            if len(found) == MAX_WORDS:
                break
    return list(found)


def matching_known_errors(session: Session, text: str, limit: int = LIMIT) -> list[ProblemFacts]:
    postgres = session.get_bind().dialect.name == "postgresql"
    candidates = () if postgres else _candidates(session)
    wanted = words(text) if postgres or candidates else []  # no problems: no words to read
    if not wanted:
        return []
    if postgres:
        rows: Sequence[ProblemRow] = _postgres(session, wanted, limit)
    else:
        rows = rank_by_words(wanted, candidates)[:limit]
    return [ProblemFacts(p.id, p.title, p.symptoms, p.workaround, p.status) for p in rows]


class ProblemRow(Protocol):
    id: int
    title: str
    symptoms: str
    workaround: str
    status: str


_COLUMNS = (
    db.Problem.id,
    db.Problem.title,
    db.Problem.symptoms,
    db.Problem.workaround,
)
_CANDIDATE = (
    db.Problem.status != ProblemStatus.RESOLVED.value,
    db.Problem.workaround != "",
)
_CANDIDATES = select(*_COLUMNS, db.Problem.status).where(*_CANDIDATE)


@cache
def _search() -> Executable:
    """PostgreSQL's full-text search. Its functions get their types when PostgreSQL's dialect
    is imported, which happens here, so that a process on SQLite never loads that dialect."""
    import sqlalchemy.dialects.postgresql  # noqa: F401 (registers to_tsquery, to_tsvector)

    query = func.to_tsquery("english", bindparam("words"))
    document = func.to_tsvector("english", db.Problem.title + " " + db.Problem.symptoms)
    return (
        select(*_COLUMNS, db.Problem.status)
        .where(*_CANDIDATE, document.op("@@")(query))
        .order_by(func.ts_rank(document, query).desc(), db.Problem.id)
        .limit(bindparam("limit"))
    )


def _candidates(session: Session) -> Sequence[ProblemRow]:
    """Read once per session: a group of mails shares one (see Desk.batch), and problems
    change far more rarely than a group takes to apply."""
    found: Sequence[ProblemRow] | None = session.info.get("known_error_candidates")
    if found is None:
        found = session.info["known_error_candidates"] = db.run(session, _CANDIDATES).all()
    return found


def _postgres(session: Session, wanted: list[str], limit: int) -> Sequence[ProblemRow]:
    # Words are letters and digits only, so joining them with | is a safe tsquery.
    rows: Sequence[ProblemRow] = db.run(
        session, _search(), words=" | ".join(wanted), limit=limit
    ).all()
    return rows


def rank_by_words(wanted: Iterable[str], problems: Iterable[ProblemRow]) -> list[ProblemRow]:
    """Problems sharing at least one word with the mail, most shared words first."""
    target = set(wanted)
    scored = []
    for problem in problems:
        shared = len(target & set(words(f"{problem.title} {problem.symptoms}")))
        if shared:
            scored.append((-shared, problem.id, problem))
    return [problem for _, _, problem in sorted(scored, key=lambda s: s[:2])]
