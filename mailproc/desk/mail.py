"""Apply one incoming mail to the database in one transaction, exactly once.

The only place that opens a write transaction for mail. The message's key is claimed first,
so a second delivery of the same mail is a no-op; a bug rolls everything back and the mail is
kept in quarantine with the error, so one poison message never blocks the ones behind it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import datetime
from functools import cache, cached_property, lru_cache, partial

from sqlalchemy import Engine, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailproc.clock import WallClock, utcnow
from mailproc.config.settings import Settings
from mailproc.desk import waiting
from mailproc.desk.acks import acknowledge_each
from mailproc.desk.attempts import Attempts, Crashed, forget
from mailproc.desk.digest import send_digests
from mailproc.desk.outcome import Batcher, Disposition, Handle, Origin, Outcome, Parsed
from mailproc.desk.queries import answer_queries
from mailproc.desk.timeouts import close_timed_out, remind_reporters
from mailproc.desk.writes import (
    Writes,
    lock_incident,
    merge_chain,
    read_incident,
    view_of,
)
from mailproc.inbound.automatic import Automatic, detect, suppresses_replies
from mailproc.inbound.fingerprint import fingerprint
from mailproc.inbound.parse import InboundMail, MailError, OverLimit, parse_head, parse_mail
from mailproc.inbound.subject import acknowledged, is_query, limit_commands, parse_subject
from mailproc.notify.outbox import Outbox
from mailproc.safety import kept_mail
from mailproc.safety.limits import sender_throttle
from mailproc.signing import read_message_id
from mailproc.sla.state import SlaBook
from mailproc.store import db, message_keys
from mailproc.store.errors import OUTAGES, store_errors
from mailproc.store.prepared import Prepared, fixed_list, fixed_values
from mailproc.times import whole_second
from mailproc.vocabulary import TEAM_NOTICES
from mailproc.workflow.intents import NewIncident, Reply, classify, verified_actor

log = logging.getLogger(__name__)
Transaction = Callable[[], AbstractContextManager[Session]]


class Desk:
    """The service layer: mail in, rows out."""

    def __init__(self, settings: Settings, engine: Engine, clock: WallClock = utcnow) -> None:
        """Raises SecretMissing (a ConfigError) when notices would be signed with a key that
        dies with this process: better refuse to start than queue dead reply tokens."""
        _ = settings.verification_keys
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def handle(self, raw: bytes, origin: Origin = Origin()) -> Outcome:
        """Apply one mail in its own transaction. Raises StoreUnavailable only when the
        database cannot be reached: then the mail must stay where it is, to be tried again, not
        be quarantined."""
        with self.batch() as handle:
            return handle(raw, origin)

    @contextmanager
    def batch(self, attempted: Sequence[str] = ()) -> Iterator[Handle]:
        """Group commit: the mails handled in the block share one transaction, each inside
        its own SAVEPOINT, so a failing mail undoes only itself, and the block's end commits
        them all with one write to disk instead of one per mail.

        An outcome is final only once the block has ended without an exception: settle the
        mails at their source after that, never inside the block. An exception (a database
        outage raises StoreUnavailable, at any mail or at the commit) rolls the whole group
        back, and every mail of it is to be tried again.
        """
        with store_errors(), Session(self.engine) as session, session.begin():
            yield partial(self._in_savepoint, session)
            forget(session, attempted)  # `attempted`: marks of mailproc.desk.attempts

    @contextmanager
    def batches(self, dry_run: bool = False) -> Iterator[Batcher]:
        """Group commits (`batch`), or for a dry run groups inside one outer transaction that
        nothing commits, so the caller's loop is the same either way."""
        if dry_run:
            with self.dry_run() as handle:
                yield lambda attempted=(): nullcontext(handle)
        else:
            yield self.batch

    @cached_property
    def attempts(self) -> Attempts:
        """The marks that tell a mail which killed the process (mailproc.desk.attempts)."""
        return Attempts(self.engine, self.clock, self.settings.limits.crashes_before_quarantine)

    def _in_savepoint(
        self, session: Session, raw: bytes, origin: Origin, parsed: Parsed = None
    ) -> Outcome:
        @contextmanager
        def savepoint() -> Iterator[Session]:
            with session.begin_nested():
                yield session

        outcome = self._guarded(raw, origin, savepoint, parsed)
        session.expunge_all()  # flushed; a group of mails must not pile up in memory
        return outcome

    @contextmanager
    def dry_run(self) -> Iterator[Handle]:
        """Shadow mode: a `handle` whose every write is rolled back when the block ends.

        All mails share one outer transaction, each inside its own SAVEPOINT, so a reply
        threads onto an incident opened earlier in the same run and a failing mail undoes only
        itself. The price is locking: until the block ends the transaction holds SQLite's write
        lock (BEGIN IMMEDIATE) or, on PostgreSQL, the claimed keys and locked incident rows, so
        a daemon writing to the same database waits meanwhile (and backs off if it waits long).
        Incident numbers shown are those the run drew; PostgreSQL does not hand them back.
        """
        with Session(self.engine) as session:
            session.begin()

            @contextmanager
            def savepoint() -> Iterator[Session]:
                with session.begin_nested():
                    yield session

            def handle(raw: bytes, origin: Origin = Origin(), parsed: Parsed = None) -> Outcome:
                before = session.scalar(select(func.max(db.Outbox.id))) or 0
                outcome = self._guarded(raw, origin, savepoint, parsed)
                return _with_notices(session, outcome, before)

            try:
                yield handle
            finally:
                session.rollback()

    def _guarded(
        self, raw: bytes, origin: Origin, transaction: Transaction, parsed: Parsed = None
    ) -> Outcome:
        with store_errors():
            try:
                return self._handle(raw, origin, transaction, parsed)
            except OUTAGES:
                raise
            except Exception as exc:  # even quarantining failed: a bug, but the mail must not
                log.exception("could not store a mail even in quarantine")  # block the others
                reason = f"not stored: internal error: {type(exc).__name__}: {exc}"[:2000]
                key = f"sha256:{hashlib.sha256(raw).hexdigest()}"
                return Outcome(Disposition.QUARANTINED, key, None, reason, True, stored=False)

    def _handle(
        self, raw: bytes, origin: Origin, transaction: Transaction, parsed: Parsed = None
    ) -> Outcome:
        now = whole_second(self.clock())
        limit = self.settings.limits.max_message_bytes
        if len(raw) > limit:
            return self._oversized(raw, origin, now, limit, transaction)
        try:
            limits = self.settings.limits.headers
            mail = parse_mail(raw, limits) if parsed is None else _given(parsed)
        except Crashed as exc:
            return self._quarantine(raw, origin, str(exc), now, None, transaction)
        except OverLimit as exc:
            return self._quarantine(raw, origin, f"over a limit: {exc}", now, None, transaction)
        except MailError as exc:
            return self._quarantine(raw, origin, f"unparseable: {exc}", now, None, transaction)
        if mail.sender_fault is not None:
            reason = f"malformed From: {mail.sender_fault}"
            return self._quarantine(raw, origin, reason, now, mail, transaction)
        try:
            with transaction() as session:
                return self._apply(session, mail, origin, now)
        except IntegrityError:
            with transaction() as session:
                prior = _claimed(session, mail)
            if prior is not None:  # another process claimed the key first
                return prior
            log.exception("integrity error on %s", mail.key)
            reason = "internal error: integrity error"
            return self._quarantine(raw, origin, reason, now, mail, transaction)
        except OUTAGES:
            raise
        except Exception as exc:
            log.exception("internal error on %s", mail.key)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            return self._quarantine(raw, origin, reason, now, mail, transaction)

    def _quarantine(
        self,
        raw: bytes,
        origin: Origin,
        reason: str,
        now: datetime,
        mail: InboundMail | None,
        transaction: Transaction,
    ) -> Outcome:
        """Keep a mail that cannot be applied, with the reason, so nothing is lost."""
        digest = hashlib.sha256(raw).hexdigest()
        key = f"sha256:{digest}"
        sender = mail.sender.email if mail and mail.sender else ""
        with transaction() as session:
            duplicate = True  # under the hash of its bytes: the same bytes again
            if mail is not None:  # under the key it would have had, reused Message-IDs told
                found = message_keys.claim(session, mail)
                key, duplicate = found.key, found.duplicate
                reason = "; ".join(filter(None, (reason, found.note)))
            prior = _prior(session, key) if duplicate else None
            if prior is not None:
                return prior
            session.add(
                db.Message(
                    key=key,
                    message_id=mail.message_id if mail else None,
                    content_hash=digest,
                    fingerprint=fingerprint(raw),
                    sender=sender,
                    subject=mail.subject if mail else "",
                    source=origin.source,
                    outcome=Disposition.QUARANTINED.value,
                    reason=reason,
                    received_at=now,
                    raw=raw,
                )
            )
        return Outcome(Disposition.QUARANTINED, key, None, reason, True, sender)

    def _oversized(
        self, raw: bytes, origin: Origin, now: datetime, limit: int, transaction: Transaction
    ) -> Outcome:
        """Not parsed (the parser's time and memory grow with it), but stored whole: the
        database may be the only copy (`ingest -` from an MTA), and nothing is lost."""
        reason = f"too large: {len(raw)} bytes, over limits.max_message_bytes ({limit})"
        try:
            head: InboundMail | None = parse_head(raw, self.settings.limits.headers)
        except MailError:
            head = None
        return self._quarantine(raw, origin, reason, now, head, transaction)

    def close_timed_out(self) -> list[int]:
        """Close the incidents past their status's `auto_close_days` (mailproc.desk.timeouts)."""
        now = whole_second(self.clock())
        return close_timed_out(self.settings, self.engine, now, self.outbox, self.sla)

    def send_digests(self) -> int:
        """Queue the digests due now (mailproc.desk.digest); how many were queued."""
        return send_digests(self.settings, self.engine, self.clock, self.outbox)

    def remind_reporters(self) -> list[int]:
        """Remind the reporters of incidents waiting past their status's `remind_days`."""
        return remind_reporters(self.settings, self.engine, self.clock(), self.outbox)

    @cached_property
    def outbox(self) -> Outbox:
        """The notification writer, one per Desk so compiled templates serve many mails."""
        return Outbox(self.settings)

    @cached_property
    def sla(self) -> SlaBook:
        """The SLA policy, built once: its calendars remember the days they have worked out."""
        return SlaBook(self.settings)

    def _apply(
        self,
        session: Session,
        mail: InboundMail,
        origin: Origin,
        now: datetime,
        held: waiting.Held | None = None,
    ) -> Outcome:
        """`held`: a mail that waited for its parent (mailproc.desk.waiting), its key claimed."""
        if held is None:
            message, key = _claim_key(session, mail, origin, now)  # a concurrent twin now waits
        else:
            message, key = held.pk, held.key
        if message is None:
            prior = _prior(session, key)
            assert prior is not None, f"{key} claimed but not found"
            return prior
        subject = limit_commands(
            parse_subject(mail.subject, self.settings.language),
            self.settings.limits.commands_per_mail,
        )
        threaded = _thread(session, mail, subject.incident, self.settings, key == mail.key)
        found, merged = _merged_into(session, threaded)
        verdict = detect(mail, self.settings.own_addresses)
        automatic = kept_mail.screened(mail, verdict, self.settings)
        if automatic is not None:  # kept and recorded, never applied nor answered
            sender = mail.sender.email if mail.sender else ""
            note = message_keys.reuse_note(mail) if key != mail.key else None
            stored = kept_mail.Stored(message, sender, now, note)
            number, summary = kept_mail.keep(session, self.settings, mail, automatic, stored, found)
            return Outcome(
                Disposition.PROCESSED, key, number, summary, sender=sender, automatic=True
            )
        if is_query(subject):  # asks, changes nothing: answered by return mail
            unanswered = _unanswered(mail, verdict)
            summary = answer_queries(
                session, self.settings, self.outbox, mail, subject, found, now, unanswered
            )
            _SETTLED(session, pk=message, incident=None, outcome=Disposition.PROCESSED.value)
            sender = mail.sender.email if mail.sender else ""
            return Outcome(Disposition.PROCESSED, key, None, summary, sender=sender)
        acks = acknowledged(subject)
        if acks and (found is None or acks != (found.id,)):  # answers a folded escalation
            unanswered = _unanswered(mail, verdict)
            books = (self.outbox, self.sla)
            summary = acknowledge_each(
                session, self.settings, books, mail, acks, message, now, unanswered
            )
            _SETTLED(session, pk=message, incident=None, outcome=Disposition.PROCESSED.value)
            sender = mail.sender.email if mail.sender else ""
            return Outcome(Disposition.PROCESSED, key, None, summary, sender=sender)
        if found is None and held is None and waiting.should_wait(mail, subject, self.settings):
            summary = waiting.hold(session, self.settings, mail, message, now)
            sender = mail.sender.email if mail.sender else ""
            return Outcome(Disposition.PROCESSED, key, None, summary, sender=sender)
        read = read_incident(session, found.id, _parent(mail)) if found else None
        participants = read.watchers if read else frozenset()
        view = view_of(session, found, read) if found else None
        team = read is not None and read.answered in TEAM_NOTICES
        actor = verified_actor(mail, self.settings, view, merged, subject.proof)
        intent = classify(
            mail,
            subject,
            view,
            participants,
            self.settings,
            now,
            origin.service,
            team,
            actor.unproven,
        )
        apply = Writes(self.settings, session, message, actor, now, mail, self.outbox, self.sla)
        apply.unanswered = _unanswered(mail, verdict)
        apply.attachments(mail)
        if found is not None and read is not None:
            apply.knowing(found.id, read)
        if isinstance(intent, NewIncident):
            apply.throttle = sender_throttle(session, self.settings, actor.email, now)
            incident, summary = apply.new_incident(intent)
        else:
            assert found is not None and view is not None
            incident, summary = found, apply.reply(intent, found, view)
        apply.remember(incident.id, watchers=not isinstance(intent, Reply) or intent.accepted)
        apply.write()
        apply.save(incident)
        released = 0
        if _settled_awaited(session, message, incident.id, mail.message_id):
            released = self._release_children(session, mail, now)
        if released:
            summary += f"; {released} waiting repl{'y' if released == 1 else 'ies'} applied"
        return Outcome(Disposition.PROCESSED, key, incident.id, summary, sender=apply.actor.email)

    def _release_children(self, session: Session, mail: InboundMail, now: datetime) -> int:
        """Apply, right after it, the replies that waited for this mail; one that fails stays
        waiting (its wait's end tries it once more, and quarantines it then if need be)."""
        applied = 0
        for child in waiting.children(session, mail.message_id):
            try:
                with session.begin_nested():
                    applied += self._apply_held(session, child, now) is not None
            except OUTAGES:
                raise
            except Exception:
                log.exception("could not apply %s, which waited for %s", child.key, mail.key)
        return applied

    def _apply_held(self, session: Session, held: waiting.Held, now: datetime) -> Outcome | None:
        """None when another transaction took the waiting mail first."""
        if not waiting.take(session, held.pk):
            return None
        source = self.settings.sources.get(held.source)
        origin = Origin(held.source, source.service if source is not None else None)
        return self._apply(session, parse_mail(held.raw), origin, now, held)

    def release_due(self) -> int:
        """Apply the mails whose wait for their parent is over (they open their own incident),
        one transaction each; returns how many. For a periodic job and the end of `ingest`."""
        count = 0
        while True:
            with store_errors(), Session(self.engine) as session, session.begin():
                now = self.clock()
                held = waiting.due(session, now)
                if held is None:
                    return count
                try:
                    with session.begin_nested():
                        count += self._apply_held(session, held, now) is not None
                except OUTAGES:
                    raise
                except Exception as exc:
                    log.exception("could not apply the waiting mail %s", held.key)
                    reason = f"internal error: {type(exc).__name__}: {exc}"
                    waiting.give_up(session, held.pk, reason)
                    count += 1


