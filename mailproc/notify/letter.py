"""Compose one notification as bytes: headers that thread, identify us, and cannot be injected.

Pure. User text reaches headers only as the Subject and display names; both are folded to one
line with every control character removed before `email.headerregistry` encodes them (RFC 2047
for non-ASCII), so no text can start a header or add a recipient. The body is 7-bit
(quoted-printable or base64 as needed), so any relay takes it. An internationalised address
(RFC 6531, `jörg@exämple.de`) is written as UTF-8 and needs a server that offers SMTPUTF8
(mailproc.notify.sender). In-Reply-To and References are
written pre-folded, one id per line: the standard library would otherwise turn a long id into
an encoded word, which breaks threading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from mailproc.inbound.automatic import LOOP_HEADER

_POLICY = policy.SMTP.clone(cte_type="7bit")
_WRITE = _POLICY.clone(refold_source="none")  # keep our pre-folded threading headers
_UTF8 = _POLICY.clone(utf8=True)  # an internationalised address: sent with SMTPUTF8
_UTF8_WRITE = _UTF8.clone(refold_source="none")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")
# Internationalised addresses (RFC 6531) too: letters of any script, never a control
# character, space, or anything that delimits an address in a header.
_ADDRESS = re.compile(r"^[^\s@<>()\[\],;:\\\"\x00-\x1f\x7f-\x9f]{1,64}@[\w.-]{1,255}$")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]*")  # words only: nothing to quote
_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]{1,900}$")  # printable ASCII without < > and space
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")
MAX_SUBJECT = 300

AUTO_REPLIED = "auto-replied"  # an answer to a mail (RFC 3834)
AUTO_GENERATED = "auto-generated"  # news nobody asked for by writing


@dataclass(frozen=True, slots=True)
class Enclosure:
    """A file to attach, by reference: the bytes are the blob with this SHA-256, read by the
    sender when it composes the mail, so an outbox row stays small."""

    sha256: str
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Letter:
    subject: str
    text: str
    html: str | None
    from_name: str
    from_address: str
    to_name: str
    to_address: str
    reply_to: str
    message_id: str  # without angle brackets, as all ids here
    in_reply_to: str | None
    references: tuple[str, ...]
    auto_submitted: str
    date: datetime
    attachments: tuple[Enclosure, ...] = ()


def letter_to_json(letter: Letter) -> dict[str, Any]:
    data = {name: getattr(letter, name) for name in _LETTER_FIELDS}
    data["date"] = letter.date.isoformat()
    data["references"] = list(letter.references)
    data["attachments"] = [
        {"sha256": e.sha256, "filename": e.filename, "type": e.content_type, "size": e.size}
        for e in letter.attachments
    ]
    return data


_LETTER_FIELDS = tuple(f.name for f in fields(Letter))


def letter_from_json(data: dict[str, Any]) -> Letter:
    values = dict(data)
    values["date"] = datetime.fromisoformat(values["date"])
    values["references"] = tuple(values["references"])
    values["attachments"] = tuple(
        Enclosure(e["sha256"], e["filename"], e["type"], e["size"])
        for e in values.get("attachments", ())
    )
    return Letter(**values)


def check_addresses(letter: Letter) -> None:
    """Raises ValueError for an address mailproc will not write; cheap, so it runs at queue time
    and a bad address is reported with the change that caused it, not later by the sender."""
    for address in (letter.to_address, letter.from_address, letter.reply_to):
        if not is_address(address):
            raise ValueError(f"not an address mailproc sends to: {address!r}")


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """Header-safe text: no line breaks or control characters, spaces collapsed, and nothing
    that looks like an RFC 2047 encoded word: the header machinery would decode '=?…?=' in a
    name or subject — a CR encoded in it included — instead of quoting it."""
    flat = _SPACES.sub(" ", _CONTROL.sub(" ", text)).replace("=?", "= ?").strip()
    return flat[:limit].strip()


def tagged_subject(subject: str, number: int, proof: str = "") -> str:
    """Every subject carries [INC-n], whatever the template made of it; with `proof` (the
    recipient's signed tag, mailproc.signing.subject_token) as [INC-n.proof]."""
    clean, tag = one_line(subject), f"[INC-{number}]"
    signed = f"[INC-{number}.{proof}]" if proof else tag
    at = clean.lower().find(tag.lower())
    if at < 0:
        return f"{signed} {clean}".strip()
    return clean[:at] + signed + clean[at + len(tag) :] if proof else clean


def ascii_domain(address: str) -> str:
    """The address with an internationalised domain in its ASCII form (IDNA, `xn--…`), which
    every server takes; a non-ASCII local part stays as it is and needs SMTPUTF8."""
    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return address


def needs_smtputf8(*addresses: str) -> bool:
    return not all(ascii_domain(a).isascii() for a in addresses)


def is_address(value: str) -> bool:
    return _ADDRESS.match(value) is not None


def compose(letter: Letter, contents: Mapping[str, bytes] | None = None) -> bytes:
    """The mail as it goes on the wire, with the enclosures' bytes from `contents` (by
    SHA-256; one missing is a ValueError). Raises ValueError for an address we cannot write."""
    check_addresses(letter)
    to, sender, reply_to = map(
        ascii_domain, (letter.to_address, letter.from_address, letter.reply_to)
    )
    international = not all(a.isascii() for a in (to, sender, reply_to))
    msg = EmailMessage(policy=_UTF8 if international else _POLICY)
    msg.set_raw("From", _mailbox(letter.from_name, sender))
    msg.set_raw("To", _mailbox(letter.to_name, to))
    msg.set_raw("Reply-To", reply_to)
    _subject(msg, one_line(letter.subject))
    msg["Date"] = format_datetime(letter.date)
    msg["Message-ID"] = f"<{letter.message_id}>"
    _thread_headers(msg, letter)
    msg["Auto-Submitted"] = letter.auto_submitted
    msg["X-Auto-Response-Suppress"] = "All"  # asks Exchange not to send out-of-office replies
    msg[LOOP_HEADER] = letter.from_address
    msg.set_content(letter.text)
    if letter.html is not None:
        msg.add_alternative(letter.html, subtype="html")
    for enclosure in letter.attachments:
        content = (contents or {}).get(enclosure.sha256)
        if content is None:
            raise ValueError(f"the bytes of attachment {enclosure.filename!r} are not stored")
        maintype, subtype = _mime_type(enclosure.content_type).split("/")
        name = one_line(enclosure.filename, 200) or "attachment"
        if maintype == "message":  # a message/* part may not be base64 (RFC 2046): as a file
            maintype, subtype, name = "application", "octet-stream", _eml(name)
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes(policy=_UTF8_WRITE if international else _WRITE)


def _eml(name: str) -> str:
    return name if name.lower().endswith(".eml") else f"{name}.eml"


def _mime_type(value: str) -> str:
    """The sender's type if it is a plain type/subtype, else application/octet-stream: the
    type is a stranger's text and goes into a header."""
    value = value.strip().lower()
    return value if _MIME_TYPE.fullmatch(value) else "application/octet-stream"


def _mailbox(name: str, address: str) -> str:
    """`name <address>`, written by us: a short name of plain words as is, any other as
    encoded words. The standard library's folder drops the quotes of a long name with a colon
    or comma in it, which turns a name like 'x…x:evil@example.net,' into a group with another
    recipient."""
    name = one_line(name, 200)
    if not name:
        return address
    if _PLAIN_NAME.fullmatch(name) and len(name) <= 40:
        return f"{name} <{address}>"
    return f"{Header(name, 'utf-8', header_name='From').encode(chr(10))} <{address}>"


def _subject(msg: EmailMessage, subject: str) -> None:
    """Folded by us (`_fold`); non-ASCII subjects as whole encoded words: the standard
    library's folder would leave a doubled space where it breaks the line next to an encoded
    word."""
    if subject.isascii():
        msg.set_raw("Subject", _fold(subject, len("Subject: ")))
    else:
        msg.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode("\n"))


def _fold(text: str, taken: int) -> str:
    """Folded at spaces, never before the first word: the standard library's folder breaks a
    long subject right after "Subject:", and the unfolded value then starts with a space."""
    lines, current, width = [], "", taken
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and width + len(candidate) > 78:
            lines.append(current)
            current, width = word, 1
        else:
            current = candidate
    return "\n ".join([*lines, current])


def _thread_headers(msg: EmailMessage, letter: Letter) -> None:
    if letter.in_reply_to and _ID.match(letter.in_reply_to):
        msg.set_raw("In-Reply-To", f"<{letter.in_reply_to}>")
    refs = [r for r in dict.fromkeys(letter.references) if _ID.match(r)]
    if refs:
        msg.set_raw("References", "\n ".join(f"<{r}>" for r in refs))
