"""Typed, frozen settings read from one TOML file plus the environment.

Validated once at start so that a mistake is reported as file, key and reason before any mail
is touched. Settings are passed down explicitly; nothing reads them from a global.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from datetime import date, timedelta
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mailproc import calendars
from mailproc.calendars import YearStore
from mailproc.config import cached, lookup
from mailproc.config.credentials import SecretRef, SecretUnreadable, read_secret
from mailproc.config.locale import (
    ContactConfig,
    LocaleConfig,
    Localized,
    ReaderConfig,
    localized,
    optional_language,
    optional_zone,
    read_directory,
)
from mailproc.config.paths import BASE, ConfigPath, anchored_database_url, with_password
from mailproc.config.safety import BouncesConfig, LimitsConfig, SecurityConfig, WatchersConfig
from mailproc.config.sources import DaemonConfig, SourceConfig, check_sources
from mailproc.durations import BusinessDays, TargetAmount, parse_duration, parse_target
from mailproc.inbound.subject import Language
from mailproc.runtime import cache
from mailproc.vocabulary import (
    EscalationRole,
    NoticeKind,
    Party,
    Priority,
    Role,
    SlaTarget,
    StatusKind,
    Verb,
)

log = logging.getLogger(__name__)

EMBEDDED = "embedded demo configuration"
DEFAULT_DATABASE = "sqlite:///var/mailproc.db"  # relative: to the configuration file's folder


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the key and the fault."""


class NoConfiguration(ConfigError):
    """No configuration file given or found: only `mailproc demo` runs on the embedded one."""


class SecretMissing(ConfigError):
    """A secret the configuration needs is in none of its places."""


class _Frozen(BaseModel):
    """Frozen, strict about unknown keys, and built when it first validates: a process that
    loads its settings from the cache (mailproc.config.cache) never builds a validator."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


def _lower_address(value: str) -> str:
    value = value.strip().lower()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@") or " " in value:
        raise ValueError(f"'{value}' is not an e-mail address")
    return value


def _recipient(value: str) -> str:
    """A role (reporter, assignee, ...) or a fixed e-mail address."""
    word = value.strip().lower()
    return word if word in Party.__members__.values() else _lower_address(word)


Recipients = tuple[Annotated[str, AfterValidator(_recipient)], ...]


class PersonConfig(ReaderConfig):
    email: str
    role: Role = Role.SOLVER
    services: tuple[str, ...] = ()  # empty: every service
    name: str = ""  # how notices address them; default: the configuration's key

    _email = field_validator("email")(classmethod(lambda cls, v: _lower_address(v)))

    def solves(self, service: str) -> bool:
        return self.role is Role.ADMIN or not self.services or service in self.services


class CalendarConfig(_Frozen):
    """Working hours in a time zone, holidays; or `always` for the 24×7 calendar."""

    zone: str | None = None  # None: locale.zone
    always: bool = False
    hours: dict[calendars.Weekday, tuple[str, ...]] = {}
    holidays: tuple[date, ...] = ()
    country: str | None = None
    subdivision: str | None = None
    day_cutoff: str = "12:00"  # targets in business days: see calendars.end_of_working_days

    _zone = field_validator("zone")(
        classmethod(lambda cls, v: None if v is None else calendars.zone_named(v).key)
    )
    _cutoff = field_validator("day_cutoff")(
        classmethod(lambda cls, v: (calendars.parse_time(v), v.strip())[1])
    )

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[calendars.Weekday, tuple[str, ...]]) -> Any:
        for day, spans in value.items():
            try:
                calendars.day_hours(spans)
            except ValueError as exc:
                raise ValueError(f"{day.value}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CalendarConfig:
        if self.always and (self.hours or self.holidays or self.country):
            raise ValueError("a 24×7 calendar (always = true) has no hours or holidays")
        if not self.always and not any(self.hours.values()):
            raise ValueError("no working hours on any day (set hours, or always = true)")
        if self.subdivision and not self.country:
            raise ValueError("subdivision needs a country")
        if self.country:
            calendars.country_holidays(self.country, self.subdivision)
        return self

    def build(
        self, name: str, default_zone: str = "UTC", store: calendars.YearStore | None = None
    ) -> calendars.BusinessCalendar:
        """The calendar; `store` keeps the years of its country's holidays across processes."""
        zone = self.zone or default_zone
        if self.always:
            return calendars.around_the_clock(name, zone, self.day_cutoff)
        return calendars.make_calendar(
            name,
            zone,
            self.hours,
            self.holidays,
            self.country,
            self.subdivision,
            self.day_cutoff,
            store,
        )


