"""Who reads a notice: their name, language and time zone, and where each came from.

Pure. The order, most specific first:
- language: the person's own settings (`[people.NAME]` for solvers and admins, else the
  directory: `[directory."ADDR"]`, then the `locale.directory` file); for a reporter who is in
  neither, the language their mail declared (Content-Language, Accept-Language) when
  `locale.mail_language` is on; the service's `language`; the desk's `locale.language`.
- time zone: the person's own settings; the service's `zone`; the zone of the service's
  calendar, if it names one; the desk's `locale.zone`.
`mailproc people show ADDR` prints the result with its sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mailproc.config.locale import language_tag
from mailproc.config.settings import Settings


@dataclass(frozen=True, slots=True)
class Reader:
    email: str
    name: str
    language: str
    zone: str
    origins: Mapping[str, str]  # "name", "language", "zone" -> where the value came from


def reader_of(
    email: str, settings: Settings, service: str, hint: str | None = None, name: str = ""
) -> Reader:
    """`hint`: the language the person's mail declared, if any; `name`: a name known from the
    mail (the directory's wins)."""
    email = email.strip().lower()
    own = _own(email, settings)
    origins: dict[str, str] = {}
    found_name = _first(origins, "name", [*own["name"], (name, "their mail")]) or ""
    languages = [*own["language"]]
    if hint and settings.locale.mail_language and not own["listed"]:
        languages.append((hint, "the Content-Language of their mail"))
    config = settings.services[service]
    languages += [(config.language, f"service {service}"), (settings.locale.language, "locale")]
    calendar = settings.calendar_of(service)
    zones = [
        *own["zone"],
        (config.zone, f"service {service}"),
        (settings.calendars[calendar].zone, f"calendar {calendar} of service {service}"),
        (settings.locale.zone, "locale"),
    ]
    language = _first(origins, "language", languages)
    zone = _first(origins, "zone", zones)
    assert language is not None and zone is not None  # the locale always has both
    return Reader(email, found_name, language, zone, origins)


def _own(email: str, settings: Settings) -> dict[str, list[tuple[str | None, str]]]:
    """A person's own settings, as (value, origin) candidates per field, best first."""
    found: dict[str, list[tuple[str | None, str]]] = {"name": [], "language": [], "zone": []}
    person = settings.people_by_email.get(email)
    if person is not None:
        key, config = person
        where = f"people.{key}"
        found["name"] += [(config.name, where), (key, where)]
        found["language"].append((config.language, where))
        found["zone"].append((config.zone, where))
    contact = settings.contacts.get(email)
    if contact is not None:
        where = (
            f'directory."{email}"'
            if email in settings.directory
            else str(settings.locale.directory)
        )
        for field in ("name", "language", "zone"):
            found[field].append((getattr(contact, field) or None, where))
    found["listed"] = [("yes", "")] if person or contact else []
    return found


def _first(
    origins: dict[str, str], field: str, candidates: Sequence[tuple[str | None, str]]
) -> str | None:
    for value, origin in candidates:
        if value:
            origins[field] = origin
            return value
    return None


def mail_language(headers: Mapping[str, Sequence[str]]) -> str | None:
    """The first language a mail declares: Content-Language ('de-DE, en'), else the first of
    Accept-Language ('de-CH;q=0.9, en'); None when absent or not a language tag."""
    for name in ("content-language", "accept-language"):
        for value in headers.get(name, ()):
            first = value.split(",")[0].split(";")[0].strip()
            try:
                return language_tag(first)
            except ValueError:
                continue
    return None
