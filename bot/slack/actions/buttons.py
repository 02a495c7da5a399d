"""Buttons on cards, lists, confirmations and the Home tab. Each acks at once, then re-checks who clicks and the
run's current state on the server: a button value is input from the client, never trusted.

A click on the Home tab has no response_url: its answer (or refusal) heads the person's Home tab, redrawn."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.answers import slack_error
from bot.errors import InvalidRequest, PipelineBotError, UserError
from bot.models import Json, JsonValue
from bot.service.permissions import Actor
from bot.slack.blocks import ids
from bot.slack.blocks.evidence import log_modal, log_modal_saying
from bot.slack.blocks.modal import run_modal
from bot.slack.blocks.replies import mute_answer, notice
from bot.slack.blocks.workflow import WF_RETRY, parse_step_value
from bot.slack.context import Services
from bot.slack.events.home import publish_home
from bot.slack.failures import answer, answering
from bot.slack.text import escape, named, truncate
from bot.store.records import RunRecord

__all__ = ["register"]

log = logging.getLogger(__name__)
Work = Callable[
    [Services, Actor, Json, Json, AsyncWebClient], Awaitable[tuple[str, list[JsonValue]] | None]
]


def register(app: AsyncApp, services: Services) -> None:
    handlers: dict[str | re.Pattern[str], Work] = {
        ids.RUN_REFRESH: _refresh,
        ids.RUN_CANCEL: _cancel,
        ids.RUN_STOP_FOLLOWING: _stop_following,
        ids.RUN_RETRY_PATTERN: _retry,
        ids.RUN_ACK_PATTERN: _acknowledge,
        ids.RUN_MUTE: _mute,
    }
    for action_id, work in handlers.items():
        app.action(action_id)(_listener(services, work))
    # a confirmation and a "mute for this long instead" are answered in place: they cannot be clicked twice
    app.action(ids.OP_CONFIRM)(_listener(services, _confirmed, in_place=True))
    app.action(ids.MUTE_SET_PATTERN)(_listener(services, _mute_set, in_place=True))
    app.action(ids.LIST_RUN_PATTERN)(_listener(services, _open_modal))
    app.action(re.compile(r"^wf\.approve(?::\d+)?$"))(_listener(services, _approve))
    app.action(re.compile(r"^wf\.reject(?::\d+)?$"))(_listener(services, _reject))
    app.action(WF_RETRY)(_listener(services, _resume))
    app.action(ids.RUN_RESUME)(_listener(services, _resume_run))
    app.action(ids.RUN_LOG)(_listener(services, _full_log))
    app.action(ids.LOG_EARLIER)(_listener(services, _log_page))
    app.action(ids.LOG_LATER)(_listener(services, _log_page))
    app.action(ids.RUN_CONSOLE)(_just_ack)  # a link button: Slack opens the URL, the click still needs an ack
    app.action(ids.OP_DISMISS)(_dismiss)
    app.action(ids.SUB_REMOVE_PATTERN)(_listener(services, _unsubscribe))
    app.action(ids.HOME_REFRESH)(_listener(services, _home_refresh))
    app.action(ids.HOME_UNMUTE_PATTERN)(_listener(services, _home_unmute))


async def _just_ack(ack: AsyncAck) -> None:
    await ack()


async def _dismiss(ack: AsyncAck, respond: AsyncRespond) -> None:
    await ack()
    await respond(delete_original=True)


def _listener(services: Services, work: Work, *, in_place: bool = False) -> Callable[..., Awaitable[None]]:
    async def listener(
        ack: AsyncAck,
        body: Json,
        action: Json,
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        doing = context["doing"] = f"button {action.get('action_id')}"
        actor = Actor(user_id=body["user"]["id"], channel_id=(body.get("channel") or {}).get("id"))
        await ack()  # nothing may raise after this (see bot.slack.failures): the rest is the task's
        checked = _checked(services, work, actor, body, action, client)
        if _from_home(body):
            services.tasks.spawn(_on_home(services, client, actor, checked, doing), name=action["action_id"])
            return
        answered = answering(checked, doing=doing, respond=respond, in_place=in_place)
        services.tasks.spawn(answered, name=action["action_id"])

    return listener


def _from_home(body: Json) -> bool:
    return (body.get("view") or {}).get("type") == "home"


async def _on_home(
    services: Services,
    client: AsyncWebClient,
    actor: Actor,
    work: Awaitable[tuple[str, list[JsonValue]] | None],
    doing: str,
) -> None:
    """A Home tab click's work; its reply, or what it raised, heads the person's Home tab, redrawn."""
    try:
        reply = await work
    except Exception as error:
        reply = answer(error, doing=doing)
    if reply is None:  # the work redrew the tab itself (Refresh, Unsubscribe) or opened a modal (Run)
        return
    text, blocks = reply
    said = blocks[0]["text"]["text"] if blocks and blocks[0].get("type") == "section" else escape(text)
    try:
        await publish_home(services, client, actor.user_id, said=said)
    except Exception:  # Slack unreachable: nothing else to tell the person through
        log.warning("could not redraw the Home tab of %s after %s", actor.user_id, doing, exc_info=True)


async def _checked(
    services: Services, work: Work, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]] | None:
    """``work``'s reply. A tampered or stale button value is logged here and answered, like everything else it
    raises, by ``bot.slack.failures``: as an error, so it never replaces the prompt it came from."""
    try:
        return await work(services, actor, body, action, client)
    except ValueError as exc:  # a tampered or stale value
        log.warning("bad button value from %s: %s", actor.user_id, exc)
        raise InvalidRequest("That button's value is not valid. Use the buttons on a current card.") from None


def _value(action: Json) -> str:
    if "selected_option" in action:
        return str((action.get("selected_option") or {}).get("value", ""))
    return str(action.get("value", ""))


async def _refresh(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    await services.runs.refresh(actor, ids.parse_run_value(_value(action)))


async def _cancel(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    run = await services.runs.cancel(actor, ids.parse_run_value(_value(action)))
    if run.final:  # it was waiting its turn: nothing at the provider to ask
        return notice(f"Canceled run #{run.id} before it started: it will not start.")
    provider = services.notifier.display_name(run)
    return notice(f"Asked {provider} to cancel run #{run.id}; the card will show when it stops.")


async def _stop_following(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    run = await services.runs.stop_following(actor, ids.parse_run_value(_value(action)))
    return notice(
        f"Stopped following run #{run.id}: it ends here as unknown; it may still run at its provider (see its "
        "console)."
    )


async def _retry(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]] | None:
    async def recorded(run: RunRecord) -> None:
        # the retry's number is known once its row exists: said now, before the provider answers the trigger
        if actor.channel_id:
            await client.chat_postEphemeral(
                channel=actor.channel_id, user=actor.user_id, text=f"🔁 Retrying as #{run.id}…"
            )

    run_id = ids.parse_run_value(_value(action))
    await services.runs.retry(actor, run_id, channel=actor.channel_id, on_recorded=recorded)
    return None


async def _resume_run(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    """Resume from the failed step: Retry with the provider's own resume, the same rights, refused where the
    provider has none."""
    new = await services.runs.retry(actor, ids.parse_run_value(_value(action)), channel=actor.channel_id, resume=True)
    return notice(f"▶️ Resuming from the failed step as run #{new.id}.")


async def _acknowledge(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]] | None:
    run, first = await services.runs.acknowledge(actor, ids.parse_run_value(_value(action)))
    if not first and run.acknowledged_by != actor.user_id:
        return notice(f"<@{run.acknowledged_by}> is already on it.", formatted=True)
    if _from_home(body):  # the alert and the card say so; the Home tab, redrawn, says it too
        return notice(f"👀 You are on run #{run.id} of {named(run.name)}.", formatted=True)
    return None


async def _mute(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    run_id, seconds = ids.parse_mute_value(_value(action))
    run = await services.runs.get(run_id)
    if run.pipeline is None:
        raise InvalidRequest("Ad-hoc runs have no pipeline to mute.")
    muted = await services.runs.pipelines.mute(actor, run.pipeline, timedelta(seconds=seconds), run_id=run.id)
    return mute_answer(run.pipeline, muted, seconds, now=services.now(), run_id=run.id)


async def _mute_set(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    """The explicit change offered by "already muted until …": the period from now, shorter or longer."""
    pipeline, seconds, run_id = ids.parse_mute_set_value(_value(action))
    muted = await services.runs.pipelines.mute(actor, pipeline, timedelta(seconds=seconds), run_id=run_id, replace=True)
    return mute_answer(pipeline, muted, seconds, now=services.now(), run_id=run_id)


async def _confirmed(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    op, target, run_id = ids.parse_op_value(_value(action))
    if op == "cancel":
        if run_id is None:
            raise ValueError("cancel without a run")
        return await _cancel(services, actor, body, {"value": str(run_id)}, client)
    if op == "stop_following":
        if run_id is None:
            raise ValueError("stop following without a run")
        return await _stop_following(services, actor, body, {"value": str(run_id)}, client)
    if op not in ("enable", "disable", "archive", "reset"):
        raise ValueError(f"unknown operation {op[:20]!r}")
    done = await services.runs.pipelines.pipeline_op(actor, op, target)
    return notice("✅ " + done, formatted=True)


async def _open_modal(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    selected = services.catalog.pipelines.get(_value(action))
    view = run_modal(
        list(services.catalog.pipelines.values()),
        selected=selected,
        channel=actor.channel_id or "",
        display_names=services.display_names(),
    )
    await client.views_open(trigger_id=body["trigger_id"], view=view)


async def _full_log(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    """The failure thread's Full log: the modal opens at once (a click's trigger_id lasts 3 s, and the provider may
    take longer: Rivery prepares a log), then shows the log's last page, or why it cannot."""
    run_id = ids.parse_run_value(_value(action))
    opened = await client.views_open(trigger_id=body["trigger_id"], view=log_modal_saying(run_id, "_Reading the log…_"))
    view = opened.get("view") or {}
    await _show_page(services, client, actor, run_id, 0, (str(view.get("id", "")), view.get("hash")), opened=True)


