"""Split a mail into header fields and MIME parts by byte offsets, in time and memory linear
in its size.

The standard library's parser keeps every line of a body as its own string (25 MB of empty
lines cost it 2.4 GB) and its header parser is quadratic in encoded words (a 2.5 MB Subject:
23 GB). Here a part is a pair of offsets into the one `bytes` of the mail, boundaries are
found with `bytes.find`, and bodies are transfer-decoded by binascii in one call each, so a
mail costs a few times its size, whatever its shape. Header blocks are read line by line, but
only up to `HeaderLimits`, checked as they are read: a mail over a limit is refused
(`OverLimit`) before anything is decoded. Header parameters (charset, boundary, file name) are
read by the standard library's compat32 `Message`, on header blocks that the limits keep small.

Pure: no I/O, no configuration (the limits are passed in).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

__all__ = ["HeaderLimits", "MailError", "OverLimit", "Part", "children", "decoded", "read_part"]

_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")
_LINE = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)?")
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(sorted(set(range(256)) - set(_B64)))
MAX_PARTS = 1000  # parts of one mail; real mail has a few dozen at most


class MailError(Exception):
    """Raised only when a message is hopeless; str(exc) is the quarantine reason."""


class OverLimit(MailError):
    """The header block is over a limit: refused unparsed; str(exc) says which limit."""


@dataclass(frozen=True, slots=True)
class HeaderLimits:
    """Bounds on a header block, far above real mail (see docs/admin/safety.md): Exchange
    Online refuses header blocks over 256 KiB, Postfix cuts a field at 100 KiB."""

    fields: int = 1000  # header fields in the block
    block_bytes: int = 256 * 1024  # the whole header block
    field_bytes: int = 100 * 1024  # one field, all its lines
    encoded_words: int = 1000  # RFC 2047 encoded words in one field


DEFAULT_LIMITS = HeaderLimits()


@dataclass(slots=True)
class Part:
    """One MIME entity: its header fields and the offsets of its body in the mail's bytes."""

    raw: bytes  # the whole mail, shared by every part, never copied
    fields: list[tuple[str, str]]  # (name, value) as written, line breaks of folding removed
    start: int
    end: int
    defects: list[str] = field(default_factory=list)
    default_type: str = "text/plain"
    _message: Message | None = None

    @property
    def headers(self) -> Message:
        """The fields as a compat32 Message, for its parameter parsing (built once)."""
        if self._message is None:
            message = Message()
            for name, value in self.fields:
                message.set_raw(name, value)
            message.set_default_type(self.default_type)
            self._message = message
        return self._message

    @property
    def size(self) -> int:
        return self.end - self.start


def read_part(raw: bytes, start: int, end: int, limits: HeaderLimits, top: bool = False) -> Part:
    """The entity at raw[start:end]: its header block read (up to the limits), the rest body.

    Like the standard library, a line that is neither a field nor a continuation ends the
    header block early (it belongs to the body). Over a limit: OverLimit for the mail's own
    header block (`top`), else the part keeps no fields and a defect says why.
    """
    part = Part(raw, [], start, end)
    try:
        part.start = _read_fields(part, limits, top)
    except OverLimit as exc:
        if top:
            raise
        part.fields = []
        part.defects.append(f"MIME part header ignored: {exc}")
    return part


def _read_fields(part: Part, limits: HeaderLimits, top: bool) -> int:
    """Fill part.fields; returns where the body starts."""
    raw, end = part.raw, part.end
    name: bytes | None = None
    value: list[bytes] = []
    pos = part.start
    for match in _LINE.finditer(raw, part.start, end):
        line = match.group()
        if not line:
            break
        pos = match.end()
        if pos - part.start > limits.block_bytes:
            raise OverLimit(
                f"header block larger than {limits.block_bytes:,} bytes (limits.header_block_bytes)"
            )
        content = line.rstrip(b"\r\n")
        if not content:  # the blank line
            break
        if content[:1] in (b" ", b"\t"):
            if name is None:
                part.defects.append("header: first line is a continuation line; ignored it")
            else:
                value.append(content)
            continue
        found = _NAME.match(content)
        mbox = top and name is None and not part.fields and content.startswith(b"From ")
        if found is None and mbox:  # an mbox separator line
            continue
        if name is not None:
            _add_field(part, name, value, limits)
        if found is None:
            part.defects.append("header: missing blank line before the body")
            pos = match.start()
            name = None
            break
        name, value = content[: found.end() - 1], [content[found.end() :].lstrip(b" \t")]
    else:
        pos = end
    if name is not None:
        _add_field(part, name, value, limits)
    return min(pos, end)


