"""Signatures on the mail mailproc sends: Message-IDs and personal reply addresses.

Pure. Both are HMACs under the server secret. Verification takes several keys
(`Settings.verification_keys`: the secret, then the previous secrets): the first signs, every
one verifies, so a new secret can replace the old one while tokens already in people's
mailboxes keep working until the old one is removed (key rotation, docs/admin/security.md).

## Message-IDs

So a reply threads even without the table. The local part names the incident and carries a keyed
tag of the recipient and an HMAC over both, so a reply whose subject tag was edited away still
finds its incident, and a reference someone made up (to push text into another incident) is
recognised as forged. The recipient is a keyed hash, not the address: References travel to
everyone on a reply.

    mp1.<incident>.<recipient tag>.<nonce>.<signature>@<domain>

Every part is lower-case base32 or digits, so the whole id stays a short dot-atom that no mail
client or header folding alters.

## Reply proof

A secret only the recipient's mailbox has seen proves a reply came from the person we wrote
to; a forger would need it. It travels in one of two ways (`notifications.reply_address`):

- `plus`: the Reply-To is `support+INC-42.<token>@example.com`, where the token is an HMAC of
  the incident, the recipient's address and the server secret. It needs a mail server that
  delivers `support+anything@` to `support@` (a recipient delimiter).
- `plain`: the Reply-To is the support address itself. The proof is the notice's signed
  Message-ID, which every mail client puts into the reply's In-Reply-To and References (its
  recipient tag must be the replying sender's), and, for clients that drop those, a short
  signed tag in the subject: `[INC-42.<tag>]`.

Every kind of proof is accepted in either mode, so changing the mode never strands a reply to
an older notice. The support address still routes the mail (plus tags are ignored when
choosing the service).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

PREFIX = "mp1"
_LOCAL = re.compile(rf"^{PREFIX}\.(\d{{1,12}})\.[a-z2-7]{{8}}\.[a-z0-9]{{1,16}}\.([a-z2-7]{{16}})$")


@dataclass(frozen=True, slots=True)
class SignedRef:
    """One of our Message-IDs, read back: the incident it names and whether we signed it."""

    incident: int
    valid: bool
    recipient_tag: str = field(default="", compare=False)  # of the address it was sent to


def make_message_id(key: bytes, incident: int, recipient: str, nonce: str, domain: str) -> str:
    """A new Message-ID (without angle brackets); `nonce` makes each mail's id unique."""
    body = f"{PREFIX}.{incident}.{recipient_tag(key, recipient)}.{nonce.lower()}"
    return f"{body}.{_b32(_mac(key, body, domain.lower()), 10)}@{domain}"


def read_message_id(keys: Sequence[bytes], message_id: str) -> SignedRef | None:
    """None for an id that is not in our shape; else the incident and the signature's verdict
    (valid when one of `keys` made it)."""
    local, _, domain = message_id.rpartition("@")
    match = _LOCAL.match(local)
    if match is None:
        return None
    body = local.rpartition(".")[0]
    valid = any(
        hmac.compare_digest(_b32(_mac(key, body, domain.lower()), 10), match.group(2))
        for key in keys
    )
    return SignedRef(int(match.group(1)), valid, body.split(".")[2])


@lru_cache(maxsize=1024)  # the desk's own addresses get most notices
def recipient_tag(key: bytes, recipient: str) -> str:
    """A keyed hash of the address: tells whether a reply came from the person we wrote to."""
    return _b32(_mac(key, "to", recipient.lower()), 5)


def _mac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).digest()


def nonce() -> str:
    """40 random bits as 8 characters of base32: what keeps two Message-IDs apart."""
    return _b32(secrets.token_bytes(5), 5)


_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower-case
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)  # the characters of 10 bits


def _b32(digest: bytes, size: int) -> str:
    """The first `size` bytes (a multiple of 5, so there is no padding) as lower-case base32,
    as `base64.b32encode` writes them: it cost more than the HMAC it encodes, and a notice
    needs four."""
    n = int.from_bytes(digest[:size], "big")
    return "".join([_PAIRS[(n >> shift) & 1023] for shift in range(size * 8 - 10, -1, -10)])


_SIZE = 10  # bytes of HMAC: 80 bits, 16 base32 characters
_TOKEN = re.compile(r"\+inc-(\d{1,12})\.([a-z2-7]{16})@", re.IGNORECASE)
_MAX_LOCAL = 64  # RFC 5321; a longer address would be refused by mail servers


def token(key: bytes, incident: int, address: str) -> str:
    return _b32(_mac(key, "reply", str(incident), address.lower()), _SIZE)


def reply_address(key: bytes, support: str, incident: int, recipient: str) -> str:
    """The support address with the recipient's token for this incident; the plain address
    when the tagged one would be too long for mail servers."""
    local, _, domain = support.rpartition("@")
    tagged = f"{local.split('+', 1)[0]}+INC-{incident}.{token(key, incident, recipient)}"
    return f"{tagged}@{domain}" if len(tagged) <= _MAX_LOCAL else support


def subject_token(key: bytes, incident: int, address: str) -> str:
    """The short tag of `[INC-42.<tag>]`: 40 bits, enough against guessing by mail (each try
    costs a mail, and new mail from one sender is rate-limited), short enough for a subject."""
    return _b32(_mac(key, "subject", str(incident), address.lower()), 5)


def vouches(keys: Sequence[bytes], recipients: Iterable[str], incident: int, sender: str) -> bool:
    """Whether one of the addresses the mail was delivered to carries `sender`'s token for
    `incident` under one of `keys` (a token for another incident or person proves nothing)."""
    expected = [token(key, incident, sender) for key in keys]
    for value in recipients:
        for number, found in _TOKEN.findall(value):
            if int(number) == incident and any(
                hmac.compare_digest(found.lower(), e) for e in expected
            ):
                return True
    return False


def references_vouch(
    keys: Sequence[bytes], refs: Iterable[str], incident: int, sender: str
) -> bool:
    """Whether the reply names one of our Message-IDs about `incident` that went to `sender`
    (signed by one of `keys`, with `sender`'s recipient tag under that key)."""
    tags = {recipient_tag(key, sender) for key in keys}
    for ref in refs:
        signed = read_message_id(keys, ref)
        if signed and signed.valid and signed.incident == incident and signed.recipient_tag in tags:
            return True
    return False


def subject_vouches(keys: Sequence[bytes], found: str, incident: int, sender: str) -> bool:
    """Whether the tag read from the subject is `sender`'s for `incident` under one of `keys`."""
    return bool(found) and any(
        hmac.compare_digest(found.lower(), subject_token(key, incident, sender)) for key in keys
    )
