"""The pure parts of the hardening: reading bounces, reply tokens, proof of a command's
sender, fingerprints, the header-only parse of an oversized mail, monitoring senders."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from mailproc import signing
from mailproc.config.safety import CommandAuth, SecurityConfig
from mailproc.config.settings import demo_settings
from mailproc.inbound import bounces
from mailproc.inbound.automatic import detect
from mailproc.inbound.fingerprint import fingerprint
from mailproc.inbound.parse import parse_head, parse_mail
from mailproc.safety.kept_mail import screened
from mailproc.workflow.proof import unproven
from tests.support.bounces import dsn as make_dsn
from tests.support.mailfactory import make_mail

SETTINGS = demo_settings(environ={"MAILPROC_SECRET": "core tests"})
DATA = Path(__file__).resolve().parent.parent / "data" / "mail"
KEY = SETTINGS.signing_key


def settings_with(mode: CommandAuth):
    security = SecurityConfig(command_authentication=mode, trusted_authserv_ids=("mx.example.com",))
    return SETTINGS.model_copy(update={"security": security})


# --- bounces -------------------------------------------------------------------------------


def test_a_delivery_status_notification_names_recipient_status_and_returned_mail():
    report = bounces.read_report(parse_mail(make_dsn("mp1.3.x@example.com", "bob@example.org")))
    (delivery,) = report.deliveries
    assert (delivery.recipient, delivery.action, delivery.status) == (
        "bob@example.org",
        "failed",
        "5.1.1",
    )
    assert delivery.permanent and report.returned[0] == "mp1.3.x@example.com"


@pytest.mark.parametrize(
    ("status", "diagnostic", "action", "expected", "permanent"),
    [
        ("", "smtp; 550 5.7.1 Relaying denied", "failed", "5.7.1", True),
        ("", "smtp; 554 Transaction failed", "failed", "5.0.0", True),
        ("", "", "failed", "5.0.0", True),
        ("4.4.7", "smtp; 421 try later", "delayed", "4.4.7", False),
        ("", "X-Postfix; connection timed out", "delayed", "", False),
    ],
)
def test_the_status_comes_from_the_field_else_the_diagnostic(
    status, diagnostic, action, expected, permanent
):
    raw = make_dsn("mp1.3.x@example.com", "bob@example.org", status, action, diagnostic=diagnostic)
    (delivery,) = bounces.read_report(parse_mail(raw)).deliveries
    assert (delivery.status, delivery.permanent) == (expected, permanent)


def test_a_free_text_bounce_is_searched_for_our_message_id():
    raw = (
        b"From: MAILER-DAEMON@old.example.net\r\nSubject: failure notice\r\n\r\n"
        b"Hi. This is the qmail-send program. Sorry, I couldn't deliver.\r\n"
        b"--- Below this line is a copy of the message.\r\n"
        b"Message-ID: <mp1.12.abcdefgh.x.abcdefghabcdefgh@example.com>\r\n"
    )
    report = bounces.read_report(parse_mail(raw))
    assert report.deliveries == ()
    assert report.returned == ("mp1.12.abcdefgh.x.abcdefghabcdefgh@example.com",)


def test_the_sample_bounce_of_another_system_reads_too():
    report = bounces.read_report(parse_mail((DATA / "bounce.eml").read_bytes()))
    assert [d.recipient for d in report.deliveries] == ["nobody@example.org"]
    assert report.returned[0] == "inc-1044.1772942000@support.example.com"


# --- reply tokens and proof ----------------------------------------------------------------


def test_a_reply_address_keeps_the_support_address_and_falls_back_when_too_long():
    address = signing.reply_address(KEY, "support@example.com", 42, "Tina@Example.com")
    assert address.startswith("support+INC-42.") and address.endswith("@example.com")
    assert signing.vouches([KEY], [address.upper()], 42, "tina@example.com")
    long_local = "s" * 50 + "@example.com"
    assert signing.reply_address(KEY, long_local, 42, "tina@example.com") == long_local


def mail_from(sender: str, to: str = "mail-support@example.com", **kw):
    return parse_mail(make_mail(sender=sender, to=to, **kw))


@pytest.mark.parametrize(
    ("mode", "signed", "token", "proven"),
    [
        (CommandAuth.EITHER, True, False, True),
        (CommandAuth.EITHER, False, True, True),
        (CommandAuth.EITHER, False, False, False),
        (CommandAuth.AUTHENTICATION_RESULTS, True, False, True),
        (CommandAuth.AUTHENTICATION_RESULTS, False, True, False),
        (CommandAuth.REPLY_TOKEN, True, False, False),
        (CommandAuth.REPLY_TOKEN, False, True, True),
        (CommandAuth.NONE, False, False, True),
    ],
)
def test_each_mode_accepts_its_evidence_only(mode, signed, token, proven):
    to = signing.reply_address(KEY, "mail-support@example.com", 7, "tina@example.com")
    delivered = to if token else "mail-support@example.com"
    mail = mail_from("tina@example.com", delivered, authenticated=signed)
    assert (unproven(mail, settings_with(mode), 7) is None) is proven


def test_a_token_in_delivered_to_counts_and_a_new_incident_needs_a_signature():
    to = signing.reply_address(KEY, "mail-support@example.com", 7, "tina@example.com")
    mail = mail_from("tina@example.com", authenticated=False, headers={"Delivered-To": to})
    assert unproven(mail, SETTINGS, 7) is None
    assert unproven(mail, SETTINGS, None).endswith("signs your mail for example.com (DKIM)")
    reason = unproven(mail, settings_with(CommandAuth.REPLY_TOKEN), None)
    assert reason.endswith("a new mail carries no reply token, so it cannot command")


# --- fingerprints, oversized mail, CR/LF in names, monitoring ----------------------------------


def test_the_fingerprint_ignores_trace_headers_and_sees_every_authored_change():
    raw = b"Received: from [192.0.2.7] by submission.example.org\r\n" + make_mail(message_id="f@x")
    traced = b"Received: by mx\r\nDelivered-To: x@y\r\nX-Spam-Score: 1\r\n" + raw
    assert fingerprint(traced) == fingerprint(raw.replace(b"\r\n", b"\n"))
    assert fingerprint(raw.replace(b"Exchange", b"Exchanged")) != fingerprint(raw)
    assert fingerprint(raw.replace(b"Nobody", b"Someone")) != fingerprint(raw)
    assert fingerprint(raw.replace(b"192.0.2.7", b"192.0.2.8")) != fingerprint(raw)  # sent anew


def test_an_oversized_mail_is_named_by_its_header_block_alone():
    raw = make_mail(message_id="big@x", subject="large") + b"x" * 1_000_000
    head = parse_head(raw)
    assert (head.message_id, head.subject, head.raw) == ("big@x", "large", raw)
    assert head.text == "" and head.attachments == ()


def test_an_encoded_name_with_a_line_break_and_an_address_is_only_a_name():
    for name in ("Boss\r\nattacker@evil.example", "x\n<attacker@evil.example>", "a@b.c\r\n"):
        encoded = base64.b64encode(name.encode()).decode()
        raw = f"From: =?utf-8?b?{encoded}?= <real@example.org>\r\nSubject: x\r\n\r\nhi\r\n"
        mail = parse_mail(raw.encode())
        assert mail.sender is not None and mail.sender.email == "real@example.org", name
        assert "\r" not in mail.sender.name and "\n" not in mail.sender.name


def test_a_configured_monitoring_system_may_open_incidents_but_never_by_auto_reply():
    security = SecurityConfig(accept_automatic_from=("nagios@example.org",))
    settings = SETTINGS.model_copy(update={"security": security})
    generated = mail_from("nagios@example.org", headers={"Auto-Submitted": "auto-generated"})
    replied = mail_from("nagios@example.org", headers={"Auto-Submitted": "auto-replied"})
    stranger = mail_from("cron@example.org", headers={"Auto-Submitted": "auto-generated"})

    def kept(mail):
        return screened(mail, detect(mail, settings.own_addresses), settings)

    assert kept(generated) is None
    assert kept(replied) is not None and kept(stranger) is not None
