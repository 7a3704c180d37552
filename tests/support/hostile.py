"""Hand-made hostile and broken mails, each with what mailproc must make of it.

Shared by the Desk tests (tests/desk/test_hostile_input.py) and the Dovecot test that
APPENDs them between good mails (tests/sources/test_hostile_imap.py). Built in code, so each one
says in a line what is wrong with it. Every one must be applied or quarantined with a reason;
none may raise, stall or take long.
"""

from __future__ import annotations

import base64
import io
import itertools
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage

SIZE_LIMIT = 400_000  # limits.max_message_bytes in the tests that use OVERSIZED


@dataclass(frozen=True)
class Hostile:
    name: str
    raw: bytes
    outcome: str  # "processed" or "quarantined"
    why: str  # what is wrong with it


_ids = itertools.count(1)


def head(extra: str = "", message_id: str | None = None, subject: str = "hostile") -> bytes:
    mid = message_id or f"hostile.{next(_ids)}@example.net"
    lines = [
        "From: Eve <eve@example.net>",
        "To: support@example.com",
        f"Subject: {subject}",
        "Date: Mon, 23 Nov 2026 09:00:00 +0000",
        f"Message-ID: <{mid}>",
    ]
    return ("\r\n".join(lines) + "\r\n" + extra).encode()


def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ndeep down\r\n"
    for level in range(depth):
        b = f"deep{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + body
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return body


