"""``app_home_opened``: the Home tab is rebuilt from the store (``RunQueries.home``, ``RunQueries.pipelines_of``)
each time it is opened, and after a click on it (Refresh, Acknowledge, Unmute, Unsubscribe) so the person sees
what the click did."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.models import Json
from bot.service.permissions import Actor
from bot.service.rights import ACKNOWLEDGE, MUTE
from bot.service.views import alert_view, run_view
from bot.slack.blocks.home import home_view
from bot.slack.blocks.subscriptions import home_subscriptions
from bot.slack.context import Services

__all__ = ["publish_home", "register"]


def register(app: AsyncApp, services: Services) -> None:
    async def on_home(event: Json, client: AsyncWebClient) -> None:
        if event.get("tab", "home") != "home":
            return
        await publish_home(services, client, event["user"])

    app.event("app_home_opened")(on_home)


async def publish_home(services: Services, client: AsyncWebClient, user_id: str, *, said: str | None = None) -> None:
    """Publish ``user_id``'s Home tab; ``said`` (mrkdwn our code built) heads it: the answer to a click there,
    which has no response_url to answer through."""
    now = services.now()
    facts = await services.queries.home(now)
    actor = Actor(user_id=user_id)
    rights = services.runs.guard.rights
    pipelines = await services.queries.pipelines_of(actor, services.catalog, rights, now)
    catalog = services.catalog.pipelines
    # the buttons offered; each click is checked again, as the alert's own buttons are
    may_acknowledge = {
        name
        for name in {a.pipeline for a in facts.alerts if a.pipeline in catalog}
        if name is not None and await rights.may(actor, catalog[name], ACKNOWLEDGE)
    }
    may_unmute = {name for name in facts.mutes if name in catalog and await rights.may(actor, catalog[name], MUTE)}
    mine = await services.subscriptions.listed(user_id=user_id)
    notify = await services.subscriptions.notify_me_of(user_id)
    view = home_view(
        in_flight=[run_view(run) for run in facts.in_flight],
        alerts=[alert_view(alert) for alert in facts.alerts],
        mutes=facts.mutes,
        failures=[run_view(run) for run in facts.failures],
        now=now,
        command=services.command,
        muted_runs=facts.muted_runs,
        acknowledged=facts.acknowledged,
        subscriptions=home_subscriptions(mine, notify_me=notify, command=services.command),
        pipelines=pipelines,
        recovered=facts.recovered,
        may_acknowledge=may_acknowledge,
        may_unmute=may_unmute,
        answer=said,
    )
    await client.views_publish(user_id=user_id, view=view)
