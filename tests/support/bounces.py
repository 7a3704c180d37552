"""Bounces and auto-replies as real mail servers and mail programs write them."""

from __future__ import annotations

import itertools
from email.message import EmailMessage

_ids = itertools.count(1)


def dsn(
    returned_id: str,
    recipient: str,
    status: str = "5.1.1",
    action: str = "failed",
    *,
    headers_only: bool = False,
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
) -> bytes:
    """A Postfix-style RFC 3464 report: text, the status fields, the returned message (whole,
    or its headers only as Gmail sends them)."""
    n = next(_ids)
    returned = (
        f"From: Service desk <mail-support@example.com>\r\nTo: {recipient}\r\n"
        f"Subject: [INC-1] We received your report\r\nMessage-ID: <{returned_id}>\r\n"
        "Auto-Submitted: auto-replied\r\n"
    )
    kind = "text/rfc822-headers" if headers_only else "message/rfc822"
    body = returned if headers_only else returned + "\r\nWe received your report.\r\n"
    return (
        "Return-Path: <>\r\n"
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n"
        "To: mail-support@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <bounce.{n}@mx.example.org>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: {diagnostic.format(r=recipient)}\r\n\r\n"
        f"--B\r\nContent-Type: {kind}\r\n\r\n{body}\r\n--B--\r\n"
    ).encode()


def vacation_reply(
    sender: str, to_id: str, subject: str, rfc3834: bool = True, thread: bool = True
) -> bytes:
    """An out-of-office answer. With `rfc3834`, marked as such (most are); without, a badly
    behaved responder: a fresh mail that only a person could tell from a human one."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "mail-support@example.com"
    msg["Subject"] = f"Out of office: {subject}"
    msg["Message-ID"] = f"<vacation.{next(_ids)}@example.org>"
    if thread:
        msg["In-Reply-To"] = f"<{to_id}>"
    if rfc3834:
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Autoreply"] = "yes"
    msg.set_content("I am out of the office until Monday and will read your mail then.")
    return msg.as_bytes()
