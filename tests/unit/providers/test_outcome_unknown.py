"""Whether a failed call may still have been acted on (``ProviderError.outcome_unknown``): what a cancel needs to
know. A cancel the provider took but answered badly (a 502 from its gateway, an answer lost on the way back, a
retry refused because the first attempt had already stopped the run) must not be taken for a refusal: the bot
would withdraw the request and announce the run's "failed" (a cancel, on Rivery's legacy API) as a failure. Real
local servers, through the Rivery client as the bot builds it."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from bot.errors import ProviderError
from bot.providers import rivery
from bot.providers._http import RetryPolicy
from tests.local_servers import web_server
from tests.unit.providers.test_transport import raw_server, read_request

JOB = rivery.Job(river_id="r1")
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, max_retry_after=0.05)


def client_of(url: str) -> rivery.Client:
    connection = rivery.Connection(base_url=f"{url}/api", api_token="token-1234", timeout_seconds=2)
    return rivery.Client("rv", connection, retry=FAST)


async def cancel_answered(*answers: tuple[int, str]) -> tuple[ProviderError, list[str]]:
    """The error of a cancel whose attempts are answered ``answers`` in turn (the last one again after)."""
    asked: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        asked.append(f"{request.method} {request.path}")
        status, body = answers[min(len(asked), len(answers)) - 1]
        return web.Response(status=status, text=body, content_type="application/json",
                            headers={"Retry-After": "0"} if status in (429, 503) else None)

    async with web_server(answer) as url, client_of(url) as client:
        with pytest.raises(ProviderError) as raised:
            await client.cancel(JOB, "run-1")
    return raised.value, asked


@pytest.mark.parametrize(
    ("answers", "unknown"),
    [
        ([(502, "<html>Bad gateway</html>")], True),  # may come after the work was done
        ([(500, '{"message": "internal"}')], True),
        ([(502, "<html>Bad gateway</html>"), (400, '{"message": "run run-1 is not running"}')], True),
        ([(400, '{"message": "run run-1 is not running"}')], False),  # refused: nothing done
        ([(404, '{"message": "no such run"}')], False),
        ([(503, '{"message": "maintenance"}')], False),  # not processed, by HTTP's own convention
        ([(429, '{"message": "slow down"}')], False),
    ],
    ids=["502", "500", "502-then-refused", "400", "404", "503", "429"],
)
async def test_a_cancel_answered_with_an_error_says_whether_it_may_have_been_taken(
    answers: list[tuple[int, str]], unknown: bool
) -> None:
    error, asked = await cancel_answered(*answers)
    assert error.outcome_unknown is unknown, str(error)
    assert asked[0] == "POST /api/run/cancel"


async def test_a_cancel_whose_answer_is_lost_on_the_way_back_may_have_been_taken() -> None:
    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # the request arrived whole: the provider may act on it
        writer.close()

    async with raw_server(read_then_hang_up) as url, client_of(url) as client:
        with pytest.raises(ProviderError) as raised:
            await client.cancel(JOB, "run-1")
    assert raised.value.outcome_unknown, str(raised.value)


async def test_a_cancel_that_never_reached_the_provider_was_not_taken() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client_of(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ProviderError) as raised:
            await client.cancel(JOB, "run-1")
    assert not raised.value.outcome_unknown, str(raised.value)


async def test_a_read_that_fails_never_leaves_an_outcome_open() -> None:
    """A status read answered 502 changed nothing at the provider, whatever it means for the run."""

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=502, text="<html>Bad gateway</html>")

    async with web_server(answer) as url, client_of(url) as client:
        with pytest.raises(ProviderError) as raised:
            await client.get_status(JOB, "run-1")
    assert not raised.value.outcome_unknown, str(raised.value)
