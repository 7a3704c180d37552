"""Composed notifications: threading and RFC 3834 headers, encodings, and no header injection."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mailproc.inbound.parse import parse_mail
from mailproc.notify.letter import AUTO_REPLIED, Letter, compose, tagged_subject

LETTER = Letter(
    subject="[INC-5] We received your report: Exchange is down",
    text="Hello Alice,\n\nwe have your report.\n",
    html=None,
    from_name="Service desk",
    from_address="mail-support@example.com",
    to_name="Alice Novák",
    to_address="alice@example.org",
    reply_to="mail-support@example.com",
    message_id="mp1.5.aaaaaaaa.bbbbbbbb.cccccccccccccccc@example.com",
    in_reply_to="orig@client.example",
    references=("orig@client.example", "mp1.5.aaaaaaaa.bbbbbbbb.dddddddddddddddd@example.com"),
    auto_submitted=AUTO_REPLIED,
    date=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
)
HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "auto-submitted",
    "x-auto-response-suppress",
    "x-mailproc-loop",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
}


def parsed(letter: Letter) -> email.message.EmailMessage:
    msg = email.message_from_bytes(compose(letter), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_headers_thread_identify_and_mark_the_mail_automatic():
    msg = parsed(LETTER)
    assert msg["Message-ID"] == f"<{LETTER.message_id}>"
    assert msg["In-Reply-To"] == "<orig@client.example>"
    assert msg["References"].split() == [f"<{r}>" for r in LETTER.references]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Mailproc-Loop"] == "mail-support@example.com"
    assert msg["Reply-To"] == "mail-support@example.com"
    assert str(msg["To"]) == "Alice Novák <alice@example.org>"
    assert msg.get_content_type() == "text/plain"


def test_html_makes_the_mail_multipart_alternative():
    msg = parsed(replace(LETTER, html="<p>Hello &amp; welcome</p>"))
    assert msg.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]


def test_the_whole_mail_is_seven_bit_and_non_ascii_text_round_trips():
    letter = replace(LETTER, subject="Žluťoučký kůň – " * 8, text="Dobrý den, 日本語\n" * 50)
    raw = compose(letter)
    assert raw.isascii() and max(len(line) for line in raw.split(b"\r\n")) <= 998
    mail = parse_mail(raw)
    assert mail.subject == ("Žluťoučký kůň – " * 8).strip()
    assert mail.text.startswith("Dobrý den, 日本語")


def test_long_foreign_ids_stay_intact_and_bad_ones_are_dropped():
    long_id = "x" * 300 + "@client.example"
    msg = parsed(replace(LETTER, in_reply_to=long_id, references=(long_id, "bad id@x", "a<b@c")))
    assert msg["In-Reply-To"] == f"<{long_id}>"
    assert msg["References"] == f"<{long_id}>"


def test_every_subject_carries_the_incident_tag():
    assert tagged_subject("Closed: printer", 7) == "[INC-7] Closed: printer"
    assert tagged_subject("Re: [inc-7] Closed", 7) == "Re: [inc-7] Closed"
    assert tagged_subject("[INC-70] other", 7) == "[INC-7] [INC-70] other"
    assert tagged_subject("\n", 7) == "[INC-7]"


@given(st.text(), st.text())
def test_user_text_never_adds_a_header_or_a_recipient(subject, name):
    msg = parsed(replace(LETTER, subject=subject, to_name=name))
    assert {key.lower() for key in msg} <= HEADERS
    assert [a.addr_spec for a in msg["To"].addresses] == ["alice@example.org"]
    assert msg.get_all("Bcc") is None and msg.get_all("Cc") is None


def test_classic_injection_attempts_stay_inside_their_header():
    attack = "Hi\r\nBcc: evil@example.net\r\n\r\nbody"
    msg = parsed(replace(LETTER, subject=attack, to_name=attack, from_name=attack))
    assert msg.get_all("Bcc") is None
    assert "Bcc: evil@example.net" in str(msg["Subject"])
    assert [a.addr_spec for a in msg["To"].addresses] == ["alice@example.org"]
    assert msg.get_content().startswith("Hello Alice")


def test_an_address_that_could_smuggle_a_header_is_refused():
    for bad in ("alice@example.org\r\nBcc: x@y", "a b@example.org", "<a@b>", "nobody"):
        try:
            compose(replace(LETTER, to_address=bad))
        except ValueError as exc:
            assert "not an address" in str(exc)
        else:
            raise AssertionError(bad)


def test_a_signed_subject_tag_takes_the_place_of_the_plain_one():
    assert tagged_subject("Re: [INC-7] Closed", 7, "abcdefgh") == "Re: [INC-7.abcdefgh] Closed"
    assert tagged_subject("Closed", 7, "abcdefgh") == "[INC-7.abcdefgh] Closed"


def test_a_long_subject_is_folded_after_its_first_word_never_before_it():
    subject = "[INC-1] New incident in General IT support: The printer is on fire now"
    letter = replace(LETTER, subject=subject.strip())
    head = compose(letter).split(b"\r\n\r\n")[0].decode()
    assert "Subject: [INC-1] New" in head
    assert parsed(letter)["Subject"] == subject.strip()
