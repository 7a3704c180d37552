"""Build test mails as bytes, the way mail clients shape them.

The embedded configuration trusts Authentication-Results from mx.example.com, the demo
organisation's mail server: mail from its own domain, example.com (the solvers, the team
addresses), carries that server's dkim=pass verdict, as internal mail signed by the
organisation's outgoing server would. `authenticated` overrides that either way.
"""

from __future__ import annotations

import email.policy
import itertools
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

_counter = itertools.count(1)
TRUSTED_SERVER = "mx.example.com"


def make_mail(
    subject: str = "Exchange is down",
    body: str = "Nobody can send mail since 9:00.",
    sender: str = "Alice <alice@example.org>",
    to: str = "mail-support@example.com",
    cc: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    date: datetime | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
    headers: dict[str, str] | None = None,
    authenticated: bool | None = None,
    smtputf8: bool = False,  # headers in raw UTF-8 (RFC 6532), as an SMTPUTF8 client sends them
) -> bytes:
    msg = EmailMessage()
    domain = parseaddr(sender)[1].rpartition("@")[2].lower()
    signed = domain == "example.com" if authenticated is None else authenticated
    if signed:  # as the border adds them: its verdict above its own Received field
        msg["Authentication-Results"] = f"{TRUSTED_SERVER}; dkim=pass header.d={domain}"
        msg["Received"] = f"from mail.{domain} (mail.{domain} [192.0.2.25]) by {TRUSTED_SERVER}"
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<{message_id or f'm{next(_counter)}@test.example'}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    for filename, ctype, content in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes(policy=email.policy.SMTPUTF8) if smtputf8 else msg.as_bytes()


def message_id_of(raw: bytes) -> str:
    for line in raw.split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
    raise ValueError("no Message-ID")
