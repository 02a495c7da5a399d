"""FakeSlack: a local HTTP server that stands in for Slack in the bot's scenario tests.

Two directions, as with the real Slack:

* **Slack → app** (``driver.py``): ``command``, ``click``, ``click_ephemeral``, ``click_view``, ``submit``,
  ``open_home``, ``send_event`` and ``post_raw`` build the payloads Slack sends (``payloads.py``), sign them
  (``signing.py``) and POST them to ``app_url``, the bot's real HTTP endpoint. ``trigger_id`` and
  ``response_url`` values they carry are issued and remembered in the state, so their 3-second and 5-use /
  30-minute limits are enforced when the bot uses them.
* **app → Slack**: the Web API at ``{url}/api/<method>`` (point ``AsyncWebClient(base_url=f"{url}/api/")``
  at it; ``api.py``, one module per family: ``chat.py``, ``conversations.py``, ``views.py``) and the
  response URLs at ``{url}/_response/<token>`` (``responses.py``). Every call is recorded, every block is
  validated (``blockkit.py``) and answered as Slack answers, including its error codes; the resulting
  channel history, ephemerals, modals and Home tabs (``state.py``) can be inspected and awaited
  (``wait_for``).

The page (``page.py``, ``web/``): ``GET /`` serves a Slack-like page over this same state, for people
(``pipeline-bot demo``) and browser tests; what it does goes through the driver, and it follows changes
through ``add_listener``.

Faults (``faults.py``: ``fail_next``, ``delay_next``, a per-channel posting rate limit) reproduce Slack's
429 + ``Retry-After``, 5xx and error answers, so the bot's retry and pacing paths run against HTTP, not mocks.

Time: ``clock`` (default ``time.time``) drives expiry and rate limits so tests can move it; message
``ts`` values and signing timestamps use the real clock, because apps compare them with theirs.

``FakeSlack`` puts these parts together and offers their methods under one name, as tests use them.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from bot.emulators.slack.api import WebApi
from bot.emulators.slack.chat import ChatApi
from bot.emulators.slack.conversations import ConversationsApi
from bot.emulators.slack.driver import Driver
from bot.emulators.slack.faults import Faults
from bot.emulators.slack.functions import FunctionExecution, FunctionsApi
from bot.emulators.slack.page import add_page_routes
from bot.emulators.slack.records import (
    ApiCall,
    AppResponse,
    Channel,
    Delivery,
    Ephemeral,
    FakeView,
    Json,
    Message,
    MessageVersion,
    ResponsePost,
    User,
    Usergroup,
)
from bot.emulators.slack.responses import ResponseUrls
from bot.emulators.slack.state import SlackState
from bot.emulators.slack.views import ViewsApi

__all__ = [
    "ApiCall",
    "AppResponse",
    "Channel",
    "Delivery",
    "Ephemeral",
    "FakeSlack",
    "FakeView",
    "Message",
    "MessageVersion",
    "ResponsePost",
    "User",
    "Usergroup",
]

T = TypeVar("T")


class FakeSlack:
    """A local Slack: Web API, response URLs, and signed requests into the app. See the module docstring.

    Its parts: ``state`` (the workspace and everything recorded), ``faults``, ``web_api`` (serving the
    families of ``chat.py``, ``conversations.py`` and ``views.py``), ``response_urls`` and ``driver``."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",  # noqa: S107 - a fake credential the fake itself checks
        signing_secret: str = "fake-signing-secret",  # noqa: S107
        team_id: str = "T0001",
        bot_user_id: str = "U0BOT",
        app_url: str | None = None,
        team_domain: str = "fake-team",
        api_app_id: str = "A0APP",
        bot_id: str = "B0BOT",
        verification_token: str = "fake-verification-token",  # noqa: S107
        rate_limit_posts_per_second: float | None = None,
        rate_limit_burst: int = 3,
        app_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state = SlackState(
            bot_token=bot_token, signing_secret=signing_secret, team_id=team_id, bot_user_id=bot_user_id,
            team_domain=team_domain, api_app_id=api_app_id, bot_id=bot_id, verification_token=verification_token,
            clock=clock,
        )
        state.app_url = app_url
        self.faults = faults = Faults(rate_limit_posts_per_second=rate_limit_posts_per_second,
                                      rate_limit_burst=rate_limit_burst)
        self.functions = FunctionsApi(state)  # custom steps: their executions, completed or failed by the app
        families = (ChatApi(state, faults), ConversationsApi(state), ViewsApi(state), self.functions)
        self.web_api = WebApi(state, faults, {name: f for family in families for name, f in family.methods().items()})
        self.response_urls = ResponseUrls(state)
        self.driver = driver = Driver(state, self.response_urls, app_timeout=app_timeout)
        self._runner: web.AppRunner | None = None

        # The parts' attributes and methods, under the names tests use (the same objects, not copies).
        self.bot_token, self.signing_secret, self.verification_token = bot_token, signing_secret, verification_token
        self.team_id, self.team_domain, self.api_app_id = team_id, team_domain, api_app_id
        self.bot_user_id, self.bot_id, self.app_timeout, self.clock = bot_user_id, bot_id, app_timeout, clock
        self.users, self.channels, self.usergroups = state.users, state.channels, state.usergroups
        self.views, self.calls, self.deliveries = state.views, state.calls, state.deliveries
        self.warnings = state.warnings
        # the workspace, change notification and inspection (state.py)
        self.add_user, self.add_channel, self.add_usergroup = state.add_user, state.add_channel, state.add_usergroup
        self.add_listener, self.describe = state.add_listener, state.describe
        self.calls_to, self.message, self.messages = state.calls_to, state.message, state.messages
        self.ephemerals, self.responses = state.ephemerals, state.responses
        self.view, self.home, self.open_modals = state.view, state.home, state.open_modals
        # faults (faults.py)
        self.fail_next, self.delay_next, self.clear_faults = faults.fail_next, faults.delay_next, faults.clear_faults
        # what people do, sent to the app (driver.py)
        self.command, self.click, self.click_ephemeral = driver.command, driver.click, driver.click_ephemeral
        self.click_view, self.submit, self.close_view = driver.click_view, driver.submit, driver.close_view
        self.open_home, self.send_event, self.post_raw = driver.open_home, driver.send_event, driver.post_raw
        self.url_verification, self.signature_for = driver.url_verification, driver.signature_for

    async def execute_function(self, callback_id: str, inputs: Json, *, user: str) -> FunctionExecution:
        """A workflow run by ``user`` reaches the app's custom step ``callback_id``: its ``function_executed``
        event is sent to the app (signed, as Slack sends it). The execution shows how the app completed it."""
        execution, event = self.functions.start(callback_id, inputs, user=user)
        await self.driver.send_event(event)
        return execution

    # -- settings that change after start ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The fake's base URL, once started."""
        return self.state.url

    @property
    def api_url(self) -> str:
        """What the bot sets as ``SLACK_API_URL`` / ``AsyncWebClient(base_url=...)``."""
        return f"{self.state.url}/api/"

    @property
    def app_url(self) -> str | None:
        """The app's request URL (``…/slack/events``) the driver posts to."""
        return self.state.app_url

    @app_url.setter
    def app_url(self, value: str | None) -> None:
        self.state.app_url = value

    @property
    def rate_limit_posts_per_second(self) -> float | None:
        return self.faults.rate_limit_posts_per_second

    @rate_limit_posts_per_second.setter
    def rate_limit_posts_per_second(self, value: float | None) -> None:
        self.faults.rate_limit_posts_per_second = value

    @property
    def rate_limit_burst(self) -> int:
        return self.faults.rate_limit_burst

    @rate_limit_burst.setter
    def rate_limit_burst(self, value: int) -> None:
        self.faults.rate_limit_burst = value

    @property
    def changes(self) -> int:
        """How many times what people would see changed: the page follows it."""
        return self.state.changes

    # -- lifecycle -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self.web_api.on_api)
        app.router.add_post("/_response/{token}", self.response_urls.on_response_url)
        add_page_routes(app, self.state, self.driver)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind (an ephemeral port by default) and return the base URL."""
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.state.url = f"http://{host}:{self._runner.addresses[0][1]}"
        await self.driver.open()
        return self.state.url

    async def stop(self) -> None:
        await self.driver.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- waiting ---------------------------------------------------------------------------------

    async def wait_for(
        self,
        predicate: Callable[[FakeSlack], T] | Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
        *,
        interval: float = 0.01,
        what: str | None = None,
    ) -> T:
        """Poll ``predicate`` (given the fake, or nothing) until truthy and return its value. A
        ``LookupError`` inside it counts as "not yet". On timeout: ``AssertionError`` with what was recorded."""
        takes_fake = bool(inspect.signature(predicate).parameters)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                result = predicate(self) if takes_fake else predicate()  # type: ignore[call-arg]
            except LookupError:
                result = None
            if result:
                return result
            if asyncio.get_running_loop().time() >= deadline:
                name = what or getattr(predicate, "__name__", "predicate")
                raise AssertionError(f"timed out after {timeout:g}s waiting for {name}\n{self.describe()}")
            await asyncio.sleep(interval)
