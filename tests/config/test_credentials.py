"""Secrets from files and systemd credentials, key rotation, and token helpers that do not
inherit the desk's secrets."""

from __future__ import annotations

import json
import sys

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.credentials import SecretRef, SecretUnreadable, read_secret
from mailproc.config.settings import _embedded, settings_from_dict
from mailproc.daemon.loop import build_source
from mailproc.desk.mail import Desk
from mailproc.store import db
from tests.support.mailfactory import make_mail


def test_a_secret_comes_from_its_file_else_the_credential_else_the_variable(tmp_path):
    (tmp_path / "file").write_text("from the file\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "SMTP_PW").write_text("from systemd\n")
    environ = {"SMTP_PW": "from the variable", "CREDENTIALS_DIRECTORY": str(credentials)}
    assert read_secret(SecretRef("smtp.password", "SMTP_PW", tmp_path / "file"), environ) == (
        "from the file"
    )
    assert read_secret(SecretRef("smtp.password", "SMTP_PW"), environ) == "from systemd"
    del environ["CREDENTIALS_DIRECTORY"]
    assert read_secret(SecretRef("smtp.password", "SMTP_PW"), environ) == "from the variable"
    assert read_secret(SecretRef("smtp.password", "OTHER"), environ) is None
    with pytest.raises(SecretUnreadable, match=f"cannot read the secret file {tmp_path}/absent"):
        read_secret(SecretRef("smtp.password", "SMTP_PW", tmp_path / "absent"), environ)


def _reply_to_of_first_notice(engine) -> str:
    with Session(engine) as session:
        letter = session.scalar(select(db.Outbox.letter).order_by(db.Outbox.id).limit(1))
    return str(letter["reply_to"])


def _close_reply(reply_to: str) -> bytes:
    return make_mail(subject="Re: [INC-1] [CLOSE]", body="Fixed itself.", to=reply_to)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_after_a_key_rotation_old_reply_tokens_work_until_the_old_key_is_removed(
    engine, clock, settings
):
    data = _embedded() | {"database_url": settings.database_url}
    old = settings_from_dict(data, "t", {"MAILPROC_SECRET": "old key"})
    Desk(old, engine, clock).handle(make_mail())  # the acknowledgment carries the old token
    reply_to = _reply_to_of_first_notice(engine)

    rotated = {"MAILPROC_SECRET": "new key", "MAILPROC_PREVIOUS_SECRETS": "old key\n"}
    new_only = settings_from_dict(data, "t", {"MAILPROC_SECRET": "new key"})
    refused = Desk(new_only, engine, clock).handle(_close_reply(reply_to))
    assert "not authenticated" in refused.summary  # a dead token: what rotation must avoid

    clock.advance(minutes=1)
    after = settings_from_dict(data, "t", rotated)
    assert after.signing_key == b"new key"
    applied = Desk(after, engine, clock).handle(_close_reply(reply_to).replace(b"Fixed", b"Done"))
    assert applied.summary == "comment on INC-1; applied [CLOSE]"


def test_the_token_command_does_not_inherit_the_desks_secrets(tmp_path):
    script = "import json, os; print(json.dumps(sorted(os.environ)))"
    data = _embedded()
    data["sources"] = {
        "m365": {
            "kind": "imap",
            "host": "outlook.office365.com",
            "username": "support@example.com",
            "auth": "xoauth2",
            "oauth2_token_command": [sys.executable, "-c", script],
        }
    }
    environ = {
        "PATH": "/usr/bin:/bin",
        "MAILPROC_SECRET": "signing",
        "MAILPROC_PREVIOUS_SECRETS": "older",
        "MAILPROC_SMTP_PASSWORD": "smtp",
        "MAILPROC_DATABASE_URL": "postgresql+psycopg://desk:pw@db/mailproc",
        "HELPER_CLIENT_ID": "kept",
    }
    settings = settings_from_dict(data, "t", environ)
    source = build_source("m365", settings, environ)
    from mailproc.sources.imap import _token

    seen = json.loads(_token(settings.sources["m365"], source._helper_environ))  # type: ignore[arg-type,attr-defined]
    assert "HELPER_CLIENT_ID" in seen and "PATH" in seen
    secrets = {"MAILPROC_SECRET", "MAILPROC_PREVIOUS_SECRETS", "MAILPROC_SMTP_PASSWORD"}
    assert not (secrets | {"MAILPROC_DATABASE_URL"}) & set(seen)


def test_the_database_password_may_come_from_a_secret_file(tmp_path):
    (tmp_path / "pg").write_text("s3cret\n")
    data = _embedded() | {
        "database_url": "postgresql+psycopg://desk@db.example.com/mailproc",
        "database_password_file": str(tmp_path / "pg"),
    }
    settings = settings_from_dict(data, "t", {"MAILPROC_SECRET": "k"})
    assert settings.database_url == "postgresql+psycopg://desk:s3cret@db.example.com/mailproc"
    from mailproc.config.paths import database_name

    assert database_name(settings.database_url) == (
        "postgresql+psycopg://desk:***@db.example.com/mailproc"
    )
    written = data | {"database_url": "postgresql+psycopg://desk:given@db/mailproc"}
    assert "desk:given@" in settings_from_dict(written, "t", {}).database_url
