"""parse_mail: decoding, repair and robustness against what real mail servers deliver."""

import base64
import hashlib
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailproc.inbound import mime
from mailproc.inbound.parse import Address, HeaderLimits, InboundMail, MailError, parse_mail

DATA = Path(__file__).resolve().parent.parent / "data" / "mail"


def load(name: str) -> InboundMail:
    return parse_mail((DATA / name).read_bytes())


def mail(headers: str, body: bytes = b"Hello\r\n", *, raw_headers: bytes = b"") -> bytes:
    """A minimal message; `headers` uses '\\n' and may override the defaults."""
    base = {
        "from": "Tina <tina@example.com>",
        "to": "support@example.com",
        "subject": "Test",
        "date": "Tue, 3 Mar 2026 10:00:00 +0100",
        "message-id": "<t1@example.com>",
    }
    lines = [line for line in headers.split("\n") if line]
    named = {line.split(":", 1)[0].lower() for line in lines if not line[0].isspace()}
    lines += [f"{k.title()}: {v}" for k, v in base.items() if k not in named]
    head = "\r\n".join(lines).encode("ascii") + b"\r\n" + raw_headers
    return head + b"\r\n" + body


def utf8_encodable(value: object) -> bool:
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, tuple):
        return all(utf8_encodable(v) for v in value)
    elif isinstance(value, Address):
        return utf8_encodable(value.name) and utf8_encodable(value.email)
    return True


# --- headers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("=?UTF-8?B?U3TDtnJ1bmc6IFZQTiDigJMgZHJpbmdlbmQ=?=", "Störung: VPN – dringend"),
        ("=?utf-8?q?St=C3=B6rung=3A_VPN?=", "Störung: VPN"),
        ("Re: =?ISO-8859-2?Q?=BElu=BBou=E8k=FD_k=F9=F2?=", "Re: žluťoučký kůň"),
        ("=?KOI8-R?B?8NLP29Ug0M/Nz97Y?=", "Прошу помочь"),
        ("=?ISO-2022-JP?B?GyRCPmMzMkpzOXAbKEI=?=", "障害報告"),
        ("=?Shift_JIS?B?g3aDioOTg16BWw==?=", "プリンター"),
        ("=?utf-8?q?Teil_1?=\n =?utf-8?q?_und_Teil_2?=", "Teil 1 und Teil 2"),
        ("Long subject\n\tcontinued here", "Long subject continued here"),
        ("=?utf-8?q?evil=0D=0ABcc=3A_x=40y=2Ez?=", "evilBcc: x@y.z"),
        ("", ""),
    ],
)
def test_subject_is_decoded_and_unfolded(header: str, expected: str) -> None:
    assert parse_mail(mail(f"Subject: {header}")).subject == expected


@pytest.mark.parametrize(
    ("raw_subject", "expected"),
    [
        ("Straße kaputt".encode(), "Straße kaputt"),
        ("Straße “kaputt”".encode("cp1252"), "Straße “kaputt”"),
    ],
)
def test_raw_8bit_subject_is_decoded_with_a_defect(raw_subject: bytes, expected: str) -> None:
    raw = mail("Subject: placeholder").replace(b"placeholder", raw_subject)
    parsed = parse_mail(raw)
    assert parsed.subject == expected
    assert parsed.headers["subject"] == (expected,)
    assert any("8-bit" in d for d in parsed.defects)


def test_missing_subject_is_empty() -> None:
    raw = b"From: a@example.com\r\n\r\nbody\r\n"
    assert parse_mail(raw).subject == ""


def test_headers_keep_every_value_in_order_under_lower_case_names() -> None:
    raw = mail("Received: from a by b\nReceived: from c\n by d\nAuto-Submitted: auto-replied")
    parsed = parse_mail(raw)
    assert parsed.headers["received"] == ("from a by b", "from c by d")
    assert parsed.headers["auto-submitted"] == ("auto-replied",)
    assert "Received" not in parsed.headers


