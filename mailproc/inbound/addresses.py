"""Split an address header (From, To, Cc, Reply-To) into its mailboxes, in one pass.

The standard library's address parsers are quadratic in some input (100 KB of commas or of
quote characters take a minute in either); this reads each character once. It is lenient the
way mail needs: quotes and comments may be left open, names may hold what RFC 5322 forbids in
them. Structure is read before anything is decoded, so an encoded display name holding a line
break and an address stays a name. Pure; the caller decodes names and checks the addr-specs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Mailbox", "split_addresses"]


@dataclass(frozen=True, slots=True)
class Mailbox:
    name: str  # the display name as written (quotes and escapes removed), else a comment
    addr_spec: str  # inside <...>, else the bare text; '' if neither
    in_group: bool = False  # listed inside RFC 5322 group syntax ("Team: a@x, b@y;")


@dataclass
class _Element:
    outside: list[str] = field(default_factory=list)  # text outside <>, quotes kept
    angle: list[str] | None = None  # text inside <>, if the element had brackets
    comment: list[str] = field(default_factory=list)  # the first comment's text


@dataclass
class _State:
    quote: bool = False
    depth: int = 0  # comment nesting
    in_angle: bool = False
    escaped: bool = False
    group: bool = False
    groups: int = 0


# The common header, read as the loop below would read it: a name of plain characters and
# whole quoted strings, then <addr-spec> with no quote or comment in it, then blanks. Each
# alternative starts with a different character, so the match is linear.
_ONE_MAILBOX = re.compile(r'((?:[^("<>,;:\\]|"[^"\\]*")*)<([^("<>]*)>(\s*)')


def split_addresses(value: str) -> tuple[list[Mailbox], list[str], int]:
    """The mailboxes in order, what was malformed (open quotes, comments, brackets), and how
    many groups ("name: ...;") the value holds."""
    simple = _ONE_MAILBOX.fullmatch(value)
    if simple is not None:  # one mailbox, nothing malformed: what _split reads, in a tenth
        name, addr, blanks = simple.groups()
        return _finish(_Element([name, blanks], [addr]), False), [], 0
    return _split(value)


def _split(value: str) -> tuple[list[Mailbox], list[str], int]:
    """Any header, one character at a time."""
    found: list[Mailbox] = []
    state = _State()
    element = _Element()
    for char in value:
        if _consume(char, state, element):
            continue
        if char == "," or (char == ";" and state.group):
            found.extend(_finish(element, state.group))
            element = _Element()
            if char == ";":
                state.group = False
        elif char == ":" and not state.group and element.angle is None:
            state.group, state.groups = True, state.groups + 1
            element = _Element()  # the group's name is not an address
        else:
            element.outside.append(char)
    found.extend(_finish(element, state.group))
    problems = [
        problem
        for problem, present in (
            ("unterminated quoted string", state.quote),
            ("unterminated comment", state.depth > 0),
            ("unterminated angle bracket", state.in_angle),
        )
        if present
    ]
    return found, problems, state.groups


def _consume(char: str, state: _State, element: _Element) -> bool:
    """Quotes, comments and brackets; True when the character was used up by one."""
    if state.escaped:
        state.escaped = False
        _keep(char, state, element)
        return True
    if char == "\\" and (state.quote or state.depth):
        state.escaped = True
        _keep(char, state, element)
        return True
    if state.depth:
        state.depth += {"(": 1, ")": -1}.get(char, 0)
        if state.depth and len(element.comment) < 1000:
            element.comment.append(char)
        return True
    if state.quote:
        state.quote = char != '"'
        _keep(char, state, element)
        return True
    if char == "(":
        state.depth = 1
        return True
    if char == '"':
        state.quote = True
        _keep(char, state, element)
        return True
    if state.in_angle:
        if char == ">":
            state.in_angle = False
        elif element.angle is not None:
            element.angle.append(char)
        return True
    if char == "<":
        state.in_angle = True
        element.angle = []  # the last <...> of an element is its address
        return True
    return False


def _keep(char: str, state: _State, element: _Element) -> None:
    if state.in_angle and element.angle is not None:
        element.angle.append(char)
    elif state.depth:
        element.comment.append(char)
    else:
        element.outside.append(char)


def _finish(element: _Element, in_group: bool) -> list[Mailbox]:
    outside = "".join(element.outside).strip()
    comment = " ".join("".join(element.comment).split())
    if element.angle is None:
        if not outside:
            return []
        return [Mailbox(comment, outside, in_group)]
    addr = "".join(element.angle).strip()
    if addr.startswith("@") and ":" in addr:  # an obsolete source route: @a,@b:user@host
        addr = addr.partition(":")[2]
    name = _unquote(outside) or comment
    return [Mailbox(name, addr, in_group)] if name or addr else []


def _unquote(phrase: str) -> str:
    """A display name without its quote characters and backslash escapes."""
    out: list[str] = []
    escaped = False
    for char in phrase:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char != '"':
            out.append(char)
    return " ".join("".join(out).split())
