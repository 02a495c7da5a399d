"""The slash command: parse, ack at once, then do the work in a task the bot owns.

Replies that need no provider call (help, list, a parse error) travel in the ack itself. Everything
else acks empty and answers through ``respond`` (the command's response_url) as an ephemeral
message; a run's card appears in the channel through the delivery loop.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.catalog.model import Pipeline
from bot.catalog.schedules import scheduled_items
from bot.errors import InvalidRequest, NotAllowed, PipelineBotError, ProviderError, UserError
from bot.models import RunStatus
from bot.providers.base import Capability
from bot.providers.registry import PROVIDERS
from bot.service.history import summarize, trend
from bot.service.permissions import Actor, Need
from bot.service.runs import AdHoc
from bot.service.targets import adhoc_target
from bot.slack.blocks.listing import catalog_list
from bot.slack.blocks.modal import run_modal
from bot.slack.blocks.replies import confirm_op, ephemeral_error, last_runs, notice, stats, status_list
from bot.slack.commands.grammar import AdHocTarget, Parsed, ParseError, parse
from bot.slack.commands.help import command_help, help_text
from bot.slack.context import Services
from bot.slack.text import escape

__all__ = ["register"]

log = logging.getLogger(__name__)
Respond = Callable[..., Awaitable[Any]]


def register(app: AsyncApp, services: Services) -> None:
    async def on_command(ack: Any, body: dict[str, Any], respond: Respond, client: Any) -> None:
        parsed = parse(
            body.get("text") or "",
            pipelines=list(services.catalog.pipelines),
            providers=list(PROVIDERS),
            connections=list(services.catalog.connections),
            workflows=list(services.catalog.workflows),
            command=services.command,
        )
        if isinstance(parsed, ParseError):
            await ack(**_ephemeral(*ephemeral_error_text(parsed)))
            return
        quick = _quick_reply(services, parsed, body)
        if quick is not None:
            await ack(**_ephemeral(*quick))
            return
        await ack()
        services.tasks.spawn(_run_command(services, parsed, body, respond, client), name=f"command {parsed.spec.name}")

    app.command(services.command)(on_command)


def ephemeral_error_text(error: ParseError) -> tuple[str, list[dict[str, Any]]]:
    text = error.message
    if error.usage:
        text += f"\nUsage: `{escape(error.usage)}`"
    return notice("⚠️ " + text, formatted=True)


def _ephemeral(text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"text": text, "blocks": blocks, "response_type": "ephemeral"}


def _quick_reply(services: Services, parsed: Parsed, body: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """Answers computed from the catalog alone go back in the ack: no round trip."""
    name = parsed.spec.name
    if name == "help":
        topic = parsed.args.get("command")
        from bot.slack.commands.grammar import spec_named

        spec = spec_named(str(topic)) if topic else None
        text = command_help(spec, services.command) if spec else help_text(services.command)
        return notice(text, formatted=True)
    if name == "list":
        wanted = parsed.args.get("filter")
        pipelines = [
            p for p in services.catalog.pipelines.values() if wanted is None or p.provider == wanted or wanted in p.tags
        ]
        if not pipelines:
            return ephemeral_error(f"No pipeline matches {wanted}: filter by a provider key or a tag.")
        return catalog_list(pipelines, services.display_names())
    return None


async def _run_command(services: Services, parsed: Parsed, body: dict[str, Any], respond: Respond, client: Any) -> None:
    actor = Actor(user_id=body["user_id"], channel_id=body.get("channel_id"))
    try:
        reply = await _dispatch(services, parsed, actor, body, client)
    except UserError as exc:
        reply = notice("⚠️ " + str(exc), formatted=True)
    except PipelineBotError as exc:
        reply = ephemeral_error(str(exc))
    except Exception:
        log.exception("command %r failed", parsed.spec.name)
        reply = ephemeral_error("Something went wrong on our side; it is logged. Try again in a moment.")
    if reply is not None:
        await respond(**_ephemeral(*reply), replace_original=False)


async def _dispatch(
    services: Services, parsed: Parsed, actor: Actor, body: dict[str, Any], client: Any
) -> tuple[str, list[Any]] | None:
    name, args = parsed.spec.name, parsed.args
    runs = services.runs
    if name == "run":
        if parsed.open_modal:
            view = run_modal(
                list(services.catalog.pipelines.values()),
                selected=None,
                channel=actor.channel_id or "",
                display_names=services.display_names(),
            )
            await client.views_open(trigger_id=body["trigger_id"], view=view)
            return None
        if str(args["pipeline"]) in services.catalog.workflows and services.workflows is not None:
            params = args.get("params") or {}
            assert isinstance(params, dict)
            await services.workflows.start(actor, str(args["pipeline"]), params, channel=actor.channel_id)
            return None
        target = _target(services, args["pipeline"])
        if isinstance(target, AdHoc):
            typed = args["pipeline"]
            named = f"{typed.provider_or_connection}:{typed.ident}" if isinstance(typed, AdHocTarget) else str(typed)
            await _check(services, actor, "admin", None, what="run ad-hoc provider targets", action="run", target=named)
        params = args.get("params") or {}
        assert isinstance(params, dict)
        await runs.start(actor, target, params, channel=actor.channel_id)
        return None
    if name == "status":
        ref = args.get("run")
        if ref is None:
            return status_list(await services.store.runs_in_flight(), services.now())
        run = await runs.get(int(str(ref)))
        from bot.slack.blocks.card import CardView, run_card

        client_ = services.pool.client(run.connection)
        card = CardView(
            run=run,
            display_name=client_.display_name,
            job_text=services.pool.job(run.provider, run.job).describe(),
            console_url=services.notifier.console_url(run),
            can_cancel=False,
            now=services.now(),
        )
        return run_card(card)
    if name == "last":
        return await _last(services, str(args["pipeline"]), int(str(args.get("n") or 10)))
    if name == "stats":
        return await _stats(services, args.get("pipeline"), args.get("period"))
    if name == "cancel":
        run = await runs.get(int(str(args["run"])))
        pipeline = services.notifier.pipeline(run)
        await _check(
            services,
            actor,
            "change" if pipeline else "admin",
            pipeline,
            what="cancel this run",
            action="cancel",
            target=f"#{run.id}",
        )
        return confirm_op("cancel", str(run.id), f"Cancel run #{run.id} of {run.name}?", "Cancel run", run_id=run.id)
    if name in ("enable", "disable", "archive", "reset"):
        pipeline_name = str(args["pipeline"])
        pipeline = services.catalog.pipelines.get(pipeline_name)
        if pipeline is None:
            raise InvalidRequest(f"Ad-hoc targets cannot be {name}d: name a pipeline from the catalog.")
        await _check(
            services,
            actor,
            "change",
            pipeline,
            what=f"{name} *{escape(pipeline_name)}*",
            action=name,
            target=pipeline_name,
        )
        client_ = services.pool.client(pipeline.connection)
        if not client_.can(Capability(name)):
            raise InvalidRequest(f"{client_.display_name} cannot {name} a pipeline.")
        question = f"{name.capitalize()} {pipeline_name} on {client_.display_name}?"
        return confirm_op(name, pipeline_name, question, name.capitalize())
    if name == "mute":
        duration = args.get("duration") or timedelta(hours=1)
        assert isinstance(duration, timedelta)
        until = await runs.mute(actor, str(args["pipeline"]), duration)
        return notice(
            f"🔕 *{escape(str(args['pipeline']))}* is muted until <!date^{int(until.timestamp())}^"
            f"{{date_short_pretty}} {{time}}|{until:%Y-%m-%d %H:%M} UTC>: its failures still show on "
            "their cards, without alerting anyone.",
            formatted=True,
        )
    if name == "unmute":
        found = await runs.unmute(actor, str(args["pipeline"]))
        what = "is no longer muted" if found else "was not muted"
        return notice(f"🔔 *{escape(str(args['pipeline']))}* {what}.", formatted=True)
    if name == "schedules":
        return _schedules(services)
    if name in ("watch", "unwatch"):
        return await _watch(services, actor, str(args["pipeline"]), name == "watch", args.get("channel"))
    raise InvalidRequest(f"`{escape(name)}` is not available in this version.")


async def _watch(services: Services, actor: Actor, name: str, enabled: bool, channel: object) -> tuple[str, list[Any]]:
    pipeline = services.catalog.pipelines.get(name)
    if pipeline is None:
        raise InvalidRequest(f"There is no pipeline *{escape(name)}* in the catalog.")
    await services.auth.check(actor, "change", pipeline, what=f"change how *{escape(name)}* is watched")
    client = services.pool.client(pipeline.connection)
    if enabled and not client.can(Capability.LIST_RUNS):
        reason = (
            "has no list of runs, so runs started outside Slack cannot be seen"
            if client.provider == "invision"
            else "cannot list runs on this connection (Rivery needs `api: v1` with account_id and environment_id)"
        )
        raise InvalidRequest(f"{client.display_name} {reason}. Runs started from Slack are followed as always.")
    where = str(channel) if channel else None
    watch = await services.store.alerting.set_watch(
        name, enabled=enabled, channel=where, user_id=actor.user_id, now=services.now()
    )
    await services.store.audit(
        user_id=actor.user_id,
        action="watch" if enabled else "unwatch",
        target=name,
        outcome="ok",
        now=services.now(),
        detail=where or "",
    )
    if not enabled:
        return notice(f"🙈 No longer watching *{escape(name)}* for runs started outside Slack.", formatted=True)
    target = watch.channel or services.catalog.channel_for(pipeline) or "its channel"
    shown = f"<#{target}>" if target.startswith(("C", "G")) else escape(target)
    return notice(
        f"👀 Watching *{escape(name)}*: runs started outside Slack (schedules, the {client.display_name} console) "
        f"are followed and their failures alert in {shown}.",
        formatted=True,
    )


async def _check(
    services: Services, actor: Actor, need: Need, pipeline: Pipeline | None, *, what: str, action: str, target: str
) -> None:
    """A permission check made here rather than in the run service: audited like the service's own."""
    try:
        await services.auth.check(actor, need, pipeline, what=what)
    except NotAllowed:
        await services.store.audit(
            user_id=actor.user_id, action=action, target=target, outcome="refused", now=services.now()
        )
        raise


