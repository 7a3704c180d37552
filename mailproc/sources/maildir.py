"""A local Maildir as a mail source, for installations where mailproc runs on the mail host.

Mail waits in new/ and cur/ (tmp/ holds deliveries in flight and is never touched). Settling is
a rename, atomic within one file system: into the processed or quarantine folder (Maildir++
subfolders such as `.Processed`, created when missing, which Dovecot shows as folders), or
within the Maildir to cur/ with the S (seen) flag. A crash between the commit and the rename
leaves the file where it was; it is read again, recognised by its key, and renamed then.

With `settle = "seen"` a mail in cur/ that carries the S flag counts as done, so no one should
read that Maildir with a mail client: a mail marked read before mailproc saw it would be
skipped. `settle = "move"` (the default) has no such caveat.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from mailproc.config.sources import MaildirSourceConfig, Settle
from mailproc.desk.outcome import Outcome
from mailproc.runtime.wake import Wake
from mailproc.sources.drain import Fetched, Ref, SourceUnavailable
from mailproc.sources.health import Cursor

INFO = ":2,"


def split_name(name: str) -> tuple[str, str]:
    """A Maildir file name's unique part and its flags ("1700.M1P2.host:2,RS" -> both)."""
    unique, _, flags = name.partition(INFO)
    return unique, flags


class MaildirSource:
    def __init__(self, name: str, config: MaildirSourceConfig) -> None:
        self.name, self.config, self.service = name, config, config.service
        self.root = config.path
        self.cursor = Cursor()

    def open(self, readonly: bool) -> None:
        if not ((self.root / "cur").is_dir() and (self.root / "new").is_dir()):
            raise SourceUnavailable(f"{self.root} is not a Maildir (no cur/ and new/ in it)")
        if not readonly:
            for folder in self.config.folders:
                self._make_folder(self._folder(folder))

    def close(self, broken: bool = False) -> None:
        pass

    def absent_folders(self) -> list[str]:
        """The folders mail is settled into that do not exist yet (created on first open)."""
        return [f for f in self.config.folders if not (self._folder(f) / "cur").is_dir()]

    def _folder(self, name: str) -> Path:
        return self.root / f".{name}"

    def _make_folder(self, path: Path) -> None:
        try:
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            (path / "maildirfolder").touch()
        except OSError as exc:
            raise SourceUnavailable(f"cannot create {path}: {exc.strerror}") from exc

    def listing(self) -> list[Ref]:
        """new/ and cur/ by unique name, which starts with the delivery time."""
        self.cursor = Cursor(self.config.mailbox)
        refs: list[tuple[str, str]] = []
        for sub in ("new", "cur"):
            try:
                names = os.listdir(self.root / sub)
            except OSError as exc:
                raise SourceUnavailable(f"cannot list {self.root / sub}: {exc.strerror}") from exc
            for name in names:
                if name.startswith(".") or (sub == "cur" and self._done(name)):
                    continue
                refs.append((split_name(name)[0], f"{sub}/{name}"))
        return [ref for _, ref in sorted(refs)]

    def _done(self, name: str) -> bool:
        return self.config.settle is Settle.SEEN and "S" in split_name(name)[1]

    def batches(self, refs: Sequence[Ref]) -> Iterator[Sequence[Ref]]:
        step = self.config.batch_size
        for start in range(0, len(refs), step):
            yield refs[start : start + step]

    def fetch(self, refs: Sequence[Ref]) -> Iterator[Fetched]:
        for ref in refs:
            try:
                raw = (self.root / str(ref)).read_bytes()
            except FileNotFoundError:
                continue  # a mail client moved it meanwhile; it turns up again if it waits
            except OSError as exc:
                raise SourceUnavailable(f"cannot read {ref}: {exc.strerror}") from exc
            yield Fetched(ref, raw)

    def describe(self, outcome: Outcome) -> str:
        if outcome.quarantined:
            return f"moved to {self.config.quarantine_folder}"
        if outcome.automatic and self.config.automatic_folder is not None:
            return f"moved to {self.config.automatic_folder}"
        if self.config.settle is Settle.MOVE:
            return f"moved to {self.config.processed_folder}"
        return "flagged seen"

    def settle(self, done: Sequence[tuple[Fetched, Outcome]]) -> None:
        for item, outcome in done:
            source = self.root / str(item.ref)
            target = self._target(source.name, outcome)
            try:
                os.rename(source, target)
            except FileNotFoundError:
                continue  # moved by someone else after it was stored: nothing is lost
            except OSError as exc:
                raise SourceUnavailable(f"cannot move {item.ref}: {exc.strerror}") from exc

    def _target(self, name: str, outcome: Outcome) -> Path:
        unique, flags = split_name(name)
        if outcome.quarantined:  # left unread, so a person notices it
            return self._folder(self.config.quarantine_folder) / "cur" / f"{unique}{INFO}{flags}"
        seen = "".join(sorted(set(flags) | {"S"}))
        automatic = self.config.automatic_folder if outcome.automatic else None
        if automatic is not None:
            folder = self._folder(automatic)
        elif self.config.settle is Settle.MOVE:
            folder = self._folder(self.config.processed_folder)
        else:
            folder = self.root
        return folder / "cur" / f"{unique}{INFO}{seen}"

    def wait(self, wake: Wake) -> None:
        wake.wait(self.config.poll_seconds)
