"""Proxies as the Slack SDK (aiohttp, yarl) reads them, not only as httpx does (seventeenth independent pass, b).

- ``HTTPS_PROXY=proxy.internal:3128`` (no scheme, as curl and httpx take it) or a SOCKS proxy: the Slack SDK reads
  HTTPS_PROXY / HTTP_PROXY itself, and aiohttp refuses a proxy without its scheme ("InvalidURL") and speaks HTTP to a
  SOCKS one: every Slack call failed while ``check`` said ok and ``run`` started.
- A proxy password with a percent-escape that is no UTF-8 (``pass%E4word``, an ``ä`` escaped as Latin-1): yarl keeps
  it as written and aiohttp sends ``Basic base64(user:pass%E4word)``, a form the redactor did not know: a proxy's 407
  page showing the request put it in the ``SlackApiError`` the delivery loop stores and logs.

Run with a real local server as the proxy and the real Slack SDK."""

from __future__ import annotations

import base64
import importlib.util

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.load import parse_catalog
from bot.checks.online import online_checks
from bot.config import Settings
from bot.ops.redact import PROCESS, Redactor
from tests.security.proxies import bot_redaction, bot_settings, rivery_error

USER = "proxy-user"


@pytest.mark.parametrize(
    ("variable", "url"),
    [("HTTPS_PROXY", "proxy.internal:3128"), ("https_proxy", "socks5://proxy.internal:1080"),
     ("HTTP_PROXY", "socks5h://user:Secr3t-pass@proxy.internal:1080")],
    ids=["no scheme", "socks5", "socks5h"],
)
async def test_a_proxy_the_slack_sdk_cannot_use_is_a_problem(
    variable: str, url: str, no_proxy: pytest.MonkeyPatch
) -> None:
    no_proxy.setenv(variable, url)
    problems = [p for p in bot_settings().problems() if p.startswith(f"{variable}:") and "Slack" in p]
    assert len(problems) == 1, bot_settings().problems()
    assert "http://host:port" in problems[0] and "ALL_PROXY" in problems[0], problems
    assert "Secr3t-pass" not in problems[0] and "proxy.internal" not in problems[0], problems
    if "://" not in url:  # what the Slack SDK does with it: every call fails
        with pytest.raises(Exception, match=r"proxy\.internal") as failed:  # aiohttp's InvalidURL
            await AsyncWebClient(token="xoxb-1234-abcd", base_url="http://127.0.0.1:9/api/").auth_test()
        assert not isinstance(failed.value, SlackApiError)


@pytest.mark.parametrize(
    "environ",
    [{"HTTPS_PROXY": "http://proxy.internal:3128"}, {"HTTPS_PROXY": "https://proxy.internal:3128"},
     {"HTTPS_PROXY": "http://proxy.internal:3128", "HTTP_PROXY": "proxy.internal:3128"},  # the SDK reads HTTPS_PROXY
     {"HTTP_PROXY": "HTTP://proxy.internal:3128"}, {"ALL_PROXY": "http://proxy.internal:3128"}],
    ids=["http", "https", "https first", "upper-case scheme", "all_proxy"],
)
def test_a_proxy_the_slack_sdk_can_use_is_no_problem(environ: dict[str, str], no_proxy: pytest.MonkeyPatch) -> None:
    for name, value in environ.items():
        no_proxy.setenv(name, value)
    assert not [p for p in bot_settings().problems() if "Slack SDK" in p], bot_settings().problems()


