"""`mailproc oauth2-token` against a local mock of a token endpoint (Microsoft's and Google's
shape), and as the SMTP token command: the desk's mail goes out over XOAUTH2."""

from __future__ import annotations

import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from mailproc.cli import command
from mailproc.notify.sender import send_pending
from tests.notify.test_smtp_oauth2 import xoauth2
from tests.support.mailfactory import make_mail
from tests.support.servers import SmtpCapture

TENANT = "contoso.onmicrosoft.com"


class TokenEndpoint(ThreadingHTTPServer):
    """POST /<tenant>/oauth2/v2.0/token: client credentials or refresh token, form-encoded."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, str]] = []
        self.issued = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{TENANT}/oauth2/v2.0/token"


class _Handler(BaseHTTPRequestHandler):
    server: TokenEndpoint

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        self.server.requests.append(form)
        if form.get("client_secret") != "app-secret":
            self._answer(401, {"error": "invalid_client", "error_description": "AADSTS7000215"})
        elif self.path != f"/{TENANT}/oauth2/v2.0/token":
            self._answer(400, {"error": "invalid_request", "error_description": "tenant"})
        else:
            self.server.issued += 1
            token = f"token-{self.server.issued}"
            self._answer(200, {"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    def _answer(self, status: int, data: dict[str, object]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    server = TokenEndpoint()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def helper(endpoint: TokenEndpoint, *extra: str) -> list[str]:
    return [
        "oauth2-token",
        "--token-url",
        endpoint.url,
        "--client-id",
        "11111111-2222-3333-4444-555555555555",
        "--scope",
        "https://outlook.office365.com/.default",
        *extra,
    ]


def test_client_credentials_are_sent_and_the_token_is_cached(endpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("MAILPROC_OAUTH2_CLIENT_SECRET", "app-secret")
    cache = tmp_path / "token.json"
    for _ in range(2):
        result = CliRunner().invoke(command(), helper(endpoint, "--cache", str(cache)))
        assert result.exit_code == 0, result.output
        assert result.stdout == "token-1\n"
    assert endpoint.requests == [
        {
            "client_id": "11111111-2222-3333-4444-555555555555",
            "client_secret": "app-secret",
            "grant_type": "client_credentials",
            "scope": "https://outlook.office365.com/.default",
        }
    ]
    assert oct(cache.stat().st_mode & 0o777) == "0o600"


def test_a_refresh_token_grant_for_google(endpoint, tmp_path):
    (tmp_path / "secret").write_text("app-secret\n")
    (tmp_path / "refresh").write_text("1//refresh-token\n")
    args = ["--client-secret-file", str(tmp_path / "secret")]
    args += ["--refresh-token-file", str(tmp_path / "refresh")]
    result = CliRunner().invoke(command(), helper(endpoint, *args))
    assert result.stdout == "token-1\n"
    assert endpoint.requests[0]["grant_type"] == "refresh_token"
    assert endpoint.requests[0]["refresh_token"] == "1//refresh-token"


def test_a_refusal_exits_one_with_the_endpoints_words(endpoint, monkeypatch):
    monkeypatch.setenv("MAILPROC_OAUTH2_CLIENT_SECRET", "wrong")
    result = CliRunner().invoke(command(), helper(endpoint))
    assert result.exit_code == 1
    assert "401 invalid_client: AADSTS7000215" in result.stderr


def test_plain_http_is_refused_except_on_loopback(monkeypatch):
    monkeypatch.setenv("MAILPROC_OAUTH2_CLIENT_SECRET", "s")
    args = ["oauth2-token", "--token-url", "http://login.example.com/t", "--client-id", "x"]
    result = CliRunner().invoke(command(), args)
    assert result.exit_code == 1 and "must be https://" in result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_desk_sends_over_xoauth2_with_the_helpers_token(
    endpoint, tmp_path, settings, engine, desk, clock
):
    (tmp_path / "secret").write_text("app-secret")
    command_line = [sys.executable, "-m", "mailproc", *helper(endpoint)]
    command_line += ["--client-secret-file", str(tmp_path / "secret")]
    desk.handle(make_mail())
    with SmtpCapture(username="desk@example.com", oauth2_token="token-1") as server:
        config = xoauth2(settings, server, oauth2_token_command=tuple(command_line))
        assert send_pending(config, engine, clock, {"PATH": "/usr/bin:/bin"}) == 2
    assert {m.auth_login for m in server.messages} == {"desk@example.com"}