@pytest.mark.parametrize(
    ("headers", "in_reply_to", "references"),
    [
        ("In-Reply-To: <a@x>\nReferences: <r1@x> <a@x>", ("a@x",), ("r1@x", "a@x")),
        ("References: <r1@x>\n <r2@x>\n\t<r3@x>", (), ("r1@x", "r2@x", "r3@x")),
        ("References: <r1@x><r2@x>,<r3@x>", (), ("r1@x", "r2@x", "r3@x")),
        ("References: <r1@x> <r1@x> <r2@x>", (), ("r1@x", "r2@x")),
        ("In-Reply-To: a@x", ("a@x",), ()),
        ("In-Reply-To: a@x b@y noise", ("a@x", "b@y"), ()),
        ('In-Reply-To: Your message of "Tue" <a@x> (comment)', ("a@x",), ()),
        ("In-Reply-To: < a@x >", ("a@x",), ()),
        ("In-Reply-To: <>\nReferences:", (), ()),
        ("", (), ()),
    ],
)
def test_thread_ids(
    headers: str, in_reply_to: tuple[str, ...], references: tuple[str, ...]
) -> None:
    parsed = parse_mail(mail(headers))
    assert parsed.in_reply_to == in_reply_to
    assert parsed.references == references


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@example.com>", "abc@example.com"),
        ("  <abc@example.com>  (added by relay)", "abc@example.com"),
        ("abc@example.com", "abc@example.com"),
        ("<abc@example.com> <second@example.com>", "abc@example.com"),
        ("", None),
        ("<>", None),
    ],
)
def test_message_id(value: str, expected: str | None) -> None:
    parsed = parse_mail(mail(f"Message-ID: {value}"))
    assert parsed.message_id == expected
    assert parsed.key == (expected or "sha256:" + parsed.fingerprint)


def test_missing_message_id_keys_on_the_fingerprint_which_ignores_trace_headers() -> None:
    submitted = b"Received: from [192.0.2.7] by smtp.example.com id 4Q2\r\n"  # the first hop
    raw = submitted + b"From: a@example.com\r\nSubject: no id\r\n\r\nbody\r\n"
    parsed = parse_mail(raw)
    assert parsed.message_id is None
    assert parsed.content_hash == hashlib.sha256(raw).hexdigest()
    assert parsed.key == "sha256:" + parsed.fingerprint
    traced = b"Received: from mx by mx\r\nDelivered-To: b@example.com\r\n" + raw.replace(
        b"\r\n", b"\n"
    )
    assert parse_mail(traced).key == parsed.key
    assert parse_mail(raw.replace(b"body", b"other body")).key != parsed.key


TINA, JAN, BOB = "tina.example@example.com", "jan@example.com", Address("", "bob@x.org")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Tina Example <Tina.Example@EXAMPLE.com>", [Address("Tina Example", TINA)]),
        ('"Becker, Jan" <jan@example.com>, bob@x.org', [Address("Becker, Jan", JAN), BOB]),
        ("=?utf-8?q?J=C3=B6rg?= <jan@example.com>", [Address("Jörg", JAN)]),
        ("=?utf-8?q?Evil=0D=0ABcc=3A_x?= <jan@example.com>", [Address("EvilBcc: x", JAN)]),
        ("undisclosed-recipients:;", []),
        ("Team: jan@example.com, bob@x.org;", [Address("", JAN), BOB]),
        ('"Support Desk <jan@example.com>', [Address("", JAN)]),
        ("<broken@@example.com>", []),
        ("just a name", []),
        ("x@[192.0.2.1]", [Address("", "x@[192.0.2.1]")]),
    ],
)
def test_address_parsing(header: str, expected: list[Address]) -> None:
    assert list(parse_mail(mail(f"To: {header}")).to) == expected


