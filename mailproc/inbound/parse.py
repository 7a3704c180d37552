"""Turn the raw bytes of one inbound e-mail into a clean, immutable InboundMail.

Everything downstream (threading, ticket matching, loop detection, storage) reads
mail only through this module, so it must accept whatever real mail servers
deliver: it repairs what it can, records each repair in ``defects`` and raises
``MailError`` only for input that has no header block at all. It is pure: no I/O,
no clock, no configuration.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import hashlib
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime
from functools import lru_cache
from html import unescape
from types import MappingProxyType
from typing import NamedTuple

from mailproc.inbound import mime
from mailproc.inbound.addresses import split_addresses
from mailproc.inbound.fingerprint import fingerprint
from mailproc.inbound.mime import DEFAULT_LIMITS, HeaderLimits, MailError, OverLimit, Part

__all__ = [
    "Address",
    "Attachment",
    "HeaderLimits",
    "InboundMail",
    "MailError",
    "OverLimit",
    "parse_head",
    "parse_mail",
]

_MAX_DEPTH = 50
_MAX_MULTIPARTS = 200  # more make the stdlib parser recurse for seconds; kept as text instead
_MULTIPART = re.compile(rb"multipart/", re.IGNORECASE)
_MAX_SALVAGE = 512  # the salvage regex is quadratic on long junk; real addresses are short
_MAX_ADDRESS = 254  # RFC 5321's longest path; anything longer is not an address we answer
_MAX_ID = 900  # RFC 5322's line limit leaves no room for longer ids; longer ones are junk
_MAX_HEAD = 256 * 1024  # how much of an oversized mail is read for its header block
_ADDRESS_FIELDS = frozenset({"from", "to", "cc", "reply-to"})
# The first line must look like a header field (optionally after an mbox "From " line).
_HEADER_START = re.compile(rb"(?:From [^\n]*\n)?[\x21-\x39\x3b-\x7e]+[ \t]*:")
_LINEBREAK = re.compile(r"\r\n?|\n")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# Bidirectional overrides make "invoice\u202efdp.exe" read as "invoiceexe.pdf".
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile("[\ud800-\udfff]+")
_ADDR_SPEC = re.compile(
    r'(?:"[^"]*"|[^\s"<>()\[\],;:@\\]+)@(?:[^\s"<>()\[\],;:@\\]+|\[[^\s\[\]]+\])'
)
_ADDR_TOKEN = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "_.!#$%&'*+/=?^`{|}~-")
_DOMAIN_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")
_MAX_SALVAGED = 20
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_TAG = re.compile(r"<[^<>]*>")  # stops at the next '<': linear even on '<<<<…'
# HTML above this size is not laid out by inscriptis (lxml's tree costs ~35 × the text) but
# stripped of its tags, which costs about its size: the bound on memory per mail holds.
_MAX_LAYOUT = 1024 * 1024
_PIECE = 64 * 1024
_FALLBACK_CODECS = ("utf-8", "cp1252", "latin-1")
# Charset labels common in mail that Python does not know by that name.
_CHARSET_ALIASES = {
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso8859-8",
    "windows-874": "cp874",
    "x-mac-roman": "mac-roman",
    "x-gbk": "gbk",
}
# Codecs (by Python name) that senders use for what is really a superset; decoding with
# the superset first avoids mojibake for the classic "iso-8859-1 but actually Windows".
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
}
# Codecs that are not character sets or are too slow/odd to trust with hostile input.
_REFUSED_CODECS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
)
# An RFC 2047 encoded word; the charset may carry an RFC 2231 language ("utf-8*de").
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_BARE_LF = re.compile(rb"(?<!\r)\n")


@dataclass(frozen=True, slots=True)
class Address:
    name: str  # display name, decoded, control characters removed; '' if none
    email: str  # lower-cased addr-spec; '' if nothing plausible could be parsed


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str  # final path component only, control characters removed; '' if none
    content_type: str  # e.g. 'application/pdf'
    content: bytes  # decoded payload; for message/* parts the attached message's bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True, slots=True)
class InboundMail:
    raw: bytes
    message_id: str | None  # without <>; None if missing or empty
    in_reply_to: tuple[str, ...]  # message ids without <>
    references: tuple[str, ...]  # message ids without <>, in order, without repeats
    subject: str  # decoded, unfolded, control characters removed
    sender: Address | None  # first From address
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None  # timezone-aware (UTC when the mail gave no zone)
    text: str  # plain body, or the HTML body rendered as text; '\n' line endings
    html: str | None  # the HTML body when there was one
    attachments: tuple[Attachment, ...]
    headers: Mapping[str, tuple[str, ...]]  # lower-cased name -> decoded values, in order
    content_type: str  # top-level MIME type, e.g. 'multipart/report'
    defects: tuple[str, ...]  # what was malformed and how it was repaired
    # Why the From field names no single sender (none, two, a group): such mail is refused
    sender_fault: str | None = None
    # A display name that holds another address than the sender's ("tina@example.com"
    # <attacker@evil.net>): a warning sign for the solvers, not a reason to refuse; such a
    # name is dropped from `sender`, so no notice calls the sender by it
    sender_warning: str | None = None
    # The lower-cased names of the header fields in order, for what depends on their order
    # across names (which Authentication-Results lie above our border's Received field)
    field_names: tuple[str, ...] = ()

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def fingerprint(self) -> str:
        """What the author wrote, without trace headers (mailproc.inbound.fingerprint)."""
        return fingerprint(self.raw)

    @property
    def key(self) -> str:
        """The exactly-once key: ids are stable across re-deliveries; without one, the
        fingerprint, which a second delivery with other trace headers shares."""
        return self.message_id if self.message_id else "sha256:" + self.fingerprint


class _Leaf(NamedTuple):
    part: Part
    content_type: str
    body_ok: bool  # may serve as the body (not inside an attachment, not a non-root related part)
    disposition: str | None
    charset: str | None = None


class _Headers(NamedTuple):
    values: dict[str, list[str]]
    addresses: dict[str, list[Address]]


def parse_head(raw: bytes, limits: HeaderLimits = DEFAULT_LIMITS) -> InboundMail:
    """Only the header block (of at most 256 KiB): for a mail too large to parse whole, whose
    sender, subject and Message-ID still name it in quarantine. `raw` stays the whole mail."""
    head = raw[:_MAX_HEAD]
    end = re.search(rb"\r?\n\r?\n", head)
    mail = parse_mail(head[: end.start()] + b"\r\n\r\n" if end else head, limits)
    return replace(mail, raw=raw)


def parse_mail(raw: bytes, limits: HeaderLimits = DEFAULT_LIMITS) -> InboundMail:
    """Parse leniently; only a missing header block (MailError) or one over the limits
    (OverLimit, a MailError) is fatal."""
    defects: list[str] = []
    top = _parse(raw, defects, limits)
    headers = _read_headers(top, defects)
    text, html, attachments = _read_body(top, defects, limits)
    first = {name: values[0] for name, values in headers.values.items()}
    addresses = headers.addresses
    senders = addresses.get("from", [])
    sender = senders[0] if senders else None
    warning = _sender_warning(sender)
    if warning is not None and sender is not None:  # the name would speak for someone else
        sender = Address("", sender.email)
    return InboundMail(
        raw=raw,
        message_id=_message_id(first.get("message-id", "")),
        in_reply_to=_message_ids(headers.values.get("in-reply-to", [])),
        references=_message_ids(headers.values.get("references", [])),
        subject=first.get("subject", ""),
        sender=sender,
        to=tuple(addresses.get("to", ())),
        cc=tuple(addresses.get("cc", ())),
        reply_to=tuple(addresses.get("reply-to", ())),
        date=_date(first.get("date"), defects),
        text=text,
        html=html,
        attachments=attachments,
        headers=MappingProxyType({k: tuple(v) for k, v in headers.values.items()}),
        content_type=_content_type(top, defects),
        defects=tuple(dict.fromkeys(defects)),
        sender_fault=_sender_fault(top, senders),
        sender_warning=warning,
        field_names=tuple(name.strip().lower() for name, _ in top.fields),
    )


def _sender_fault(top: Part, senders: list[Address]) -> str | None:
    """The From field must name one mailbox: whom else would a command, a reply or the
    history attribute the mail to?"""
    values = [value for name, value in top.fields if name.strip().lower() == "from"]
    if not values:
        return "no From field"
    if len(values) > 1:
        return f"{len(values)} From fields"
    if split_addresses(values[0])[2]:
        return "a group in From (group syntax names no sender)"
    found = [a for a in senders if a.email]
    if not found:
        return "no address in From"
    if len(senders) > 1:
        return f"{len(senders)} addresses in From"
    return None


def _sender_warning(sender: Address | None) -> str | None:
    if sender is None or "@" not in sender.name:
        return None
    for candidate in _salvage(sender.name):
        if candidate != sender.email:
            return f"display name looks like another address: {candidate}"
    return None


# --- parsing -----------------------------------------------------------------------------


def _parse(raw: bytes, defects: list[str], limits: HeaderLimits) -> Part:
    """Reject hopeless input up front; read the header block within the limits."""
    if not raw or raw.isspace():
        raise MailError("empty message")
    start = 0
    if raw[:1] in (b"\r", b"\n"):
        start = len(raw) - len(raw.lstrip(b"\r\n"))
        defects.append("blank lines before the header block; skipped them")
    if not _HEADER_START.match(raw, start):
        raise MailError("no header block: the first line is not a header field")
    top = mime.read_part(raw, start, len(raw), limits, top=True)
    if not top.fields:
        raise MailError("no header block: no header fields found")
    defects.extend(top.defects)
    top.defects.clear()
    return top


def _content_type(top: Part, defects: list[str]) -> str:
    try:
        return top.headers.get_content_type()
    except Exception as exc:
        defects.append(f"Content-Type unreadable ({type(exc).__name__}); assumed text/plain")
        return "text/plain"


# --- headers -----------------------------------------------------------------------------


def _read_headers(top: Part, defects: list[str]) -> _Headers:
    """Decode every header once; address headers also yield their parsed addresses."""
    result = _Headers({}, {})
    for raw_name, raw_value in top.fields:
        name = raw_name.strip().lower()
        value = raw_value
        if not value.isascii() and _SURROGATES.search(value):
            defects.append(f"header {name}: raw 8-bit bytes; decoded as utf-8/cp1252")
            value = _fix_surrogates(value)
        if name in _ADDRESS_FIELDS:
            value, found = _decode_addresses(name, value, defects)
            result.addresses.setdefault(name, []).extend(found)
        elif "=?" in value:
            value = _decode_words(value, defects, f"header {name}")
        result.values.setdefault(name, []).append(_clean(value))
    return result


def _decode_words(value: str, defects: list[str], label: str) -> str:
    """RFC 2047 in one pass: encoded words decoded, the blanks between two of them dropped,
    and runs of words in one charset decoded together (senders split characters across
    words). Linear in the length, unlike the standard library's header parser."""
    out: list[str] = []
    run: list[bytes] = []
    run_charset = ""
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset = match[1].partition("*")[0].lower()
        data = _word_bytes(match[2], match[3], defects, label)
        if run and not between.strip() and charset == run_charset:
            run.append(data)
        else:
            if run:
                out.append(_decode_body(b"".join(run), run_charset, defects, label))
            if not (run and not between.strip()):
                out.append(between)
            run, run_charset = [data], charset
        pos = match.end()
    if run:
        out.append(_decode_body(b"".join(run), run_charset, defects, label))
    out.append(value[pos:])
    return _fix_surrogates("".join(out))


