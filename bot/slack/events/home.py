"""``app_home_opened``: the Home tab is rebuilt from the store (``RunQueries.home``) each time it is opened."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.service.views import alert_view, run_view
from bot.slack.blocks.home import home_view
from bot.slack.context import Services

__all__ = ["register"]


def register(app: AsyncApp, services: Services) -> None:
    async def on_home(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        now = services.now()
        facts = await services.queries.home(now)
        view = home_view(
            in_flight=[run_view(run) for run in facts.in_flight],
            alerts=[alert_view(alert) for alert in facts.alerts],
            mutes=facts.mutes,
            failures=[run_view(run) for run in facts.failures],
            now=now,
            command=services.command,
            muted_runs=facts.muted_runs,
            acknowledged=facts.acknowledged,
        )
        await client.views_publish(user_id=event["user"], view=view)

    app.event("app_home_opened")(on_home)