def _business_time(value: Any) -> TargetAmount:
    if isinstance(value, timedelta | BusinessDays):  # from code; TOML has no such type
        amount = value
    elif isinstance(value, str):
        amount = parse_target(value)
    else:
        raise ValueError("give a target as a string like '4h', '30m', '2h30m' or '3bd'")
    if isinstance(amount, timedelta) and amount <= timedelta(0):
        raise ValueError("a target must be longer than zero")
    return amount


class TargetConfig(_Frozen):
    """One priority's targets, in business time of the service's calendar or in business
    days of it."""

    response: TargetAmount
    resolution: TargetAmount

    _times = field_validator("response", "resolution", mode="before")(
        classmethod(lambda cls, v: _business_time(v))
    )


_TRIGGER = re.compile(r"^(?:(?P<percent>\d{1,3}(?:\.\d+)?)\s*%|breach(?:\s*\+\s*(?P<after>.+))?)$")


class LevelConfig(_Frozen):
    """An escalation level: when (`at`) and to whom (`to`: roles or addresses)."""

    at: str
    to: tuple[str, ...] = Field(min_length=1)
    targets: tuple[SlaTarget, ...] = (SlaTarget.RESPONSE, SlaTarget.RESOLUTION)

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        value = " ".join(value.lower().split())
        _trigger(value)
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        roles = set(EscalationRole)
        return tuple(v if v in roles else _lower_address(v) for v in value)

    @property
    def percent(self) -> float | None:
        return _trigger(self.at)[0]

    @property
    def after_breach(self) -> timedelta:
        return _trigger(self.at)[1]

    def order(self) -> tuple[float, timedelta]:
        """Levels must fire in the order they are listed, whatever the target's length."""
        percent, after = _trigger(self.at)
        return (percent, timedelta(0)) if percent is not None else (100.0, after)


def _trigger(text: str) -> tuple[float | None, timedelta]:
    match = _TRIGGER.match(text)
    if match is None:
        raise ValueError(
            f"'{text}' is not a trigger; write a percentage of the target ('75%'), "
            "'breach', or 'breach + 2h'"
        )
    if match["percent"] is not None:
        percent = float(match["percent"])
        if not 0 < percent <= 100:
            raise ValueError(f"'{text}': a percentage runs from above 0 to 100 (then 'breach + …')")
        return percent, timedelta(0)
    after = match["after"]
    return None, (timedelta(0) if after is None else parse_duration(after))


def _ladder(value: tuple[LevelConfig, ...] | None) -> tuple[LevelConfig, ...] | None:
    for number, (before, level) in enumerate(zip(value or (), (value or ())[1:], strict=False)):
        if level.order() <= before.order():
            raise ValueError(
                f"level {number + 2} ('{level.at}') must come after level {number + 1} "
                f"('{before.at}'): list levels in the order they fire"
            )
    return value


def _default_targets() -> dict[Priority, TargetConfig]:
    hours = {Priority.P1: (0.5, 4), Priority.P2: (1, 8), Priority.P3: (4, 24), Priority.P4: (8, 40)}
    return {
        priority: TargetConfig(response=timedelta(hours=r), resolution=timedelta(hours=t))
        for priority, (r, t) in hours.items()
    }


