"""``app_home_opened``: the Home tab is rebuilt from the store each time it is opened."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.slack.blocks.home import home_view
from bot.slack.context import Services

__all__ = ["register"]

DAY = timedelta(days=1)


def register(app: AsyncApp, services: Services) -> None:
    async def on_home(event: dict[str, Any], client: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        store = services.store
        now = services.now()
        recent = await store.runs_between(now - DAY, now + timedelta(seconds=1))
        failures = [r for r in reversed(recent) if r.state == "failed"]  # muted and acknowledged ones too
        alerts = await store.alerting.open_alerts()
        # a muted alert keeps the ids of the runs it stood for: their failures are marked muted
        lately = await store.alerting.alerts_between(now - 2 * DAY, now + timedelta(seconds=1))
        muted_runs = {run_id for a in (*alerts, *lately) if a.muted for run_id in a.runs}
        runs = {r.id: r for r in recent}
        acknowledged: dict[int, str] = {}
        for alert in alerts:
            if alert.last_run_id is None:
                continue
            run = runs.get(alert.last_run_id) or await store.get_run(alert.last_run_id)
            if run is not None and run.acknowledged_by:
                acknowledged[run.id] = run.acknowledged_by
        view = home_view(
            in_flight=await store.runs_in_flight(limit=1000),
            alerts=alerts,
            mutes=await store.muted(now=now),
            failures=failures,
            now=now,
            command=services.command,
            muted_runs=muted_runs,
            acknowledged=acknowledged,
        )
        await client.views_publish(user_id=event["user"], view=view)

    app.event("app_home_opened")(on_home)