def _word_bytes(kind: str, text: str, defects: list[str], label: str) -> bytes:
    data = text.encode("ascii", "surrogateescape")
    if kind in "qQ":
        return binascii.a2b_qp(data, header=True)
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4))
    except (binascii.Error, ValueError):
        defects.append(f"{label}: undecodable encoded word; kept it as written")
        return data


def _decode_addresses(name: str, value: str, defects: list[str]) -> tuple[str, list[Address]]:
    """The mailboxes, structure read before any name is decoded: decoded first, an encoded
    name holding a line break and an address would be taken for the address
    ('=?utf-8?q?x=0D=0Aevil@x?= <real@example.org>' is from real@…)."""
    label = f"header {name}"
    boxes, problems, _groups = split_addresses(value)
    defects.extend(f"{label}: {problem}" for problem in problems)
    found = [_address(_decode_words(b.name, defects, label), b.addr_spec) for b in boxes]
    if not any(a.email for a in found) and "@" in value:
        found = [Address("", email) for email in _salvage(value)]
    text = _decode_words(value, defects, label) if "=?" in value else value
    return text, [a for a in found if a.name or a.email]


def _salvage(value: str) -> list[str]:
    """Addresses in mangled text, read around each of the first few '@' (linear, unlike a
    regular expression search over long junk)."""
    found: list[str] = []
    at = value.find("@")
    for _ in range(_MAX_SALVAGED):
        if at < 0:
            break
        left = at
        while left > 0 and value[left - 1] in _LOCAL_CHARS:
            left -= 1
        right = at + 1
        while right < len(value) and value[right] in _DOMAIN_CHARS:
            right += 1
        candidate = value[left:right].strip(".").lower()
        if _ADDR_TOKEN.fullmatch(candidate) and len(candidate) <= _MAX_ADDRESS:
            found.append(candidate)
        at = value.find("@", right)
    return found


