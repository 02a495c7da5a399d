"""Converters, one per argument kind: a token becomes its value (a pipeline name, an ``AdHocTarget``, a run
number, a period, a channel…) or a ``Problem`` saying what was wrong and what would work."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta

from bot.catalog.model import parse_duration
from bot.slack.commands.table import (
    BY_WORD,
    COMMANDS,
    MAX_COUNT,
    MAX_MUTE,
    MAX_PERIOD,
    AdHocTarget,
    ArgKind,
    spec_named,
)
from bot.slack.commands.words import Context, Problem, close_to, either, matching, shown
from bot.slack.text import code

__all__ = ["CONVERTERS", "SHAPED", "pipeline_or_workflow"]

_LISTED = 5  # pipeline names listed when none is close to what was typed
MAX_AD_HOC_ID = 200  # the runs table's provider ids hold 200 characters; no provider's job id comes near
# every provider's job ids (Rivery's hex ids, InVision's GUIDs, DataKitchen's kitchen/recipe/variation names,
# Tailer's account/environment/type/config/job, whose job ids hold templates like ``{{FD_DATE}}``) are spelt in these
_AD_HOC_ID = re.compile(r"[A-Za-z0-9_.:|/{}-]+")


# -- converters: one per argument kind, token → value or Problem ------------------------------------


def _target(token: str, ctx: Context, *, workflows: bool) -> object:
    names = ctx.pipelines + ctx.workflows if workflows else ctx.pipelines
    found = matching(token, names)
    if found is not None:
        return found
    noun = "pipeline or workflow" if workflows else "pipeline"
    if ":" in token and "=" not in token.partition(":")[0]:
        return _ad_hoc(token, ctx)
    if "=" in token:
        example = code(f"{ctx.command} run <pipeline> key=value")
        return Problem(f"Name the {noun} first, then its parameters: {example}.")
    close = close_to(token, names)
    if close:
        return Problem(f"Unknown {noun} {shown(token)}. Did you mean {either(close)}?", replacement=close[0])
    if not names:
        return Problem(f"Unknown {noun} {shown(token)}: the catalog has no pipelines yet (see pipelines.yml).")
    listed = ", ".join(code(n) for n in sorted(names, key=str.lower)[:_LISTED])
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return Problem(f"Unknown {noun} {shown(token)}. Known: {listed}{more}; see {code(ctx.command + ' list')}.")


def _ad_hoc(token: str, ctx: Context) -> object:
    prefix, _, ident = token.partition(":")
    owner = matching(prefix, ctx.providers) or matching(prefix, ctx.connections)
    if owner is None:
        known = ctx.providers + ctx.connections
        close = close_to(prefix, known, n=1)
        hint = f" Did you mean {shown(close[0] + ':' + ident)}?" if close else ""
        return Problem(
            f"{shown(prefix)} is not a provider or connection.{hint} A job outside the catalog is written "
            f"provider:id, like {code('rivery:<river id>')} (providers: {', '.join(code(p) for p in ctx.providers)}).",
            replacement=f"{close[0]}:{ident}" if close else None,
        )
    if not ident.strip():
        return Problem(f"{shown(token)} has no id after the colon: write it like {code(owner + ':12345')}.")
    if len(ident) > MAX_AD_HOC_ID:
        return Problem(f"The id after {code(owner + ':')} is {len(ident):,} characters long; at most {MAX_AD_HOC_ID}.")
    if not _AD_HOC_ID.fullmatch(ident):
        return Problem(
            f"{shown(token)} is not a job id: ids are letters, digits and {code('- _ . : | / { }')}, "
            f"like {code(owner + ':12345')}."
        )
    return AdHocTarget(owner, ident)


def _pipeline(token: str, ctx: Context) -> object:
    """A pipeline of the catalog: a job outside it (``rivery:123``) is taken by ``run`` alone."""
    found = _target(token, ctx, workflows=False)
    if isinstance(found, AdHocTarget):
        return Problem(
            f"{shown(token)} is a job outside the catalog: only {code(ctx.command + ' run')} takes one. Name a "
            f"pipeline of the catalog here ({code(ctx.command + ' list')} shows them)."
        )
    return found


def pipeline_or_workflow(token: str, ctx: Context) -> object:
    return _target(token, ctx, workflows=True)


_RUN = re.compile(r"#?([0-9]{1,18})")


def _run(token: str, ctx: Context) -> object:
    match = _RUN.fullmatch(token.strip())
    if match and int(match.group(1)) > 0:
        return int(match.group(1))
    if match:
        return Problem(f"{shown(token)} is not a run: run numbers start at 1, like 42 or #42.", shaped=True)
    pipeline = matching(token, ctx.pipelines)
    if pipeline is not None:
        line = ctx.line("last", [pipeline])
        return Problem(f"{shown(token)} is a pipeline, not a run: {code(line)} shows its runs.", line=line)
    return Problem(
        f"{shown(token)} is not a run: use a run number like 42 or #42 ({code(ctx.command + ' status')} lists them)."
    )


_COUNT = re.compile(r"[0-9]{1,6}")


def _count(token: str, ctx: Context) -> object:
    shaped = _COUNT.fullmatch(token.strip()) is not None
    if shaped and 1 <= int(token) <= MAX_COUNT:
        return int(token)
    return Problem(
        f"{shown(token)} is not a number of runs: give a whole number from 1 to {MAX_COUNT}, like 10.", shaped=shaped
    )


_WEEKS = re.compile(r"([0-9]{1,3})\s*w")
_SPAN_SHAPE = re.compile(r"(?:[0-9]+[wdhms])+")


def _span(token: str, limit: timedelta, noun: str, examples: str) -> object:
    text = token.strip().lower()
    shaped = _SPAN_SHAPE.fullmatch(text) is not None
    weeks = _WEEKS.fullmatch(text)
    if weeks:
        text = f"{int(weeks.group(1)) * 7}d"
    try:
        value = parse_duration(text) if len(text) <= 20 else None
    except (ValueError, OverflowError):
        value = None
    if value is None:
        return Problem(f"{shown(token)} is not a {noun}: write it like {examples}.", shaped=shaped)
    if value > limit:
        return Problem(f"{shown(token)} is too long a {noun}: at most {limit.days}d.", shaped=True)
    return value


def _period(token: str, ctx: Context) -> object:
    return _span(token, MAX_PERIOD, "period", "24h, 7d, 2w or 30d")


def _duration(token: str, ctx: Context) -> object:
    return _span(token, MAX_MUTE, "duration", "30m, 4h, 1h30m or 2d")


_MENTION = re.compile(r"<([#@!])([^|>]*)(?:\|[^>]*)?>")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{8,}")
_CHANNEL_NAME = re.compile(r"#?([a-z0-9][a-z0-9_-]{0,79})")


def _channel(token: str, ctx: Context) -> object:
    mention = _MENTION.fullmatch(token)
    if mention and mention.group(1) == "#" and _CHANNEL_ID.fullmatch(mention.group(2)):
        return mention.group(2)
    if mention and mention.group(1) == "@":
        return Problem(f"{shown(token)} is a person, not a channel: name a channel, like #data-alerts.")
    if _CHANNEL_ID.fullmatch(token):
        return token
    name = _CHANNEL_NAME.fullmatch(token.lower())
    if name and token.startswith("#"):
        return token.lower()
    if name:
        return Problem(f"Channels start with #: did you mean {code('#' + name.group(1))}?", "#" + name.group(1))
    return Problem(f"{shown(token)} is not a channel: type # and pick one, like #data-alerts, or give its id.")


def _filter(token: str, ctx: Context) -> object:
    """A provider key comes back in its canonical spelling; anything else is a tag, as typed."""
    return matching(token.lower(), ctx.providers) or token


def _command(token: str, ctx: Context) -> object:
    spec = spec_named(token)
    if spec is not None:
        return spec.name
    close = close_to(token.lower(), list(BY_WORD), n=1)
    if close:
        name = BY_WORD[close[0]].name
        return Problem(f"No command {shown(token)}. Did you mean {code(name)}?", replacement=name)
    names = ", ".join(code(spec.name) for spec in COMMANDS)
    return Problem(f"No command {shown(token)}. The commands are {names}.")


def _subject(token: str, ctx: Context) -> object:
    """Kept as typed: the service knows the catalog's tags and says which pipeline, tag or provider is close."""
    if token.startswith(("#", "<")):
        example = code(ctx.command + " subscribe leads-ods #data-alerts")
        return Problem(f"Name a pipeline, a tag or a provider first, then the channel: {example}.")
    return token


