"""Read a bounce: which recipients failed, how, and which of our mails it returns.

Pure. RFC 3464 delivery status notifications (multipart/report) carry one block of fields per
recipient (Final-Recipient, Action, Status, Diagnostic-Code) and the returned message, whole
(message/rfc822) or its headers only (text/rfc822-headers), whose Message-ID names the mail
that bounced. Bounces in free text (qmail, Exim, Exchange and older MTAs) are read by
`flufl.bounce`, Mailman's bounce library, which knows their formats (imported only when a
mail is a bounce: it costs a fraction of a second), and searched for a Message-ID of ours.
Bounces are written by machines of every vintage: anything unreadable is skipped, never raised.
"""

from __future__ import annotations

import contextlib
import email
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser

from mailproc.inbound.parse import InboundMail
from mailproc.signing import PREFIX

_MAX_PARTS = 200
_MAX_SCAN = 1_000_000  # bytes of a bounce the free-text detectors read
_MAX_DEPTH = 10
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BASIC = re.compile(r"\b([245])\d\d\b")
_ANGLE_ID = re.compile(r"<([^<>\s]{1,900})>")
_OUR_ID = re.compile(rf"\b{PREFIX}\.[a-z0-9.]{{1,80}}@[a-z0-9.-]{{1,255}}", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One recipient's fate, as the reporting server tells it."""

    recipient: str  # Final-Recipient, lower-cased, without its address type
    original: str  # Original-Recipient, or ''
    action: str  # failed, delayed, delivered, relayed, expanded ('' if not given)
    status: str  # e.g. '5.1.1'; '' if none could be found
    diagnostic: str  # the remote server's words, e.g. 'smtp; 550 5.1.1 User unknown'

    @property
    def permanent(self) -> bool:
        """A 5.x.x status: the address will not work on a later try."""
        return self.status.startswith("5.")


@dataclass(frozen=True, slots=True)
class Report:
    deliveries: tuple[Delivery, ...]
    returned: tuple[str, ...]  # Message-IDs the bounce names: of the returned mail first
    form: str = "DSN"  # the format the failures were read from ('' when none was found)


def read_report(mail: InboundMail) -> Report:
    deliveries: list[Delivery] = []
    returned: list[str] = []
    with contextlib.suppress(Exception):  # a parser bug on a hostile bounce: what was read
        tree = email.message_from_bytes(mail.raw, policy=policy.compat32)  # so far stands
        for part in _parts(tree):
            _read_part(part, deliveries, returned)
    returned += [*mail.in_reply_to, *mail.references]
    returned += [m.group() for m in _OUR_ID.finditer(mail.text[:100_000])]
    ids = tuple(dict.fromkeys(r for r in returned if r))
    if deliveries:
        return Report(tuple(deliveries), ids)
    form, found = free_text_failures(mail)
    return Report(found, ids, form)


def free_text_failures(mail: InboundMail) -> tuple[str, tuple[Delivery, ...]]:
    """The failed recipients of a bounce that is not an RFC 3464 report, and its format as
    flufl.bounce's detector names it ('' when none recognises it)."""
    try:
        from flufl.bounce import _scan  # the detectors in order, to name the format

        detectors = list(getattr(_scan, "_DETECTORS", ()))
        tree = email.message_from_bytes(mail.raw[:_MAX_SCAN], policy=policy.compat32)
        for detector in detectors:
            temporary, permanent = detector().process(tree)
            if temporary or permanent:
                return detector.__name__, _failures(permanent, temporary)
    except Exception:  # noqa: S110 (a detector's bug on a hostile bounce: nothing read)
        pass
    return "", ()


def _failures(permanent: frozenset[bytes], temporary: frozenset[bytes]) -> tuple[Delivery, ...]:
    found = []
    for addresses, action, status in ((permanent, "failed", "5.0.0"), (temporary, "delayed", "")):
        for raw in sorted(addresses)[:_MAX_PARTS]:
            address = _address(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
            if "@" in address:
                found.append(Delivery(address, "", action, status, "no status given"))
    return tuple(found)


def _parts(tree: Message) -> Iterator[Message]:
    """Depth-first, bounded in count and depth; attached messages are not opened."""
    stack, seen = [(tree, 0)], 0
    while stack and seen < _MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part
        payload = part.get_payload()
        if part.get_content_maintype() == "multipart" and depth < _MAX_DEPTH:
            children = payload if isinstance(payload, list) else []
            stack.extend((p, depth + 1) for p in reversed(children) if isinstance(p, Message))


def _read_part(part: Message, deliveries: list[Delivery], returned: list[str]) -> None:
    kind = part.get_content_type()
    payload = part.get_payload()
    if kind == "message/delivery-status" and isinstance(payload, list):
        blocks = [b for b in payload if isinstance(b, Message)]
        deliveries += [d for d in map(_delivery, blocks[1:]) if d is not None]
    elif kind == "message/rfc822" and isinstance(payload, list) and payload:
        first = payload[0]
        if isinstance(first, Message):
            returned += _ids(str(first.get("Message-ID", "")))
    elif kind == "text/rfc822-headers":
        text = part.get_payload(decode=True)
        if isinstance(text, bytes):
            headers = HeaderParser().parsestr(text.decode("latin-1"))
            returned += _ids(str(headers.get("Message-ID", "")))


def _delivery(block: Message) -> Delivery | None:
    recipient = _address(_field(block, "Final-Recipient"))
    if not recipient:
        return None
    diagnostic = _field(block, "Diagnostic-Code")
    action = _field(block, "Action").lower()
    return Delivery(
        recipient,
        _address(_field(block, "Original-Recipient")),
        action,
        _status(_field(block, "Status"), diagnostic, action),
        diagnostic[:500],
    )


def _field(block: Message, name: str) -> str:
    return " ".join(str(block.get(name, "")).split())


def _address(value: str) -> str:
    """'rfc822; <Bob@Example.org>' -> 'bob@example.org'."""
    return value.rpartition(";")[2].strip().strip("<>").lower()[:320]


def _status(status: str, diagnostic: str, action: str) -> str:
    """The enhanced status code, else one read from the diagnostic; a failure with only a
    basic 5xx reply counts as 5.0.0."""
    for text in (status, diagnostic):
        found = _STATUS.search(text)
        if found:
            return ".".join(found.groups())
    basic = _BASIC.search(diagnostic)
    if basic:
        return f"{basic.group(1)}.0.0"
    return "5.0.0" if action == "failed" else ""


def _ids(value: str) -> list[str]:
    return list(_ANGLE_ID.findall(value))
