"""Turn the raw bytes of one inbound e-mail into a clean, immutable InboundMail.

Everything downstream (threading, ticket matching, loop detection, storage) reads
mail only through this module, so it must accept whatever real mail servers
deliver: it repairs what it can, records each repair in ``defects`` and raises
``MailError`` only for input that has no header block at all. It is pure: no I/O,
no clock, no configuration.
"""

from __future__ import annotations

import codecs
import contextlib
import email
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from mailproc.inbound.fingerprint import fingerprint

__all__ = ["Address", "Attachment", "InboundMail", "MailError", "parse_head", "parse_mail"]

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
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_TAG = re.compile(r"<[^>]*>")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
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
# Unstructured decoding for every non-address header: Date and Message-ID must keep
# their original text, which the default policy's specialised classes rewrite.
_UNSTRUCTURED = HeaderRegistry(use_default_map=False)
_MESSAGE_POLICY = policy.default.clone(refold_source="none", linesep="\r\n")


class MailError(Exception):
    """Raised only when a message is hopeless; str(exc) is the quarantine reason."""


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
    part: Message
    content_type: str
    body_ok: bool  # may serve as the body (not inside an attachment, not a non-root related part)
    disposition: str | None
    charset: str | None = None


class _Headers(NamedTuple):
    values: dict[str, list[str]]
    addresses: dict[str, list[Address]]


def parse_head(raw: bytes) -> InboundMail:
    """Only the header block (of at most 256 KiB): for a mail too large to parse whole, whose
    sender, subject and Message-ID still name it in quarantine. `raw` stays the whole mail."""
    head = raw[:_MAX_HEAD]
    end = re.search(rb"\r?\n\r?\n", head)
    mail = parse_mail(head[: end.start()] + b"\r\n\r\n" if end else head)
    return replace(mail, raw=raw)


def parse_mail(raw: bytes) -> InboundMail:
    """Parse leniently; only a missing header block is fatal (see MailError)."""
    defects: list[str] = []
    msg = _parse(raw, defects)
    headers = _read_headers(msg, defects)
    text, html, attachments = _read_body(msg, defects)
    first = {name: values[0] for name, values in headers.values.items()}
    addresses = headers.addresses
    senders = addresses.get("from", [])
    return InboundMail(
        raw=raw,
        message_id=_message_id(first.get("message-id", "")),
        in_reply_to=_message_ids(headers.values.get("in-reply-to", [])),
        references=_message_ids(headers.values.get("references", [])),
        subject=first.get("subject", ""),
        sender=senders[0] if senders else None,
        to=tuple(addresses.get("to", ())),
        cc=tuple(addresses.get("cc", ())),
        reply_to=tuple(addresses.get("reply-to", ())),
        date=_date(first.get("date"), defects),
        text=text,
        html=html,
        attachments=attachments,
        headers=MappingProxyType({k: tuple(v) for k, v in headers.values.items()}),
        content_type=_content_type(msg, defects),
        defects=tuple(dict.fromkeys(defects)),
    )


# --- parsing -----------------------------------------------------------------------------


def _parse(raw: bytes, defects: list[str]) -> Message:
    """Reject hopeless input up front; survive parser crashes by keeping just the headers."""
    if not raw or raw.isspace():
        raise MailError("empty message")
    data = raw
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
        defects.append("blank lines before the header block; skipped them")
    if not _HEADER_START.match(data):
        raise MailError("no header block: the first line is not a header field")
    if len(_MULTIPART.findall(data)) > _MAX_MULTIPARTS:
        defects.append(f"more than {_MAX_MULTIPARTS} multipart parts; kept the body as text")
        return _headers_only(data)
    try:
        msg: Message = email.message_from_bytes(data, policy=policy.default)
    except Exception as exc:  # RecursionError on hostile nesting, or a stdlib parser bug
        defects.append(f"MIME structure unparseable ({type(exc).__name__}); kept body as text")
        msg = _headers_only(data)
    if not len(msg):
        raise MailError("no header block: no header fields found")
    return msg


