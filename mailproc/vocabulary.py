"""The shared words of the process: verbs, priorities, status kinds, event kinds, roles.

They live apart from the modules that use them so that the pure core (subject, workflow)
and the configuration can agree on them without importing each other.
"""

from __future__ import annotations

from enum import StrEnum


class Verb(StrEnum):
    """A subject-line command word. The value is the canonical spelling in mail."""

    ASSIGN = "ASSIGN"
    CLOSE = "CLOSE"
    RESOLVE = "RESOLVE"
    REOPEN = "REOPEN"
    PRIORITY = "PRIORITY"
    MOVE = "MOVE"
    RELATE = "RELATE"
    IMPACT = "IMPACT"
    URGENCY = "URGENCY"
    ACK = "ACK"
    NOTE = "NOTE"  # the mail's text is an internal note: solvers, teams and admins only
    PUBLIC = "PUBLIC"  # the mail's text is a comment, even in answer to a team notice
    WAIT = "WAIT"  # waiting for the customer: a paused status, left by the reporter's reply
    MERGE = "MERGE"  # fold this incident into another: a duplicate, closed as CLOSE would
    CC = "CC"  # add (+address) or drop (-address) watchers
    LIST = "LIST"  # a query: the open incidents of your services (or of one)
    MINE = "MINE"  # a query: the open incidents assigned to you
    HELP = "HELP"  # a query: the commands you may use here, with examples
    STATUS = "STATUS"  # a query: where your own reports stand


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


PRIORITY_WORDS: dict[str, Priority] = {
    "P1": Priority.P1,
    "P2": Priority.P2,
    "P3": Priority.P3,
    "P4": Priority.P4,
    "CRITICAL": Priority.P1,
    "HIGH": Priority.P2,
    "MEDIUM": Priority.P3,
    "LOW": Priority.P4,
}


class StatusKind(StrEnum):
    """What a status means to the machinery (SLA clocks, reopen rules), whatever its name."""

    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class SlaTarget(StrEnum):
    """The two clocks of an incident: until someone responds, and until it is resolved."""

    RESPONSE = "response"
    RESOLUTION = "resolution"


class EscalationRole(StrEnum):
    """Who an escalation level goes to when it names a role instead of an address."""

    ASSIGNEE = "assignee"
    FIRST_LINE = "first_line"
    TEAM = "team"


class Role(StrEnum):
    SOLVER = "solver"
    ADMIN = "admin"


class ProblemStatus(StrEnum):
    OPEN = "open"
    KNOWN_ERROR = "known_error"
    RESOLVED = "resolved"


class EventKind(StrEnum):
    """One row of an incident's history."""

    CREATED = "created"
    COMMENT = "comment"
    ASSIGNED = "assigned"
    STATUS = "status"
    PRIORITY = "priority"
    IMPACT = "impact"
    URGENCY = "urgency"
    MOVED = "moved"
    RELATED = "related"
    REOPENED = "reopened"
    COMMAND_REJECTED = "command_rejected"
    REPLY_NOT_APPLIED = "reply_not_applied"
    FOLLOW_UP = "follow_up"
    ACKNOWLEDGED = "acknowledged"  # [ACK]: the escalation ladders escalated so far stop
    ESCALATED = "escalated"  # an SLA escalation level was mailed
    AUTOMATIC_MAIL = "automatic_mail"  # an auto-reply or other robot's mail, kept, not applied
    BOUNCED = "bounced"  # one of our notifications came back undelivered
    RATE_LIMITED = "rate_limited"  # a sender opened too many incidents: not acknowledged
    # Internal: never shown or sent to the reporter or outside watchers. detail {"text"}, and
    # "reason" when it is a mail kept aside instead of applied: a reply whose sender is not
    # proven or not a participant (mailproc.workflow.intents) changes nothing but this record.
    NOTE = "note"
    # Addresses of a mail's To/Cc not made watchers: {"addresses": [...], "reason": ...}
    WATCHERS_NOT_ADDED = "watchers_not_added"
    # The mail's display name holds another address than its sender's: {"warning": ...}
    SENDER_WARNING = "sender_warning"
    REMINDED = "reminded"  # the reporter was reminded that the desk waits for an answer
    MERGED_INTO = "merged_into"  # this incident was folded into another (a duplicate)
    MERGED = "merged"  # another incident was folded into this one: a copy of its texts
    WATCHER_ADDED = "watcher_added"
    WATCHER_REMOVED = "watcher_removed"


#: History events the reporter and outside watchers never see (notices, exports for them):
#: internal notes, and records that name other people or hold text nobody published.
INTERNAL_EVENTS = frozenset(
    {
        EventKind.NOTE,
        EventKind.REPLY_NOT_APPLIED,
        EventKind.ESCALATED,
        EventKind.BOUNCED,
        EventKind.AUTOMATIC_MAIL,
        EventKind.RATE_LIMITED,
        EventKind.WATCHERS_NOT_ADDED,
        EventKind.SENDER_WARNING,
        EventKind.MERGED,  # the duplicate's texts, its notes among them, and its reporter
    }
)


class NoticeKind(StrEnum):
    """A kind of notification mail; each has its own folder of templates."""

    ACKNOWLEDGMENT = "acknowledgment"
    NEW_INCIDENT = "new_incident"
    ASSIGNED = "assigned"
    COMMENT = "comment"
    MOVED = "moved"
    PRIORITY = "priority"
    RELATED = "related"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    TRANSCRIPT = "transcript"
    ESCALATION = "escalation"
    PROBLEM_RESOLVED = "problem_resolved"
    ALERT = "alert"  # to the administrators: the storm breaker opened
    NOTE = "note"  # an internal note: to the assignee and the team, never the reporter
    QUESTION = "question"  # [WAIT]: the desk asks the reporter and waits for the answer
    RESUMED = "resumed"  # the reporter answered a waiting incident: work goes on
    REMINDER = "reminder"  # no answer yet: the reporter is reminded once
    MERGED = "merged"  # to the duplicate's people: it was merged into another incident
    MERGED_IN = "merged_in"  # to the target's assignee: a duplicate was folded into it
    ANSWER = "answer"  # the answer to a query ([LIST], [MINE], [HELP], [STATUS])
    DIGEST = "digest"  # the scheduled overview of a solver's or a team's queue
    ESCALATIONS = "escalations"  # one pass's escalations to one address, folded into one mail


#: Notices written for the desk's own people (a team list, the first line, the assignee): a
#: solver's reply to one is an internal note unless it says [PUBLIC].
TEAM_NOTICES = frozenset(
    {
        NoticeKind.NEW_INCIDENT,
        NoticeKind.MOVED,
        NoticeKind.ESCALATION,
        NoticeKind.ALERT,
        NoticeKind.NOTE,
        NoticeKind.MERGED_IN,
    }
)
#: Notices about no one incident: their context has no `incident`, their row none either.
DESK_NOTICES = frozenset({NoticeKind.ANSWER, NoticeKind.DIGEST, NoticeKind.ESCALATIONS})

#: Notices that never go to an address outside the desk, whatever the configuration says.
INTERNAL_NOTICES = frozenset({NoticeKind.NOTE, NoticeKind.MERGED_IN})


class Party(StrEnum):
    """Who a notice goes to, named by their part in the incident."""

    REPORTER = "reporter"
    ASSIGNEE = "assignee"
    WATCHERS = "watchers"  # the participants: To/Cc of the incident's mails
    TEAM = "team"
    FIRST_LINE = "first_line"
    SENDER = "sender"  # whoever sent the mail being answered
    ADMINS = "admins"  # the people with role admin