def _default_ladder() -> tuple[LevelConfig, ...]:
    return (
        LevelConfig(at="75%", to=(EscalationRole.ASSIGNEE, EscalationRole.FIRST_LINE)),
        LevelConfig(at="breach", to=(EscalationRole.TEAM,)),
    )


class SlaConfig(_Frozen):
    """Defaults for every service: calendar, targets per priority, escalation ladder."""

    calendar: str = "24x7"
    at_risk_percent: float = Field(default=75, gt=0, lt=100)
    escalation_interval_seconds: float = Field(default=60, gt=0)
    # one pass mailing more escalations than this to one address sends it one mail of them all
    fold_escalations_above: int = Field(default=5, ge=1)
    targets: dict[Priority, TargetConfig] = Field(default_factory=_default_targets)
    escalation: tuple[LevelConfig, ...] = Field(default_factory=_default_ladder)

    _ladder = field_validator("escalation")(classmethod(lambda cls, v: _ladder(v)))

    @field_validator("targets")
    @classmethod
    def _every_priority(cls, value: dict[Priority, TargetConfig]) -> dict[Priority, TargetConfig]:
        missing = [p.value for p in Priority if p not in value]
        if missing:
            raise ValueError(f"no target for {', '.join(missing)}; every priority needs one")
        return value


class MatrixConfig(_Frozen):
    """Impact × urgency -> priority: `impact.<impact>.<urgency> = "P1"`."""

    default_impact: str = "medium"
    default_urgency: str = "medium"
    impact: dict[str, dict[str, Priority]] = {
        "high": {"high": Priority.P1, "medium": Priority.P2, "low": Priority.P3},
        "medium": {"high": Priority.P2, "medium": Priority.P3, "low": Priority.P4},
        "low": {"high": Priority.P3, "medium": Priority.P4, "low": Priority.P4},
    }

    @model_validator(mode="after")
    def _square(self) -> MatrixConfig:
        rows = {name: set(row) for name, row in self.impact.items()}
        if not rows:
            raise ValueError("impact: the matrix needs at least one impact")
        urgencies = next(iter(rows.values()))
        for name, row in rows.items():
            if row != urgencies:
                raise ValueError(f"impact.{name}: urgencies differ from the first row's")
        for word in (*rows, *urgencies):
            if not re.fullmatch(r"[a-z0-9_-]+", word):
                raise ValueError(f"'{word}': levels are single lower-case words")
        if self.default_impact not in rows:
            raise ValueError(f"default_impact: '{self.default_impact}' is not an impact")
        if self.default_urgency not in urgencies:
            raise ValueError(f"default_urgency: '{self.default_urgency}' is not an urgency")
        return self

    @property
    def impacts(self) -> tuple[str, ...]:
        return tuple(self.impact)

    @property
    def urgencies(self) -> tuple[str, ...]:
        return tuple(next(iter(self.impact.values())))

    def priority(self, impact: str | None, urgency: str | None) -> Priority:
        row = self.impact[impact or self.default_impact]
        return row[urgency or self.default_urgency]


class ServiceConfig(_Frozen):
    """`language` and `zone`: how notices about the service are written for people who say
    nothing about themselves (before the calendar's zone and the desk's defaults)."""

    title: Localized = ""
    language: str | None = None
    zone: str | None = None
    team: str | None = None
    first_line: str | None = None
    workflow: str = "default"
    default_priority: Priority = Priority.P3
    calendar: str | None = None  # None: sla.calendar
    targets: dict[Priority, TargetConfig] = {}  # per priority, replacing sla.targets
    escalation: tuple[LevelConfig, ...] | None = None  # None: sla.escalation; []: none
    notify: dict[NoticeKind, Recipients] = {}  # recipients per notice, for this service

    _ladder = field_validator("escalation")(classmethod(lambda cls, v: _ladder(v)))
    _language = field_validator("language")(classmethod(lambda cls, v: optional_language(v)))
    _zone = field_validator("zone")(classmethod(lambda cls, v: optional_zone(v)))
    _title = field_validator("title")(classmethod(lambda cls, v: localized(v)))


