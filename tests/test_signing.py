"""Our Message-IDs carry the incident and a signature; forged or altered ones are recognised."""

from __future__ import annotations

from mailproc.signing import SignedRef, make_message_id, read_message_id, recipient_tag

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
