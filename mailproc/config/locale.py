"""Who reads notices in which language and time zone: the settings and the people directory.

A language is a tag like `de` or `pt-BR`, written the way template folders are named; only its
shape is checked here, because loading Babel's locale data costs a tenth of a second that the
command line and `ingest -` must not pay (`templates check` asks Babel whether it knows each).
Texts that administrators write once per desk — a service's title, a status's instructions —
may be one string or a table of them per language (`Localized`).

The directory lists people who are neither solvers nor admins (reporters, team mailboxes) by
address, in the configuration (`[directory."alice@example.org"]`) and/or in a file named by
`locale.directory`: TOML (tables keyed by address) or CSV (a header `email,name,language,zone`).
A directory entry grants nothing: commands and roles come from `[people]` only.
"""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from mailproc import calendars
from mailproc.config.paths import ConfigPath

_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")

Localized = str | dict[str, str]  # one text for every reader, or one per language tag


def language_tag(value: str) -> str:
    """'pt_br' -> 'pt-BR', 'DE' -> 'de', 'zh-hant-tw' -> 'zh-Hant-TW' (BCP 47 casing)."""
    text = value.strip()
    if not _TAG.match(text):
        raise ValueError(f"'{value}' is not a language tag like 'de' or 'pt-BR'")
    head, *rest = text.replace("_", "-").split("-")
    parts = [head.lower()]
    for part in rest:
        parts.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4 else part)
    return "-".join(parts)


def fallbacks(language: str) -> list[str]:
    """'pt-BR' -> ['pt-BR', 'pt']: the tags to try, most specific first."""
    parts = language.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def text_in(text: Localized, language: str, default: str) -> str:
    """The text for a reader: their language, its base language, the desk's, any."""
    if isinstance(text, str):
        return text
    for tag in [*fallbacks(language), *fallbacks(default)]:
        if tag in text:
            return text[tag]
    return next(iter(text.values()), "")


def localized(value: Localized) -> Localized:
    """A text per language with its tags written as folders are named ('pt_br' -> 'pt-BR')."""
    if isinstance(value, str):
        return value
    return {language_tag(tag): text for tag, text in value.items()}


def optional_zone(value: str | None) -> str | None:
    return None if value is None else calendars.zone_named(value).key


def optional_language(value: str | None) -> str | None:
    return None if value is None else language_tag(value)


class _Frozen(BaseModel):
    """Frozen, strict about unknown keys, and built when it first validates (as the other
    configuration models: a process that loads cached settings builds no validator)."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class ReaderConfig(_Frozen):
    """What a person, a service or the desk says about how notices are written for them."""

    language: str | None = None
    zone: str | None = None

    _language = field_validator("language")(classmethod(lambda cls, v: optional_language(v)))
    _zone = field_validator("zone")(classmethod(lambda cls, v: optional_zone(v)))


class ContactConfig(ReaderConfig):
    """A directory entry: a person known by address only."""

    name: str = ""


class LocaleConfig(_Frozen):
    """The desk's defaults, the directory file, and whether mail may hint at a language."""

    language: str = "en"
    zone: str = "UTC"
    mail_language: bool = False  # Content-Language / Accept-Language of reporters not listed
    directory: ConfigPath | None = None  # TOML or CSV; relative to the configuration file

    _language = field_validator("language")(classmethod(lambda cls, v: language_tag(v)))
    _zone = field_validator("zone")(classmethod(lambda cls, v: calendars.zone_named(v).key))


def read_directory(path: Path) -> dict[str, ContactConfig]:
    """The entries of a directory file by lower-cased address; ValueError names file, entry and
    fault."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = _csv_rows(path, handle)
        else:
            with path.open("rb") as handle:
                rows = [(f"{address!r}", address, v) for address, v in tomllib.load(handle).items()]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid directory file: {exc}") from None
    return {address.strip().lower(): _entry(path, where, v) for where, address, v in rows}


def _csv_rows(path: Path, handle: Any) -> list[tuple[str, str, Mapping[str, Any]]]:
    reader = csv.DictReader(handle)
    columns = set(reader.fieldnames or ())
    if "email" not in columns or not columns <= {"email", "name", "language", "zone"}:
        raise ValueError(
            f"{path}: the first line must name the columns: email, and any of name, language, "
            f"zone (found {', '.join(reader.fieldnames or ()) or 'nothing'})"
        )
    return [
        (f"line {reader.line_num}", row["email"], {k: v for k, v in row.items() if k != "email"})
        for row in reader
    ]


def _entry(path: Path, where: str, values: Any) -> ContactConfig:
    if isinstance(values, dict):
        values = {k: v for k, v in values.items() if v != ""}  # an empty CSV cell: not given
    try:
        return ContactConfig.model_validate(values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        key = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        raise ValueError(f"{path}: {where}: {key}: {message}".replace(": : ", ": ")) from None