class StatusConfig(_Frozen):
    name: str
    kind: StatusKind = StatusKind.OPEN
    instructions: Localized = ""

    _instructions = field_validator("instructions")(classmethod(lambda cls, v: localized(v)))
    paused: bool = False
    auto_close_days: float | None = Field(default=None, gt=0)
    remind_days: float | None = Field(default=None, gt=0)  # then remind the reporter, once


class WorkflowConfig(_Frozen):
    description: str = ""
    initial: str
    reopen_to: str
    statuses: tuple[StatusConfig, ...]
    transitions: dict[Verb, dict[str, str]]

    @model_validator(mode="after")
    def _statuses_exist(self) -> WorkflowConfig:
        if Verb.ACK in self.transitions:
            raise ValueError(
                "transitions.ACK: [ACK] changes no status and needs no entry; it is accepted "
                "in every status of kind open"
            )
        names = {s.name for s in self.statuses}
        used = {self.initial, self.reopen_to}
        for table in self.transitions.values():
            used.update(table)
            used.update(table.values())
        unknown = sorted(used - names)
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r}; statuses are {sorted(names)}")
        return self

    def status(self, name: str) -> StatusConfig:
        return next(s for s in self.statuses if s.name == name)


class PermissionsConfig(_Frozen):
    reporter_commands: tuple[Verb, ...] = (Verb.CLOSE, Verb.REOPEN)
    participants_may_comment: bool = True


class NotificationsConfig(_Frozen):
    enabled: bool = True
    templates: ConfigPath | None = None  # None: the templates shipped with mailproc
    from_address: str | None = None  # None: the support address of the incident's service
    from_name: str = "Service desk"
    secret_env: str = "MAILPROC_SECRET"  # noqa: S105 (the name of the variable with the secret)
    secret_file: ConfigPath | None = None  # or a file holding it (see config/credentials.py)
    # Key rotation: the secrets used before, one per line, still accepted, never used to sign
    previous_secrets_env: str = "MAILPROC_PREVIOUS_SECRETS"
    previous_secrets_file: ConfigPath | None = None
    transcript_on_success: bool = True
    recipients: dict[NoticeKind, Recipients] = {}
    # How a reply proves its sender (mailproc.signing): "plus" puts the token into the
    # Reply-To (support+INC-n.token@, needs the mail server's recipient delimiter); "plain"
    # keeps the support address and carries it in the Message-ID and the subject.
    reply_address: Literal["plus", "plain"] = "plus"
    max_recipients: int = Field(default=20, gt=0)  # of one notice kind, for one change
    # The files of a mail ride along with the notices about it, up to this many bytes in all
    # per notice; the rest (and what `attachments_exclude` matches: content types or file-name
    # patterns) is listed with its name, type and size instead.
    attachments_max_bytes: int = Field(default=5 * 1024 * 1024, ge=0)
    attachments_exclude: tuple[str, ...] = (
        "application/x-msdownload",
        "application/x-dosexec",
        "application/x-msdos-program",
        "application/x-msi",
        "application/vnd.microsoft.portable-executable",
        "*.exe",
        "*.com",
        "*.scr",
        "*.bat",
        "*.cmd",
        "*.msi",
        "*.dll",
        "*.vbs",
        "*.js",
        "*.jar",
        "*.ps1",
    )

    _from = field_validator("from_address")(
        classmethod(lambda cls, v: None if v is None else _lower_address(v))
    )


_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class DigestConfig(_Frozen):
    """When the queue digests go out: at these wall-clock times on these days, in the time
    zone of `calendar` (default: sla.calendar's). Who gets one is the `digest` notice's
    recipients (`assignee`: each solver their queue; `team`, `first_line`: each list its
    services' queue); an empty digest is not sent."""

    at: tuple[str, ...] = ("08:00",)
    days: tuple[calendars.Weekday, ...] = calendars.WEEK[:5]
    calendar: str | None = None
    late_minutes: float = Field(default=240, ge=0)  # later than this after its time: skipped

    @field_validator("at")
    @classmethod
    def _times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for moment in value:
            if not _CLOCK_TIME.match(moment):
                raise ValueError(f"'{moment}' is not a time of day like '08:00'")
        return value


