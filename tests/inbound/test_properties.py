"""Property-based tests (hypothesis) of what hostile input can and cannot do.

The parser keeps every field clean and takes the sender only from the address; the command
language never raises and reads back what was written; no user text can add a header or a
recipient to what mailproc sends; trace headers never change a fingerprint; bounces and tokens
never raise. `MAILPROC_FUZZ_CASES` sets the cases per property (tests/fuzzing.py).
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailproc import signing
from mailproc.inbound import bounces, mime
from mailproc.inbound import fingerprint as fingerprint_module
from mailproc.inbound import parse as parse_module
from mailproc.inbound.addresses import _split, split_addresses
from mailproc.inbound.fingerprint import fingerprint
from mailproc.inbound.parse import InboundMail, MailError, parse_mail
from mailproc.inbound.subject import BadCommand, Command, parse_subject
from mailproc.notify.letter import AUTO_GENERATED, Letter, compose, one_line
from mailproc.vocabulary import Verb
from tests.support.fuzzing import MIXED, TEXT, encoded_word, fuzz, mails

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(mail: InboundMail) -> None:
    """What every consumer of a parsed mail relies on."""
    for line in (mail.subject, *(a.name for a in (*mail.to, *mail.cc)), mail.message_id or ""):
        assert not CONTROL.search(line), repr(line)
        line.encode("utf-8")
    for address in (*mail.to, *mail.cc, *([mail.sender] if mail.sender else [])):
        assert not CONTROL.search(address.email)
        assert " " not in address.email or address.email.startswith('"')  # "a b"@x is legal
        assert address.email == "" or (address.email.count("@") >= 1 and len(address.email) <= 254)
    for ref in (*mail.in_reply_to, *mail.references):
        assert ref and not any(c.isspace() for c in ref) and len(ref) <= 900
    assert "\x00" not in mail.text and "\r" not in mail.text
    for attachment in mail.attachments:
        assert not CONTROL.search(attachment.filename)
        assert "/" not in attachment.filename and "\\" not in attachment.filename


@fuzz
@given(mails())
def test_a_mail_of_random_headers_and_mime_parses_clean_or_is_refused(raw):
    try:
        mail = parse_mail(raw)
    except MailError as exc:
        assert str(exc)
        return
    clean(mail)


@fuzz
@given(MIXED, st.sampled_from(["alice@example.org", "x.y+tag@sub.example.com"]))
def test_the_sender_is_the_angle_address_whatever_the_encoded_name_holds(name, address):
    raw = f"From: {encoded_word(name)} <{address}>\r\nSubject: x\r\n\r\nbody\r\n".encode()
    mail = parse_mail(raw)
    assert mail.sender is not None and mail.sender.email == address
    clean(mail)


SUBJECT_WORDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 .,!?-]{0,30}", fullmatch=True)
PRIORITIES = {"P1": "P1", "critical": "P1", "high": "P2", "P3": "P3", "medium": "P3", "low": "P4"}
NAME = st.from_regex(r"[a-z]{2,8}", fullmatch=True)
BRACKETS = st.lists(st.sampled_from(["[", "]", "ASSIGN", " ", "INC-", "9", "CLOSE"])).map("".join)
COMMANDS = st.one_of(
    st.sampled_from([("CLOSE", None), ("RESOLVE", None), ("REOPEN", None), ("ACK", None)]),
    st.tuples(
        st.just("ASSIGN"), st.one_of(st.none(), st.from_regex(r"[a-z]{2,8}", fullmatch=True))
    ),
    st.tuples(st.just("PRIORITY"), st.sampled_from(sorted(PRIORITIES))),
    st.tuples(st.just("MOVE"), st.from_regex(r"[a-z]{2,8}", fullmatch=True)),
    st.tuples(st.just("RELATE"), st.integers(1, 10**9).map(lambda n: f"PRB-{n}")),
    st.tuples(st.sampled_from(["IMPACT", "URGENCY"]), st.sampled_from(["high", "Medium", "LOW"])),
)


ADDRESS_PIECES = st.lists(
    st.sampled_from(['"', "<", ">", "(", ")", ",", ";", ":", "\\", " ", "\t", "@", "a", "é"])
    | st.sampled_from(["=?utf-8?q?x?=", "user@corp.example", '"Doe, J"', "Name"])
    | MIXED,
    max_size=12,
).map("".join)


@fuzz
@given(ADDRESS_PIECES, ADDRESS_PIECES, st.sampled_from(["", " ", "\t ", " x", ">"]))
def test_the_one_mailbox_shortcut_reads_an_address_header_as_the_loop_does(name, addr, end):
    for value in (name, f"{name}<{addr}>{end}", f"{name}<{addr.strip('<>')}>{end}"):
        assert split_addresses(value) == _split(value), repr(value)


@fuzz
@given(SUBJECT_WORDS, st.lists(COMMANDS, max_size=5), st.integers(0, 10**6), st.booleans())
def test_commands_read_back_as_written(title, commands, number, lower):
    written = [f"[{v.lower() if lower else v}{f' {a}' if a else ''}]" for v, a in commands]
    subject = f"Re: [INC-{number}] {title} {' '.join(written)}"
    parsed = parse_subject(subject)
    assert parsed.incident == number
    assert parsed.title == " ".join(title.split())
    expected = [(Verb(v), _normal(v, a)) for v, a in commands]
    assert [(c.verb, c.arg) for c in parsed.commands if isinstance(c, Command)] == expected
    assert [c.text for c in parsed.commands] == written


def _normal(verb: str, arg: str | None) -> str | None:
    if verb == "PRIORITY":
        return PRIORITIES[arg or ""]
    if verb == "RELATE":
        return (arg or "").removeprefix("PRB-")
    return arg.lower() if verb in ("IMPACT", "URGENCY") and arg else arg


@fuzz
@given(
    st.one_of(
        TEXT, MIXED, st.lists(st.sampled_from(["[", "]", "ASSIGN", " ", "INC-", "9"])).map("".join)
    )
)
def test_the_command_language_never_raises(subject):
    parsed = parse_subject(subject)
    assert "\n" not in parsed.title or "\n" in subject
    for item in parsed.commands:
        assert item.text.startswith("[") and item.text.endswith("]")
        if isinstance(item, BadCommand):
            assert item.reason


LETTER = Letter(
    subject="s",
    text="t",
    html=None,
    from_name="Service desk",
    from_address="mail-support@example.com",
    to_name="",
    to_address="alice@example.org",
    reply_to="mail-support+INC-5.aaaaaaaaaaaaaaaa@example.com",
    message_id="mp1.5.aaaaaaaa.bbbbbbbb.cccccccccccccccc@example.com",
    in_reply_to="orig@client.example",
    references=("orig@client.example",),
    auto_submitted=AUTO_GENERATED,
    date=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
)
SENT_HEADERS = [
    "auto-submitted",
    "content-transfer-encoding",
    "content-type",
    "date",
    "from",
    "in-reply-to",
    "message-id",
    "mime-version",
    "references",
    "reply-to",
    "subject",
    "to",
    "x-auto-response-suppress",
    "x-mailproc-loop",
]


@fuzz
@given(MIXED, MIXED, MIXED, MIXED, st.one_of(st.none(), MIXED))
def test_no_user_text_adds_a_header_or_a_recipient(subject, from_name, to_name, text, html):
    letter = replace(
        LETTER, subject=subject, from_name=from_name, to_name=to_name, text=text, html=html
    )
    raw = compose(letter)
    assert raw.isascii()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    expected = [h for h in SENT_HEADERS if html is None or h != "content-transfer-encoding"]
    assert sorted(key.lower() for key in msg) == expected  # each exactly once
    assert [a.addr_spec for a in msg["To"].addresses] == ["alice@example.org"]
    assert [a.addr_spec for a in msg["From"].addresses] == ["mail-support@example.com"]
    assert [a.addr_spec for a in msg["Reply-To"].addresses] == [LETTER.reply_to]
    assert " ".join(str(msg["Subject"]).split()) == " ".join(one_line(subject).split())
    assert parse_mail(raw).sender is not None


TRACE = st.lists(
    st.sampled_from(
        [
            "Received: from mx.example.com (1.2.3.4) by imap; Mon, 23 Nov 2026 09:00 +0000",
            "Delivered-To: support@example.com",
            "X-Original-To: mail-support@example.com",
            "Return-Path: <alice@example.org>",
            "Authentication-Results: mx.example.com; dkim=pass header.d=example.org",
            "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; b=abc",
            "X-MS-Exchange-Organization-SCL: 1",
        ]
    ),
    max_size=5,
)


@fuzz
@given(mails(), TRACE, st.booleans())
def test_trace_headers_and_line_ends_never_change_a_fingerprint(raw, trace, bare_lf):
    """Headers the servers on the way add above the first hop's Received (submission)."""
    submitted = FIRST_HOP + raw
    traced = "".join(f"{line}\r\n" for line in trace).encode() + submitted
    if bare_lf:
        traced = traced.replace(b"\r\n", b"\n")
    assert fingerprint(traced) == fingerprint(submitted)