def _zip_bomb() -> bytes:
    """10 MB of zeros compressed to about 10 KB: harmless unless someone unpacks it."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * 10_000_000)
        archive.writestr("../../../etc/cron.d/evil", b"* * * * * root sh\n")
    return data.getvalue()


ZIP = _zip_bomb()
BAD_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\system32\\evil.dll",
    "evil\x07name\r\n.txt",
    "invoice\u202efdp.exe",
    "x" * 1000 + ".pdf",
    "",
]


def _attachments() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Eve <eve@example.net>"
    msg["To"] = "support@example.com"
    msg["Subject"] = "attachments with hostile names"
    msg["Message-ID"] = "<names.x@example.net>"
    msg.set_content("see attached")
    msg.add_attachment(ZIP, maintype="application", subtype="zip", filename="bomb.zip")
    for name in BAD_NAMES:
        msg.add_attachment(b"payload", maintype="application", subtype="octet-stream")
        part = msg.get_payload()[-1]
        part.replace_header("Content-Disposition", "attachment")
        if name:
            encoded = base64.b64encode(name.encode()).decode()
            part.set_param("filename", f"=?utf-8?b?{encoded}?=", header="Content-Disposition")
    return msg.as_bytes()


def _cases() -> list[Hostile]:
    crlf_name = base64.b64encode(b"Boss\r\nattacker@evil.example").decode()
    return [
        Hostile("empty", b"", "quarantined", "no bytes at all"),
        Hostile(
            "no header block", b"just some text\r\nno headers\r\n", "quarantined", "no headers"
        ),
        Hostile(
            "multipart without boundary",
            head("MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\nhello\r\n"),
            "processed",
            "Content-Type multipart without its boundary parameter",
        ),
        Hostile(
            "unterminated multipart",
            head('Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: te'),
            "processed",
            "a boundary opened and never closed, the part cut in its header",
        ),
        Hostile(
            "missing headers",
            b"X-Nothing: here\r\n\r\nno From, no Subject, no Message-ID, no Date\r\n",
            "quarantined",
            "none of the usual headers: no From, so no sender",
        ),
        Hostile(
            "duplicated headers",
            b"From: Eve <eve@example.net>\r\nFrom: Tina <tina@example.com>\r\n"
            b"Subject: first\r\nSubject: second\r\nMessage-ID: <dup.1@example.net>\r\n"
            b"Message-ID: <dup.2@example.net>\r\nTo: support@example.com\r\n\r\ntwo of each\r\n",
            "quarantined",
            "From, Subject and Message-ID twice: which From is the sender?",
        ),
        Hostile(
            "unknown charset",
            head('Content-Type: text/plain; charset="x-no-such-charset-42"\r\n\r\n')
            + b"K\xe4se\r\n",
            "processed",
            "a charset no codec knows",
        ),
        Hostile(
            "wrong charset",
            head('Content-Type: text/plain; charset="utf-8"\r\n\r\n') + "Straße €".encode("cp1252"),
            "processed",
            "declared utf-8, written in cp1252",
        ),
        Hostile(
            "8-bit headers",
            b"From: J\xc3\xb6rg \xe4 <joerg@example.net>\r\nTo: support@example.com\r\n"
            b"Subject: Stra\xdfe \xe2\x80\x93 kaputt\r\nMessage-ID: <8bit.x@example.net>\r\n"
            b"\r\nhi\r\n",
            "processed",
            "raw UTF-8 and Latin-1 bytes in headers",
        ),
        Hostile(
            "NUL bytes",
            b"From: Eve\x00 <eve@example.net>\r\nTo: support@example.com\r\n"
            b"Subject: nul\x00 here\r\nMessage-ID: <nul.x@example.net>\r\n\r\nbody\x00with nul\r\n",
            "processed",
            "NUL in a display name, the subject and the body",
        ),
        Hostile(
            "CR/LF in a display name",
            f"From: =?utf-8?b?{crlf_name}?= <eve@example.net>\r\nTo: support@example.com\r\n"
            "Subject: crlf\r\nMessage-ID: <crlf.x@example.net>\r\n\r\nhi\r\n".encode(),
            "processed",
            "an encoded name holding a line break and another address",
        ),
        Hostile(
            "deep nesting",
            head("MIME-Version: 1.0\r\n", "deep.x@example.net") + _nested(3000),
            "processed",
            "3000 nested multiparts",
        ),
        Hostile(
            "oversized",
            head("\r\n", "big.x@example.net") + b"x" * (SIZE_LIMIT + 1),
            "quarantined",
            "larger than limits.max_message_bytes",
        ),
        Hostile("attachment names", _attachments(), "processed", "a zip bomb, traversal names"),
        Hostile(
            "long Message-ID",
            head("\r\nbody\r\n", "x" * 3000 + "@example.net"),
            "processed",
            "a Message-ID longer than any column",
        ),
        Hostile(
            "long address",
            b"From: " + b"a" * 400 + b"@example.net\r\nTo: support@example.com\r\n"
            b"Subject: long\r\nMessage-ID: <longaddr.x@example.net>\r\n\r\nhi\r\n",
            "quarantined",
            "a From address longer than SMTP allows: no sender we could answer",
        ),
        Hostile(
            "broken base64",
            head("Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64@@@\r\n====\r\n"),
            "processed",
            "a base64 body that is not base64",
        ),
        Hostile(
            "binary body",
            head("\r\n", "binary.x@example.net") + bytes(range(256)) * 20,
            "processed",
            "every byte value in the body",
        ),
        Hostile(
            "many headers",
            head(
                "".join(f"X-Header-{n}: {n}\r\n" for n in range(5000)) + "\r\nhi\r\n",
                "many.x@e.net",
            ),
            "quarantined",
            "5000 header fields (limits.header_fields: 1000)",
        ),
        Hostile(
            "huge header line",
            head("\r\nhi\r\n", "huge.x@example.net", "y" * 150_000),
            "quarantined",
            "a 150 KB subject (limits.header_field_bytes: 100 KiB)",
        ),
        Hostile(
            "bare CR line ends",
            b"From: eve@example.net\rTo: support@example.com\rSubject: cr\r\rbody\r",
            "processed",
            "old Mac line ends",
        ),
        Hostile(
            "template injection",
            head(
                "\r\n{{ 7*7 }} {% for x in range(9) %}loop{% endfor %} ${7*7}\r\n",
                "tpl.x@e.net",
                "{{ ''.__class__.__mro__ }} {{ config }}",
            ),
            "processed",
            "Jinja syntax in the subject and the body",
        ),
    ]


CASES = _cases()
