"""The kinds of mail source the daemon runs, by the `kind` of their configuration table.

A new kind joins with its configuration model (mailproc.config.sources), its class (the
`Source` protocol of mailproc.sources.drain) and one entry here; the daemon asks this table and
knows no source type by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mailproc.config.sources import AnySourceConfig, ImapSourceConfig, MaildirSourceConfig
from mailproc.sources.drain import Source
from mailproc.sources.imap import ImapSource, check_credentials
from mailproc.sources.maildir import MaildirSource


@dataclass(frozen=True, slots=True)
class SourceKind:
    # (name, config, environ, helper_environ): the last is the environment without the desk's
    # secrets, for helper programs the source runs (an OAuth2 token command)
    build: Callable[[str, Any, Mapping[str, str], Mapping[str, str]], Source]
    # raises CredentialsMissing when a secret the source needs is not there
    check: Callable[[Any, Mapping[str, str]], None]
    where: Callable[[Any], str]  # for the log: what the source reads


def _imap_where(config: ImapSourceConfig) -> str:
    return f"imap {config.username}@{config.host}:{config.effective_port} {config.folder}"


def _maildir(
    name: str, config: MaildirSourceConfig, _environ: Mapping[str, str], _helper: Mapping[str, str]
) -> Source:
    return MaildirSource(name, config)


def _no_secrets(_config: MaildirSourceConfig, _environ: Mapping[str, str]) -> None:
    return None


def _maildir_where(config: MaildirSourceConfig) -> str:
    return f"maildir {config.path}"


KINDS: Mapping[str, SourceKind] = {
    "imap": SourceKind(ImapSource, check_credentials, _imap_where),
    "maildir": SourceKind(_maildir, _no_secrets, _maildir_where),
}


def build(
    name: str,
    config: AnySourceConfig,
    environ: Mapping[str, str],
    helper_environ: Mapping[str, str] | None = None,
) -> Source:
    """`helper_environ`: for the source's helper programs (default: `environ`)."""
    helper = environ if helper_environ is None else helper_environ
    return KINDS[config.kind].build(name, config, environ, helper)


def check(config: AnySourceConfig, environ: Mapping[str, str]) -> None:
    """Raises CredentialsMissing when a secret the source needs is not there."""
    KINDS[config.kind].check(config, environ)


def where(config: AnySourceConfig) -> str:
    return KINDS[config.kind].where(config)
