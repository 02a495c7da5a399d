"""The Bolt app: listeners grouped by Slack feature, each registered explicitly."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack import failures
from bot.slack.actions import buttons
from bot.slack.commands import handler as commands
from bot.slack.context import Services
from bot.slack.events import home, steps
from bot.slack.views import run_modal

__all__ = ["build_app", "web_client"]


def web_client(settings: Settings, *, retry_rate_limits: bool = True) -> AsyncWebClient:
    """A Web API client for ``SLACK_API_URL``. Delivery turns 429s into later tries itself, so it passes False."""
    handlers: list[AsyncRetryHandler] = [
        AsyncConnectionErrorRetryHandler(),
        AsyncServerErrorRetryHandler(max_retry_count=2),
    ]
    if retry_rate_limits:
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(token=token, base_url=settings.slack_api_url, timeout=15, retry_handlers=handlers)


def build_app(settings: Settings, services: Services, client: AsyncWebClient) -> AsyncApp:
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt_log = logging.getLogger("bot.slack.bolt")
    level = bolt_log.level
    bolt_log.setLevel(logging.ERROR)  # Bolt warns that SLACK_BOT_TOKEN goes unused: we pass the client that
    app = AsyncApp(  # carries it, with SLACK_API_URL, instead
        client=client,
        signing_secret=secret,
        # HTTP mode verifies every request's signature; Socket Mode has no HTTP requests to verify
        request_verification_enabled=not settings.socket_mode,
        process_before_response=False,
        logger=bolt_log,
    )
    bolt_log.setLevel(level)
    commands.register(app, services)
    buttons.register(app, services)
    run_modal.register(app, services)
    home.register(app, services)
    steps.register(app, services)
    app.error(failures.on_error)  # the one error path: whatever a listener raises, one ephemeral answer
    return app
