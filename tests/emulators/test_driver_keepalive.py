"""The fake Slack sends each request to the app on a connection of its own. It kept connections alive and reused
them: a request sent just as the app closed the idle connection (the bot's keep-alive is its read timeout, 10 s)
failed, and the demo page showed "/pipeline failed with the error dispatch_failed" with nothing wrong in the bot
(the demo-page test after a workflow's approval failed so in CI, twice)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.emulators.slack import FakeSlack

KEEPALIVE = 0.3  # the app closes a connection idle this long (the bot: ``HTTP_READ_TIMEOUT_SECONDS``)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(status=200)


async def test_a_request_sent_as_the_app_closes_an_idle_connection_reaches_it(fake: FakeSlack) -> None:
    web_app = web.Application()
    web_app.router.add_post("/slack/events", _ok)
    runner = web.AppRunner(web_app, access_log=None, keepalive_timeout=KEEPALIVE)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        answered = 0
        for i in range(24):  # at the edge of the app's keep-alive, a little either side (about half failed before)
            await fake.driver.post_raw("token=x")
            await asyncio.sleep(KEEPALIVE + (i % 6) * 0.001)
            answered += (await fake.driver.post_raw("token=x")).status == 200
        assert answered == 24
    finally:
        await runner.cleanup()
