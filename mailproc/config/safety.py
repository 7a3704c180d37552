"""The `[security]` and `[limits]` tables: who may command, and how much mailproc answers.

Kept apart from settings.py, which validates them as part of Settings. The defaults are the safe
ones: commands need proof of their sender, and automatic answers stop long before a mail loop
can hurt anyone.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mailproc.inbound.mime import DEFAULT_LIMITS, HeaderLimits


class CommandAuth(StrEnum):
    """What proves that a command's From address is its sender."""

    EITHER = "either"  # a reply token or a trusted Authentication-Results header
    AUTHENTICATION_RESULTS = "authentication-results"
    REPLY_TOKEN = "reply-token"  # noqa: S105 (a mode's name, not a secret)
    NONE = "none"  # the From header alone: forgeable, for closed test setups only


class _Frozen(BaseModel):
    """Frozen, strict about unknown keys, and built when it first validates: a process that
    loads its settings from the cache (mailproc.config.cache) never builds a validator."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class SecurityConfig(_Frozen):
    command_authentication: CommandAuth = CommandAuth.EITHER
    # authserv-ids of the organisation's own mail servers, whose Authentication-Results count
    trusted_authserv_ids: tuple[str, ...] = ()
    # The hosts (the `by` of a Received field) of the border MTA: only Authentication-Results
    # above the topmost Received field they added count. Empty: the trusted authserv-ids.
    border_hosts: tuple[str, ...] = ()
    # Monitoring systems whose automatic mail (auto-generated, bulk) opens and updates
    # incidents like a person's; still never answered. Bounces and auto-replies never count.
    accept_automatic_from: tuple[str, ...] = ()

    @field_validator("accept_automatic_from")
    @classmethod
    def _senders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        senders = tuple(v.strip().lower() for v in value)
        if any(v.count("@") != 1 or v.startswith("@") or v.endswith("@") for v in senders):
            raise ValueError("list e-mail addresses, like monitoring@example.com")
        return senders

    @field_validator("trusted_authserv_ids", "border_hosts")
    @classmethod
    def _ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        ids = tuple(v.strip().lower() for v in value)
        if any(not v or any(c.isspace() or c == ";" for c in v) for v in ids):
            raise ValueError("an authserv-id is one word, like the host name mx.example.com")
        return ids


class WatchersConfig(_Frozen):
    """Who a mail may make a watcher (a participant, told of every comment): the To/Cc
    addresses of a new report or of an applied reply, at most `max_added_per_mail` of them and,
    when `allowed_domains` lists any, only addresses in those domains (or their subdomains)."""

    allowed_domains: tuple[str, ...] = ()
    max_added_per_mail: int = Field(default=10, ge=0)

    @field_validator("allowed_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        domains = tuple(v.strip().lower().strip(".") for v in value)
        if any(not d or "@" in d or " " in d for d in domains):
            raise ValueError("list domains, like example.com")
        return domains

    def admit(self, addresses: Sequence[str]) -> tuple[list[str], dict[str, list[str]]]:
        """The addresses to add, in order, and the others by the reason they are not."""
        refused: dict[str, list[str]] = {}
        allowed = []
        for address in addresses:
            domain = address.rpartition("@")[2]
            if self.allowed_domains and not any(
                domain == d or domain.endswith("." + d) for d in self.allowed_domains
            ):
                refused.setdefault("not in watchers.allowed_domains", []).append(address)
            else:
                allowed.append(address)
        if len(allowed) > self.max_added_per_mail:
            why = f"more than {self.max_added_per_mail} in one mail (watchers.max_added_per_mail)"
            refused[why] = allowed[self.max_added_per_mail :]
        return allowed[: self.max_added_per_mail], refused


class LimitsConfig(_Frozen):
    """Per hour, counted on stored rows, so they hold across restarts and several daemons."""

    max_message_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # acknowledgments and transcripts to everyone together, and to one correspondent
    replies_per_hour: int = Field(default=1000, gt=0)
    replies_per_correspondent_per_hour: int = Field(default=30, gt=0)
    new_incidents_per_sender_per_hour: int = Field(default=20, gt=0)
    # A mail whose handling killed the process this often is quarantined without parsing
    crashes_before_quarantine: int = Field(default=2, gt=0)
    # Commands read from one mail's subject; more are refused, in one transcript line
    commands_per_mail: int = Field(default=5, gt=0)
    # A mail's header block, checked before it is parsed (far above real mail; over: quarantine)
    header_fields: int = Field(default=DEFAULT_LIMITS.fields, gt=0)
    header_block_bytes: int = Field(default=DEFAULT_LIMITS.block_bytes, gt=0)
    header_field_bytes: int = Field(default=DEFAULT_LIMITS.field_bytes, gt=0)
    header_encoded_words: int = Field(default=DEFAULT_LIMITS.encoded_words, gt=0)

    @property
    def headers(self) -> HeaderLimits:
        return HeaderLimits(
            self.header_fields,
            self.header_block_bytes,
            self.header_field_bytes,
            self.header_encoded_words,
        )


class BouncesConfig(_Frozen):
    """The bounce score, as Mailman keeps it: a permanent failure adds `hard`, a temporary one
    `soft`, at most one bounce an address counts in `count_once_per_hours`; the score halves
    every `half_life_days`. At `threshold` the address is suspended (no notices), and after
    `probe_after_days` the next notice goes as a probe: if it bounces, the suspension starts
    again; if not, the score fades below the threshold and the address is back."""

    hard: float = Field(default=1.0, ge=0)
    soft: float = Field(default=0.5, ge=0)
    threshold: float = Field(default=3.0, gt=0)
    half_life_days: float = Field(default=7, gt=0)
    count_once_per_hours: float = Field(default=24, ge=0)
    probe_after_days: float = Field(default=7, gt=0)
