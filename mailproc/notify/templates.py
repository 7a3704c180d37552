"""Notification templates: files administrators edit, rendered in Jinja's sandbox.

    <folder>/<kind>/subject.txt             one line (folded to one if it is not)
    <folder>/<kind>/body.txt                the text body
    <folder>/<kind>/body.html               optional: makes the mail multipart/alternative
    <folder>/services/<service>/<kind>/     the same files for one service; when this folder
                                            exists it replaces <folder>/<kind>/ for that service
    <folder>/<language>/...                 the same layout in one language (`de`, `pt-BR`):
                                            a reader of that language gets these folders first

The folders at the top are the default, in English as shipped. A reader's language picks the
first folder that exists of <language>/services/<service>/<kind>/, <language>/<kind>/ (for
`pt-BR`, then for `pt`), services/<service>/<kind>/ and <kind>/; a kind missing in the reader's
language falls back to the default with a warning, once per process. Includes (`_reply.txt`)
are looked up in the reader's language first as well. Dates, times and durations are rendered
in the reader's language and zone by the filters of mailproc.notify.formats.

Administrators are trusted to edit templates but a template must still not reach Python's
internals, hence the SandboxedEnvironment; a typo must fail loudly, hence StrictUndefined;
user text must not turn into markup, hence autoescape for .html files. Jinja's auto_reload
compares each file's modification time before use, so an edit applies to the next mail without
a restart. Errors come out as `TemplateProblem` with file:line, never as a traceback.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemBytecodeCache,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    pass_environment,
    select_autoescape,
)
from jinja2.filters import do_wordwrap
from jinja2.sandbox import SandboxedEnvironment

from mailproc.config.locale import fallbacks, language_tag
from mailproc.config.settings import Settings
from mailproc.notify.context import (
    IncidentFacts,
    reader_for,
    sample_context,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.formats import FILTERS
from mailproc.notify.recipients import DEFAULT_RECIPIENTS, Notice, recipients_of
from mailproc.vocabulary import NoticeKind, Party

HTML_FILE = "body.html"
ROOT_LANGUAGE = "en"  # the language of the top-level (default) folders as shipped
log = logging.getLogger(__name__)


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

    def __init__(self, folders: list[Path], recheck: float, clock: Callable[[], float]) -> None:
        super().__init__(folders)
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


_DICT_ATTRIBUTES = frozenset(dir(dict))  # what `getattr(a_dict, name)` finds: dict's and object's


class Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, cheaper per notice and the same in what a template can reach.

    Context variables are plain dicts, so `incident.ref` is nearly every lookup: the sandbox
    tries `getattr` first and takes the key only after an AttributeError. For an exact dict
    and a name that is none of dict's attributes that getattr always fails, so the key is
    looked up directly; every other lookup (`__class__`, `items`, any other object) goes
    through the sandbox's checks as before. A template's globals are a plain dict rather than
    a ChainMap over the environment's (nothing changes those after the environment is made,
    as Jinja asks), so the context made for each render and each include no longer iterates a
    ChainMap twice. Loaded templates are found by name in a dict (see get_template).

    Nothing here changes what a template may reach: the lookups it shortens are the ones on
    which the sandbox's checks had nothing to check (tests/notify/test_sandbox.py compares
    every shipped template's output and every refusal with Jinja's own sandbox)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._loaded: dict[str, Template] = {}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and type(attribute) is str and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        return {**self.globals, **(d or {})}

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        """Every render and include asks for its template by name: a dict of those loaded
        answers instead of Jinja's locked LRU cache, with the same check that the file has
        not changed (asked once: the loader's check is throttled, a second would say yes)."""
        if globals is not None or not isinstance(name, str) or self.loader is None:
            return super().get_template(name, parent, globals)
        name = self.join_path(name, parent) if parent is not None else name
        known = self._loaded.get(name)
        if known is None or not known.is_up_to_date:
            known = self._loaded[name] = self.loader.load(self, name, self.make_globals(None))
        return known


class Templates:
    """One template folder, compiled templates cached and reloaded when their file changes;
    one sandboxed environment per language found, whose includes look there first; with
    `compiled` (a private folder, mailproc.runtime.cache), compiled once for many processes
    rather than once in each. `sandbox`: Jinja's own SandboxedEnvironment is what tests and
    bench/notices.py compare the output and the cost with."""

    def __init__(
        self,
        folder: Path,
        recheck: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        compiled: Path | None = None,
        sandbox: type[SandboxedEnvironment] = Sandbox,
    ) -> None:
        self.folder, self.recheck, self.clock, self.sandbox = folder, recheck, clock, sandbox
        self._layout: dict[tuple[NoticeKind, str, str], tuple[float, str, str, bool]] = {}
        self._envs: dict[str, SandboxedEnvironment] = {}
        self._warned: set[tuple[str, str]] = set()
        self._compiled = _Compiled(str(compiled)) if compiled is not None else None
        self.env = self._environment("")

    def _environment(self, language: str) -> SandboxedEnvironment:
        """The environment of a language folder ("" for the default): its loader searches the
        language's folders (pt-BR, then pt) before the default."""
        known = self._envs.get(language)
        if known is not None:
            return known
        tags = [t for t in fallbacks(language) if (self.folder / t).is_dir()] if language else []
        env = self.sandbox(
            loader=_Loader(
                [*(self.folder / t for t in tags), self.folder], self.recheck, self.clock
            ),
            bytecode_cache=self._compiled,
            undefined=StrictUndefined,
            # asked by every render and include: the answer per file name, remembered
            autoescape=cache(select_autoescape(enabled_extensions=("html", "htm"), default=False)),
            auto_reload=True,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["wordwrap"] = _wordwrap
        env.filters.update(FILTERS)
        self._envs[language] = env
        return env

    def event_dir(self, kind: NoticeKind, service: str, language: str = "") -> str:
        return self._where(kind, service, language)[1]

    def languages(self) -> list[str]:
        """The language folders present: every top-level folder named like a language tag
        that is not a notice kind or `services`."""
        names = {k.value for k in NoticeKind} | {"services"}
        found = []
        for entry in sorted(self.folder.iterdir()) if self.folder.is_dir() else ():
            if entry.is_dir() and entry.name not in names and not entry.name.startswith(("_", ".")):
                try:
                    found.append(language_tag(entry.name))
                except ValueError:
                    continue
        return found

    def _where(self, kind: NoticeKind, service: str, language: str) -> tuple[str, str, bool]:
        """The language folder whose environment renders it, the kind's folder, and whether it
        has an HTML body; looked up again after `recheck` seconds, so a new override, language
        or HTML file is seen without a restart."""
        now = self.clock()
        known = self._layout.get((kind, service, language))
        if known is not None and now - known[0] < self.recheck:
            return known[1], known[2], known[3]
        tags = fallbacks(language) if language else []
        candidates = [
            f"{prefix}{name}"
            for prefix in [*(f"{t}/" for t in tags), ""]
            for name in (f"services/{service}/{kind.value}", kind.value)
        ]
        base = next((c for c in candidates if (self.folder / c).is_dir()), kind.value)
        translated = any(base.startswith(f"{t}/") for t in tags)
        if tags and not translated and tags[-1] != ROOT_LANGUAGE:
            self._warn_once(language, kind.value)
        html = (self.folder / base / HTML_FILE).is_file()
        self._layout[(kind, service, language)] = (now, language, base, html)
        return language, base, html

    def _warn_once(self, language: str, kind: str) -> None:
        if (language, kind) not in self._warned:
            self._warned.add((language, kind))
            log.warning(
                "templates: no %s/%s/ in %s; %s readers get the default %s/",
                language,
                kind,
                self.folder,
                language,
                kind,
            )

    def render(
        self, kind: NoticeKind, service: str, context: dict[str, Any], language: str = ""
    ) -> Rendered:
        language, base, has_html = self._where(kind, service, language)
        env = self._environment(language)
        html = self._render(env, f"{base}/{HTML_FILE}", context) if has_html else None
        return Rendered(
            self._render(env, f"{base}/subject.txt", context),
            self._render(env, f"{base}/body.txt", context),
            html,
        )

    def _render(self, env: SandboxedEnvironment, name: str, context: dict[str, Any]) -> str:
        try:
            return env.get_template(name).render(context)
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
    """Render every kind for every service, every recipient role and every language (the
    default and each language folder) with sample data, for a reader of that language."""
    found: dict[str, TemplateProblem] = {}
    for language in ["", *templates.languages()]:
        for service in sorted(settings.services):
            facts = sample_facts(settings, service)
            for kind in NoticeKind:
                _check_kind(templates, settings, facts, kind, language, found)
    return list(found.values())


def _check_kind(
    templates: Templates,
    settings: Settings,
    facts: IncidentFacts,
    kind: NoticeKind,
    language: str,
    found: dict[str, TemplateProblem],
) -> None:
    cause, occasion = sample_occasion(kind, facts)
    for role in roles_of(kind, facts.service, settings):
        notice = Notice(kind, sample_recipient(role, facts, settings), cause)
        reader = reader_for(notice, facts, settings)
        if language:
            reader = replace(reader, language=language)
        try:
            context = sample_context(notice, facts, occasion, settings, reader)
            templates.render(kind, facts.service, context, language)
        except TemplateProblem as problem:
            found.setdefault(str(problem), problem)


def coverage(templates: Templates, settings: Settings) -> dict[str, list[str]]:
    """Per language — each language folder, and each language the configuration gives a
    reader — the notice kinds it has no folder for (its readers get the default)."""
    configured = {settings.locale.language}
    configured |= {s.language for s in settings.services.values() if s.language}
    configured |= {p.language for p in settings.people.values() if p.language}
    configured |= {c.language for c in settings.contacts.values() if c.language}
    languages = sorted(set(templates.languages()) | {c for c in configured if c})
    report = {}
    for language in languages:
        if fallbacks(language)[-1] == ROOT_LANGUAGE:
            continue
        report[language] = [
            kind.value
            for kind in NoticeKind
            if not any(
                (templates.folder / tag / kind.value).is_dir() for tag in fallbacks(language)
            )
        ]
    return report


def roles_of(kind: NoticeKind, service: str, settings: Settings) -> list[str]:
    entries = [*recipients_of(kind, service, settings), *DEFAULT_RECIPIENTS[kind]]
    roles = [e if e in Party.__members__.values() else "address" for e in entries]
    return list(dict.fromkeys(roles))
