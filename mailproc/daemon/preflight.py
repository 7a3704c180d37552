"""`mailproc config check`: everything a deployment needs, checked at once before it is needed.

Without `--connect` it reads only local things: the configuration (and so every service,
workflow and calendar it names), the secrets each configured part needs, every file or folder
the configuration names, the templates (rendered for every notice, service and role). With
`--connect` it also reaches out: the database (reachable, at this version's schema), each
mail source (logs in, finds its folder and the folders it settles into), the SMTP server
(answers, TLS, logs in); nothing is changed, moved or sent. Every problem is reported, not
the first.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mailproc.config.credentials import SecretRef, SecretUnreadable, read_secret
from mailproc.config.paths import database_name
from mailproc.config.settings import ConfigError, SecretMissing, Settings
from mailproc.config.sources import ImapSourceConfig
from mailproc.sources.health import Check


def offline_checks(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    return [
        _configuration(settings),
        *_secrets(settings, environ),
        *_named_paths(settings),
        *_token_commands(settings),
        _templates(settings),
    ]


def connect_checks(settings: Settings, environ: Mapping[str, str]) -> list[Check]:
    return [_database(settings), *_sources(settings, environ), _smtp(settings, environ)]


def _configuration(settings: Settings) -> Check:
    detail = (
        f"{settings.source}: valid; {len(settings.services)} services, "
        f"{len(settings.people)} people, {len(settings.sources)} mail sources; every "
        "service, workflow and calendar it names exists"
    )
    return Check("configuration", True, detail)


def _secrets(settings: Settings, environ: Mapping[str, str]) -> Iterator[Check]:
    if settings.notifications.enabled:
        try:
            keys = settings.verification_keys
            older = f" (+{len(keys) - 1} previous)" if len(keys) > 1 else ""
            yield Check("signing secret", True, f"present{older}")
        except SecretMissing:
            yield _missing("signing secret", settings.secret_ref)
    smtp = settings.smtp
    if smtp.username and smtp.auth == "password":
        yield _secret("smtp password", smtp.password_ref, environ)
    for name, source in settings.sources.items():
        ref = getattr(source, "password_ref", None)
        if ref is not None:
            yield _secret(f"sources.{name} password", ref, environ)


def _secret(name: str, ref: SecretRef, environ: Mapping[str, str]) -> Check:
    try:
        found = read_secret(ref, environ)
    except SecretUnreadable as exc:
        return Check(name, False, str(exc))
    return Check(name, True, "present") if found else _missing(name, ref)


def _missing(name: str, ref: SecretRef) -> Check:
    return Check(name, False, f"missing: set {ref.describe()}")


def _named_paths(settings: Settings) -> Iterator[Check]:
    """Every file or folder the configuration names must exist (found by walking the
    settings, so a new setting of type path is checked without a line here)."""
    for key, path in _paths(settings, ""):
        if key == "database_url" or key.endswith("secret_file") or key.endswith("password_file"):
            continue  # secrets are checked above, with their content
        if not path.exists():
            yield Check(key, False, f"{path} does not exist")


def _paths(model: BaseModel, prefix: str) -> Iterator[tuple[str, Path]]:
    for field in type(model).model_fields:
        yield from _values(getattr(model, field), f"{prefix}{field}")


def _values(value: Any, key: str) -> Iterator[tuple[str, Path]]:
    if isinstance(value, Path):
        yield key, value
    elif isinstance(value, BaseModel):
        yield from _paths(value, f"{key}.")
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _values(item, f"{key}.{name}")
    elif isinstance(value, tuple | list):
        for number, item in enumerate(value):
            yield from _values(item, f"{key}[{number}]")


def _token_commands(settings: Settings) -> Iterator[Check]:
    commands = {"smtp.oauth2_token_command": settings.smtp.oauth2_token_command}
    for name, source in settings.sources.items():
        if isinstance(source, ImapSourceConfig):
            commands[f"sources.{name}.oauth2_token_command"] = source.oauth2_token_command
    for key, argv in commands.items():
        if argv and shutil.which(argv[0]) is None:
            yield Check(key, False, f"{argv[0]}: no such program (or not executable)")


def _templates(settings: Settings) -> Check:
    from mailproc.notify.templates import Templates, check_templates, folder_of

    folder = folder_of(settings)
    if not folder.is_dir():
        return Check("templates", False, f"{folder}: no such folder")
    problems = check_templates(Templates(folder), settings)
    if problems:
        listed = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more: mailproc templates check)" * (len(problems) > 5)
        return Check("templates", False, f"{len(problems)} problem(s): {listed}{more}")
    detail = f"{folder}: every notice renders for {len(settings.services)} services"
    return Check("templates", True, detail)


def _database(settings: Settings) -> Check:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mailproc.store.db import make_engine
    from mailproc.store.schema import SchemaOutdated, check_current, head_revision

    name = database_name(settings.database_url)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return Check("database", False, f"{name} does not exist: run `mailproc init`")
    engine = make_engine(settings.database_url)
    try:
        check_current(engine)
    except SchemaOutdated as exc:
        return Check("database", False, f"{name}: {exc}")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Check("database", False, f"{name}: unreachable: {reason}")
    finally:
        engine.dispose()
    return Check("database", True, f"{name}: reachable, at revision {head_revision()}")


def _sources(settings: Settings, environ: Mapping[str, str]) -> Iterator[Check]:
    from mailproc.daemon.loop import build_source
    from mailproc.sources.drain import SourceUnavailable

    for name in settings.sources:
        source = build_source(name, settings, environ)
        try:
            source.open(readonly=True)
            waiting = len(source.listing())
            # the folders it settles into that do not exist yet (a kind may not tell)
            absent: list[str] = getattr(source, "absent_folders", list)()
        except SourceUnavailable as exc:
            yield Check(f"sources.{name}", False, str(exc))
            continue
        finally:
            source.close()
        config = settings.sources[name]
        folder = getattr(config, "folder", "new/ and cur/")
        created = f"; will create {', '.join(absent)}" if absent else ""
        detail = f"{config.mailbox}: {folder} found, {waiting} mail(s) waiting{created}"
        yield Check(f"sources.{name}", True, detail)


def _smtp(settings: Settings, environ: Mapping[str, str]) -> Check:
    from aiosmtplib import SMTPException

    from mailproc.notify.sender import probe
    from mailproc.runtime.oauth2 import TokenUnavailable

    smtp = settings.smtp
    where = f"{smtp.host}:{smtp.effective_port}"
    try:
        return Check("smtp", True, f"{where}: {asyncio.run(probe(settings, environ))}")
    except ConfigError as exc:
        return Check("smtp", False, str(exc))
    except (SMTPException, OSError, TokenUnavailable) as exc:  # the server's own words
        return Check("smtp", False, f"{where}: {type(exc).__name__}: {exc}")
