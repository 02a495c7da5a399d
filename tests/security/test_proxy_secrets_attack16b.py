"""A proxy password holding ``[`` or ``]`` (sixteenth independent pass, b).

``urlsplit`` (and yarl, the Slack SDK's aiohttp) reads such a URL as no URL at all ("Invalid IPv6 URL") while httpx
takes it and sends ``Proxy-Authorization: Basic base64(user:pa]ss)``: the proxy's password was read by ``urlsplit``
alone, so nothing of it was a secret. A proxy's page showing the request it refused put the header in the message
(``check --online`` printed it, the running bot quotes it to Slack), ``check`` said ok, and every Slack call failed
with aiohttp's ``InvalidURL`` quoting the whole URL, password and all, into the logs. Run with a real local server
as the proxy, the real Rivery client and the real Slack SDK."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.ops.redact import PROCESS, Redactor
from tests.security.proxies import bot_redaction, bot_settings, rivery_error

USER = "proxy-user"


@pytest.mark.parametrize("password", ["Pa]ssw0rd-9x", "Pa[ssw0rd-9x", "p[a]ssw0rd-9x"])
async def test_a_proxy_password_holding_a_bracket_never_reaches_a_message_and_is_a_problem(
    password: str, proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    url = f"http://{USER}:{password}@{proxy}"
    no_proxy.setenv("HTTP_PROXY", url)
    no_proxy.setenv("HTTPS_PROXY", url)
    settings = bot_settings()
    async with bot_redaction(settings):
        text = await rivery_error()
        # the Slack SDK (aiohttp, yarl) cannot read the URL: each call's error quotes it, as the logs show it
        slack = AsyncWebClient(token="xoxb-1234-abcd", base_url="https://slack.invalid/api/")
        with pytest.raises(Exception) as slack_err:  # noqa: PT011 - aiohttp's InvalidURL, whatever its class
            await slack.auth_test()
        logged = PROCESS.redact(f"{type(slack_err.value).__name__}: {slack_err.value}")
    assert "Access denied" in text and "Proxy-Authorization" in text, text  # the proxy was asked, its page quoted
    assert base64.b64encode(f"{USER}:{password}".encode()).decode() not in text, text
    assert password not in logged, logged
    problems = [p for p in settings.problems() if "PROXY" in p.upper()]
    assert [p.split(":")[0] for p in problems] == ["HTTP_PROXY", "HTTPS_PROXY"], problems
    assert all("not a URL the bot can read" in p and "%5D" in p for p in problems), problems
    assert not any(password in p for p in settings.problems())


@pytest.mark.parametrize("written", ["{user}:{password}@{proxy}", "{password}@{proxy}"], ids=["password", "user only"])
async def test_a_non_ascii_proxy_credential_the_slack_sdk_sends_as_latin1_never_reaches_a_message(
    written: str, proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    """aiohttp (the Slack SDK) encodes a proxy's ``user:password`` as Latin-1 for ``Proxy-Authorization`` where httpx
    encodes UTF-8: a password holding ``ä`` (written ``%C3%A4``) was redacted in the provider clients' answers and not
    in the Slack SDK's: a plain-http Slack API behind a proxy whose 407 page shows the request put
    ``Basic base64(latin-1)`` into the ``SlackApiError`` the bot logs."""
    password = "p\u00e4sswoerd-123"
    no_proxy.setenv("HTTP_PROXY", "http://" + written.format(user=USER, password=quote(password), proxy=proxy))
    redactor = Redactor(bot_settings().secret_values())
    slack = AsyncWebClient(token="xoxb-1234-abcd", base_url="http://slack.invalid/api/")
    with pytest.raises(SlackApiError) as err:
        await slack.auth_test()
    text = str(err.value)
    userpass = f"{USER}:{password}" if written.startswith("{user}") else f"{password}:"
    sent = base64.b64encode(userpass.encode("latin-1")).decode()
    assert f"Proxy-Authorization: Basic {sent}" in text, text  # the proxy was asked, its page quoted
    assert sent not in redactor.redact(text), redactor.redact(text)
