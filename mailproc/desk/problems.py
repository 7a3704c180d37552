"""The Known Error Database: problems PRB-n that incidents are related to.

Managed from the CLI by administrators; each operation is one transaction. Incidents bind to a
problem by mail with [RELATE PRB-n] (see workflow), not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailproc.store import db
from mailproc.vocabulary import ProblemStatus

if TYPE_CHECKING:
    from mailproc.notify.outbox import Outbox


class UnknownProblem(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class ProblemView:
    number: int
    title: str
    symptoms: str
    workaround: str
    status: ProblemStatus
    created_at: datetime
    updated_at: datetime
    incidents: tuple[int, ...] = ()

    @property
    def ref(self) -> str:
        return f"PRB-{self.number}"


def add_problem(
    engine: Engine,
    now: datetime,
    title: str,
    symptoms: str = "",
    workaround: str = "",
    status: ProblemStatus = ProblemStatus.OPEN,
) -> int:
    with Session(engine) as session, session.begin():
        row = db.Problem(
            title=title,
            symptoms=symptoms,
            workaround=workaround,
            status=status.value,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def update_problem(
    engine: Engine,
    number: int,
    now: datetime,
    *,
    status: ProblemStatus | None = None,
    workaround: str | None = None,
    outbox: Outbox | None = None,
) -> ProblemView:
    """Change a problem; resolving it tells the reporters of its open incidents (through the
    outbox, in this transaction) that the cause is fixed."""
    with Session(engine) as session, session.begin():
        row = session.get(db.Problem, number, with_for_update=True)
        if row is None:
            raise UnknownProblem(f"no problem PRB-{number}")
        resolving = status is ProblemStatus.RESOLVED and row.status != status.value
        if status is not None:
            row.status = status.value
        if workaround is not None:
            row.workaround = workaround
        row.updated_at = now
        if resolving and outbox is not None:
            outbox.queue_problem_resolved(session, row, now)
        return _view(session, row)


def list_problems(engine: Engine, status: ProblemStatus | None = None) -> list[ProblemView]:
    with Session(engine) as session:
        query = select(db.Problem).order_by(db.Problem.id)
        if status is not None:
            query = query.where(db.Problem.status == status.value)
        return [_view(session, row) for row in session.scalars(query)]


def get_problem(engine: Engine, number: int) -> ProblemView:
    with Session(engine) as session:
        row = session.get(db.Problem, number)
        if row is None:
            raise UnknownProblem(f"no problem PRB-{number}")
        return _view(session, row)


def _view(session: Session, row: db.Problem) -> ProblemView:
    incidents = session.scalars(
        select(db.IncidentProblem.incident_id)
        .where(db.IncidentProblem.problem_id == row.id)
        .order_by(db.IncidentProblem.incident_id)
    )
    return ProblemView(
        number=row.id,
        title=row.title,
        symptoms=row.symptoms,
        workaround=row.workaround,
        status=ProblemStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        incidents=tuple(incidents),
    )
