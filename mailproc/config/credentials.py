"""Where a secret comes from: a file the configuration names, a systemd credential, or a variable.

Secrets never sit in the configuration file itself. Each one has a variable name (`*_env`, e.g.
MAILPROC_SECRET) and may have a file (`*_file`). They are looked up in this order:

1. the `*_file` setting: the file's content (a Docker or Kubernetes secret, a file only the
   service user reads);
2. `$CREDENTIALS_DIRECTORY/<variable name>`: a credential systemd passed with
   `LoadCredential=MAILPROC_SECRET:/etc/mailproc/credentials/secret` — it never enters the
   process's environment, so no child process inherits it;
3. the environment variable itself.

Surrounding white space (a file's final newline) is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"


class SecretUnreadable(Exception):
    """A file that should hold a secret cannot be read; the message names it, not its content."""


@dataclass(frozen=True, slots=True)
class SecretRef:
    """Where one secret may be found: its variable's name and, optionally, a file."""

    setting: str  # the configuration key that names it, for messages: "smtp.password"
    env: str | None
    file: Path | None = None

    def describe(self) -> str:
        """Every place it may come from, for a message telling how to provide it."""
        places = []
        if self.file is not None:
            places.append(f"the file {self.file} ({self.setting}_file)")
        if self.env:
            places.append(f"the environment variable {self.env}")
            places.append(f"the systemd credential {self.env}")
        return " or ".join(places) or f"{self.setting}_env or {self.setting}_file"


def read_secret(ref: SecretRef, environ: Mapping[str, str]) -> str | None:
    """The secret, or None when none of its places holds one."""
    if ref.file is not None:
        return _read(ref.file) or None
    if ref.env:
        directory = environ.get(CREDENTIALS_DIRECTORY)
        if directory:
            credential = Path(directory) / ref.env
            if credential.is_file():
                return _read(credential) or None
        return environ.get(ref.env, "").strip() or None
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8").strip()
    except OSError as exc:
        raise SecretUnreadable(f"cannot read the secret file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SecretUnreadable(f"the secret file {path} is not UTF-8 text") from None


def without_secrets(environ: Mapping[str, str], refs: Iterable[SecretRef]) -> dict[str, str]:
    """The environment for a helper program (a token command): every variable that holds one
    of our secrets, and the database URL (it may carry a password), removed."""
    names = {ref.env for ref in refs if ref.env} | {"MAILPROC_DATABASE_URL"}
    return {name: value for name, value in environ.items() if name not in names}