def _with_notices(session: Session, outcome: Outcome, after_id: int) -> Outcome:
    """A dry run's outcome, telling the notifications its mail queued (and will not send)."""
    rows = session.execute(
        select(db.Outbox.kind, db.Outbox.recipient)
        .where(db.Outbox.id > after_id)
        .order_by(db.Outbox.id)
    ).all()
    if not rows:
        return outcome
    notices = ", ".join(f"{row.kind} to {row.recipient}" for row in rows)
    return replace(outcome, summary=f"{outcome.summary}; notify {notices}")


_PRIOR = Prepared(
    select(db.Message.outcome, db.Message.incident_id, db.Message.sender).where(
        db.Message.key == bindparam("key")
    )
)


@cache
def _claim_of(dialect: str) -> Prepared:
    return Prepared(db.insert_ignoring(dialect, db.Message).returning(db.Message.id), keyed=True)


_SETTLING = (
    update(db.Message)
    .where(db.Message.id == bindparam("pk"))
    .values(incident_id=bindparam("incident"), outcome=bindparam("outcome"))
)
_SETTLED = Prepared(_SETTLING)
# Settles the mail and tells, in the same statement, whether a mail waits for it.
_SETTLED_AWAITED = Prepared(_SETTLING.returning(waiting.AWAITED))