def _address(name: str, addr_spec: str) -> Address:
    """Keep only a plausible addr-spec, salvaging one from mangled text (unclosed quotes)."""
    addr = _clean(_fix_surrogates(addr_spec)).lower()
    if not _ADDR_SPEC.fullmatch(addr):
        salvaged = _ADDR_TOKEN.search(addr) if len(addr) <= _MAX_SALVAGE else None
        addr = salvaged.group() if salvaged else ""
    if len(addr) > _MAX_ADDRESS:
        addr = ""
    return Address(name=_clean(_fix_surrogates(name))[:200], email=addr)


def _decode_loose(value: str) -> str:
    """Last-resort RFC 2047 decode that never raises: legacy decoder, else the raw text."""
    try:
        return _fix_surrogates(str(make_header(decode_header(value))))
    except Exception:
        return _fix_surrogates(value)


def _message_id(value: str) -> str | None:
    match = _ANGLE_ID.search(value)
    found = "".join(match.group(1).split()) if match else value.strip()
    return found if found and len(found) <= _MAX_ID else None


def _message_ids(values: list[str]) -> tuple[str, ...]:
    """Ids in order of appearance; bare tokens with '@' when a client dropped the brackets."""
    ids: list[str] = []
    for value in values:
        bracketed = _ANGLE_ID.findall(value)
        tokens = bracketed if bracketed else [t for t in value.split() if "@" in t]
        ids.extend("".join(t.split()).strip(",;") for t in tokens)
    return tuple(dict.fromkeys(i for i in ids if i and len(i) <= _MAX_ID))


