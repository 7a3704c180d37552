"""Typed, frozen settings read from one TOML file plus the environment.

Validated once at start so that a mistake is reported as file, key and reason before any mail
is touched. Settings are passed down explicitly; nothing reads them from a global.
"""

from __future__ import annotations

import logging
import os
import secrets
import tomllib
from collections.abc import Mapping
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

from mailproc.subject import Language
from mailproc.vocabulary import NoticeKind, Party, Priority, Role, StatusKind, Verb

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("config/mailproc.toml")
EMBEDDED = "embedded defaults"


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the key and the fault."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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


class PersonConfig(_Frozen):
    email: str
    role: Role = Role.SOLVER
    services: tuple[str, ...] = ()  # empty: every service

    _email = field_validator("email")(classmethod(lambda cls, v: _lower_address(v)))

    def solves(self, service: str) -> bool:
        return self.role is Role.ADMIN or not self.services or service in self.services


class ServiceConfig(_Frozen):
    title: str = ""
    team: str | None = None
    first_line: str | None = None
    workflow: str = "default"
    default_priority: Priority = Priority.P3
    notify: dict[NoticeKind, Recipients] = {}  # recipients per notice, for this service


class StatusConfig(_Frozen):
    name: str
    kind: StatusKind = StatusKind.OPEN
    instructions: str = ""
    paused: bool = False
    auto_close_days: float | None = Field(default=None, gt=0)


class WorkflowConfig(_Frozen):
    description: str = ""
    initial: str
    reopen_to: str
    statuses: tuple[StatusConfig, ...]
    transitions: dict[Verb, dict[str, str]]

    @model_validator(mode="after")
    def _statuses_exist(self) -> WorkflowConfig:
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
    templates: Path | None = None  # None: the templates shipped with mailproc
    from_address: str | None = None  # None: the support address of the incident's service
    from_name: str = "Service desk"
    secret_env: str = "MAILPROC_SECRET"  # noqa: S105 (the name of the variable with the secret)
    transcript_on_success: bool = True
    recipients: dict[NoticeKind, Recipients] = {}

    _from = field_validator("from_address")(
        classmethod(lambda cls, v: None if v is None else _lower_address(v))
    )


class SmtpConfig(_Frozen):
    host: str = "localhost"
    port: int | None = Field(default=None, gt=0, lt=65536)  # None: 465, 587 or 25 by security
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password_env: str = "MAILPROC_SMTP_PASSWORD"  # noqa: S105 (a variable's name)
    ca_file: Path | None = None  # trust this CA instead of the system's
    timeout: float = Field(default=30, gt=0)
    batch_size: int = Field(default=50, gt=0)
    retry_seconds: float = Field(default=60, gt=0)  # first retry; doubles up to the maximum
    retry_max_seconds: float = Field(default=3600, gt=0)
    lease_seconds: float = Field(default=600, gt=0)  # a claimed row is retried after this

    @property
    def effective_port(self) -> int:
        return self.port or {"tls": 465, "starttls": 587, "none": 25}[self.security]


class Settings(_Frozen):
    """Everything a mailproc process knows about its deployment."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    source: str = EMBEDDED
    database_url: str = "sqlite:///var/mailproc.db"
    support_address: str
    default_service: str
    reopen_window_days: float = Field(default=7, ge=0)
    addresses: dict[str, str] = {}
    services: dict[str, ServiceConfig]
    people: dict[str, PersonConfig] = {}
    workflows: dict[str, WorkflowConfig] = {}
    aliases: dict[str, Verb] = {}
    permissions: PermissionsConfig = PermissionsConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    smtp: SmtpConfig = SmtpConfig()

    _secret: bytes | None = PrivateAttr(default=None)  # from the environment, never the file

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
        for name, person in self.people.items():
            for service in person.services:
                if service not in self.services:
                    yield f"people.{name}.services: unknown service {service!r}"
        for alias in self.aliases:
            if alias.upper() in Verb.__members__:
                yield f"aliases.{alias}: is already a command word"

    @cached_property
    def language(self) -> Language:
        return Language.with_aliases(self.aliases)

    @cached_property
    def people_by_email(self) -> Mapping[str, tuple[str, PersonConfig]]:
        return {p.email: (name, p) for name, p in self.people.items()}

    @cached_property
    def own_addresses(self) -> frozenset[str]:
        return frozenset({self.support_address, *self.addresses})

    @property
    def has_secret(self) -> bool:
        return self._secret is not None

    @cached_property
    def signing_key(self) -> bytes:
        """The key that signs our Message-IDs. Without the secret in the environment a random
        key serves this process: replies still thread through the recorded Message-IDs, but a
        signature made by another process cannot be checked."""
        if self._secret is not None:
            return self._secret
        log.warning(
            "%s is not set: signing Message-IDs with a random key for this process only",
            self.notifications.secret_env,
        )
        return secrets.token_bytes(32)

    def support_address_of(self, service: str) -> str:
        """Where mail about a service goes: its own support address if it has one."""
        return next((a for a, s in self.addresses.items() if s == service), self.support_address)

    def workflow_of(self, service: str) -> WorkflowConfig:
        return self.workflows[self.services[service].workflow]

    def service_for(self, recipients: list[str]) -> str:
        """The service of the first support address among the recipients (plus tags ignored)."""
        for address in recipients:
            local, _, domain = address.partition("@")
            service = self.addresses.get(f"{local.split('+', 1)[0]}@{domain}")
            if service is not None:
                return service
        return self.default_service


def _builtin_workflows() -> dict[str, Any]:
    text = resources.files("mailproc").joinpath("workflows.toml").read_text("utf-8")
    workflows: dict[str, Any] = tomllib.loads(text)["workflows"]
    return workflows


def _embedded() -> dict[str, Any]:
    text = resources.files("mailproc").joinpath("default_config.toml").read_text("utf-8")
    return tomllib.loads(text)


def resolve_path(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else MAILPROC_CONFIG, else config/mailproc.toml if present, else None."""
    if path is not None:
        return path
    if environ.get("MAILPROC_CONFIG"):
        return Path(environ["MAILPROC_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    resolved = resolve_path(path, environ)
    if resolved is None:
        data, origin = _embedded(), EMBEDDED
    else:
        data, origin = _read(resolved), str(resolved)
    return settings_from_dict(data, origin, environ)


def settings_from_dict(data: dict[str, Any], origin: str, environ: Mapping[str, str]) -> Settings:
    data = {**data, "source": origin}
    data["workflows"] = {**_builtin_workflows(), **data.get("workflows", {})}
    if environ.get("MAILPROC_DATABASE_URL"):
        data["database_url"] = environ["MAILPROC_DATABASE_URL"]
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(origin, exc)) from None
    secret = environ.get(settings.notifications.secret_env, "")
    settings._secret = secret.encode() if secret else None
    return settings


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _describe(origin: str, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {key}: {message}")
    return "\n".join(lines)
