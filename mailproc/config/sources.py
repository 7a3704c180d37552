"""The `[sources.*]` and `[daemon]` tables of the configuration: where mail comes from.

Kept apart from settings.py because only the daemon reads them; settings.py validates them as
part of Settings. Secrets are never values here: a source names the environment variable, token file
or token command that holds them, so the file can be shared and checked in.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mailproc.config.credentials import SecretRef
from mailproc.config.paths import ConfigPath

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class Settle(StrEnum):
    """What happens to a mail on the server once its transaction has committed."""

    MOVE = "move"  # into processed_folder
    SEEN = "seen"  # flag \\Seen and leave it where it is


class _Frozen(BaseModel):
    """Frozen, strict about unknown keys, and built when it first validates: a process that
    loads its settings from the cache (mailproc.config.cache) never builds a validator."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class _SourceBase(_Frozen):
    service: str | None = None  # new incidents from this source go to this service
    settle: Settle = Settle.MOVE
    processed_folder: str = Field(default="Processed", min_length=1)
    quarantine_folder: str = Field(default="Quarantine", min_length=1)
    # Bounces, auto-replies and list mail, kept apart for an administrator; None: where
    # processed mail goes (processed_folder, or flagged where it is with settle = "seen")
    automatic_folder: str | None = Field(default=None, min_length=1)
    poll_seconds: float = Field(default=60, gt=0)
    batch_size: int = Field(default=100, ge=1, le=10_000)

    @property
    def folders(self) -> tuple[str, ...]:
        """The folders mail is settled into, created when missing."""
        extra = (self.automatic_folder,) if self.automatic_folder is not None else ()
        return (self.processed_folder, self.quarantine_folder, *extra)


class ImapSourceConfig(_SourceBase):
    """One folder of one IMAP account."""

    kind: Literal["imap"]
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, gt=0, lt=65536)
    security: Literal["tls", "starttls", "plain"] = "tls"
    ca_file: ConfigPath | None = None
    username: str = Field(min_length=1)
    auth: Literal["password", "xoauth2"] = "password"
    password_env: str | None = None
    password_file: ConfigPath | None = None
    oauth2_token_command: tuple[str, ...] = ()
    oauth2_token_file: ConfigPath | None = None
    folder: str = Field(default="INBOX", min_length=1)
    idle: bool = True
    idle_seconds: float = Field(default=300, gt=0, le=1740)  # RFC 2177: re-IDLE within 29 min
    timeout_seconds: float = Field(default=30, gt=0)
    batch_bytes: int = Field(default=20_000_000, ge=1)

    @model_validator(mode="after")
    def _credentials(self) -> ImapSourceConfig:
        if self.auth == "password" and not (self.password_env or self.password_file):
            raise ValueError(
                "password_env: name the environment variable that holds the password "
                "(or password_file, a file that holds it)"
            )
        if self.auth == "xoauth2" and bool(self.oauth2_token_command) == bool(
            self.oauth2_token_file
        ):
            raise ValueError("xoauth2 needs exactly one of oauth2_token_command, oauth2_token_file")
        if self.folder in (self.processed_folder, self.quarantine_folder, self.automatic_folder):
            raise ValueError(
                "processed_folder and quarantine_folder must differ from folder, and so must "
                "automatic_folder"
            )
        return self

    @property
    def effective_port(self) -> int:
        return self.port or (993 if self.security == "tls" else 143)

    @property
    def password_ref(self) -> SecretRef | None:
        if self.auth != "password":
            return None
        return SecretRef("password", self.password_env, self.password_file)

    @property
    def mailbox(self) -> str:
        """Names the folder for the cursor: a different folder means UIDs start over."""
        return f"imap://{self.username}@{self.host}:{self.effective_port}/{self.folder}"

    @property
    def longest_wait(self) -> float:
        """Between passes: idle_seconds under IDLE, poll_seconds without (or if unsupported)."""
        return max(self.idle_seconds, self.poll_seconds) if self.idle else self.poll_seconds


class MaildirSourceConfig(_SourceBase):
    """A local Maildir (mailproc on the mail host); folders are Maildir++ subfolders."""

    kind: Literal["maildir"]
    path: ConfigPath
    poll_seconds: float = Field(default=5, gt=0)

    @property
    def mailbox(self) -> str:
        return f"maildir:{self.path}"

    @property
    def longest_wait(self) -> float:
        return self.poll_seconds


AnySourceConfig = ImapSourceConfig | MaildirSourceConfig  # every kind of source, once
SourceConfig = Annotated[AnySourceConfig, Field(discriminator="kind")]  # chosen by `kind`


MAX_SOCKET_PATH = 90  # AF_UNIX allows 107 bytes, and the daemon first binds a longer name


class DaemonConfig(_Frozen):
    """How the daemon retries, and when `mailproc status` calls it unhealthy."""

    status_max_age_seconds: float = Field(default=900, gt=0)
    backoff_initial_seconds: float = Field(default=1, gt=0)
    backoff_max_seconds: float = Field(default=300, gt=0)
    close_timed_out_seconds: float = Field(default=3600, gt=0)
    send_outbox_seconds: float = Field(default=10, gt=0)
    release_waiting_seconds: float = Field(default=10, gt=0)  # see threading.wait_for_parent
    # "host:port" where `mailproc run` serves Prometheus metrics (a host is required: say
    # 0.0.0.0 to mean every interface); None: not served
    metrics_listen: str | None = Field(
        default=None, pattern=r"^(\[[0-9a-fA-F:]+\]|[^:\s\[\]]+):\d{1,5}$"
    )
    # Where the daemon takes mail from `ingest -` (mailproc.daemon.listener); None: nowhere.
    socket: ConfigPath | None = None
    # Where its command server runs quick commands (`serve-commands`); None: none runs.
    command_socket: ConfigPath | None = None

    @model_validator(mode="after")
    def _backoff(self) -> DaemonConfig:
        if self.backoff_initial_seconds > self.backoff_max_seconds:
            raise ValueError("backoff_initial_seconds is larger than backoff_max_seconds")
        for name, path in (("socket", self.socket), ("command_socket", self.command_socket)):
            if path is not None and len(str(path).encode()) > MAX_SOCKET_PATH:
                raise ValueError(f"{name}: a socket's path has at most {MAX_SOCKET_PATH} bytes")
        return self


def check_sources(
    sources: dict[str, AnySourceConfig],
    services: set[str],
    daemon: DaemonConfig,
) -> list[str]:
    """Problems that involve more than one table, as `key: fault` lines."""
    problems = []
    for name, source in sources.items():
        if not _NAME.match(name):
            problems.append(f"sources.{name}: use letters, digits, '.', '_' or '-' (at most 100)")
        if source.service is not None and source.service not in services:
            problems.append(f"sources.{name}.service: unknown service {source.service!r}")
        if source.longest_wait >= daemon.status_max_age_seconds:
            problems.append(
                f"sources.{name}: waits {source.longest_wait:g}s between polls, not less than "
                f"daemon.status_max_age_seconds ({daemon.status_max_age_seconds:g}s)"
            )
    return problems
