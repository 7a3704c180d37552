"""Dates, times and durations as a notice's reader reads them: their language, their zone.

Templates get instants and amounts as small objects (`LocalTime`, `Duration`) that know their
reader; printed bare they show the default form, and the filters `datetime`, `date`, `time`
and `duration` choose another (`{{ incident.created|date("long") }}`). Formats are Babel's
(CLDR data): `short`, `medium`, `long`, `full`, or a Babel pattern like `"EEEE d. MMMM"`.
Babel is imported on first use, not with this module: it costs a tenth of a second that a
command which sends no notice should not pay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from jinja2 import pass_context
from jinja2.runtime import Context

from mailproc.times import whole_second, whole_seconds

if TYPE_CHECKING:
    from babel import Locale

FALLBACK = "en"
Length = Literal["short", "long", "narrow"]
_DATE_STYLES = ("short", "medium", "long", "full")
_REMEMBERED = 1024  # formatted instants and amounts kept (pure functions of their arguments)


@dataclass(frozen=True, slots=True)
class LocalTime:
    """An instant for one reader; `str()` is the default form (`datetime`)."""

    at: datetime
    zone: str
    language: str

    def __str__(self) -> str:
        return format_datetime(self.at, self.zone, self.language)


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of (business) time for one reader: '2 hours, 30 minutes'."""

    amount: timedelta
    language: str

    def __str__(self) -> str:
        return format_amount(self.amount, self.language)


@lru_cache(maxsize=64)
def locale_of(language: str) -> Locale:
    """Babel's locale for a tag, else for its base language, else English."""
    from babel import Locale, UnknownLocaleError

    for tag in (language, language.split("-")[0], FALLBACK):
        try:
            return Locale.parse(tag, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    raise AssertionError("unreachable: Babel knows English")


def known_language(language: str) -> bool:
    """Whether Babel has data for this tag (or its base language)."""
    from babel import Locale, UnknownLocaleError

    for tag in (language, language.split("-")[0]):
        try:
            Locale.parse(tag, sep="-")
            return True
        except (UnknownLocaleError, ValueError):
            continue
    return False


@lru_cache(maxsize=_REMEMBERED)
def format_datetime(at: datetime, zone: str, language: str, style: str = "medium") -> str:
    """'23.11.2026, 10:00 MEZ' (de, medium): the date in `style`, the time short, the zone.
    Remembered: the mails of a backlog, and a mail's several notices, show the same instants
    (whole seconds), and Babel takes a tenth of a millisecond for each."""
    from babel import dates

    locale, tz = locale_of(language), ZoneInfo(zone)
    local = whole_second(at).astimezone(tz)
    if style not in _DATE_STYLES:
        return dates.format_datetime(local, style, tzinfo=tz, locale=locale)
    day = dates.format_date(local, style, locale=locale)
    clock = dates.format_time(local, "short", tzinfo=tz, locale=locale)
    if style != "short":
        clock += " " + dates.get_timezone_name(local, "short", locale=locale, zone_variant=None)
    pattern = dates.get_datetime_format(style, locale=locale)  # type: ignore[arg-type]
    return str(pattern).replace("{1}", day).replace("{0}", clock)


@lru_cache(maxsize=_REMEMBERED)
def format_date(at: datetime, zone: str, language: str, style: str = "medium") -> str:
    from babel import dates

    local = whole_second(at).astimezone(ZoneInfo(zone))
    return dates.format_date(local, style, locale=locale_of(language))


@lru_cache(maxsize=_REMEMBERED)
def format_time(at: datetime, zone: str, language: str, style: str = "short") -> str:
    from babel import dates

    tz = ZoneInfo(zone)
    local = whole_second(at).astimezone(tz)
    return dates.format_time(local, style, tzinfo=tz, locale=locale_of(language))


@lru_cache(maxsize=_REMEMBERED)
def format_amount(amount: timedelta, language: str, length: Length = "long") -> str:
    """Exact, unlike Babel's format_timedelta, which rounds to the largest unit: '1 day,
    2 hours and 30 minutes'; with a minus sign when negative."""
    from babel.lists import format_list
    from babel.units import format_unit

    locale = locale_of(language)
    sign, amount = ("-", -amount) if amount < timedelta(0) else ("", amount)
    seconds = int(whole_seconds(amount).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = [("day", days), ("hour", hours), ("minute", minutes), ("second", seconds)]
    parts = [
        format_unit(n, f"duration-{unit}", length=length, locale=locale) for unit, n in units if n
    ]
    if not parts:
        parts = [format_unit(0, "duration-minute", length=length, locale=locale)]
    return sign + format_list(parts, locale=locale)


def _reader(context: Context) -> tuple[str, str]:
    recipient = context.get("recipient") or {}
    return str(recipient.get("zone") or "UTC"), str(recipient.get("language") or FALLBACK)


def _instant(context: Context, value: Any) -> tuple[datetime, str, str] | None:
    if isinstance(value, LocalTime):
        return value.at, value.zone, value.language
    if isinstance(value, datetime):
        zone, language = _reader(context)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)), zone, language
    return None


def _instant_filter(format_: Callable[[datetime, str, str, str], str], default: str) -> Any:
    """A filter that formats an instant (LocalTime, or a datetime for the context's reader)."""

    @pass_context
    def apply(context: Context, value: Any, style: str = default) -> str:
        found = _instant(context, value)
        return "" if found is None else format_(*found, style)

    return apply


@pass_context
def duration_filter(context: Context, value: Any, length: Length = "long") -> str:
    if isinstance(value, Duration):
        return format_amount(value.amount, value.language, length)
    if isinstance(value, timedelta):
        return format_amount(value, _reader(context)[1], length)
    return ""


FILTERS = {
    "datetime": _instant_filter(format_datetime, "medium"),
    "date": _instant_filter(format_date, "medium"),
    "time": _instant_filter(format_time, "short"),
    "duration": duration_filter,
}
