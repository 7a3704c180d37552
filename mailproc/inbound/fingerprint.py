"""A hash of what the author of a mail wrote, blind to what servers added on the way.

Pure. The exactly-once key is the Message-ID, but a Message-ID proves nothing: broken
mailers reuse theirs and anyone can copy one from a thread. Two deliveries of one mail (sent to
two support addresses, say) differ only in trace headers — Received, Delivered-To,
Return-Path, Authentication-Results, ARC, per-recipient vendor stamps — so the fingerprint
keeps only the headers an author's mail program writes, and the body. Equal fingerprints: the
same mail again. Different ones under one Message-ID: another mail reusing the id.

That alone folded distinct mails that say the same thing: a monitoring system's identical
alerts an hour apart, sent without Message-ID or Date (a remote client's mail keeps them
missing) or with a constant Message-ID. So the fingerprint also keeps the first hop's
Received header — the lowest one, written when the mail was submitted, before it was copied
to its recipients: two deliveries of one mail share it, two sendings of the same text do not.
`legacy_fingerprint` is the hash without it, which rows stored before have.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

# What the author's program writes; everything else may differ between two deliveries.
ORIGIN_HEADERS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
_HEADER_END = re.compile(rb"\r*\n\r*\n")
_FOLD = re.compile(rb"\r*\n(?=[ \t])")
_SPACE = re.compile(rb"[ \t\r]+")
_LINE_END = re.compile(rb"\r*\n")
_CHUNK = 64 * 1024  # bodies are hashed in pieces: a regex substitution's pieces cost memory


def fingerprint(raw: bytes) -> str:
    """sha256 of the origin headers (in order, whitespace folded), the first hop's Received
    header and the body (line ends as LF, however many CRs came before them; trailing blank
    space dropped): equal for the same mail however it was delivered."""
    return _digest(raw, first_hop=True)


def legacy_fingerprint(raw: bytes) -> str:
    """The fingerprint as rows stored before the first hop counted have it."""
    return _digest(raw, first_hop=False)


def _digest(raw: bytes, first_hop: bool) -> str:
    match = _HEADER_END.search(raw)
    head, body = (raw[: match.start()], raw[match.end() :]) if match else (raw, b"")
    digest = hashlib.sha256()
    hop = b""
    for line in _FOLD.sub(b" ", head).split(b"\n"):
        name, colon, value = line.partition(b":")
        field = name.strip().lower()
        if colon and field.decode("latin-1") in ORIGIN_HEADERS:
            digest.update(field + b":" + _spaced(value) + b"\n")
        elif colon and field == b"received":
            hop = _spaced(value)  # the last one seen: the lowest, the first
    if first_hop and hop:
        digest.update(b"received:" + hop + b"\n")
    digest.update(b"\n")
    _hash_body(digest, body)
    return digest.hexdigest()


def _spaced(value: bytes) -> bytes:
    """Runs of blanks as one space, stripped; most values have no run to fold."""
    if b"\t" in value or b"\r" in value or b"  " in value:
        value = _SPACE.sub(b" ", value)
    return value.strip()


def _hash_body(digest: Any, body: bytes) -> None:
    """digest.update(_LINE_END.sub(b"\n", body).rstrip()), in memory bounded by _CHUNK
    (25 MB of line ends would otherwise be 25 million pieces): blank space is held back until
    text follows it, and CRs at a piece's end wait for the next piece's LF."""
    held: list[bytes] = []  # normalised blank space not yet known to be followed by text
    carry = b""  # CRs at the end of the last piece
    for start in range(0, len(body), _CHUNK):
        piece = carry + body[start : start + _CHUNK]
        kept = piece.rstrip(b"\r")
        carry = piece[len(kept) :]
        text = _LINE_END.sub(b"\n", kept)
        content = text.rstrip()
        if content:
            for blank in held:
                digest.update(blank)
            held.clear()
            digest.update(content)
        held.append(text[len(content) :])
    # a carried CR run at the very end is trailing blank space: dropped like the rest