def _date(value: str | None, defects: list[str]) -> datetime | None:
    if not value:
        defects.append("Date header missing")
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except Exception as exc:
        defects.append(f"Date header unparseable ({type(exc).__name__}): {value[:80]!r}")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- body and attachments ----------------------------------------------------------------


def _read_body(
    top: Part, defects: list[str], limits: HeaderLimits
) -> tuple[str, str | None, tuple[Attachment, ...]]:
    """Pick the body like EmailMessage.get_body(('plain', 'html')); the rest may be attachments."""
    leaves = list(_leaves(top, defects, limits))
    plain = _first_body(leaves, "text/plain")
    html_leaf = _first_body(leaves, "text/html")
    html = _part_text(html_leaf, defects, "html body") if html_leaf else None
    text = _part_text(plain, defects, "body") if plain else ""
    if html is not None and not text.strip():
        text = _html_to_text(html, defects)
    attachments: list[Attachment] = []
    for leaf in leaves:
        if leaf is not plain and leaf is not html_leaf:
            attachment = _attachment(leaf, defects)
            if attachment is not None:
                attachments.append(attachment)
    return text, html, tuple(attachments)


def _first_body(leaves: list[_Leaf], content_type: str) -> _Leaf | None:
    return next((x for x in leaves if x.body_ok and x.content_type == content_type), None)


