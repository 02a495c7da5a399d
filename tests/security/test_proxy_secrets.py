"""A proxy's password from the environment (fourteenth independent pass, b).

httpx takes ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` from the environment and sends each request to a plain-http
base_url through it with ``Proxy-Authorization: Basic base64(user:password)``. A proxy whose error page shows the
request it refused (407, 403 by policy, a gateway error) puts that header in the answer the bot quotes to the person:
the bot knew no proxy password, so the base64 reached Slack and the logs. Run with a real local server as the
proxy and the real Rivery client (its redactor includes the running bot's, as ``pipeline-bot run`` sets it up)."""

from __future__ import annotations

import base64
import importlib.util
from urllib.parse import quote

import pytest

from bot.config import Settings
from bot.ops.redact import PROCESS, Redactor
from tests.security.proxies import bot_redaction, bot_settings, rivery_error

USER, PASSWORD = "proxy-user", 'Pr0xy pa55&w%rd+"\u00e9'


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "all_proxy"])
async def test_a_proxy_password_a_proxy_echoes_never_reaches_a_message(
    variable: str, proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    no_proxy.setenv(variable, f"http://{USER}:{quote(PASSWORD, safe='')}@{proxy}")
    async with bot_redaction(bot_settings()):
        text = await rivery_error()
    assert "Access denied" in text and "HTTP 407" in text, text  # the proxy was asked, and its page quoted
    header = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for form in (header, PASSWORD, quote(PASSWORD, safe="")):
        assert form not in text, text


def test_a_proxy_the_bot_cannot_use_is_a_problem_never_quoting_its_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ALL_PROXY=socks5://…`` (without socksio, which the bot is not installed with) or an ``ftp://`` proxy passed
    ``check``; the running bot then failed to make every provider client (ImportError, ValueError), an ERROR with
    a traceback at each call."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("ALL_PROXY", f"socks5://{USER}:Secr3t-proxy-pw@127.0.0.1:1080")
    monkeypatch.setenv("https_proxy", "ftp://Secr3t-proxy-pw@127.0.0.1:21")
    monkeypatch.setenv("HTTP_PROXY", "127.0.0.1:3128")  # host:port alone: httpx reads it as http://
    settings = Settings(_env_file=None, slack_bot_token="xoxb-1234-abcd", slack_signing_secret="sign-1234-abcd")
    problems = [p for p in settings.problems() if "prox" in p]
    expected = ["https_proxy: the proxy's scheme 'ftp' is not one the bot can use (http, https, socks5): no provider "
                "could be called"]
    if importlib.util.find_spec("socksio") is None:  # how the bot is installed (requirements.txt)
        expected.insert(0, "ALL_PROXY: a SOCKS proxy needs the socksio package, which this installation lacks: no "
                           "provider could be called; use an http:// proxy")
    assert sorted(problems) == sorted(expected)
    assert not any("Secr3t" in p for p in settings.problems())


@pytest.mark.parametrize("written", ["{key}@{proxy}", "{key}:@{proxy}"], ids=["user only", "empty password"])
async def test_a_proxy_whose_credential_is_its_user_name_alone_never_reaches_a_message(
    written: str, proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    """Fifteenth pass (b): a proxy service taking an API key as the user name and no password
    (``http://API_KEY:@proxy:8011``): only a password was taken for a secret, so the page of a proxy refusing the
    request put ``Proxy-Authorization: Basic base64(API_KEY:)`` in the message (and slack_sdk's DEBUG line quoting
    the proxy URL went to the logs whole)."""
    key = "zyte-Api-K3y-6a1f09"
    no_proxy.setenv("HTTP_PROXY", "http://" + written.format(key=key, proxy=proxy))
    async with bot_redaction(bot_settings()):
        text = await rivery_error()
        logged = PROCESS.redact(f"HTTP proxy URL has been loaded from an env variable: http://{key}@{proxy}")
    assert "Access denied" in text and "Proxy-Authorization" in text, text  # the proxy was asked, its page quoted
    assert base64.b64encode(f"{key}:".encode()).decode() not in text, text
    assert key not in text and key not in logged, (text, logged)
    # a short account name is no key: masking it would mask the word in every message
    no_proxy.setenv("HTTP_PROXY", "http://" + written.format(key="data", proxy=proxy))
    assert Redactor(bot_settings().secret_values()).redact("data loaded; Basic ZGF0YTo=") == "data loaded; Basic ***"


@pytest.mark.parametrize("mark", ["#", "/", "?"])
def test_a_proxy_url_whose_password_ends_its_host_early_is_a_problem_never_quoting_it(
    mark: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifteenth pass (b): a proxy password holding ``#``, ``/`` or ``?`` unencoded (a password copied as it is) ends
    the URL's host early: ``check`` said ok, then every provider client failed to be made (httpx: "Invalid port:
    '<the password up to that character>'"), each poll an ERROR "polling run N failed" with that piece of the password
    in its traceback, and no "cannot reach": the connection never counted as failing."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://{USER}:Secr3tHead{mark}tail@127.0.0.1:3128")
    monkeypatch.setenv("http_proxy", f"{USER}:Secr3tHead%23tail@127.0.0.1:3128")  # encoded: fine
    settings = Settings(_env_file=None, slack_bot_token="xoxb-1234-abcd", slack_signing_secret="sign-1234-abcd")
    problems = [p for p in settings.problems() if "PROXY" in p.upper()]
    assert len(problems) == 1 and problems[0].startswith("HTTPS_PROXY: not a URL the bot can read"), problems
    assert not any("Secr3t" in p for p in settings.problems())
