"""Hypothesis strategies for hostile mail, and how many cases a fuzz run tries.

CI runs `FUZZ_CASES` examples per property (a bounded number, so the suite stays fast);
`MAILPROC_FUZZ_CASES=20000 ./scripts/test tests/inbound/test_properties.py` runs more locally.
"""

from __future__ import annotations

import base64
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ_CASES = int(os.environ.get("MAILPROC_FUZZ_CASES", "200"))
fuzz = settings(
    max_examples=FUZZ_CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text as mail carries it, control characters and line breaks included; no lone surrogates,
# which no decoder produces from bytes.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
NASTY = st.sampled_from(
    [
        "\r\n",
        "\n",
        "\x00",
        "\u2028",
        "\u202e",
        "Bcc: evil@example.net",
        "=?utf-8?q?=0D=0A?=",
        "=?x-bad?b?%%?=",
        "<evil@example.net>",
        '"',
        "\\",
        ";",
        ",",
        "@",
        "{{ 7*7 }}",
    ]
)
MIXED = st.lists(st.one_of(TEXT, NASTY), max_size=6).map("".join)
HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Auto-Submitted",
        "Authentication-Results",
        "Delivered-To",
        "X-Anything",
    ]
)
CONTENT_TYPES = st.sampled_from(
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "text/plain; charset=x-unknown",
        "text/html; charset=iso-8859-1",
        "application/zip; name=../../x.zip",
        "message/rfc822",
        "message/delivery-status",
        "text/rfc822-headers",
        "multipart/mixed",
    ]
)


def encoded_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


@st.composite
def headers(draw: st.DrawFn) -> str:
    lines = []
    for name, value in draw(st.lists(st.tuples(HEADER_NAMES, MIXED), max_size=10)):
        if draw(st.booleans()):
            value = encoded_word(value)
        lines.append(f"{name}: {value}")
    return "\r\n".join(lines)


@st.composite
def bodies(draw: st.DrawFn, depth: int = 0) -> str:
    """A leaf, or a multipart of random parts (its boundary sometimes wrong or missing)."""
    if depth >= 3 or draw(st.integers(0, 2)) > 0:
        ctype = draw(CONTENT_TYPES)
        cte = draw(st.sampled_from(["", "base64", "quoted-printable", "8bit", "x-bogus"]))
        head = f"Content-Type: {ctype}\r\n" + (
            f"Content-Transfer-Encoding: {cte}\r\n" if cte else ""
        )
        return head + "\r\n" + draw(MIXED)
    boundary = draw(st.sampled_from(["b", "b\r\n", "", "--", "=_x"]))
    parts = draw(st.lists(bodies(depth + 1), max_size=3))
    inner = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts)
    ending = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}"]))
    return f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n{inner}{ending}'


@st.composite
def mails(draw: st.DrawFn, sender: bool = False) -> bytes:
    """A mail with a header block of random fields and a random MIME tree, in some charset,
    with CRLF or bare LF line ends; sometimes with raw bytes thrown in. `sender`: with one
    plain From field (random ones renamed), so that most such mail is applied, not refused."""
    text = "X-Fuzz: 1\r\n" + draw(headers()) + "\r\n" + draw(bodies())
    if sender:
        text = "From: fuzz@example.org\r\n" + text.replace("\r\nFrom:", "\r\nX-From:")
    if "\r\n" in text and draw(st.booleans()):
        text = text.replace("\r\n", "\n")
    raw = text.encode(draw(st.sampled_from(["utf-8", "latin-1", "cp1252"])), "replace")
    if draw(st.booleans()):
        raw += draw(st.binary(max_size=40))
    return raw