@pytest.mark.parametrize(
    "header",
    [
        "=?utf-8?q?=",
        "<, >, @, ,;:<>",
        '"unterminated <a@b.c',
        "a@b.c (comment (nested",
        "=?utf-8?b?////?= <x@y.z>",
        "Name <a@b.c>, <, =?x-unknown?q?=FF?= <d@e.f>",
        '\\\\\\"<<>>@@;;::',
        ":;",
    ],
)
def test_broken_address_headers_do_not_raise(header: str) -> None:
    raw = mail(f"From: {header}\nTo: {header}\nCc: {header}\nReply-To: {header}")
    parsed = parse_mail(raw)
    assert utf8_encodable(parsed.to)
    assert all(a.email == "" or "@" in a.email for a in (*parsed.to, *parsed.cc))


def test_sender_reply_to_and_cc() -> None:
    raw = mail("From: A <a@x.org>, B <b@x.org>\nReply-To: Desk <desk@x.org>\nCc: c@x.org")
    parsed = parse_mail(raw)
    assert parsed.sender == Address("A", "a@x.org")
    assert parsed.reply_to == (Address("Desk", "desk@x.org"),)
    assert parsed.cc == (Address("", "c@x.org"),)


def test_no_from_header_means_no_sender() -> None:
    assert parse_mail(b"Subject: hi\r\n\r\nbody").sender is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Tue, 3 Mar 2026 10:00:00 +0100", datetime(2026, 3, 3, 9, 0, tzinfo=UTC)),
        ("Tue, 3 Mar 2026 10:00:00 -0000", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        ("3 Mar 2026 10:00 GMT", datetime(2026, 3, 3, 10, 0, tzinfo=UTC)),
        ("Montag, den 32. Foo", None),
        ("Tue, 3 Mar 99999 10:00:00 +0100", None),
        ("Tue, 31 Feb 2026 10:00:00 +0100", None),
        ("", None),
    ],
)
def test_date(value: str, expected: datetime | None) -> None:
    parsed = parse_mail(mail(f"Date: {value}"))
    assert parsed.date == expected
    if expected is None:
        assert any("Date" in d for d in parsed.defects)
    else:
        assert parsed.date is not None and parsed.date.tzinfo is not None


def test_date_keeps_the_sender_offset() -> None:
    parsed = parse_mail(mail("Date: Tue, 3 Mar 2026 10:00:00 +0530"))
    assert parsed.date is not None
    assert parsed.date.utcoffset() == timedelta(hours=5, minutes=30)
    assert parsed.date.tzinfo == timezone(timedelta(hours=5, minutes=30))


def test_missing_date_is_none_with_a_defect() -> None:
    parsed = parse_mail(b"From: a@example.com\r\nSubject: x\r\n\r\nbody")
    assert parsed.date is None
    assert "Date header missing" in parsed.defects


# --- bodies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subject", "sender", "snippet"),
    [
        ("czech_iso8859_2.eml", "Nefunguje tiskárna v účtárně", "Jiří Dvořák", "žluťoučký kůň."),
        ("russian_koi8r.eml", "Не работает почта", "Иван Петров", "не отправляются письма."),
        (
            "japanese_iso2022jp.eml",
            "プリンターが動きません",
            "山田太郎",
            "プリンターが動きません。",
        ),
        (
            "outlook_reply.eml",
            "AW: [INC-1043] Rechner startet nicht",
            "Schäfer, Jörg",
            "weiterhin –",
        ),
    ],
)
def test_national_charsets(name: str, subject: str, sender: str, snippet: str) -> None:
    parsed = load(name)
    assert parsed.subject == subject
    assert parsed.sender is not None and parsed.sender.name == sender
    assert snippet in parsed.text
    assert "\r" not in parsed.text
    assert parsed.defects == ()