def _target(services: Services, value: object) -> Any:
    if isinstance(value, AdHocTarget):
        return adhoc_target(services.pool, value.provider_or_connection, value.ident)
    pipeline = services.catalog.pipelines.get(str(value))
    if pipeline is None:
        raise InvalidRequest(f"There is no pipeline *{escape(str(value))}*: `{services.command} list` shows them.")
    return pipeline


async def _last(services: Services, name: str, count: int) -> tuple[str, list[Any]]:
    pipeline = services.catalog.pipelines.get(name)
    if pipeline is None:
        raise InvalidRequest(f"There is no pipeline *{escape(name)}*.")
    client = services.pool.client(pipeline.connection)
    statuses: list[RunStatus] = []
    if client.can(Capability.LIST_RUNS):
        try:
            async with services.pool.slot(pipeline.connection):
                statuses = await client.list_runs(pipeline.job, since=services.now() - timedelta(days=30), limit=count)
        except ProviderError as exc:
            log.warning("last runs of %s from the provider failed: %s", name, exc)
    if not statuses:  # the provider cannot list runs (InVision) or did not answer: the bot's own history
        statuses = [s for r in await services.store.recent_runs(name, count) if (s := r.as_status()) is not None]
    statuses = statuses[:count]
    return last_runs(name, statuses, trend(statuses))


