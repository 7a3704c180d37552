"""Mails crafted to exhaust memory or time, built when a test or benchmark asks for them.

Each is what an attacker would send to a public support address: a header the standard
library's parser is quadratic in, a body of millions of empty lines, and so on. They are made
here in code (seconds, no committed megabytes) and shared by the memory test
(tests/inbound/test_memory.py, under an address-space limit) and the benchmark
(bench/memory.py, peak RSS per case). `outcome` is what the Desk must make of each.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from tests.support import hostile

MiB = 1024 * 1024


@dataclass(frozen=True)
class Crafted:
    name: str
    build: Callable[[], bytes]
    outcome: str  # "processed" or "quarantined"
    reason: str  # a part of the quarantine reason, or "" for processed mail


def head(subject: str = "crafted", extra: str = "", message_id: str = "crafted@x") -> bytes:
    return hostile.head("MIME-Version: 1.0\r\n" + extra, message_id, subject)


def encoded_words(count: int = 100_000) -> bytes:
    """The critical finding: a 2.5 MB Subject of 100,000 RFC 2047 encoded words."""
    words = "".join("\r\n =?utf-8?q?abcdefghij?=" for _ in range(count))
    mail = head("x", message_id=f"words{count}@example.net") + b"\r\nhi\r\n"
    return mail.replace(b"Subject: x", b"Subject:" + words.encode())


def some_encoded_words() -> bytes:
    """Within the header block's limit, over the encoded words of one field."""
    return encoded_words(2000)


def blank_lines(size: int = 25_000_000) -> bytes:
    """25 MB of empty lines as the body (2.4 GB in the standard library's parser)."""
    return head(message_id="blank@example.net") + b"Content-Type: text/plain\r\n\r\n" + b"\n" * size


def quoted_printable(size: int = 9_000_000) -> bytes:
    """9 MB of quoted-printable soft line breaks (647 MB in the standard library)."""
    extra = (
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return head(message_id="qp@example.net", extra=extra) + b"=C3=A9=\r\n" * (size // 9)


def many_fields(count: int = 100_000) -> bytes:
    fields = "".join(f"X-Junk: {n}\r\n" for n in range(count))
    return head(message_id="fields@example.net", extra=fields) + b"\r\nhi\r\n"


def long_address_list(count: int = 3_000) -> bytes:
    cc = ",\r\n ".join(f"=?utf-8?q?N{n}?= <p{n}@example.org>" for n in range(count))
    return head(message_id="cc@example.net", extra=f"Cc: {cc}\r\n") + b"\r\nhi\r\n"


def many_parts(count: int = 100_000) -> bytes:
    part = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    extra = 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return head(message_id="parts@example.net", extra=extra) + part * count + b"--b--\r\n"


def with_attachment(message_id: str, encoded: bytes) -> bytes:
    """A text part and an application/octet-stream part of these base64 lines."""
    extra = 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    return (
        head(message_id=message_id, extra=extra)
        + b"--b\r\nContent-Type: text/plain\r\n\r\nsee the log\r\n--b\r\n"
        + b'Content-Type: application/octet-stream; name="log.bin"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"\r\n--b--\r\n"
    )


def big_attachment(size: int = 18 * MiB) -> bytes:
    """An ordinary large mail: a text part and a base64 attachment."""
    return with_attachment(
        "attachment@example.net", base64.encodebytes(bytes(range(256)) * (size // 256))
    )


def sparse_base64(size: int = 20_000_000) -> bytes:
    """A base64 attachment with a line break after every four characters."""
    return with_attachment("sparse@example.net", b"QUJD\n" * (size // 5))


def html_only(size: int = 18 * MiB) -> bytes:
    """A body of HTML alone, 18 MiB of it (lxml's tree for it would take 650 MiB)."""
    extra = "Content-Type: text/html; charset=utf-8\r\n\r\n"
    paragraphs = b"<p>word <b>bold</b> &amp; text</p>\n" * (size // 36)
    return head(message_id="html@example.net", extra=extra) + paragraphs


def deep_nesting(levels: int = 100_000) -> bytes:
    opening = b"".join(
        b'--x%d\r\nContent-Type: multipart/mixed; boundary="x%d"\r\n\r\n' % (n, n + 1)
        for n in range(levels)
    )
    extra = 'Content-Type: multipart/mixed; boundary="x0"\r\n\r\n'
    return head(message_id="deep@example.net", extra=extra) + opening + b"--x%d--\r\n" % levels


def long_lines(size: int = 24_000_000) -> bytes:
    """One 24 MB line of text."""
    return head(message_id="line@example.net") + b"\r\n" + b"a" * size + b"\r\n"


CASES = (
    Crafted("100,000 encoded words in the Subject", encoded_words, "quarantined", "header block"),
    Crafted("2,000 encoded words in the Subject", some_encoded_words, "quarantined", "encoded"),
    Crafted("25 MB of blank lines", blank_lines, "processed", ""),
    Crafted("9 MB quoted-printable soft breaks", quoted_printable, "processed", ""),
    Crafted("100,000 header fields", many_fields, "quarantined", "header fields"),
    Crafted("3,000 addresses in Cc", long_address_list, "quarantined", "header field"),
    Crafted("100,000 MIME parts", many_parts, "processed", ""),
    Crafted("18 MiB base64 attachment", big_attachment, "processed", ""),
    Crafted("20 MB base64, a line per 4 bytes", sparse_base64, "processed", ""),
    Crafted("100,000 nested multiparts", deep_nesting, "processed", ""),
    Crafted("18 MiB of HTML alone", html_only, "processed", ""),
    Crafted("one 24 MB line", long_lines, "processed", ""),
)