@pytest.mark.parametrize(
    ("charset", "body", "expected", "defect"),
    [
        ("utf-8", "Grüße – ok".encode(), "Grüße – ok", None),
        ("utf-8", "Grüße “x”".encode("cp1252"), "Grüße “x”", "decoded as cp1252"),
        ("us-ascii", "Grüße “x”".encode("cp1252"), "Grüße “x”", "decoded as cp1252"),
        ("us-ascii", "Grüße".encode(), "Grüße", "decoded as utf-8"),
        ("x-unknown", "Grüße".encode(), "Grüße", "unknown charset 'x-unknown'"),
        ("x-unknown", "Grüße".encode("cp1252"), "Grüße", "decoded as cp1252"),
        ("iso-8859-1", "“Grüße”".encode("cp1252"), "“Grüße”", None),
        ("iso-8859-1", b"\x81\x8d", "\x81\x8d", None),
        ("latin1", "“Grüße”".encode("cp1252"), "“Grüße”", None),
        ("x-sjis", "テスト".encode("cp932"), "テスト", None),
        ("iso-8859-8-i", "שלום".encode("iso8859-8"), "שלום", None),
        ("utf-8", b"\x81\x8d\x90", "\x81\x8d\x90", "decoded as latin-1"),
        ("base64", b"abc", "abc", "unknown charset"),
        ("punycode", b"abc", "abc", "unknown charset"),
        ("", "Grüße".encode(), "Grüße", "decoded as utf-8"),
    ],
)
def test_body_charset_fallbacks(
    charset: str, body: bytes, expected: str, defect: str | None
) -> None:
    ctype = f"text/plain; charset={charset}" if charset else "text/plain"
    raw = mail(f"Content-Type: {ctype}\nContent-Transfer-Encoding: 8bit", body)
    parsed = parse_mail(raw)
    assert parsed.text == expected
    if defect is None:
        assert parsed.defects == ()
    else:
        assert any(defect in d for d in parsed.defects), parsed.defects


def test_wrong_declared_charset_sample() -> None:
    parsed = load("broken_headers.eml")
    assert parsed.text == "Die Straße ist “gesperrt” – bitte prüfen.\n"
    assert parsed.subject == "Straße “gesperrt”"
    assert parsed.sender == Address("", "support@example.com")
    assert parsed.to == ()
    assert parsed.message_id is None
    assert parsed.key.startswith("sha256:")
    assert parsed.date is None
    assert parsed.defects


def test_crlf_and_nul_are_normalised() -> None:
    parsed = parse_mail(mail("", b"line 1\r\nline\x00 2\rline 3\r\n"))
    assert parsed.text == "line 1\nline 2\nline 3\n"
    assert any("NUL" in d for d in parsed.defects)


def test_quoted_printable_and_base64_bodies() -> None:
    ctype = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: "
    qp = mail(ctype + "quoted-printable", b"Gr=C3=BC=C3=9Fe =\r\nverbunden\r\n")
    b64 = mail(ctype + "base64", base64.encodebytes("Grüße\n".encode()))
    assert parse_mail(qp).text == "Grüße verbunden\n"
    assert parse_mail(b64).text == "Grüße\n"


def test_multipart_alternative_prefers_plain_and_keeps_html() -> None:
    parsed = load("gmail_reply.eml")
    assert parsed.content_type == "multipart/alternative"
    assert parsed.text.startswith("Hallo zusammen,\n\nder Drucker geht seit dem Neustart wieder.")
    assert "<div" not in parsed.text
    assert parsed.html is not None and '<div dir="ltr">' in parsed.html
    assert parsed.attachments == ()
    assert parsed.sender == Address("Tina Müller", "tina.mueller@gmail.com")
    assert parsed.to == (Address("IT Support", "support@example.com"),)
    assert parsed.cc == (Address("Becker, Jan", "jan.becker@example.com"),)
    assert parsed.message_id == "CAH3kV1zR7Nw+reply@mail.gmail.com"
    assert parsed.in_reply_to == ("inc-1042.1772531000@support.example.com",)
    assert parsed.references == (
        "CAH3kV1x9mJp@mail.gmail.com",
        "inc-1042.1772531000@support.example.com",
        "CAH3kV1yQ2Lz@mail.gmail.com",
    )
    assert parsed.headers["delivered-to"] == ("support@example.com",)
    assert parsed.date == datetime(2026, 3, 3, 9, 12, 44, tzinfo=UTC)