async def _stats(services: Services, pipeline: object, period: object) -> tuple[str, list[Any]]:
    span = period if isinstance(period, timedelta) else timedelta(days=7)
    now = services.now()
    name = str(pipeline) if pipeline else None
    if name is not None and name not in services.catalog.pipelines:
        raise InvalidRequest(f"There is no pipeline *{escape(name)}*.")
    runs = await services.store.runs_between(now - span, now, name)
    summary = summarize(runs)
    counts = dict(summary.counts)
    if name is not None:
        found = services.catalog.pipelines[name]
        client = services.pool.client(found.connection)
        if client.can(Capability.STATS):  # the provider's own statistics count runs started anywhere
            try:
                provider_stats = await client.stats(found.job, start=now - span, end=now)
                counts = {state.value: n for state, n in provider_stats.counts.items()}
            except ProviderError as exc:
                log.warning("provider statistics for %s failed: %s", name, exc)
    return stats(
        name or "all pipelines",
        _period_text(span),
        counts,
        summary.failure_rate,
        summary.p50,
        summary.p95,
        [summary.slowest] if summary.slowest else [],
    )


def _period_text(span: timedelta) -> str:
    if span % timedelta(days=1) == timedelta(0):
        return f"last {span.days} day{'s' if span.days != 1 else ''}"
    hours = int(span.total_seconds() // 3600)
    return f"last {hours} hour{'s' if hours != 1 else ''}"


def _schedules(services: Services) -> tuple[str, list[Any]]:
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
            f"• *{escape(item.name)}* ({item.kind}) · `{escape(item.schedule.cron)}` {escape(item.schedule.timezone)}"
            f" · next {when} · missed slots: {item.schedule.missed.replace('_', ' ')}"
        )
    return notice("*Scheduled runs*\n" + "\n".join(lines), formatted=True)
