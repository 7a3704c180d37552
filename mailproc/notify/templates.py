"""Notification templates: files administrators edit, rendered in Jinja's sandbox.

    <folder>/<kind>/subject.txt             one line (folded to one if it is not)
    <folder>/<kind>/body.txt                the text body
    <folder>/<kind>/body.html               optional: makes the mail multipart/alternative
    <folder>/services/<service>/<kind>/     the same files for one service; when this folder
                                            exists it replaces <folder>/<kind>/ for that service

Administrators are trusted to edit templates but a template must still not reach Python's
internals, hence the SandboxedEnvironment; a typo must fail loudly, hence StrictUndefined;
user text must not turn into markup, hence autoescape for .html files. Jinja's auto_reload
compares each file's modification time before use, so an edit applies to the next mail without
a restart. Errors come out as `TemplateProblem` with file:line, never as a traceback.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    pass_environment,
    select_autoescape,
)
from jinja2.filters import do_wordwrap
from jinja2.sandbox import SandboxedEnvironment

from mailproc.config.settings import Settings
from mailproc.notify.context import (
    build_context,
    sample_attachments,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.recipients import DEFAULT_RECIPIENTS, Notice, recipients_of
from mailproc.vocabulary import NoticeKind, Party

HTML_FILE = "body.html"


class TemplateProblem(Exception):
    """A template that cannot be rendered: where (file:line) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str | None


def shipped_folder(package: Path) -> Path:
    """The templates that ship with mailproc: inside the package of an installed wheel
    (pyproject's force-include), else the source checkout's `templates/` (editable install)."""
    inside = package / "_templates"
    return inside if inside.is_dir() else package.parent / "templates"


def folder_of(settings: Settings) -> Path:
    configured = settings.notifications.templates
    return configured if configured is not None else shipped_folder(_package())


def _package() -> Path:
    return Path(str(resources.files("mailproc")))


class _Loader(FileSystemLoader):
    """Looks at a template file's modification time at most once per `recheck` seconds: an
    edit still applies without a restart, within that time, but rendering a notice no longer
    costs a file-system call per template."""

    def __init__(self, folder: Path, recheck: float, clock: Callable[[], float]) -> None:
        super().__init__(folder)
        self.recheck, self.clock = recheck, clock

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        checked = self.clock()

        def throttled() -> bool:
            nonlocal checked
            now = self.clock()
            if now - checked < self.recheck:
                return True
            checked = now
            return bool(uptodate())

        return source, filename, throttled


class _Compiled(FileSystemBytecodeCache):
    """Jinja's compiled templates kept on disk across processes (each is looked up by its
    source's checksum, so an edited template is compiled again). The key also covers this
    module, whose environment options shape the compiled code."""

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        stamp = Path(__file__).stat()
        return super().get_cache_key(f"{name}|{stamp.st_mtime_ns}|{stamp.st_size}", filename)


class Templates:
    """One template folder, compiled templates cached and reloaded when their file changes;
    with `compiled` (a private folder, mailproc.runtime.cache), compiled once for many
    processes rather than once in each."""

    def __init__(
        self,
        folder: Path,
        recheck: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        compiled: Path | None = None,
    ) -> None:
        self.folder, self.recheck, self.clock = folder, recheck, clock
        self._layout: dict[tuple[NoticeKind, str], tuple[float, str, bool]] = {}
        self.env = SandboxedEnvironment(
            loader=_Loader(folder, recheck, clock),
            bytecode_cache=_Compiled(str(compiled)) if compiled is not None else None,
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html", "htm"), default=False),
            auto_reload=True,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["wordwrap"] = _wordwrap

    def event_dir(self, kind: NoticeKind, service: str) -> str:
        return self._where(kind, service)[0]

    def _where(self, kind: NoticeKind, service: str) -> tuple[str, bool]:
        """The folder for this kind and service, and whether it has an HTML body; looked up
        again after `recheck` seconds, so a new override or HTML file is seen without a
        restart."""
        now = self.clock()
        known = self._layout.get((kind, service))
        if known is not None and now - known[0] < self.recheck:
            return known[1], known[2]
        override = f"services/{service}/{kind.value}"
        base = override if (self.folder / override).is_dir() else kind.value
        html = (self.folder / base / HTML_FILE).is_file()
        self._layout[(kind, service)] = (now, base, html)
        return base, html

    def render(self, kind: NoticeKind, service: str, context: dict[str, Any]) -> Rendered:
        base, has_html = self._where(kind, service)
        html = self._render(f"{base}/{HTML_FILE}", context) if has_html else None
        return Rendered(
            self._render(f"{base}/subject.txt", context),
            self._render(f"{base}/body.txt", context),
            html,
        )

    def _render(self, name: str, context: dict[str, Any]) -> str:
        try:
            return self.env.get_template(name).render(context)
        except TemplateNotFound as exc:
            if exc.name == name:
                raise TemplateProblem(str(self.folder / name), "missing") from None
            where = _where(exc, self.folder, name)
            raise TemplateProblem(where, f"includes {exc.name!r}, which does not exist") from None
        except TemplateSyntaxError as exc:
            where = f"{exc.filename or self.folder / name}:{exc.lineno}"
            raise TemplateProblem(where, f"syntax error: {exc.message}") from None
        except Exception as exc:  # undefined names, sandbox refusals, errors in filters
            where = _where(exc, self.folder, name)
            raise TemplateProblem(where, f"{type(exc).__name__}: {exc}") from None


@pass_environment
def _wordwrap(environment: Environment, text: str, *args: Any, **kwargs: Any) -> str:
    """Jinja's wordwrap, remembered: templates wrap the same status instructions in nearly
    every notice, and textwrap cost more than all the rest of a template's rendering."""
    return _wrapped(environment, str(text), args, tuple(sorted(kwargs.items())))


@lru_cache(maxsize=512)
def _wrapped(
    environment: Environment, text: str, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]
) -> str:
    return str(do_wordwrap(environment, text, *args, **dict(kwargs)))


def _where(exc: BaseException, folder: Path, name: str) -> str:
    """The template file and line Jinja reports for the failing expression."""
    root = str(folder.resolve())
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if str(Path(frame.filename).resolve()).startswith(root)
    ]
    if not frames:
        return str(folder / name)
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def check_templates(templates: Templates, settings: Settings) -> list[TemplateProblem]:
    """Render every kind for every service and every recipient role with sample data."""
    found: dict[str, TemplateProblem] = {}
    for service in sorted(settings.services):
        facts = sample_facts(settings, service)
        for kind in NoticeKind:
            cause, occasion = sample_occasion(kind, facts)
            for role in _roles(kind, service, settings):
                notice = Notice(kind, sample_recipient(role, facts, settings), cause)
                files = sample_attachments(notice, settings)
                try:
                    templates.render(
                        kind, service, build_context(notice, facts, occasion, settings, files)
                    )
                except TemplateProblem as problem:
                    found.setdefault(str(problem), problem)
    return list(found.values())


def _roles(kind: NoticeKind, service: str, settings: Settings) -> list[str]:
    entries = [*recipients_of(kind, service, settings), *DEFAULT_RECIPIENTS[kind]]
    roles = [e if e in Party.__members__.values() else "address" for e in entries]
    return list(dict.fromkeys(roles))
