"""The bot's side of the proxy tests: its settings and redaction as ``pipeline-bot run`` has them, and the real
Rivery client's answer through the environment's proxy (the ``proxy`` and ``no_proxy`` fixtures: conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.config import Settings
from bot.errors import ProviderError
from bot.ops.redact import PROCESS, Redactor
from bot.providers import rivery
from bot.providers._http import RetryPolicy


def bot_settings() -> Settings:
    """The bot's settings from the environment as it is now (its proxy variables included)."""
    return Settings(_env_file=None, slack_bot_token="xoxb-1234-abcd", slack_signing_secret="sign-1234-abcd")


@asynccontextmanager
async def bot_redaction(settings: Settings) -> AsyncIterator[None]:
    """The running bot's redaction of ``settings``' secrets in force, as ``pipeline-bot run`` sets it up."""
    secrets = Redactor(settings.secret_values())
    PROCESS.include(secrets)
    try:
        yield
    finally:
        PROCESS.exclude(secrets)


async def _no_sleep(seconds: float) -> None:
    return None


async def rivery_error() -> str:
    """The error of the real Rivery client's trigger sent through the environment's proxy, in one attempt."""
    conn = rivery.Connection(base_url="http://rivery.invalid/api", api_token="rivery-token-5f2c9a")
    client = rivery.Client("riv", conn, retry=RetryPolicy(attempts=1), sleep=_no_sleep)
    try:
        with pytest.raises(ProviderError) as err:
            await client.trigger(rivery.Job(river_id="r1"), {})
    finally:
        await client.aclose()
    return str(err.value)
