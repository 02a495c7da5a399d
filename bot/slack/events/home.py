"""``app_home_opened``: the Home tab is rebuilt from the store each time it is opened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.blocks.home import home_view
from bot.slack.context import Services

__all__ = ["register"]


def register(app: AsyncApp, services: Services) -> None:
    async def on_home(event: dict[str, Any], client: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        now = services.now()
        recent = await services.store.runs_between(now - timedelta(days=1), now + timedelta(seconds=1))
        failures = [r for r in reversed(recent) if r.state == "failed" and not r.acknowledged_by]
        view = home_view(
            in_flight=await services.store.runs_in_flight(),
            failures=failures,
            mutes=await services.store.muted(now=now),
            now=now,
            command=services.command,
        )
        await client.views_publish(user_id=event["user"], view=view)

    app.event("app_home_opened")(on_home)
