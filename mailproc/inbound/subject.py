"""The subject-line language: incident tag, bracketed commands and the clean title.

Pure functions only. A subject is read once into a `ParsedSubject`; syntax mistakes become
`BadCommand` values with a sentence a solver understands, never exceptions, because the
workflow must record them as refused commands rather than silently dropping them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from mailproc.vocabulary import PRIORITY_WORDS, Verb


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    arg: str | None
    text: str  # the bracket as written, for transcripts and history


@dataclass(frozen=True, slots=True)
class BadCommand:
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParsedSubject:
    incident: int | None
    commands: tuple[Command | BadCommand, ...]
    title: str
    proof: str = ""  # the signed tag of `[INC-42.<tag>]` (mailproc.signing.subject_token)


@dataclass(frozen=True, slots=True)
class VerbSpec:
    """How a verb takes its argument; `syntax` is quoted back to people who get it wrong."""

    arg: str  # "none" | "optional" | "required"
    syntax: str


SPECS: dict[Verb, VerbSpec] = {
    Verb.ASSIGN: VerbSpec("optional", "[ASSIGN person], or [ASSIGN] to take it yourself"),
    Verb.CLOSE: VerbSpec("none", "[CLOSE]"),
    Verb.RESOLVE: VerbSpec("none", "[RESOLVE]"),
    Verb.REOPEN: VerbSpec("none", "[REOPEN]"),
    Verb.PRIORITY: VerbSpec("required", "[PRIORITY P1|P2|P3|P4|critical|high|medium|low]"),
    Verb.MOVE: VerbSpec("required", "[MOVE service]"),
    Verb.RELATE: VerbSpec("required", "[RELATE PRB-n]"),
    Verb.IMPACT: VerbSpec("required", "[IMPACT level]"),
    Verb.URGENCY: VerbSpec("required", "[URGENCY level]"),
    Verb.ACK: VerbSpec("optional", "[ACK], or [ACK INC-n] for another incident"),
    Verb.NOTE: VerbSpec("none", "[NOTE]"),
    Verb.PUBLIC: VerbSpec("none", "[PUBLIC]"),
    Verb.WAIT: VerbSpec("none", "[WAIT]"),
    Verb.MERGE: VerbSpec("required", "[MERGE INC-n]"),
    Verb.CC: VerbSpec("required", "[CC +someone@example.org] or [CC -someone@example.org]"),
    Verb.LIST: VerbSpec("optional", "[LIST], or [LIST service]"),
    Verb.MINE: VerbSpec("none", "[MINE]"),
    Verb.HELP: VerbSpec("none", "[HELP]"),
    Verb.STATUS: VerbSpec("none", "[STATUS]"),
}
#: Verbs that say what the mail's text is rather than change the incident: read by the intent,
#: never given to the workflow's decision.
MARKERS = frozenset({Verb.NOTE, Verb.PUBLIC})
#: Verbs that ask rather than act: a mail of them alone is answered and changes nothing.
QUERIES = frozenset({Verb.LIST, Verb.MINE, Verb.HELP, Verb.STATUS})


def acknowledged(subject: ParsedSubject) -> tuple[int, ...]:
    """The incidents a mail of `[ACK INC-n]` alone acknowledges (a reply to a folded
    escalation mail); empty for any other mail."""
    items = subject.commands
    if not items or not all(isinstance(c, Command) and c.verb is Verb.ACK and c.arg for c in items):
        return ()
    return tuple(dict.fromkeys(int(c.arg or 0) for c in items if isinstance(c, Command)))


def is_query(subject: ParsedSubject) -> bool:
    """A mail of queries alone (a mistyped word makes it a mail of commands, refused)."""
    items = subject.commands
    return bool(items) and all(isinstance(c, Command) and c.verb in QUERIES for c in items)


#: The impact and urgency words of the shipped priority matrix; a configuration may change them.
DEFAULT_LEVELS: Mapping[Verb, tuple[str, ...]] = {
    Verb.IMPACT: ("high", "medium", "low"),
    Verb.URGENCY: ("high", "medium", "low"),
}

_BRACKET = re.compile(r"\[([^\[\]]*)\]")
_INC_TAG = re.compile(r"^\s*INC[-\s]?(\d{1,12})(?:\.([a-z2-7]{8}))?\s*$", re.IGNORECASE)
_PRB = re.compile(r"^(?:PRB-?)?(\d{1,12})$", re.IGNORECASE)
_INC_REF = re.compile(r"^(?:INC-?)?(\d{1,12})$", re.IGNORECASE)
_WATCHER = re.compile(
    r"^[+-][^\s@<>()\[\],;:\\\"]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$"
)
_PREFIX = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|odp|pd|fwd?|wg|tr|trs|antw|antwort|rif|ref|réf|res|rv|enc|"
    r"doorst|ynt|ilt|fs|vb|vl|atb|vá|továbbítás|válasz|odg|přeposlat|отв|ответ|пересл|"
    r"回复|回覆|答复|转发|轉寄|答覆|返信|転送)"
    r"\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Language:
    """The command words a deployment understands: canonical verbs plus configured aliases, and
    the words its priority matrix accepts for [IMPACT …] and [URGENCY …]."""

    words: Mapping[str, Verb] = field(default_factory=lambda: {v.value: v for v in Verb})
    levels: Mapping[Verb, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_LEVELS)

    @classmethod
    def with_aliases(
        cls, aliases: Mapping[str, Verb], levels: Mapping[Verb, tuple[str, ...]] = DEFAULT_LEVELS
    ) -> Language:
        words = {v.value: v for v in Verb}
        words.update({alias.upper(): verb for alias, verb in aliases.items()})
        return cls(words, levels)

    def syntax(self, verb: Verb) -> str:
        if verb in self.levels:
            return f"[{verb} {'|'.join(self.levels[verb])}]"
        return SPECS[verb].syntax

    def near_miss(self, word: str) -> str | None:
        """A command word one typo away, so `[ASIGN tina]` is refused instead of kept as title."""
        if len(word) < 4:
            return None
        for known in self.words:
            if len(known) >= 4 and _one_edit_apart(word, known):
                return known
        return None


DEFAULT_LANGUAGE = Language()


def strip_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject, count=1)


def parse_subject(subject: str, language: Language = DEFAULT_LANGUAGE) -> ParsedSubject:
    incident: int | None = None
    proof = ""
    commands: list[Command | BadCommand] = []
    kept: list[str] = []
    last = 0
    for match in _BRACKET.finditer(subject):
        inner = match.group(1)
        tag = _INC_TAG.match(inner)
        item = None if tag else _read_command(inner, match.group(0), language)
        if tag is None and item is None:
            continue  # ordinary bracketed text stays in the title
        kept.append(subject[last : match.start()])
        last = match.end()
        if tag is not None and incident is None:
            incident, proof = int(tag.group(1)), (tag.group(2) or "").lower()
        elif item is not None:
            commands.append(item)
    kept.append(subject[last:])
    return ParsedSubject(incident, tuple(commands), _clean_title("".join(kept)), proof)


def _clean_title(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    while True:
        stripped = strip_prefixes(text).strip()
        if stripped == text:
            return text
        text = stripped


def _read_command(inner: str, text: str, language: Language) -> Command | BadCommand | None:
    parts = inner.split()
    if not parts:
        return None
    word = parts[0].upper()
    verb = language.words.get(word)
    if verb is None:
        guess = language.near_miss(word)
        if guess is None:
            return None
        canonical = language.words[guess]
        return BadCommand(
            text,
            f"unknown command '{parts[0]}' — did you mean {guess}? "
            f"Syntax: {language.syntax(canonical)}",
        )
    return _check_argument(verb, " ".join(parts[1:]) or None, text, language)


def _check_argument(
    verb: Verb, arg: str | None, text: str, language: Language
) -> Command | BadCommand:
    spec, syntax = SPECS[verb], language.syntax(verb)
    if spec.arg == "none" and arg is not None:
        return BadCommand(text, f"{verb} takes no argument. Syntax: {syntax}")
    if spec.arg == "required" and arg is None:
        return BadCommand(text, f"{verb} needs an argument. Syntax: {syntax}")
    if verb is Verb.PRIORITY and arg is not None:
        priority = PRIORITY_WORDS.get(arg.upper())
        if priority is None:
            return BadCommand(text, f"unknown priority '{arg}'. Syntax: {syntax}")
        arg = priority.value
    elif verb in language.levels and arg is not None:
        if arg.lower() not in language.levels[verb]:
            return BadCommand(text, f"unknown {verb.lower()} '{arg}'. Syntax: {syntax}")
        arg = arg.lower()
    elif verb is Verb.RELATE and arg is not None:
        number = _PRB.match(arg)
        if number is None:
            return BadCommand(text, f"'{arg}' is not a problem number. Syntax: {syntax}")
        arg = number.group(1)
    elif verb in (Verb.MERGE, Verb.ACK) and arg is not None:
        number = _INC_REF.match(arg)
        if number is None:
            return BadCommand(text, f"'{arg}' is not an incident number. Syntax: {syntax}")
        arg = number.group(1)
    elif verb is Verb.CC and arg is not None:
        wrong = next((word for word in arg.split() if not _WATCHER.match(word)), None)
        if wrong is not None:
            what = "an address" if wrong[:1] in "+-" else "+address or -address"
            return BadCommand(text, f"'{wrong}' is not {what}. Syntax: {syntax}")
        arg = " ".join(word.lower() for word in arg.split())
    elif verb in (Verb.ASSIGN, Verb.MOVE, Verb.LIST) and arg is not None and " " in arg:
        return BadCommand(text, f"{verb} takes one name. Syntax: {syntax}")
    return Command(verb, arg, text)


def _one_edit_apart(a: str, b: str) -> bool:
    """Damerau distance exactly 1: one substitution, insertion, deletion or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        if len(diffs) == 1:
            return True
        i, j = diffs[0], diffs[-1]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k in range(len(short)) if short[k] != long[k]), len(short))
    return short[i:] == long[i + 1 :]


def limit_commands(parsed: ParsedSubject, limit: int) -> ParsedSubject:
    """At most `limit` commands, each written in at most MAX_COMMAND_TEXT characters; the rest
    refused as one, named by count: a subject of thousands of brackets must not become
    thousands of history rows and a transcript of megabytes. (Commands are all or nothing, so
    with too many the first ones are not applied either.)"""
    commands = tuple(_shortened(c) for c in parsed.commands[:limit])
    extra = len(parsed.commands) - limit
    if extra > 0:
        why = f"more than {limit} commands in one mail (limits.commands_per_mail)"
        commands += (BadCommand(f"[... {extra} more]", why),)
    return replace(parsed, commands=commands)


MAX_COMMAND_TEXT = 200


def _shortened(command: Command | BadCommand) -> Command | BadCommand:
    if len(command.text) <= MAX_COMMAND_TEXT:
        return command
    return replace(command, text=command.text[: MAX_COMMAND_TEXT - 2] + "…]")