def _headers_only(data: bytes) -> Message:
    """The header block parsed, the body kept as one text part."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data, headersonly=True)
    except Exception as exc:
        raise MailError(f"unparseable header block ({type(exc).__name__})") from exc
    if not len(msg):
        raise MailError("no header block: no header fields found")
    return msg


def _content_type(msg: Message, defects: list[str]) -> str:
    try:
        return msg.get_content_type()
    except Exception as exc:
        defects.append(f"Content-Type unreadable ({type(exc).__name__}); assumed text/plain")
        return "text/plain"


# --- headers -----------------------------------------------------------------------------


def _read_headers(msg: Message, defects: list[str]) -> _Headers:
    """Decode every header once; address headers also yield their parsed addresses."""
    result = _Headers({}, {})
    for raw_name, raw_value in msg.raw_items():
        name = raw_name.strip().lower()
        value = _LINEBREAK.sub("", str(raw_value))
        if _SURROGATES.search(value):
            defects.append(f"header {name}: raw 8-bit bytes; decoded as utf-8/cp1252")
            value = _fix_surrogates(value)
        if name in _ADDRESS_FIELDS:
            value, found = _decode_addresses(name, value, defects)
            result.addresses.setdefault(name, []).extend(found)
        elif not value.isascii() or "=?" in value:
            value = _decode_unstructured(name, value, defects)
        result.values.setdefault(name, []).append(_clean(value))
    return result


def _decode_unstructured(name: str, value: str, defects: list[str]) -> str:
    try:
        header = _UNSTRUCTURED(name, value)
    except Exception as exc:  # the stdlib raises assorted errors on odd encoded words
        defects.append(f"header {name}: undecodable ({type(exc).__name__}); used a loose decode")
        return _decode_loose(value)
    defects.extend(f"header {name}: {_describe(d)}" for d in header.defects)
    return _fix_surrogates(str(header))


def _decode_addresses(name: str, value: str, defects: list[str]) -> tuple[str, list[Address]]:
    """Use the policy's strict parser; fall back to getaddresses when it fails.

    The fallback reads the structure from the undecoded value and decodes only the display
    names: decoded first, an encoded name holding a line break and an address would be taken
    for the address ('=?utf-8?q?x=0D=0Aevil@x?= <real@example.org>' is from real@…).
    """
    try:
        header: Any = policy.default.header_factory(name, value)
        text = _fix_surrogates(str(header))
        found = [_address(a.display_name, a.addr_spec) for a in header.addresses]
    except Exception as exc:  # AttributeError/IndexError/ValueError on odd address lists
        defects.append(f"header {name}: unparseable ({type(exc).__name__}); parsed leniently")
        text, found = _decode_loose(value), []
    else:
        defects.extend(f"header {name}: {_describe(d)}" for d in header.defects)
    if not any(a.email for a in found) and "@" in value:
        found = [_address(_decode_loose(n), e) for n, e in getaddresses([value])]
    if not any(a.email for a in found) and "@" in text and not _LINEBREAK.search(text):
        found = [_address(n, e) for n, e in getaddresses([text])]
    return text, [a for a in found if a.name or a.email]


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


def _read_body(msg: Message, defects: list[str]) -> tuple[str, str | None, tuple[Attachment, ...]]:
    """Pick the body like EmailMessage.get_body(('plain', 'html')); the rest may be attachments."""
    leaves = list(_leaves(msg, defects))
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


def _leaves(msg: Message, defects: list[str]) -> Iterator[_Leaf]:
    """Depth-first in document order, iteratively, so hostile nesting cannot exhaust the stack."""
    stack: list[tuple[Message, int, bool]] = [(msg, 0, True)]
    while stack:
        part, depth, body_ok = stack.pop()
        defects.extend(f"MIME: {_describe(d)}" for d in part.defects)
        if depth > _MAX_DEPTH:
            defects.append(f"MIME nesting deeper than {_MAX_DEPTH} levels; ignored the rest")
            continue
        try:
            leaf, children = _expand(part, body_ok, defects)
        except Exception as exc:  # a stdlib header-parser bug in this part's MIME headers
            defects.append(f"MIME part unreadable ({type(exc).__name__}); skipped it")
            continue
        if leaf is not None:
            yield leaf
        stack.extend((child, depth + 1, ok) for child, ok in reversed(children))


def _type_of(part: Message) -> tuple[str, str | None]:
    """The content type and charset from one parse of the Content-Type header, with the
    meaning get_content_type() and get_content_charset() give them: each of those parses the
    header anew, and header parsing is the costliest thing the standard library does here."""
    value = part.get("content-type")
    if value is None:
        return part.get_default_type(), None
    content_type = str(value).partition(";")[0].strip().lower()
    if content_type.count("/") != 1:
        content_type = "text/plain"
    charset = getattr(value, "params", {}).get("charset")
    if not charset or not str(charset).isascii():
        return content_type, None
    return content_type, str(charset).lower()


def _expand(
    part: Message, body_ok: bool, defects: list[str]
) -> tuple[_Leaf | None, list[tuple[Message, bool]]]:
    """A leaf, or the children of a multipart with whether each may hold the body."""
    content_type, charset = _type_of(part)
    # Checking presence first skips a costly header parse on most parts.
    disposition = part.get_content_disposition() if "content-disposition" in part else None
    body_ok = body_ok and disposition != "attachment"
    payload = part.get_payload()
    if not content_type.startswith("multipart/"):
        return _Leaf(part, content_type, body_ok, disposition, charset), []
    if not isinstance(payload, list):  # boundary missing: the stdlib kept the text as is
        defects.append("multipart without usable boundary; treated it as plain text")
        return _Leaf(part, "text/plain", body_ok, disposition, charset), []
    children = [c for c in payload if isinstance(c, Message)]
    root = _related_root(part, children) if content_type == "multipart/related" else None
    return None, [(c, body_ok and (root is None or c is root)) for c in children]


def _related_root(part: Message, children: list[Message]) -> Message | None:
    start = part.get_param("start")
    if isinstance(start, str) and start:
        for child in children:
            if child.get("content-id") == start:
                return child
    return children[0] if children else None


def _payload(part: Message, defects: list[str], label: str) -> bytes:
    """Transfer-decoded bytes; a broken MIME header costs only this part, not the mail."""
    try:
        payload = part.get_payload(decode=True)
    except Exception as exc:
        defects.append(f"{label}: undecodable ({type(exc).__name__}); left empty")
        return b""
    return payload if isinstance(payload, bytes) else b""


def _part_text(leaf: _Leaf, defects: list[str], label: str) -> str:
    payload = _payload(leaf.part, defects, label)
    text = _decode_body(payload, leaf.charset, defects, label)
    if "\r" in text:
        text = _LINEBREAK.sub("\n", text)
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
    import inscriptis  # with lxml, for mail with no text part only: not at every start

    try:
        return str(inscriptis.get_text(html))
    except Exception as exc:  # lxml chokes on some garbage; a tag strip is still readable
        defects.append(f"html body: not convertible ({type(exc).__name__}); stripped tags")
        return _TAG.sub(" ", html)


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


def _filename(part: Message, defects: list[str]) -> str:
    """The final path component only, so a name can never point outside a storage folder."""
    try:
        name = part.get_filename()
    except Exception as exc:
        defects.append(f"attachment name unreadable ({type(exc).__name__}); left empty")
        return ""
    if not name:
        return ""
    name = _fix_surrogates(str(name))
    if "=?" in name:
        name = _decode_loose(name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _BIDI.sub("", _clean(name)).lstrip(".").strip()[:255]


def _message_bytes(part: Message, defects: list[str]) -> bytes:
    """Regenerate an attached message, since the parser keeps no byte offsets."""
    payload = part.get_payload()
    try:
        if isinstance(payload, list):
            subs = (s for s in payload if isinstance(s, Message))
            return b"".join(sub.as_bytes(policy=_MESSAGE_POLICY) for sub in subs)
        return _payload(part, defects, "attached message")
    except Exception as exc:
        defects.append(f"attached message not serialisable ({type(exc).__name__}); left empty")
        return b""


# --- small text helpers ------------------------------------------------------------------


def _clean(value: str) -> str:
    """One line of text, safe to echo into outgoing headers and logs."""
    return _CONTROL.sub("", value.replace("\t", " ")).strip()


def _fix_surrogates(text: str) -> str:
    """Turn surrogate-escaped raw bytes back into text so every field encodes as UTF-8."""
    return _SURROGATES.sub(_decode_surrogate_run, text)


def _decode_surrogate_run(match: re.Match[str]) -> str:
    try:
        data = match.group().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # not escaped bytes, just broken UTF-16 pieces
        return "\ufffd"
    return _decode_fallback(data)[0]


def _describe(defect: object) -> str:
    """'StartBoundaryNotFoundDefect' -> 'start boundary not found', plus the stdlib detail."""
    words = _CAMEL.sub(" ", type(defect).__name__.removesuffix("Defect")).lower()
    detail = str(defect)
    return f"{words} ({detail})" if detail and detail != words else words
