"""Personal reply addresses: a secret token that proves a reply came from the person we wrote to.

Pure. Every notification carries a Reply-To such as `support+INC-42.<token>@example.com`,
where the token is an HMAC of the incident, the recipient's address and the server secret. A
command that arrives at that address from that person is authenticated for that incident: a
forger would need the token, which only the recipient's mailbox has seen. The support address
still routes the mail (plus tags are ignored when choosing the service).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

_SIZE = 10  # bytes of HMAC: 80 bits, 16 base32 characters
_TOKEN = re.compile(r"\+inc-(\d{1,12})\.([a-z2-7]{16})@", re.IGNORECASE)
_MAX_LOCAL = 64  # RFC 5321; a longer address would be refused by mail servers


def token(key: bytes, incident: int, address: str) -> str:
    mac = hmac.new(key, f"reply\x00{incident}\x00{address.lower()}".encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:_SIZE]).decode().lower()


def reply_address(key: bytes, support: str, incident: int, recipient: str) -> str:
    """The support address with the recipient's token for this incident; the plain address
    when the tagged one would be too long for mail servers."""
    local, _, domain = support.rpartition("@")
    tagged = f"{local.split('+', 1)[0]}+INC-{incident}.{token(key, incident, recipient)}"
    return f"{tagged}@{domain}" if len(tagged) <= _MAX_LOCAL else support


def vouches(key: bytes, recipients: Iterable[str], incident: int, sender: str) -> bool:
    """Whether one of the addresses the mail was delivered to carries `sender`'s token for
    `incident` (a token for another incident or another person proves nothing)."""
    expected = token(key, incident, sender)
    for value in recipients:
        for number, found in _TOKEN.findall(value):
            if int(number) == incident and hmac.compare_digest(found.lower(), expected):
                return True
    return False