def test_html_only_mail_becomes_readable_text() -> None:
    parsed = load("html_only.eml")
    assert parsed.html is not None and "<h1>" in parsed.html
    assert "Alert: disk full" in parsed.text
    assert "Host db01.example.com reports 97% usage on /var." in parsed.text
    for junk in ("<", ">", "color: red", "alert("):
        assert junk not in parsed.text
    assert parsed.headers["auto-submitted"] == ("auto-generated",)


def test_empty_plain_alternative_falls_back_to_html() -> None:
    raw = mail(
        'Content-Type: multipart/alternative; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Only here</p>\r\n--b--\r\n",
    )
    assert parse_mail(raw).text.strip() == "Only here"


def test_multipart_without_boundary_keeps_the_text() -> None:
    raw = mail("Content-Type: multipart/mixed", b"just text\r\n")
    parsed = parse_mail(raw)
    assert parsed.text == "just text\n"
    assert parsed.defects


# --- attachments -------------------------------------------------------------------------


def test_pdf_image_and_rfc2231_attachments() -> None:
    parsed = load("attachments.eml")
    assert parsed.text == "Anbei das Protokoll und ein Screenshot.\n"
    found = [(a.filename, a.content_type, a.size) for a in parsed.attachments]
    assert found == [
        ("screenshot.png", "image/png", 70),
        ("report.pdf", "application/pdf", 69),
        ("Prüfbericht März.txt", "text/plain", 12),
        ("passwd", "application/octet-stream", 26),
    ]
    shot, pdf, report, passwd = parsed.attachments
    assert shot.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert pdf.content.startswith(b"%PDF-1.4") and pdf.content.endswith(b"%%EOF\n")
    assert report.content == "Prüfbericht".encode()
    assert passwd.content == b"root:x:0:0::/root:/bin/sh\n"


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="..\\\\..\\\\Windows\\\\evil.exe"', "evil.exe"),
        ('attachment; filename="C:\\\\Users\\\\tina\\\\Bericht.pdf"', "Bericht.pdf"),
        ('attachment; filename=".."', ""),
        ('attachment; filename=".hidden"', "hidden"),
        ('attachment; filename="=?utf-8?B?QmVyaWNodCBNw6Ryei5wZGY=?="', "Bericht März.pdf"),
        ("attachment; filename*=iso-8859-1''Gr%FC%DFe.txt", "Grüße.txt"),
        ("attachment; filename*0*=utf-8''Lang%20; filename*1*=N%C3%A4me.txt", "Lang Näme.txt"),
        ("attachment; filename*0*=utf-8''a%20b; filename*1=%20c.txt", "a b%20c.txt"),
        ("attachment; filename*=x-unknown''abc.txt", "abc.txt"),
        ('attachment; filename="=?utf-8?q?a=09b=07c=0D=0A.txt?="', "a bc.txt"),
        ("attachment", ""),
    ],
)  # fmt: skip
def test_attachment_filenames(disposition: str, expected: str) -> None:
    raw = mail(
        'Content-Type: multipart/mixed; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Disposition: "
        + disposition.encode()
        + b"\r\n\r\nDATA\r\n--b--\r\n",
    )
    parsed = parse_mail(raw)
    assert parsed.text == "see attachment"
    assert [a.filename for a in parsed.attachments] == [expected]
    assert parsed.attachments[0].content == b"DATA"


def test_unnamed_inline_parts_are_not_attachments() -> None:
    raw = mail(
        'Content-Type: multipart/related; boundary="b"',
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>Hi <img src=cid:logo></p>\r\n--b\r\n"
        b"Content-Type: image/gif\r\nContent-ID: <logo>\r\n\r\nGIF89a\r\n--b--\r\n",
    )
    parsed = parse_mail(raw)
    assert parsed.text.strip() == "Hi"
    assert parsed.attachments == ()