def _add_field(part: Part, name: bytes, lines: list[bytes], limits: HeaderLimits) -> None:
    if len(part.fields) >= limits.fields:
        raise OverLimit(f"more than {limits.fields:,} header fields (limits.header_fields)")
    value = lines[0] if len(lines) == 1 else b"".join(lines)
    if len(value) > limits.field_bytes:
        raise OverLimit(
            f"header field {_label(name)} longer than {limits.field_bytes:,} bytes "
            "(limits.header_field_bytes)"
        )
    if value.count(b"=?") > limits.encoded_words:
        raise OverLimit(
            f"header field {_label(name)} has more than {limits.encoded_words:,} encoded words "
            "(limits.header_encoded_words)"
        )
    text = value.decode("ascii", "surrogateescape")
    part.fields.append((name.decode("ascii", "surrogateescape"), text))


def _label(name: bytes) -> str:
    return (name.decode("ascii", "replace").strip().lower() or "(unnamed)")[:40]


def children(part: Part, limits: HeaderLimits, budget: list[int]) -> list[Part] | None:
    """The parts of a multipart, or None when its boundary is missing or never found (the
    standard library then keeps the body as text, and so does the caller). `budget` is the
    count of parts the mail may still have (MAX_PARTS in all), shared across the tree."""
    boundary = part.headers.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        return None
    marker = b"--" + boundary.strip().encode("utf-8", "surrogateescape")
    found: list[Part] = []
    opened = -1
    digest = part.headers.get_content_type() == "multipart/digest"
    for line_start, after, closing in _delimiters(part.raw, part.start, part.end, marker):
        if opened >= 0:
            if budget[0] <= 0:
                part.defects.append(f"more than {MAX_PARTS} MIME parts; ignored the rest")
                return found
            budget[0] -= 1
            end = _before_break(part.raw, opened, line_start)
            found.append(_child(part, opened, end, limits, digest))
        if closing:
            return found if opened >= 0 else None
        opened = after
    if opened < 0:
        part.defects.append("MIME: start boundary not found")
        return None
    part.defects.append("MIME: close boundary not found")
    if budget[0] > 0:
        budget[0] -= 1
        found.append(_child(part, opened, part.end, limits, digest))
    return found


def _child(parent: Part, start: int, end: int, limits: HeaderLimits, digest: bool) -> Part:
    child = read_part(parent.raw, start, max(start, end), limits)
    child.default_type = "message/rfc822" if digest else "text/plain"
    return child


def _delimiters(raw: bytes, start: int, end: int, marker: bytes) -> Iterator[tuple[int, int, bool]]:
    """Boundary lines ("--b", "--b--", trailing blanks allowed) at the start of a line:
    (where the line starts, where the next line starts, whether it closes)."""
    pos = start
    while (i := raw.find(marker, pos, end)) >= 0:
        pos = j = i + len(marker)
        if i != start and raw[i - 1] not in (10, 13):
            continue
        closing = raw.startswith(b"--", j, end)
        j += 2 if closing else 0
        while j < end and raw[j] in (9, 32):
            j += 1
        if j < end and raw[j] not in (10, 13):
            continue  # "--boundary-and-more": another boundary, or text
        if j < end:
            j += 2 if raw.startswith(b"\r\n", j, end) else 1
        pos = j
        yield i, j, closing


def _before_break(raw: bytes, start: int, line_start: int) -> int:
    """The line break before a boundary belongs to the boundary, not to the part."""
    if line_start - 2 >= start and raw[line_start - 2 : line_start] == b"\r\n":
        return line_start - 2
    if line_start - 1 >= start and raw[line_start - 1] in (10, 13):
        return line_start - 1
    return line_start


def decoded(part: Part, defects: list[str], label: str) -> bytes:
    """The body with its Content-Transfer-Encoding undone, in one pass of C code."""
    data = part.raw[part.start : part.end]
    encoding = (part.headers.get("content-transfer-encoding") or "").strip().lower()
    if encoding == "base64":
        return _base64(data, defects, label)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


def _base64(data: bytes, defects: list[str], label: str) -> bytes:
    try:
        return binascii.a2b_base64(data)  # skips line breaks and other non-alphabet bytes
    except binascii.Error:
        pass
    clean = data.translate(None, _NOT_B64)
    cut = len(clean) - len(clean) % 4 if len(clean) % 4 == 1 else len(clean)
    defects.append(f"{label}: base64 with bad padding; decoded what it held")
    try:
        return binascii.a2b_base64(clean[:cut] + b"=" * (-cut % 4))
    except binascii.Error:
        return b""
