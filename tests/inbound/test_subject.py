"""The subject-line language: tags, commands, typos, prefixes and titles."""

import pytest

from mailproc.inbound.subject import BadCommand, Command, Language, parse_subject, strip_prefixes
from mailproc.vocabulary import Verb


def commands(subject: str, language: Language | None = None) -> list[tuple[Verb, str | None]]:
    parsed = parse_subject(subject, language) if language else parse_subject(subject)
    return [(c.verb, c.arg) for c in parsed.commands if isinstance(c, Command)]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[ASSIGN tina]", [(Verb.ASSIGN, "tina")]),
        ("[assign Tina]", [(Verb.ASSIGN, "Tina")]),
        ("[ASSIGN]", [(Verb.ASSIGN, None)]),
        ("[CLOSE]", [(Verb.CLOSE, None)]),
        ("[close]", [(Verb.CLOSE, None)]),
        ("[RESOLVE]", [(Verb.RESOLVE, None)]),
        ("[REOPEN]", [(Verb.REOPEN, None)]),
        ("[PRIORITY P2]", [(Verb.PRIORITY, "P2")]),
        ("[priority critical]", [(Verb.PRIORITY, "P1")]),
        ("[PRIORITY high]", [(Verb.PRIORITY, "P2")]),
        ("[PRIORITY Medium]", [(Verb.PRIORITY, "P3")]),
        ("[PRIORITY low]", [(Verb.PRIORITY, "P4")]),
        ("[MOVE network]", [(Verb.MOVE, "network")]),
        ("[RELATE PRB-7]", [(Verb.RELATE, "7")]),
        ("[relate prb7]", [(Verb.RELATE, "7")]),
        (
            "Re: [INC-4] printer [ASSIGN tina][PRIORITY P1] down [CLOSE]",
            [(Verb.ASSIGN, "tina"), (Verb.PRIORITY, "P1"), (Verb.CLOSE, None)],
        ),
    ],
)
def test_commands_are_read_anywhere_in_any_case(subject, expected):
    assert commands(subject) == expected


@pytest.mark.parametrize(
    ("subject", "fragment"),
    [
        ("[ASIGN tina]", "did you mean ASSIGN"),
        ("[CLSOE]", "did you mean CLOSE"),
        ("[PRIORTY P1]", "did you mean PRIORITY"),
        ("[PRIORITY P9]", "unknown priority 'P9'"),
        ("[PRIORITY]", "PRIORITY needs an argument"),
        ("[CLOSE now please]", "CLOSE takes no argument"),
        ("[MOVE]", "MOVE needs an argument"),
        ("[RELATE foo]", "'foo' is not a problem number"),
        ("[ASSIGN tina sam]", "ASSIGN takes one name"),
    ],
)
def test_malformed_commands_become_bad_commands_with_the_syntax(subject, fragment):
    parsed = parse_subject(subject)
    assert len(parsed.commands) == 1
    bad = parsed.commands[0]
    assert isinstance(bad, BadCommand)
    assert fragment in bad.reason
    assert "Syntax: [" in bad.reason
    assert parsed.title == "(no subject)" or bad.text not in parsed.title


@pytest.mark.parametrize(
    "subject",
    ["[URGENT] printer broken", "[EXTERNAL] invoice", "[ext] hello", "[] empty", "[Ticket 5] x"],
)
def test_other_bracketed_text_stays_in_the_title(subject):
    parsed = parse_subject(subject)
    assert parsed.commands == ()
    assert parsed.title == subject


@pytest.mark.parametrize(
    ("subject", "incident"),
    [
        ("Re: [INC-42] Exchange down", 42),
        ("[inc-7]", 7),
        ("AW: WG: [INC 9] x", 9),
        ("no tag INC-5 here", None),
        ("[INC-3] and [INC-4]", 3),
    ],
)
def test_incident_tag(subject, incident):
    assert parse_subject(subject).incident == incident


@pytest.mark.parametrize(
    ("subject", "title"),
    [
        ("Re: Exchange down", "Exchange down"),
        ("RE: RE: Exchange down", "Exchange down"),
        ("AW: WG: Drucker kaputt", "Drucker kaputt"),
        ("SV: Skrivaren", "Skrivaren"),
        ("Odp: Drukarka", "Drukarka"),
        ("Fwd: Fw: FW: note", "note"),
        ("TR: imprimante", "imprimante"),
        ("Re[2]: counted", "counted"),
        ("回复: 邮件", "邮件"),
        ("Re: [INC-4] Re: [ASSIGN tina] VPN   flaky ", "VPN flaky"),
        ("[CLOSE]", ""),
        ("Regarding the VPN", "Regarding the VPN"),
        ("Reply needed", "Reply needed"),
    ],
)
def test_prefixes_and_commands_do_not_reach_the_title(subject, title):
    assert parse_subject(subject).title == title


def test_strip_prefixes_removes_a_chain():
    assert strip_prefixes("Re: Fwd: AW: hello") == "hello"


def test_configured_aliases_are_command_words():
    czech = Language.with_aliases({"ZAVRIT": Verb.CLOSE, "PRIRADIT": Verb.ASSIGN})
    assert commands("[zavrit]", czech) == [(Verb.CLOSE, None)]
    assert commands("[PRIRADIT tina]", czech) == [(Verb.ASSIGN, "tina")]
    bad = parse_subject("[ZAVRTI]", czech).commands[0]
    assert isinstance(bad, BadCommand) and "ZAVRIT" in bad.reason
