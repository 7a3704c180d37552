"""Every example in the README and docs/ is what its command prints.

A code block holding lines that start with `$ mailproc` is an example: each such command is
run (in-process, in an empty folder, on the demo configuration unless the block says otherwise)
and its output compared with the lines shown up to the next `$` line or the block's end. In
the shown output, a line that is only `…` stands for any number of lines, and `…` inside a line
for any text, so a doc may shorten an example without stating anything false. An HTML comment
on one of the three lines above the block sets it up:

    <!-- example: config=config/mailproc.example.toml -->   run with that configuration
    <!-- example: setup=sla-report -->                       a database prepared by the setup
                                                             of that name (below)
    <!-- example: unchecked=REASON -->                       not run yet (listed by the first
                                                             test, so the debt stays visible)

A changed output fails here with both versions; paste the command's output into the doc.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mailproc.config.settings import demo_settings
from mailproc.desk.escalations import run_escalations
from mailproc.desk.mail import Desk, Disposition
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.clirunner import invoker
from tests.support.desk import FakeClock
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.slakit import t

ROOT = Path(__file__).parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^(\s*)```")
_SETUP = re.compile(r"<!--\s*example:\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Example:
    where: str  # file:line of the command
    command: str
    shown: list[str]
    options: dict[str, str]

    def __str__(self) -> str:
        return self.where


def examples() -> Iterator[Example]:
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        inside, indent, start, options = False, "", 0, {}
        for number, line in enumerate(lines):
            fence = _FENCE.match(line)
            if fence and not inside:
                inside, indent, start = True, fence.group(1), number + 1
                above = " ".join(lines[max(0, number - 3) : number])
                found = _SETUP.search(above)
                options = dict(o.split("=", 1) for o in found.group(1).split()) if found else {}
            elif fence and inside:
                yield from _block(path, start, lines[start:number], indent, options)
                inside = False


def _block(path, start, body, indent, options) -> Iterator[Example]:
    body = [line.removeprefix(indent) for line in body]
    commands = [i for i, line in enumerate(body) if line.startswith("$ mailproc ")]
    for n, i in enumerate(commands):
        end = commands[n + 1] if n + 1 < len(commands) else len(body)
        where = f"{path.relative_to(ROOT)}:{start + i + 1}"
        yield Example(where, body[i][2:], body[i + 1 : end], options)


def matches(shown: list[str], actual: list[str]) -> bool:
    """Shown lines against printed ones: `…` alone skips lines, `…` in a line skips text."""
    pattern = "".join(
        r"(?:.*\n)*?" if line.strip() == "…" else re.escape(line).replace("…", ".*") + r"\n"
        for line in shown
    )
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in actual)) is not None


# --- setups: the state an example's command reads ---------------------------------------------

Setup = Callable[[Path, pytest.MonkeyPatch], None]


def _desk(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Desk:
    url = f"sqlite:///{folder / 'mailproc.sqlite3'}"
    monkeypatch.setenv("MAILPROC_DATABASE_URL", url)
    engine = make_engine(url)
    upgrade(engine)
    settings = demo_settings(environ={"MAILPROC_DATABASE_URL": url, "MAILPROC_SECRET": "docs"})
    return Desk(settings, engine, FakeClock())


def _mail(desk: Desk, when: str, **kw: str) -> str:
    desk.clock.now = t(when)  # type: ignore[attr-defined]
    raw = make_mail(**kw)
    assert desk.handle(raw).disposition is Disposition.PROCESSED
    return message_id_of(raw)


NORA, SERVICEDESK = "Nora <nora@example.com>", "Desk <servicedesk@example.com>"


def sla_report(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = _desk(folder, monkeypatch)
    first = _mail(desk, "2026-03-02 09:00", subject="Exchange is down")
    _mail(desk, "2026-03-02 09:30", subject="Printer", to="support@example.com")
    _mail(desk, "2026-03-02 09:40", subject="Slow VPN", to="network-support@example.com")
    _mail(desk, "2026-03-02 09:50", subject="[ASSIGN tina]", sender=NORA, in_reply_to=first)
    old = _mail(desk, "2026-03-02 09:55", subject="Old", to="support@example.com")
    _mail(desk, "2026-03-02 09:56", subject="[CLOSE]", sender=NORA, in_reply_to=old)


def sla_explain(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = _desk(folder, monkeypatch)
    first = _mail(desk, "2026-03-27 16:30", subject="Exchange is down")
    desk.clock.now = t("2026-03-30 08:20")  # type: ignore[attr-defined]
    run_escalations(desk.settings, desk.engine, desk.clock)
    _mail(desk, "2026-03-30 08:25", subject="[ACK]", sender=SERVICEDESK, in_reply_to=first)
    _mail(desk, "2026-03-30 09:00", subject="[PRIORITY P4]", sender=NORA, in_reply_to=first)


SETUPS: dict[str, Setup] = {"sla-report": sla_report, "sla-explain": sla_explain}

# --- the test ---------------------------------------------------------------------------------


DEMO_CONFIG = ROOT / "mailproc" / "config" / "default_config.toml"
UNCHECKED = {  # issue 16's examples, to be given setups: file and command (lines move)
    "docs/admin/commands.md: mailproc ingest --json - < mail.eml",
    "docs/admin/commands.md: mailproc send --once --json",
    "docs/admin/monitoring.md: mailproc status",
}


def test_the_docs_have_examples_to_check():
    found = list(examples())
    assert len(found) >= 5
    assert {e.options.get("setup") for e in found} >= set(SETUPS)
    debt = {f"{e.where.partition(':')[0]}: {e.command}" for e in found if "unchecked" in e.options}
    assert debt <= UNCHECKED  # no new debt


@pytest.mark.parametrize(
    "example", [e for e in examples() if "unchecked" not in e.options], ids=str
)
def test_each_documented_example_is_what_the_command_prints(example, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILPROC_CONFIG", raising=False)
    monkeypatch.delenv("MAILPROC_DATABASE_URL", raising=False)
    prefix: tuple[str, ...] = ("--config", str(DEMO_CONFIG))
    if "config" in example.options:
        prefix = ("--config", str(ROOT / example.options["config"]))
    if "setup" in example.options:
        SETUPS[example.options["setup"]](tmp_path, monkeypatch)
    args = shlex.split(example.command)[1:]
    result = invoker(*prefix)(*args, code=None)
    actual = result.output.rstrip("\n").splitlines()
    assert matches(example.shown, actual), (
        f"{example.where}: `{example.command}` printed:\n" + "\n".join(actual)
    )