class ThreadingConfig(_Frozen):
    # A reply whose parent has not arrived yet waits this long for it (mailproc.desk.waiting)
    # before it opens an incident of its own; 0: never waits.
    wait_for_parent_seconds: float = Field(default=60, ge=0)


class SmtpConfig(_Frozen):
    host: str = "localhost"
    port: int | None = Field(default=None, gt=0, lt=65536)  # None: 465, 587 or 25 by security
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    auth: Literal["password", "xoauth2"] = "password"
    password_env: str = "MAILPROC_SMTP_PASSWORD"  # noqa: S105 (a variable's name)
    password_file: ConfigPath | None = None
    oauth2_token_command: tuple[str, ...] = ()  # XOAUTH2: prints an access token
    oauth2_token_file: ConfigPath | None = None  # XOAUTH2: holds one, kept fresh by a timer
    ca_file: ConfigPath | None = None  # trust this CA instead of the system's
    timeout: float = Field(default=30, gt=0)
    batch_size: int = Field(default=50, gt=0)
    retry_seconds: float = Field(default=60, gt=0)  # first retry; doubles up to the maximum
    retry_max_seconds: float = Field(default=3600, gt=0)
    lease_seconds: float = Field(default=600, gt=0)  # a claimed row is retried after this

    @property
    def effective_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "none": 25}[self.security]

    @property
    def password_ref(self) -> SecretRef:
        return SecretRef("smtp.password", self.password_env, self.password_file)

    @model_validator(mode="after")
    def _xoauth2(self) -> SmtpConfig:
        if self.auth == "xoauth2":
            if not self.username:
                raise ValueError("auth = 'xoauth2' needs username (the mailbox to send as)")
            if bool(self.oauth2_token_command) == bool(self.oauth2_token_file):
                raise ValueError(
                    "xoauth2 needs exactly one of oauth2_token_command, oauth2_token_file"
                )
        return self