FIRST_HOP = b"Received: from [192.0.2.7] by smtp.example.org with ESMTPSA id 4Q2; Mon, 23 Nov\r\n"


@fuzz
@given(mails())
def test_reading_any_mail_as_a_bounce_never_raises(raw):
    try:
        mail = parse_mail(raw)
    except MailError:
        return
    report = bounces.read_report(mail)
    assert all(d.recipient for d in report.deliveries)


@fuzz
@given(st.integers(1, 10**11), st.emails(), st.emails(), st.binary(min_size=16, max_size=32))
def test_a_reply_token_vouches_for_its_person_and_incident_only(number, person, other, key):
    address = signing.reply_address(key, "support@example.com", number, person)
    assert signing.vouches([key], [f"Name <{address}>"], number, person)
    assert not signing.vouches([key], [address], number + 1, person)
    assert other.lower() == person.lower() or not signing.vouches([key], [address], number, other)
    assert not signing.vouches([key + b"x"], [address], number, person)


# The shortcuts for common input give what the general code gives, on any input.
BLANKY = st.binary(max_size=40).map(
    lambda b: b.translate(bytes.maketrans(b"\x00\x01\x02\x03", b" \t\r "))
)
TYPES = st.sampled_from(["text/plain", "multipart/mixed", "text/html; charset=", "x/y; a=b;"])


@fuzz
@given(BLANKY)
def test_the_fingerprint_folds_blanks_as_the_regular_expression_does(value):
    assert fingerprint_module._spaced(value) == fingerprint_module._SPACE.sub(b" ", value).strip()


@fuzz
@given(st.text(max_size=40) | MIXED)
def test_a_clean_field_is_cleaned_as_by_the_regular_expression(value):
    expected = parse_module._CONTROL.sub("", value.replace("\t", " ")).strip()
    assert parse_module._clean(value) == expected


@fuzz
@given(st.tuples(TYPES, st.text(max_size=30)).map("".join), st.booleans())
def test_a_remembered_content_type_is_what_the_part_says(value, digest):
    raw = f"Content-Type: {value}\n\nbody".encode(errors="surrogateescape")
    part = mime.read_part(raw, 0, len(raw), mime.DEFAULT_LIMITS)
    assert part.fields
    if digest:
        part.default_type = "message/rfc822"
    try:
        expected = parse_module._read_type(part.headers)
    except Exception as exc:  # the caller quarantines the part; the shortcut must too
        with pytest.raises(type(exc)):
            parse_module._type_of(part)
        return
    assert parse_module._type_of(part) == expected