def test_bounce_keeps_report_parts_as_attachments() -> None:
    parsed = load("bounce.eml")
    assert parsed.content_type == "multipart/report"
    assert "550 5.1.1 User unknown" in parsed.text
    assert parsed.headers["return-path"] == ("<>",)
    status, original = parsed.attachments
    assert status.content_type == "message/delivery-status"
    assert b"Status: 5.1.1" in status.content
    assert original.content_type == "message/rfc822"
    assert original.content.startswith(b"From: IT Support <support@example.com>\r\n")
    inner = parse_mail(original.content)
    assert inner.message_id == "inc-1044.1772942000@support.example.com"
    assert inner.text.startswith("Guten Tag")


def test_attachment_is_not_unpacked() -> None:
    zipped = b"PK\x03\x04" + bytes(40)
    raw = mail(
        'Content-Type: multipart/mixed; boundary="b"',
        b"--b\r\nContent-Type: text/plain\r\n\r\nzip\r\n--b\r\nContent-Type: application/zip; "
        b'name="logs.zip"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes(zipped)
        + b"--b--\r\n",
    )
    (attachment,) = parse_mail(raw).attachments
    assert (attachment.filename, attachment.content) == ("logs.zip", zipped)


# --- robustness --------------------------------------------------------------------------


def nested(levels: int) -> bytes:
    body = b"Content-Type: text/plain\r\n\r\ndeep down\r\n"
    for i in range(levels, 0, -1):
        b = b"b%d" % i
        body = (
            b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
            + body + b"\r\n--" + b + b"--\r\n"
        )  # fmt: skip
    return b"From: a@example.com\r\nSubject: deep\r\n" + body


def test_deep_nesting_stops_walking_at_the_depth_limit() -> None:
    parsed = parse_mail(nested(200))
    assert parsed.subject == "deep"
    assert "deep down" not in parsed.text
    assert any("nesting deeper than 50" in d for d in parsed.defects)


def test_nesting_too_deep_for_the_parser_keeps_the_raw_body() -> None:
    parsed = parse_mail(nested(3000))
    assert parsed.subject == "deep"
    assert "deep down" in parsed.text
    assert any("more than 200 multipart parts" in d for d in parsed.defects)


def test_moderate_nesting_is_walked() -> None:
    assert parse_mail(nested(20)).text == "deep down\n"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b" \r\n\r\n\t", "empty"),
        (b"Hello, this is not a mail\r\n\r\nat all", "no header"),
        (b"\xff\xfe\x00garbage", "no header"),
        (b"From sender@example.com Tue Mar  3 10:00:00 2026\n\nbody", "no header"),
    ],
)
def test_hopeless_input_raises_mail_error(raw: bytes, reason: str) -> None:
    with pytest.raises(MailError, match=reason):
        parse_mail(raw)


def test_a_crashing_mime_splitter_still_yields_the_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise IndexError("simulated bug")

    monkeypatch.setattr(mime, "children", crash)
    parsed = parse_mail(
        mail('Content-Type: multipart/mixed; boundary="b"', b"--b\r\n\r\nhi\r\n--b--\r\n")
    )
    assert (parsed.subject, parsed.sender) == ("Test", Address("Tina", "tina@example.com"))
    assert any("IndexError" in d for d in parsed.defects)


def test_a_crashing_payload_decoder_costs_only_that_part(monkeypatch: pytest.MonkeyPatch) -> None:
    original: Any = mime.decoded

    def decoded(part: mime.Part, defects: list[str], label: str) -> bytes:
        if part.headers.get_content_type() == "application/pdf":
            raise ValueError("simulated bug")
        return original(part, defects, label)

    monkeypatch.setattr(mime, "decoded", decoded)
    parsed = load("attachments.eml")
    assert parsed.text == "Anbei das Protokoll und ein Screenshot.\n"
    assert [a.size for a in parsed.attachments] == [70, 0, 12, 26]
    assert any("'report.pdf': undecodable (ValueError)" in d for d in parsed.defects)