_LEVELS = {"failures": "failures", "failure": "failures", "failed": "failures", "fail": "failures", "all": "all"}


def _level(token: str, ctx: Context) -> object:
    level = _LEVELS.get(token.lower())
    if level is None:
        return Problem(f"{shown(token)} is not a level: write {code('failures')} (the default) or {code('all')}.")
    return level


def _me(token: str, ctx: Context) -> object:
    if token.lower() == "me":
        return "me"
    return Problem(f"Only {code(ctx.command + ' notify me')} exists: it tells the person who types it.")


_SWITCH = {"on": "on", "yes": "on", "off": "off", "no": "off"}


def _switch(token: str, ctx: Context) -> object:
    return _SWITCH.get(token.lower()) or Problem(f"{shown(token)}: write {code('on')} or {code('off')}.")


def _mine(token: str, ctx: Context) -> object:
    if token.lower() in ("mine", "me"):
        return "mine"
    return Problem(f"{shown(token)}: {code(ctx.command + ' subscriptions')} lists them all, {code('mine')} yours.")


CONVERTERS: Mapping[ArgKind, Callable[[str, Context], object]] = {
    "pipeline": _pipeline,
    "pipeline_or_workflow": pipeline_or_workflow,
    "run": _run,
    "count": _count,
    "period": _period,
    "duration": _duration,
    "channel": _channel,
    "filter": _filter,
    "command": _command,
    "subject": _subject,
    "level": _level,
    "me": _me,
    "switch": _switch,
    "mine": _mine,
}
# kinds recognisable by their shape alone: an optional argument before one of these is skipped when
# the token has that shape (``stats 24h`` is a period, not a pipeline named 24h)
SHAPED: frozenset[ArgKind] = frozenset({"run", "count", "period", "duration", "channel", "level"})