async def test_a_proxy_password_escaped_as_latin1_never_reaches_a_message(
    proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    no_proxy.setenv("HTTPS_PROXY", f"http://proxy-user:pass%E4word-9x@{proxy}")
    secrets = Redactor(bot_settings().secret_values())
    PROCESS.include(secrets)
    try:
        slack = AsyncWebClient(token="xoxb-1234-abcd", base_url="http://slack.invalid/api/")
        with pytest.raises(SlackApiError) as err:
            await slack.auth_test()
        shown = PROCESS.redact(str(err.value))  # what the delivery loop stores and logs (``_reason``)
    finally:
        PROCESS.exclude(secrets)
    sent = base64.b64encode(b"proxy-user:pass%E4word-9x").decode()
    assert sent in str(err.value)  # the header aiohttp sent, as the proxy's page shows it
    assert sent not in shown and "Proxy-Authorization: Basic ***" in shown, shown


@pytest.mark.parametrize(
    "credentials", ["proxy-user:p%E2%82%ACss-w0rd-9x", "proxy%3Auser:pass-w0rd-9x"], ids=["euro sign", "colon in user"]
)
async def test_proxy_credentials_the_slack_sdk_cannot_send_are_a_problem(
    credentials: str, proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    """httpx sends them; aiohttp raised at every Slack call (``UnicodeEncodeError``: Latin-1 has no €; ``ValueError``:
    "A ':' is not allowed in login"), while ``check`` said ok and ``run`` started."""
    no_proxy.setenv("HTTPS_PROXY", f"http://{credentials}@{proxy}")
    with pytest.raises(ValueError, match=r"latin-1|login"):  # what the Slack SDK does with it
        await AsyncWebClient(token="xoxb-1234-abcd", base_url="http://slack.invalid/api/").auth_test()
    problems = [p for p in bot_settings().problems() if p.startswith("HTTPS_PROXY:")]
    assert len(problems) == 1 and "cannot send its user name and password" in problems[0], problems
    assert "w0rd" not in problems[0] and proxy not in problems[0], problems


async def test_no_proxy_naming_the_slack_api_is_a_warning_the_slack_sdk_ignores_it(
    proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    """An internal gateway as SLACK_API_URL, listed in NO_PROXY: the providers' calls (httpx) go direct, the Slack
    SDK's through the proxy all the same, and nothing said so."""
    no_proxy.setenv("HTTPS_PROXY", f"http://{proxy}")
    no_proxy.setenv("NO_PROXY", "localhost,127.0.0.1,.corp.example")
    with pytest.raises(SlackApiError) as err:  # the proxy answered: the call went through it
        await AsyncWebClient(token="xoxb-1234-abcd", base_url="http://127.0.0.1:9/api/").auth_test()
    assert err.value.response.status_code == 407
    for url, told in [("http://127.0.0.1:9/api/", True), ("https://gw.corp.example/api/", True),
                      ("https://slack.com/api/", False)]:
        warnings = Settings(_env_file=None, slack_bot_token="xoxb-1234-abcd", slack_signing_secret="sign-1234-abcd",
                            slack_api_url=url).warnings()
        said = [w for w in warnings if w.startswith("NO_PROXY")]
        assert bool(said) == told, (url, warnings)
        assert not said or ("HTTPS_PROXY" in said[0] and "does not read NO_PROXY" in said[0]), said


async def test_a_proxy_variable_spelled_in_mixed_case_is_read_as_httpx_reads_it(
    proxy: str, no_proxy: pytest.MonkeyPatch
) -> None:
    """``Https_Proxy``: httpx takes it (``urllib.request.getproxies`` reads any case) and sends its password as
    ``Proxy-Authorization``; read as HTTPS_PROXY and https_proxy alone, it was no secret: the proxy's 407 page
    quoted the header in the provider's error (``check --online`` printed it; the running bot shows it on cards)."""
    password = "Secr3t-mixed-case-pw"
    no_proxy.setenv("Https_Proxy", f"http://{USER}:{password}@{proxy}")
    no_proxy.setenv("Http_Proxy", f"http://{USER}:{password}@{proxy}")
    async with bot_redaction(bot_settings()):
        text = await rivery_error()
    assert "HTTP 407" in text and "Proxy-Authorization" in text, text  # through the proxy, its page quoted
    header = base64.b64encode(f"{USER}:{password}".encode()).decode()
    assert header not in text and password not in text, text
    no_proxy.setenv("All_Proxy", "socks5://127.0.0.1:1080")  # a proxy httpx cannot use, in any case, is a problem
    if importlib.util.find_spec("socksio") is None:
        assert any(p.startswith("All_Proxy: a SOCKS proxy") for p in bot_settings().problems()), bot_settings().problems()


async def test_check_online_sends_a_proxy_refusing_slack_to_the_proxy(proxy: str, no_proxy: pytest.MonkeyPatch) -> None:
    """An https Slack API through a proxy refusing the CONNECT (a 407, here a 404): "cannot be reached
    (ClientHttpProxyError…)", fix "check SLACK_API_URL", where the proxy's address or credentials were wrong."""
    no_proxy.setenv("HTTPS_PROXY", f"http://{USER}:Secr3t-pass-xyz@{proxy}")
    catalog = parse_catalog({
        "version": 1,
        "defaults": {"channel": "C0ALERTS", "owners": ["U0ALICE"], "allow_run": ["*"]},
        "connections": {"rivery": {"provider": "rivery", "base_url": "http://127.0.0.1:9/",
                                   "api_token": "${RIVERY_TOKEN}"}},
        "pipelines": {"leads": {"connection": "rivery", "river_id": "r1"}},
    }, {"RIVERY_TOKEN": "rivery-token-5f2c9a77"})
    client = AsyncWebClient(token="xoxb-1234-abcd", base_url="https://slack.invalid/api/")
    auth = next(r for r in await online_checks(catalog, client, deadline=5) if r.item == "Slack auth.test")
    assert not auth.ok and "ClientHttpProxyError" in auth.said, auth  # its CONNECT refused
    assert "HTTPS_PROXY" in auth.fix and "user name and password" in auth.fix, auth