async def _log_page(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    """Earlier / Later in the Full log modal: the same view, another page (the value re-checked: it is input)."""
    run_id, number = ids.parse_log_page_value(_value(action))
    view = body.get("view") or {}
    if str(view.get("private_metadata", "")) != str(run_id):
        raise ValueError("a log page of another run than its modal's")
    await _show_page(services, client, actor, run_id, number, (str(view.get("id", "")), view.get("hash")))


async def _show_page(
    services: Services,
    client: AsyncWebClient,
    actor: Actor,
    run_id: int,
    number: int,
    view: tuple[str, JsonValue],
    *,
    opened: bool = False,
) -> None:
    """``view``: the modal's id and hash. Who clicks is checked at each page: the modal's run id is input too."""
    view_id, view_hash = view
    try:
        await services.log_access.check(actor, run_id, opened=opened)
        shown = log_modal(await services.triage.log_page(run_id, number))
    except UserError as refused:  # our own words (mrkdwn we built)
        shown = log_modal_saying(run_id, "⚠️ " + str(refused))
    except PipelineBotError as failed:  # the provider's answer: redacted, escaped here
        shown = log_modal_saying(run_id, "⚠️ " + escape(str(failed)))
    try:
        await client.views_update(view_id=view_id, hash=view_hash, view=shown)
    except SlackApiError as exc:
        # the person closed the modal while the provider prepared the log (Rivery may take minutes), or moved to
        # another page meanwhile: the view this page was for is gone or newer, and nobody waits for this one
        error = slack_error(exc.response)
        if error not in _VIEW_GONE:
            raise
        log.info("the Full log of run %s was closed or moved on before its page came", run_id)


#: views.update's answers for a view closed, or updated since its hash was read
_VIEW_GONE = ("not_found", "hash_conflict")


async def _unsubscribe(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    """The Home tab's Unsubscribe: re-checked here (the value is input), answered on the Home tab itself."""
    subscription_id = ids.parse_subscription_value(_value(action))
    try:
        removed = await services.subscriptions.remove(actor, subscription_id)
    except UserError as refused:
        said = "⚠️ " + str(refused)
    else:
        said = "🔕 Unsubscribed." if removed is not None else "That subscription was already removed."
    await publish_home(services, client, actor.user_id, said=said)


async def _home_refresh(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    """Redraws the clicker's own Home tab: the value is not read, so there is nothing to tamper with."""
    await publish_home(services, client, actor.user_id)


async def _home_unmute(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    """The Home tab's Unmute: checked as ``/pipeline unmute`` is (whoever may mute may unmute), audited."""
    pipeline = _value(action)
    if pipeline not in services.catalog.pipelines:
        raise ValueError(f"{pipeline[:40]!r} is not a pipeline")
    found = await services.runs.pipelines.unmute(actor, pipeline)
    said = "🔔 Unmuted" if found else "Already unmuted:"
    return notice(f"{said} {named(pipeline)}: its failures alert again.", formatted=True)


async def _decide(services: Services, actor: Actor, action: Json, approve: bool) -> tuple[str, list[JsonValue]]:
    workflow_run_id, step = parse_step_value(_value(action))
    done = await services.workflows.decide(actor, workflow_run_id, step, approve)
    return notice(f"You {done} {named(truncate(step, 200, '…'))} of workflow run #{workflow_run_id}.", formatted=True)


async def _approve(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    return await _decide(services, actor, action, True)


async def _reject(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> tuple[str, list[JsonValue]]:
    return await _decide(services, actor, action, False)


async def _resume(
    services: Services, actor: Actor, body: Json, action: Json, client: AsyncWebClient
) -> None:
    await services.workflows.resume(actor, ids.parse_run_value(_value(action)))