@lru_cache(maxsize=32)
def _refs(count: int) -> Prepared:
    """The thread_refs of `count` Message-IDs (bound as id0, id1, …)."""
    return Prepared(
        select(db.ThreadRef.message_id, db.ThreadRef.incident_id).where(
            db.ThreadRef.message_id.in_(fixed_list("id", count))
        )
    )


def _settled_awaited(session: Session, message: int, incident: int, message_id: str | None) -> bool:
    """Mark the mail processed; whether a mail waiting for it (mailproc.desk.waiting) is to be
    applied now."""
    outcome = Disposition.PROCESSED.value
    if not message_id:  # nothing can name it as its parent
        _SETTLED(session, pk=message, incident=incident, outcome=outcome)
        return False
    found = _SETTLED_AWAITED(
        session, pk=message, incident=incident, outcome=outcome, parent=message_id
    ).scalar()
    return bool(found)


def _prior(session: Session, key: str) -> Outcome | None:
    """The outcome of an earlier delivery of this mail, told as a duplicate of it."""
    row = _PRIOR(session, key=key).first()
    if row is None:
        return None
    quarantined = row.outcome == Disposition.QUARANTINED.value
    summary = f"already {row.outcome}"
    automatic = row.outcome == kept_mail.AUTOMATIC
    return Outcome(
        Disposition.DUPLICATE, key, row.incident_id, summary, quarantined, row.sender, automatic
    )