def _leaves(top: Part, defects: list[str], limits: HeaderLimits) -> Iterator[_Leaf]:
    """Depth-first in document order, iteratively, so hostile nesting cannot exhaust the stack."""
    flat = len(_MULTIPART.findall(top.raw, top.start)) > _MAX_MULTIPARTS
    if flat:
        defects.append(f"more than {_MAX_MULTIPARTS} multipart parts; kept the body as text")
    budget = [mime.MAX_PARTS]
    stack: list[tuple[Part, int, bool]] = [(top, 0, True)]
    while stack:
        part, depth, body_ok = stack.pop()
        if depth > _MAX_DEPTH:
            defects.append(f"MIME nesting deeper than {_MAX_DEPTH} levels; ignored the rest")
            continue
        try:
            leaf, kids = _expand(part, body_ok, defects, limits, budget, flat)
        except Exception as exc:  # a stdlib bug in this part's MIME parameters
            defects.append(f"MIME part unreadable ({type(exc).__name__}); skipped it")
            continue
        defects.extend(part.defects)
        if leaf is not None:
            yield leaf
        stack.extend((child, depth + 1, ok) for child, ok in reversed(kids))


def _type_of(part: Part) -> tuple[str, str | None]:
    """The content type and its charset (lower case, ASCII) if it names one."""
    value = next((v for name, v in part.fields if name.lower() == "content-type"), None)
    if value is None:
        return part.default_type, None
    if len(value) <= _MAX_REMEMBERED:
        return _remembered_type(value, part.default_type)
    return _read_type(part.headers)


_MAX_REMEMBERED = 200  # a Content-Type value kept by _remembered_type; real ones are short


@lru_cache(maxsize=256)
def _remembered_type(value: str, default_type: str) -> tuple[str, str | None]:
    """_read_type of a part whose first Content-Type field is `value`: both methods it calls
    read that field and the default type only, and mail repeats a few values all the time."""
    message = Message()
    message.set_raw("Content-Type", value)
    message.set_default_type(default_type)
    return _read_type(message)


def _read_type(headers: Message) -> tuple[str, str | None]:
    content_type = headers.get_content_type()
    charset = headers.get_content_charset() if "content-type" in headers else None
    if not charset or not str(charset).isascii():
        return content_type, None
    return content_type, str(charset).lower()


def _expand(
    part: Part,
    body_ok: bool,
    defects: list[str],
    limits: HeaderLimits,
    budget: list[int],
    flat: bool,
) -> tuple[_Leaf | None, list[tuple[Part, bool]]]:
    """A leaf, or the children of a multipart with whether each may hold the body."""
    content_type, charset = _type_of(part)
    headers = part.headers
    disposition = headers.get_content_disposition() if "content-disposition" in headers else None
    body_ok = body_ok and disposition != "attachment"
    if not content_type.startswith("multipart/"):
        return _Leaf(part, content_type, body_ok, disposition, charset), []
    kids = None if flat else mime.children(part, limits, budget)
    if kids is None:  # boundary missing: the text kept as is
        if not flat:
            defects.append("multipart without usable boundary; treated it as plain text")
        return _Leaf(part, "text/plain", body_ok, disposition, charset), []
    root = _related_root(part, kids) if content_type == "multipart/related" else None
    return None, [(c, body_ok and (root is None or c is root)) for c in kids]


def _related_root(part: Part, children: list[Part]) -> Part | None:
    start = part.headers.get_param("start")
    if isinstance(start, str) and start:
        for child in children:
            if child.headers.get("content-id") == start:
                return child
    return children[0] if children else None


def _payload(part: Part, defects: list[str], label: str) -> bytes:
    """Transfer-decoded bytes; a broken MIME header costs only this part, not the mail."""
    try:
        return mime.decoded(part, defects, label)
    except Exception as exc:
        defects.append(f"{label}: undecodable ({type(exc).__name__}); left empty")
        return b""


def _part_text(leaf: _Leaf, defects: list[str], label: str) -> str:
    payload = _payload(leaf.part, defects, label)
    text = _decode_body(payload, leaf.charset, defects, label)
    del payload
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        text = text.replace("\x00", "")
        defects.append(f"{label}: NUL bytes; removed them")
    return text.removeprefix("\ufeff")


