"""SMTP login with OAuth2 (XOAUTH2), as Exchange Online and Gmail want it: the access token from
a helper command (run without the desk's secrets) or a file, fetched at every connection."""

from __future__ import annotations

import sys

import pytest

from mailproc.config.settings import ConfigError, SmtpConfig
from mailproc.notify.sender import send_pending, smtp_login
from tests.notify.test_sender import rows
from tests.support.mailfactory import make_mail
from tests.support.servers import SmtpCapture

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def xoauth2(settings, server, **kw):
    config = SmtpConfig(
        host=server.host,
        port=server.port,
        security="none",
        username="desk@example.com",
        auth="xoauth2",
        **kw,
    )
    return settings.model_copy(update={"smtp": config})


def test_a_token_from_the_helper_command_logs_in(settings, engine, desk, clock, tmp_path):
    desk.handle(make_mail())
    helper = [sys.executable, "-c", "print('token-123')"]
    with SmtpCapture(username="desk@example.com", oauth2_token="token-123") as server:
        config = xoauth2(settings, server, oauth2_token_command=helper)
        assert send_pending(config, engine, clock, {"MAILPROC_SECRET": "t"}) == 2
    assert {m.auth_login for m in server.messages} == {"desk@example.com"}


def test_a_token_file_is_read_at_every_connection(settings, engine, desk, clock, tmp_path):
    token = tmp_path / "token"
    token.write_text("expired\n")
    desk.handle(make_mail())
    with SmtpCapture(username="desk@example.com", oauth2_token="fresh") as server:
        config = xoauth2(settings, server, oauth2_token_file=token)
        assert send_pending(config, engine, clock, {}) == 0  # refused: deferred, not lost
        assert server.auth_failures == 1
        assert {r.status for r in rows(engine)} == {"pending"}
        assert all("535" in (r.error or "") for r in rows(engine))
        token.write_text("fresh\n")  # the timer that refreshes it ran
        clock.advance(minutes=5)
        assert send_pending(config, engine, clock, {}) == 2


def test_a_failing_helper_defers_the_mail_with_its_words(settings, engine, desk, clock):
    desk.handle(make_mail())
    helper = [sys.executable, "-c", "import sys; sys.exit('tenant not found')"]
    with SmtpCapture(username="desk@example.com", oauth2_token="t") as server:
        config = xoauth2(settings, server, oauth2_token_command=helper)
        assert send_pending(config, engine, clock, {}) == 0
    assert all("exited with 1: tenant not found" in (r.error or "") for r in rows(engine))
    assert {r.status for r in rows(engine)} == {"pending"}


def test_xoauth2_needs_a_user_and_one_token_source_and_never_goes_out_in_clear(settings):
    with pytest.raises(ValueError, match="exactly one of oauth2_token_command"):
        SmtpConfig(username="u", auth="xoauth2")
    with pytest.raises(ValueError, match="needs username"):
        SmtpConfig(auth="xoauth2", oauth2_token_command=("x",))
    remote = SmtpConfig(
        host="smtp.example.com",
        security="none",
        username="u",
        auth="xoauth2",
        oauth2_token_command=("x",),
    )
    with pytest.raises(ConfigError, match="refusing to send the access token unencrypted"):
        smtp_login(settings.model_copy(update={"smtp": remote}), {})