def _given(parsed: InboundMail | MailError) -> InboundMail:
    if isinstance(parsed, MailError):
        raise parsed
    return parsed


def _claimed(session: Session, mail: InboundMail) -> Outcome | None:
    """The outcome of the delivery that claimed this mail's key first, if one did."""
    found = message_keys.claim(session, mail)
    return _prior(session, found.key) if found.duplicate else None


def _unanswered(mail: InboundMail, automatic: Automatic | None) -> str | None:
    """Acknowledgments and transcripts answer a person, never a robot (mail loops): an
    automatic mail that is applied all the same (a monitoring system's) gets none."""
    if automatic is not None:
        log.info("not answering automatic mail %s: %s", mail.key, automatic.reason)
        return f"automatic mail: {automatic.reason}"
    if suppresses_replies(mail):
        return "the sender asked for no automatic replies (X-Auto-Response-Suppress)"
    return None


def _claim_key(
    session: Session, mail: InboundMail, origin: Origin, now: datetime
) -> tuple[int | None, str]:
    """The mail's row and the key it is stored under: its own (Message-ID or fingerprint),
    else — when another mail holds that Message-ID (mailproc.store.message_keys) — its content key.
    No row: this mail was applied before under that key."""
    if mail.message_id is None:  # stored before the first hop counted in fingerprints?
        legacy = message_keys.legacy_key(mail)
        if legacy != mail.key and _PRIOR(session, key=legacy).first() is not None:
            return None, legacy
    claimed = _claim(session, mail, origin, now, mail.key, None)
    if claimed is not None or not message_keys.reused(session, mail):
        return claimed, mail.key
    key = message_keys.content_key(mail)
    return _claim(session, mail, origin, now, key, message_keys.reuse_note(mail)), key