def _decode_body(data: bytes, charset: str | None, defects: list[str], label: str) -> str:
    """Decode with the declared charset, else utf-8, cp1252, latin-1 (which never fails)."""
    declared = (charset or "us-ascii").strip().lower()
    codec = _codec(_CHARSET_ALIASES.get(declared, declared))
    if codec is not None:
        superset = _SUPERSETS.get(codec)
        for name in (superset, codec) if superset else (codec,):
            with contextlib.suppress(UnicodeDecodeError):
                return data.decode(name)
        reason = f"bytes not valid {declared}" if charset else "8-bit bytes but no charset"
    else:
        reason = f"unknown charset {declared[:40]!r}"
    text, used = _decode_fallback(data)
    defects.append(f"{label}: {reason}; decoded as {used}")
    return text


def _codec(charset: str) -> str | None:
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError, TypeError):
        return None
    if info.name in _REFUSED_CODECS or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _decode_fallback(data: bytes) -> tuple[str, str]:
    for codec in _FALLBACK_CODECS[:-1]:
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode(codec), codec
    return data.decode("latin-1"), "latin-1"


def _html_to_text(html: str, defects: list[str]) -> str:
    if len(html) > _MAX_LAYOUT:
        defects.append(f"html body: larger than {_MAX_LAYOUT:,} characters; stripped tags")
        return _stripped(html)
    import inscriptis  # with lxml, for mail with no text part only: not at every start

    try:
        return str(inscriptis.get_text(html))
    except Exception as exc:  # lxml chokes on some garbage; a tag strip is still readable
        defects.append(f"html body: not convertible ({type(exc).__name__}); stripped tags")
        return _stripped(html)


def _stripped(html: str) -> str:
    """Tags out, entities decoded, in pieces cut after a '>' (a tag or an entity never spans
    one), so a substitution's list of matches stays small."""
    pieces: list[str] = []
    start = 0
    while start < len(html):
        end = html.find(">", start + _PIECE)
        end = len(html) if end < 0 else end + 1
        pieces.append(unescape(_TAG.sub(" ", html[start:end])))
        start = end
    return "".join(pieces)


def _attachment(leaf: _Leaf, defects: list[str]) -> Attachment | None:
    """Non-body leaves that are named or marked attachment, and every attached message."""
    part = leaf.part
    filename = _filename(part, defects)
    is_message = leaf.content_type.startswith("message/")
    if not (is_message or filename or leaf.disposition == "attachment"):
        return None
    if is_message:
        content = _message_bytes(part, defects)
    else:
        content = _payload(part, defects, f"attachment {filename!r}")
    return Attachment(filename=filename, content_type=leaf.content_type, content=content)


def _filename(part: Part, defects: list[str]) -> str:
    """The final path component only, so a name can never point outside a storage folder."""
    try:
        name = part.headers.get_filename()
    except Exception as exc:
        defects.append(f"attachment name unreadable ({type(exc).__name__}); left empty")
        return ""
    if not name:
        return ""
    name = _fix_surrogates(str(name))
    if "=?" in name:
        name = _decode_loose(name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _BIDI.sub("", _clean(name)).strip().strip('"').lstrip(".").strip()[:255]


def _message_bytes(part: Part, defects: list[str]) -> bytes:
    """An attached message as sent, with CRLF line ends (as a mail on the wire has)."""
    return _BARE_LF.sub(b"\r\n", _payload(part, defects, "attached message"))


# --- small text helpers ------------------------------------------------------------------


def _clean(value: str) -> str:
    """One line of text, safe to echo into outgoing headers and logs."""
    if value.isascii() and value.isprintable():  # most fields: nothing to take out
        return value.strip()
    return _CONTROL.sub("", value.replace("\t", " ")).strip()


def _fix_surrogates(text: str) -> str:
    """Turn surrogate-escaped raw bytes back into text so every field encodes as UTF-8."""
    if text.isascii():  # surrogates are not ASCII
        return text
    return _SURROGATES.sub(_decode_surrogate_run, text)


def _decode_surrogate_run(match: re.Match[str]) -> str:
    try:
        data = match.group().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # not escaped bytes, just broken UTF-16 pieces
        return "\ufffd"
    return _decode_fallback(data)[0]
