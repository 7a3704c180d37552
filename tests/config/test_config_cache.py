"""Validated settings kept across processes: used when nothing changed, never when anything did,
never holding the secret, and never read from a folder someone else could write."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from mailproc.config import cached
from mailproc.config.settings import ConfigError, Settings, load_settings

CONFIG = """
support_address = "support@example.com"
default_service = "general"
[services.general]
title = "{title}"
"""


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"MAILPROC_CACHE_DIR": str(tmp_path / "cache"), "MAILPROC_SECRET": "s3cret-value"}


def write(tmp_path: Path, title: str = "General") -> Path:
    path = tmp_path / "mailproc.toml"
    path.write_text(CONFIG.format(title=title))
    return path


def cached_files(environ: dict[str, str]) -> list[Path]:
    return sorted((Path(environ["MAILPROC_CACHE_DIR"]) / "settings").glob("*.pickle"))


def no_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validated although the cache had the settings")

    monkeypatch.setattr(Settings, "model_validate", refuse)


def test_a_second_load_takes_the_validated_settings_from_the_cache(tmp_path, environ, monkeypatch):
    path = write(tmp_path)
    first = load_settings(path, environ)
    assert len(cached_files(environ)) == 1
    no_validation(monkeypatch)
    second = load_settings(path, environ)
    assert second == first
    assert second.services["general"].title == "General"
    assert second.signing_key == b"s3cret-value"


def test_an_edited_file_or_another_database_url_is_validated_anew(tmp_path, environ):
    path = write(tmp_path)
    load_settings(path, environ)
    assert load_settings(write(tmp_path, "Edited"), environ).services["general"].title == "Edited"
    other = load_settings(path, {**environ, "MAILPROC_DATABASE_URL": "sqlite:////srv/other.db"})
    assert other.database_url == "sqlite:////srv/other.db"
    assert len(cached_files(environ)) == 3


def test_the_secret_is_never_written_and_comes_from_the_environment(tmp_path, environ):
    path = write(tmp_path)
    load_settings(path, environ)
    assert b"s3cret-value" not in cached_files(environ)[0].read_bytes()
    again = load_settings(path, {**environ, "MAILPROC_SECRET": "rotated"})
    assert again.signing_key == b"rotated"
    assert not load_settings(path, {"MAILPROC_CACHE_DIR": environ["MAILPROC_CACHE_DIR"]}).has_secret


def test_a_faulty_configuration_is_reported_every_time_and_never_cached(tmp_path, environ):
    path = tmp_path / "bad.toml"
    path.write_text('support_address = "support@example.com"\n')
    for _ in range(2):
        with pytest.raises(ConfigError, match="default_service"):
            load_settings(path, environ)
    assert cached_files(environ) == []


def test_a_damaged_cache_file_is_validated_again_and_replaced(tmp_path, environ):
    path = write(tmp_path)
    load_settings(path, environ)
    (damaged,) = cached_files(environ)
    damaged.write_bytes(b"\x80\x05 not a pickle")
    assert load_settings(path, environ).services["general"].title == "General"
    assert pickle.loads(damaged.read_bytes()).services["general"].title == "General"


def test_a_folder_others_may_write_to_is_not_used(tmp_path, environ):
    folder = Path(environ["MAILPROC_CACHE_DIR"])
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o777)
    path = write(tmp_path)
    load_settings(path, environ)
    assert not (folder / "settings").exists()


def test_no_cache_when_turned_off_or_without_a_home(tmp_path):
    path = write(tmp_path)
    load_settings(path, {"MAILPROC_CACHE_DIR": "off", "HOME": str(tmp_path)})
    load_settings(path, {})
    assert not (tmp_path / ".cache").exists()


def test_the_cache_key_covers_the_code_of_the_settings(tmp_path, environ, monkeypatch):
    key = cached._key(b"x", "origin", environ)
    monkeypatch.setattr(cached, "_code_stamp", lambda: b"another version of mailproc")
    assert cached._key(b"x", "origin", environ) != key
