"""Our Message-IDs carry the incident and a signature; forged or altered ones are recognised."""

from __future__ import annotations

import base64
import hashlib
import hmac

from mailproc.signing import (
    SignedRef,
    make_message_id,
    nonce,
    read_message_id,
    recipient_tag,
    subject_token,
    token,
)

KEY = b"server secret"


def test_a_signed_id_names_its_incident_and_verifies():
    mid = make_message_id(KEY, 42, "alice@example.org", "nonce123", "example.com")
    assert mid.startswith("mp1.42.") and mid.endswith("@example.com")
    assert read_message_id([KEY], mid) == SignedRef(42, True)


def test_each_mail_gets_its_own_id():
    ids = {make_message_id(KEY, 1, "a@b.c", nonce, "example.com") for nonce in ("aa", "bb")}
    assert len(ids) == 2


def test_a_forged_or_altered_id_is_recognised():
    mid = make_message_id(KEY, 42, "alice@example.org", "nonce123", "example.com")
    assert read_message_id([KEY], mid.replace("mp1.42.", "mp1.43.", 1)) == SignedRef(43, False)
    assert read_message_id([b"another key"], mid) == SignedRef(42, False)
    local, _, _ = mid.partition("@")
    assert read_message_id([KEY], f"{local}@evil.example") == SignedRef(42, False)


def test_ids_that_are_not_ours_are_ignored():
    for other in ("CAF=x@mail.gmail.com", "mp1.x.y@z", "", "mp1.1.abc@", "@"):
        assert read_message_id([KEY], other) is None


def test_the_recipient_is_carried_as_a_keyed_tag_not_the_address():
    mid = make_message_id(KEY, 7, "Alice@Example.org", "n", "example.com")
    assert "alice" not in mid
    assert recipient_tag(KEY, "alice@example.org") in mid
    assert recipient_tag(b"other", "alice@example.org") not in mid


def test_ids_stay_short_enough_for_one_header_line():
    mid = make_message_id(KEY, 10**11, "a" * 64 + "@example.com", "abcdefgh", "example.com")
    assert len(mid) < 70


def test_ids_and_tokens_are_written_as_base32_of_the_hmac_as_before():
    """The base32 is written by hand now: the same characters as base64.b32encode's, so ids and
    tokens already in people's mailboxes still verify."""

    def b32(data: bytes) -> str:
        return base64.b32encode(data).decode().rstrip("=").lower()

    def mac(*parts: str) -> bytes:
        return hmac.new(KEY, "\x00".join(parts).encode(), hashlib.sha256).digest()

    tag = b32(mac("to", "alice@example.org")[:5])
    body = f"mp1.42.{tag}.nonce123"
    expected = f"{body}.{b32(mac(body, 'example.com')[:10])}@example.com"
    assert make_message_id(KEY, 42, "Alice@example.org", "nonce123", "example.com") == expected
    assert token(KEY, 42, "Alice@example.org") == b32(mac("reply", "42", "alice@example.org")[:10])
    assert subject_token(KEY, 42, "alice@example.org") == b32(
        mac("subject", "42", "alice@example.org")[:5]
    )
    for _ in range(200):
        made = nonce()
        assert len(made) == 8 and set(made) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert len({nonce() for _ in range(200)}) == 200