def _claim(
    session: Session, mail: InboundMail, origin: Origin, now: datetime, key: str, note: str | None
) -> int | None:
    """Insert the mail's row under the key, whose unique index is the claim; None when the key
    is taken: the mail was applied before (or by a twin that just committed)."""
    inserted = _claim_of(session.get_bind().dialect.name)(
        session,
        key=key,
        message_id=mail.message_id,
        content_hash=mail.content_hash,
        fingerprint=mail.fingerprint,
        sender=mail.sender.email if mail.sender else "",
        subject=mail.subject,
        source=origin.source,
        outcome="pending",
        reason=note,
        received_at=now,
        raw=mail.raw,
    )
    claimed = inserted.scalar()
    return None if claimed is None else int(claimed)


def _thread(
    session: Session, mail: InboundMail, tagged: int | None, settings: Settings, own: bool
) -> db.Incident | None:
    """Headers first (the most specific evidence), then the subject tag; never the title.
    `own`: the mail is stored under its own Message-ID, so an incident whose mail named that
    id (a reply that came first) may claim it (mailproc.desk.waiting)."""
    refs = [*reversed(mail.in_reply_to), *reversed(mail.references)]
    ids = [*refs, mail.message_id] if own and mail.message_id else refs
    if ids:
        wanted = sorted(set(ids))
        rows = _refs(len(wanted))(session, **fixed_values("id", wanted))
        known = {row.message_id: row.incident_id for row in rows}
        for ref in refs:
            if ref in known:
                return lock_incident(session, known[ref])
        signed = _signed_reference(refs, mail, settings)
        found = lock_incident(session, signed) if signed is not None else None
        if found is not None:
            return found
        if mail.message_id in known and tagged is None:
            return lock_incident(session, known[mail.message_id])
    return lock_incident(session, tagged) if tagged is not None else None


def _merged_into(
    session: Session, found: db.Incident | None
) -> tuple[db.Incident | None, tuple[int, ...]]:
    """Mail about a duplicate goes to the incident it was merged into (and on, should that
    one have been merged too): that incident, and the duplicates the mail passed through."""
    chain = merge_chain(session, found) if found is not None else ()
    if found is None or not chain:
        return found, ()
    return lock_incident(session, chain[-1]), (found.id, *chain[:-1])


def _parent(mail: InboundMail) -> str | None:
    """The mail's parent (In-Reply-To, else the last of References): when it is one of our
    notices written for the desk's own people, a solver's answer to it is internal."""
    return (mail.in_reply_to or mail.references or (None,))[-1]


def _signed_reference(refs: list[str], mail: InboundMail, settings: Settings) -> int | None:
    """A reference to a mail of ours that is not in thread_refs: a valid signature proves we
    sent it; a forged one (someone pushing text into another incident) is logged, not used."""
    for ref in refs:
        signed = read_message_id(settings.verification_keys, ref)
        if signed is None:
            continue
        if signed.valid:
            return signed.incident
        log.warning(
            "%s: reference <%s> claims INC-%d but its signature is not ours; not threaded",
            mail.key,
            ref,
            signed.incident,
        )
    return None
