"""The slash command: parse, ack at once, then do the work in a task the bot owns.

Each command is a typed value (``model.py``) with one handler: ``IN_ACK`` for answers computed from the
catalog alone (help, list), which travel in the ack itself, and ``WORK`` for the rest, which ack empty and
answer through ``respond`` (the command's response_url) as an ephemeral message; a run's card appears in the
channel through the delivery loop. A parse error is answered in the ack. Whatever a handler raises is answered
by ``bot.slack.failures``, the one place errors are turned into a reply (Bolt's error handler before the ack).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeAlias, TypeVar, cast

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.model import Pipeline
from bot.catalog.schedules import scheduled_items
from bot.errors import InvalidRequest
from bot.models import Json, JsonValue
from bot.providers.base import Capability
from bot.providers.registry import PROVIDERS
from bot.service.history import trend
from bot.service.permissions import Actor
from bot.service.runs import AdHoc
from bot.service.targets import adhoc_target
from bot.service.views import run_view
from bot.slack.blocks.card import run_card
from bot.slack.blocks.listing import catalog_list
from bot.slack.blocks.modal import run_modal
from bot.slack.blocks.replies import (
    confirm_op,
    ephemeral_error,
    last_runs,
    mute_answer,
    notice,
    stats,
    status_list,
)
from bot.slack.commands import subscribing
from bot.slack.commands.channels import postable_channel
from bot.slack.commands.grammar import AdHocTarget, ParseError, parse
from bot.slack.commands.help import help_for
from bot.slack.commands.model import (
    Cancel,
    Command,
    Help,
    Last,
    ListPipelines,
    Mute,
    NotifyMe,
    OpenRunModal,
    PipelineOp,
    Run,
    Schedules,
    Stats,
    Status,
    Subscribe,
    Subscriptions,
    Target,
    Unmute,
    Unsubscribe,
    Watch,
    typed,
)
from bot.slack.context import Services
from bot.slack.failures import answering, ephemeral
from bot.slack.text import escape, named

__all__ = ["IN_ACK", "WORK", "Asked", "register"]

log = logging.getLogger(__name__)
Reply: TypeAlias = tuple[str, list[JsonValue]]
C = TypeVar("C", bound=Command)


@dataclass(frozen=True, slots=True)
class Asked:
    """Who asked, where, and what Slack gave to answer with."""

    actor: Actor
    trigger_id: str
    client: AsyncWebClient


InAck: TypeAlias = Callable[[Services, C], Reply]
Work: TypeAlias = Callable[[Services, Asked, C], Awaitable[Reply | None]]

#: command type → its handler; ``test_command_table`` checks every ``Command`` has exactly one. A handler is
#: looked up by its command's own type, so it is only ever called with that type (the casts below)
IN_ACK: dict[type[object], InAck[Command]] = {}
WORK: dict[type[object], Work[Command]] = {}


def _in_ack(kind: type[C]) -> Callable[[InAck[C]], InAck[C]]:
    def add(handler: InAck[C]) -> InAck[C]:
        IN_ACK[kind] = cast("InAck[Command]", handler)
        return handler

    return add


def _work(kind: type[C]) -> Callable[[Work[C]], Work[C]]:
    def add(handler: Work[C]) -> Work[C]:
        WORK[kind] = cast("Work[Command]", handler)
        return handler

    return add


def register(app: AsyncApp, services: Services) -> None:
    async def on_command(
        ack: AsyncAck,
        body: Json,
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        parsed = parse(
            body.get("text") or "",
            pipelines=list(services.catalog.pipelines),
            providers=list(PROVIDERS),
            connections=list(services.catalog.connections),
            workflows=list(services.catalog.workflows),
            command=services.command,
        )
        if isinstance(parsed, ParseError):
            await ack(**ephemeral(*ephemeral_error_text(parsed)))
            return
        doing = context["doing"] = f"command {parsed.spec.name!r}"
        command: Command = typed(parsed)
        quick = IN_ACK.get(type(command))
        if quick is not None:
            await ack(**ephemeral(*quick(services, command)))
            return
        handle = WORK[type(command)]
        actor = Actor(user_id=body["user_id"], channel_id=body.get("channel_id"))
        asked = Asked(actor, body.get("trigger_id") or "", client)
        await ack()  # nothing may raise after this (see bot.slack.failures): the rest is the task's
        work = answering(handle(services, asked, command), doing=doing, respond=respond)
        services.tasks.spawn(work, name=f"command {parsed.spec.name}")

    app.command(services.command)(on_command)


def ephemeral_error_text(error: ParseError) -> tuple[str, list[Json]]:
    text = error.message
    if error.usage:
        text += f"\nUsage: `{escape(error.usage)}`"
    return notice("⚠️ " + text, formatted=True)


# -- answered in the ack: the catalog alone, no round trip ------------------------------------------------


@_in_ack(Help)
def _help(services: Services, command: Help) -> Reply:
    def can(pipeline: Pipeline, capability: str) -> bool:
        return services.pool.client(pipeline.connection).can(Capability(capability))

    # examples name the catalog's own pipelines, each able to do what its example asks
    return notice(help_for(command.topic, services.command, services.catalog, can), formatted=True)


@_in_ack(ListPipelines)
def _list(services: Services, command: ListPipelines) -> Reply:
    wanted = command.filter
    pipelines = [
        p for p in services.catalog.pipelines.values() if wanted is None or p.provider == wanted or wanted in p.tags
    ]
    if not pipelines:
        return ephemeral_error(f"No pipeline matches {wanted}: filter by a provider key or a tag.")
    return catalog_list(pipelines, services.display_names())


# -- answered after an empty ack --------------------------------------------------------------------------


@_work(OpenRunModal)
async def _open_modal(services: Services, asked: Asked, command: OpenRunModal) -> None:
    view = run_modal(
        list(services.catalog.pipelines.values()),
        selected=None,
        channel=asked.actor.channel_id or "",
        display_names=services.display_names(),
    )
    await asked.client.views_open(trigger_id=asked.trigger_id, view=view)


@_work(Run)
async def _run(services: Services, asked: Asked, command: Run) -> None:
    actor = asked.actor
    if str(command.target) in services.catalog.workflows:
        await services.workflows.start(actor, str(command.target), command.params, channel=actor.channel_id)
        return
    target = _target(services, command.target)
    if isinstance(target, AdHoc):
        await services.audited.check(
            actor, "admin", None, what="run ad-hoc provider targets", action="run", target=str(command.target)
        )
    await services.runs.start(actor, target, command.params, channel=actor.channel_id)


@_work(Status)
async def _status(services: Services, asked: Asked, command: Status) -> Reply:
    if command.run is None:
        return status_list([run_view(run) for run in await services.queries.in_flight()], services.now())
    run = await services.runs.get(command.run)
    return run_card(await services.notifier.card_view(run))


@_work(Last)
async def _last(services: Services, asked: Asked, command: Last) -> Reply:
    name = str(command.pipeline)
    pipeline = services.catalog.pipelines.get(name)
    if pipeline is None:
        raise InvalidRequest(f"There is no pipeline {named(name)}.")
    statuses = await services.queries.last(pipeline, command.count)
    numbers = await services.queries.numbers(pipeline, statuses)
    return last_runs(name, statuses, trend(statuses, newest_first=True), numbers)


@_work(Stats)
async def _stats(services: Services, asked: Asked, command: Stats) -> Reply:
    span = command.period
    name = str(command.pipeline) if command.pipeline else None
    pipeline = services.catalog.pipelines.get(name) if name is not None else None
    if name is not None and pipeline is None:
        raise InvalidRequest(f"There is no pipeline {named(name)}.")
    found = await services.queries.stats(pipeline, span)
    summary = found.summary
    return stats(
        name or "all pipelines",
        _period_text(span),
        found.counts,
        summary.failure_rate,
        summary.p50,
        summary.p95,
        [summary.slowest] if summary.slowest else [],
    )


@_work(Cancel)
async def _cancel(services: Services, asked: Asked, command: Cancel) -> Reply:
    run = await services.runs.get(command.run)
    if why := services.runs.cannot_follow(run):  # nothing can cancel it from here: it can be stopped following
        await services.runs.may_stop_following(asked.actor, run)  # asked again when the confirmation is clicked
        question = (
            f"Run #{run.id} of {run.name} cannot be canceled from here: {why}, so the bot cannot reach its provider "
            "(see the provider's console, or put the connection back). Stop following it? It ends here as unknown: "
            "it may still run at the provider."
        )
        return confirm_op("stop_following", str(run.id), question, "Stop following", run_id=run.id)
    await services.runs.may_cancel(asked.actor, run)  # asked again when the confirmation is clicked
    return confirm_op("cancel", str(run.id), f"Cancel run #{run.id} of {run.name}?", "Cancel run", run_id=run.id)


@_work(PipelineOp)
async def _pipeline_op(services: Services, asked: Asked, command: PipelineOp) -> Reply:
    name = command.op
    pipeline_name = str(command.pipeline)
    pipeline = services.catalog.pipelines.get(pipeline_name)
    if pipeline is None:
        raise InvalidRequest(f"Ad-hoc targets cannot be {name}d: name a pipeline from the catalog.")
    await services.audited.check(
        asked.actor,
        "change",
        pipeline,
        what=f"{name} {named(pipeline_name)}",
        action=name,
        target=pipeline_name,
    )
    client_ = services.pool.client(pipeline.connection)
    if not client_.can(Capability(name)):
        raise InvalidRequest(f"{client_.display_name} cannot {name} a pipeline.")
    question = f"{name.capitalize()} {pipeline_name} on {client_.display_name}?"
    return confirm_op(name, pipeline_name, question, name.capitalize())


@_work(Mute)
async def _mute(services: Services, asked: Asked, command: Mute) -> Reply:
    muted = await services.runs.pipelines.mute(asked.actor, str(command.pipeline), command.duration)
    seconds = int(command.duration.total_seconds())
    return mute_answer(str(command.pipeline), muted, seconds, now=services.now())


@_work(Unmute)
async def _unmute(services: Services, asked: Asked, command: Unmute) -> Reply:
    found = await services.runs.pipelines.unmute(asked.actor, str(command.pipeline))
    what = "is no longer muted" if found else "was not muted"
    return notice(f"🔔 {named(str(command.pipeline))} {what}.", formatted=True)


@_work(Schedules)
async def _scheduled(services: Services, asked: Asked, command: Schedules) -> Reply:
    return _schedules(services)


@_work(Watch)
async def _watching(services: Services, asked: Asked, command: Watch) -> Reply:
    return await _watch(services, asked, str(command.pipeline), command.enabled, command.channel)


async def _watch(services: Services, asked: Asked, name: str, enabled: bool, channel: str | None) -> Reply:
    actor = asked.actor
    pipeline = services.catalog.pipelines.get(name)
    if pipeline is None:
        raise InvalidRequest(f"There is no pipeline {named(name)} in the catalog.")
    await services.auth.check(actor, "change", pipeline, what=f"change how {named(name)} is watched")
    client = services.pool.client(pipeline.connection)
    if enabled and not client.can(Capability.LIST_RUNS):
        reason = (
            "has no list of runs, so runs started outside Slack cannot be seen"
            if client.provider == "invision"
            else "cannot list runs on this connection (Rivery needs `api: v1` with account_id and environment_id)"
        )
        raise InvalidRequest(f"{client.display_name} {reason}. Runs started from Slack are followed as always.")
    if enabled and channel:
        default = services.catalog.channel_for(pipeline)
        otherwise = f"Without a channel, `{services.command} watch {escape(name)}` alerts in " + (
            f"<#{default}>." if default and default.startswith(("C", "G")) else "the pipeline's channel."
        )
        channel = await postable_channel(asked.client, channel, member_needed=False, otherwise=otherwise)
    watch = await services.audited.set_watch(actor, name, enabled=enabled, channel=channel or None)
    if not enabled:
        return notice(f"🙈 No longer watching {named(name)} for runs started outside Slack.", formatted=True)
    target = watch.channel or services.catalog.channel_for(pipeline) or "its channel"
    shown = f"<#{target}>" if target.startswith(("C", "G")) else escape(target)
    return notice(
        f"👀 Watching {named(name)}: runs started outside Slack (schedules, the {client.display_name} console) "
        f"are followed and their failures alert in {shown}.",
        formatted=True,
    )


@_work(Subscribe)
async def _subscribe(services: Services, asked: Asked, command: Subscribe) -> Reply:
    return await subscribing.subscribe(services, asked.actor, asked.client, command)


@_work(Unsubscribe)
async def _unsubscribe(services: Services, asked: Asked, command: Unsubscribe) -> Reply:
    return await subscribing.unsubscribe(services, asked.actor, asked.client, command)


@_work(Subscriptions)
async def _subscriptions(services: Services, asked: Asked, command: Subscriptions) -> Reply:
    return await subscribing.subscriptions(services, asked.actor, command)


@_work(NotifyMe)
async def _notify_me(services: Services, asked: Asked, command: NotifyMe) -> Reply:
    return await subscribing.notify_me(services, asked.actor, command)


def _target(services: Services, value: Target) -> Pipeline | AdHoc:
    if isinstance(value, AdHocTarget):
        return adhoc_target(services.pool, value.provider_or_connection, value.ident)
    pipeline = services.catalog.pipelines.get(value)
    if pipeline is None:
        raise InvalidRequest(f"There is no pipeline {named(value)}: `{services.command} list` shows them.")
    return pipeline


def _period_text(span: timedelta) -> str:
    if span % timedelta(days=1) == timedelta(0):
        return f"last {span.days} day{'s' if span.days != 1 else ''}"
    hours = int(span.total_seconds() // 3600)
    return f"last {hours} hour{'s' if hours != 1 else ''}"


def _schedules(services: Services) -> tuple[str, list[JsonValue]]:
    now = services.now()
    items = sorted(scheduled_items(services.catalog), key=lambda i: i.next_fire(now) or now)
    if not items:
        return notice(
            'Nothing is scheduled: add `schedule: {cron: "0 6 * * *", timezone: Europe/Oslo}` to a '
            "pipeline or workflow in the catalog.",
            formatted=True,
        )
    lines = []
    for item in items[:40]:
        fire = item.next_fire(now)
        when = (
            f"<!date^{int(fire.timestamp())}^{{date_short_pretty}} {{time}}|{fire:%Y-%m-%d %H:%M %Z}>"
            if fire
            else "never"
        )
        lines.append(
            f"• {named(item.name)} ({item.kind}) · `{escape(item.schedule.cron)}` {escape(item.schedule.timezone)}"
            f" · next {when} · missed slots: {item.schedule.missed.replace('_', ' ')}"
        )
    return notice("*Scheduled runs*\n" + "\n".join(lines), formatted=True)