def test_leading_blank_lines_are_skipped() -> None:
    raw = b"\r\n\r\n" + mail("")
    parsed = parse_mail(raw)
    assert parsed.subject == "Test"
    assert parsed.raw == raw
    assert any("blank lines" in d for d in parsed.defects)


def test_mbox_from_line_is_tolerated() -> None:
    parsed = parse_mail(b"From tina@example.com Tue Mar  3 10:00:00 2026\n" + mail(""))
    assert parsed.subject == "Test"


def test_result_is_immutable() -> None:
    parsed = parse_mail(mail(""))
    with pytest.raises(FrozenInstanceError):
        parsed.subject = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        parsed.headers["x"] = ("y",)  # type: ignore[index]


def check_invariants(parsed: InboundMail) -> None:
    for field in ("message_id", "in_reply_to", "references", "subject", "sender", "to", "cc"):
        assert utf8_encodable(getattr(parsed, field)), field
    assert utf8_encodable(parsed.text) and utf8_encodable(parsed.defects)
    assert all(utf8_encodable(v) for v in parsed.headers.values())
    assert "\r" not in parsed.text and "\x00" not in parsed.text
    assert not any(c in parsed.subject for c in "\r\n\x00")
    for attachment in parsed.attachments:
        assert utf8_encodable(attachment.filename)
        assert not any(c in attachment.filename for c in "/\\\r\n\x00")
    assert parsed.date is None or parsed.date.tzinfo is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise_anything_but_mail_error(raw: bytes) -> None:
    try:
        parsed = parse_mail(raw)
    except MailError:
        return
    check_invariants(parsed)


HEADER_NAMES = st.sampled_from(
    ["From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
     "References", "Content-Type", "Content-Disposition", "Content-Transfer-Encoding",
     "MIME-Version", "X-Custom"]
)  # fmt: skip
HEADER_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["=?utf-8?q?=", "=?x?b?%%?=", "multipart/mixed; boundary=", 'multipart/x; boundary="b"',
         "text/plain; charset=x-unknown", "text/html; charset=utf-7", "base64",
         "quoted-printable", "attachment; filename*=''", "<a@b> <c", "a@b.c, <", ":;"]
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(HEADER_NAMES, HEADER_TEXT), max_size=12),
    st.one_of(st.text(max_size=500), st.sampled_from(["--b\r\n\r\n--b--", "=\r\n=FF=", "<p>x"])),
    st.sampled_from(["utf-8", "latin-1", "cp1252"]),
)
def test_composed_mails_always_parse(
    headers: list[tuple[str, str]], body: str, encoding: str
) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = ("Subject: fuzz\r\n" + head + "\r\n" + body).encode(encoding, "replace")
    check_invariants(parse_mail(raw))


def test_large_html_is_stripped_of_tags_instead_of_laid_out() -> None:
    html = b"<p>Gr&uuml;&szlig;e &amp; <b>more</b></p>\n" * 40_000  # 1.6 MB
    raw = mail("Content-Type: text/html; charset=utf-8", html + b"<<<<" * 1000)
    parsed = parse_mail(raw)
    assert parsed.text.startswith(" Grüße &amp;  more  ".replace("&amp;", "&"))
    assert any("stripped tags" in d for d in parsed.defects)


def test_real_mail_is_far_within_the_header_limits() -> None:
    """The defaults are ten times what any mail of the corpus needs."""
    tenth = HeaderLimits(fields=100, block_bytes=25_600, field_bytes=10_240, encoded_words=100)
    for path in sorted(DATA.glob("*.eml")):
        parse_mail(path.read_bytes(), tenth)