class Settings(_Frozen):
    """Everything a mailproc process knows about its deployment."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", defer_build=True, ignored_types=(cached_property,)
    )

    source: str = EMBEDDED
    database_url: str = DEFAULT_DATABASE  # a relative file is made absolute at load time
    # The password of a database_url that has none (PostgreSQL): a secret like the others
    database_password_env: str = "MAILPROC_DATABASE_PASSWORD"  # noqa: S105 (a variable's name)
    database_password_file: ConfigPath | None = None
    support_address: str
    default_service: str
    reopen_window_days: float = Field(default=7, ge=0)
    addresses: dict[str, str] = {}
    services: dict[str, ServiceConfig]
    people: dict[str, PersonConfig] = {}
    workflows: dict[str, WorkflowConfig] = {}
    aliases: dict[str, Verb] = {}
    permissions: PermissionsConfig = Field(default_factory=PermissionsConfig)
    calendars: dict[str, CalendarConfig] = {}
    sla: SlaConfig = Field(default_factory=SlaConfig)
    priority_matrix: MatrixConfig = Field(default_factory=MatrixConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    smtp: SmtpConfig = Field(default_factory=SmtpConfig)
    threading: ThreadingConfig = Field(default_factory=ThreadingConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    bounces: BouncesConfig = Field(default_factory=BouncesConfig)
    watchers: WatchersConfig = Field(default_factory=WatchersConfig)
    sources: dict[str, SourceConfig] = {}
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    locale: LocaleConfig = Field(default_factory=LocaleConfig)
    directory: dict[str, ContactConfig] = {}

    # The signing keys, from the environment, a file or a credential; never the file itself
    _secret: tuple[bytes, ...] | None = PrivateAttr(default=None)
    _cache: Path | None = PrivateAttr(default=None)  # mailproc.runtime.cache, from the environment
    _listed: dict[str, ContactConfig] = PrivateAttr(default_factory=dict)  # the directory file

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: dict[str, ContactConfig]) -> dict[str, ContactConfig]:
        return {_lower_address(k): v for k, v in value.items()}

    _support = field_validator("support_address")(classmethod(lambda cls, v: _lower_address(v)))

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        return {_lower_address(k): v for k, v in value.items()}

    @model_validator(mode="after")
    def _references(self) -> Settings:
        problems = list(self._dangling())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _dangling(self) -> Any:
        if self.default_service not in self.services:
            yield f"default_service: unknown service {self.default_service!r}"
        for address, service in self.addresses.items():
            if service not in self.services:
                yield f"addresses.{address!r}: unknown service {service!r}"
        for name, svc in self.services.items():
            if svc.workflow not in self.workflows:
                yield f"services.{name}.workflow: unknown workflow {svc.workflow!r}"
            if svc.calendar is not None and svc.calendar not in self.calendars:
                yield f"services.{name}.calendar: {self._unknown_calendar(svc.calendar)}"
        if self.sla.calendar not in self.calendars:
            yield f"sla.calendar: {self._unknown_calendar(self.sla.calendar)}"
        if self.digest.calendar is not None and self.digest.calendar not in self.calendars:
            yield f"digest.calendar: {self._unknown_calendar(self.digest.calendar)}"
        for name, person in self.people.items():
            for service in person.services:
                if service not in self.services:
                    yield f"people.{name}.services: unknown service {service!r}"
        for alias in self.aliases:
            if alias.upper() in Verb.__members__:
                yield f"aliases.{alias}: is already a command word"
        yield from check_sources(self.sources, set(self.services), self.daemon)

    def _unknown_calendar(self, name: str) -> str:
        return f"unknown calendar {name!r}; calendars are {sorted(self.calendars)}"

    @cached_property
    def language(self) -> Language:
        levels = {
            Verb.IMPACT: self.priority_matrix.impacts,
            Verb.URGENCY: self.priority_matrix.urgencies,
        }
        return Language.with_aliases(self.aliases, levels)

    @cached_property
    def people_by_email(self) -> Mapping[str, tuple[str, PersonConfig]]:
        return {p.email: (name, p) for name, p in self.people.items()}

    @cached_property
    def contacts(self) -> Mapping[str, ContactConfig]:
        """The directory by address: the file's entries, the configuration's over them."""
        return {**self._listed, **self.directory}

    @cached_property
    def own_addresses(self) -> frozenset[str]:
        return frozenset({self.support_address, *self.addresses})

    def is_own(self, address: str) -> bool:
        """One of our support addresses, with or without a plus tag (reply tokens have one)."""
        return base_address(address) in self.own_addresses

    @cached_property
    def staff_addresses(self) -> frozenset[str]:
        """The desk's own people: configured solvers and admins, the services' team and
        first-line addresses, the addresses escalation ladders name. Internal notes reach
        these and nobody else; an address configured only as a notice's recipient is not one
        of them (it may be anyone's)."""
        ladders = [self.sla.escalation, *(s.escalation or () for s in self.services.values())]
        fixed = {a for ladder in ladders for level in ladder for a in level.to if "@" in a}
        lists = {a for s in self.services.values() for a in (s.team, s.first_line) if a}
        return frozenset({p.email for p in self.people.values()} | lists | fixed)

    def is_staff(self, address: str) -> bool:
        return address.strip().lower() in self.staff_addresses

    @cached_property
    def admin_addresses(self) -> tuple[str, ...]:
        return tuple(sorted(p.email for p in self.people.values() if p.role is Role.ADMIN))

    def cache_folder(self, kind: str) -> Path | None:
        """Where this process may keep derived data of one kind (mailproc.runtime.cache)."""
        return cache.cache_folder(self._cache, kind)

    def holiday_store(self) -> YearStore | None:
        """Where the calendars keep the years of their countries' holidays between processes."""
        folder = self.cache_folder("holidays")
        return cached.HolidayFiles(folder) if folder is not None else None

    @property
    def has_secret(self) -> bool:
        return self._secret is not None

    @property
    def database_password_ref(self) -> SecretRef:
        return SecretRef(
            "database_password", self.database_password_env, self.database_password_file
        )

    @property
    def secret_ref(self) -> SecretRef:
        n = self.notifications
        return SecretRef("notifications.secret", n.secret_env, n.secret_file)

    @property
    def previous_secrets_ref(self) -> SecretRef:
        n = self.notifications
        return SecretRef(
            "notifications.previous_secrets", n.previous_secrets_env, n.previous_secrets_file
        )

    @cached_property
    def verification_keys(self) -> tuple[bytes, ...]:
        """Every key a Message-ID or reply token of ours may have been signed with; the first
        (the secret) signs, the previous secrets only verify: so a new secret can replace the
        old one while the tokens the old one signed keep working until it is removed from the
        previous secrets (key rotation, docs/admin/security.md).

        Without a secret, notices would be signed with a key no other process knows, and every
        reply token in them would be refused: SecretMissing. With notifications off nothing is
        signed, and a random key serves this process."""
        if self._secret is not None:
            return self._secret
        if self.notifications.enabled:
            raise SecretMissing(
                f"{self.source}: notifications.secret_env: no signing secret: set "
                f"{self.secret_ref.describe()}. Notices signed without it carry reply tokens "
                "and Message-IDs that no other mailproc process can check."
            )
        return (secrets.token_bytes(32),)

    @property
    def signing_key(self) -> bytes:
        """The key that signs what we send now (the first of verification_keys)."""
        return self.verification_keys[0]

    def secret_refs(self) -> list[SecretRef]:
        """Every secret the configuration may use (signing secrets, SMTP and IMAP passwords),
        needed or not: to keep them from helper programs."""
        refs = [self.secret_ref, self.previous_secrets_ref, self.smtp.password_ref]
        refs.append(self.database_password_ref)
        for name, source in self.sources.items():
            ref = getattr(source, "password_ref", None)
            if ref is not None:
                refs.append(SecretRef(f"sources.{name}.password", ref.env, ref.file))
        return refs

    def support_address_of(self, service: str) -> str:
        """Where mail about a service goes: its own support address if it has one."""
        return next((a for a, s in self.addresses.items() if s == service), self.support_address)

    def workflow_of(self, service: str) -> WorkflowConfig:
        return self.workflows[self.services[service].workflow]

    def calendar_of(self, service: str) -> str:
        return self.services[service].calendar or self.sla.calendar

    def targets_of(self, service: str) -> dict[Priority, TargetConfig]:
        return {**self.sla.targets, **self.services[service].targets}

    def ladder_of(self, service: str) -> tuple[LevelConfig, ...]:
        own = self.services[service].escalation
        return self.sla.escalation if own is None else own

    def service_for(self, recipients: list[str]) -> str:
        """The service of the first support address among the recipients (plus tags ignored)."""
        for address in recipients:
            service = self.addresses.get(base_address(address))
            if service is not None:
                return service
        return self.default_service


def base_address(address: str) -> str:
    """The address without its plus tag: support+INC-4.x@example.com -> support@example.com."""
    local, at, domain = address.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if at else address.strip().lower()


BUILTIN_CALENDARS: dict[str, Any] = {"24x7": {"always": True}}


def _builtin_workflows() -> dict[str, Any]:
    text = resources.files("mailproc.workflow").joinpath("workflows.toml").read_text("utf-8")
    workflows: dict[str, Any] = tomllib.loads(text)["workflows"]
    return workflows


def _embedded_text() -> bytes:
    return resources.files("mailproc.config").joinpath("default_config.toml").read_bytes()


def _embedded() -> dict[str, Any]:
    return _parsed(_embedded_text(), EMBEDDED)


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The deployment's settings from its file (validated, or as validated by an earlier
    process: mailproc.config.cached), with the secrets. NoConfiguration when there is no file:
    the embedded demo configuration is `demo_settings`, never a silent stand-in."""
    environ = os.environ if environ is None else environ
    resolved = lookup.resolve_path(path, environ)
    if resolved is None:
        raise NoConfiguration(no_configuration_message())
    text, origin, base = _read(resolved), str(resolved), resolved.parent
    settings = cached.load(
        text,
        origin,
        environ,
        lambda: _validated(_parsed(text, origin), origin, environ, base),
        Settings,
    )
    settings._cache = cache.cache_root(environ)
    return _with_secrets(settings, origin, environ)


def no_configuration_message() -> str:
    looked = ", ".join(str(p.absolute()) for p in lookup.SEARCHED)
    return (
        f"no configuration file: none given (--config or MAILPROC_CONFIG) and none at {looked}. "
        "Start one from the example: `mailproc config example > /etc/mailproc/mailproc.toml` "
        "(then `mailproc config check`); or see mailproc at work with `mailproc demo`."
    )


def demo_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The embedded demo configuration: for `mailproc demo` and tests."""
    environ = os.environ if environ is None else environ
    return settings_from_dict(_embedded(), EMBEDDED, environ, Path.cwd())


