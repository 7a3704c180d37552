"""At most limits.commands_per_mail commands per mail, each short (issue 13: a subject of
thousands of brackets made 70,000 history rows and a 12 MB transcript)."""

from mailproc.inbound.subject import BadCommand, Language, limit_commands, parse_subject

LANGUAGE = Language.with_aliases({}, {})


def test_commands_over_the_limit_are_refused_in_one_line() -> None:
    parsed = limit_commands(parse_subject("[PRIORITY P1] " * 5000 + "help", LANGUAGE), 5)
    assert len(parsed.commands) == 6
    rest = parsed.commands[-1]
    assert isinstance(rest, BadCommand)
    assert rest.text == "[... 4995 more]"
    assert rest.reason == "more than 5 commands in one mail (limits.commands_per_mail)"


def test_a_long_command_is_shortened_and_few_commands_are_kept() -> None:
    parsed = limit_commands(parse_subject("[ASSIGN " + "x" * 5000 + "] [CLOSE]", LANGUAGE), 5)
    assert [len(c.text) <= 200 for c in parsed.commands] == [True, True]
    assert parsed.commands[1].text == "[CLOSE]"