def settings_from_dict(
    data: dict[str, Any], origin: str, environ: Mapping[str, str], base: Path | None = None
) -> Settings:
    """`base`: the folder relative paths are taken from (the configuration file's)."""
    return _with_secrets(_validated(data, origin, environ, base), origin, environ)


def _validated(
    data: dict[str, Any], origin: str, environ: Mapping[str, str], base: Path | None = None
) -> Settings:
    base = (base or Path.cwd()).absolute()
    data = {**data, "source": origin}
    data["workflows"] = {**_builtin_workflows(), **data.get("workflows", {})}
    data["calendars"] = {**BUILTIN_CALENDARS, **data.get("calendars", {})}
    url = data.get("database_url", DEFAULT_DATABASE)
    if isinstance(url, str):
        data["database_url"] = anchored_database_url(url, base)
    if environ.get("MAILPROC_DATABASE_URL"):  # a variable's relative path: the process's folder
        data["database_url"] = anchored_database_url(environ["MAILPROC_DATABASE_URL"], Path.cwd())
    try:
        return Settings.model_validate(data, context={BASE: base})
    except ValidationError as exc:
        raise ConfigError(_describe(origin, exc)) from None


def _with_secrets(settings: Settings, origin: str, environ: Mapping[str, str]) -> Settings:
    """The signing secrets and the database password (never in the file, never cached)."""
    try:
        secret = read_secret(settings.secret_ref, environ)
        previous = read_secret(settings.previous_secrets_ref, environ) if secret else None
        password = read_secret(settings.database_password_ref, environ)
    except SecretUnreadable as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    if password:
        cache_root = settings._cache
        settings = settings.model_copy(
            update={"database_url": with_password(settings.database_url, password)}
        )
        settings._cache = cache_root
    if secret:
        older = [line.strip() for line in (previous or "").splitlines() if line.strip()]
        settings._secret = tuple(key.encode() for key in (secret, *older))
    if settings.locale.directory is not None:  # read in every process: it may have changed
        settings._listed = _directory_file(origin, settings.locale.directory)
    return settings


def _directory_file(origin: str, path: Path) -> dict[str, ContactConfig]:
    try:
        entries = read_directory(path)
        return {_lower_address(address): entry for address, entry in entries.items()}
    except ValueError as exc:
        raise ConfigError(f"{origin}: locale.directory: {exc}") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _parsed(text: bytes, origin: str) -> dict[str, Any]:
    """The file's TOML; any fault as a ConfigError naming the file (and where in it)."""
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = text.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{origin}: not UTF-8: byte {exc.start + 1} (0x{text[exc.start]:02x}, line {line}) "
            "cannot be read; save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None


def _describe(origin: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {key}: {message}")
    return "\n".join(lines)
