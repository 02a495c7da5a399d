"""The daily digest of one channel: what ran that day, what failed and why, what was slow. Pure.

``DigestData`` is everything the message shows, gathered by ``bot.tracking.digest``. The message stays
within Slack's 50 blocks and 3000 characters a section for any number of runs: long lists end with
"…and N more", provider messages are escaped and cut.
"""

from __future__ import annotations

from datetime import date

from bot.service.events import DigestData, DigestRun, PipelineDay
from bot.service.views import StoredState
from bot.slack.blocks.card import Block, context, section
from bot.slack.blocks.home import line_sections, said
from bot.slack.text import escape, human_duration, named, plain_text, slack_date, truncate

# DigestData, DigestRun, PipelineDay: the values it renders, defined by the domain (bot.service.events)
__all__ = ["MESSAGE_BLOCKS", "DigestData", "DigestRun", "PipelineDay", "digest_message", "percent"]

MESSAGE_BLOCKS = 50
PIPELINE_BLOCKS = 20
FAILURE_BLOCKS = 15
MESSAGE_LIMIT = 300
NAME_LIMIT = 80


def percent(rate: float) -> str:
    """``17%``; a rate that is not zero never shows as ``0%``."""
    if 0 < rate < 0.005:
        return "<1%"
    return f"{rate:.0%}"


def digest_message(channel: str, day: date, data: DigestData) -> tuple[str, list[Block]]:
    """The digest of ``channel`` for ``day``: fallback text and at most 50 blocks."""
    when = f"{day.isoformat()} ({day:%A})"
    text = f"Daily digest for {day.isoformat()}: {_runs(data.runs)}, {data.failed} failed"
    if data.failed:
        text += f" (failure rate {percent(data.failure_rate)})"
    blocks: list[Block] = [
        {"type": "header", "text": plain_text(f"📊 Daily digest · {when}", 150)},
        section(_summary(data)),
        *line_sections(
            f"*Per pipeline* ({len(data.pipelines)}, runs oldest → newest)",
            [_pipeline_line(p) for p in data.pipelines],
            max_blocks=PIPELINE_BLOCKS,
        ),
    ]
    if data.failures:
        blocks += line_sections(
            f"*Failures* ({len(data.failures)})", [_failure_line(r) for r in data.failures], max_blocks=FAILURE_BLOCKS
        )
    if data.slowest:
        blocks.append(section("*Slowest*\n" + "\n".join(_slow_line(r) for r in data.slowest)))
    zone = escape(data.timezone)
    blocks.append(context(f"Runs started in Slack or found by the watcher on {day.isoformat()}, 00:00–24:00 {zone}"))
    assert len(blocks) <= MESSAGE_BLOCKS
    return text, blocks


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


def _summary(data: DigestData) -> str:
    order = (
        StoredState.SUCCEEDED,
        StoredState.FAILED,
        StoredState.CANCELED,
        StoredState.RUNNING,
        StoredState.QUEUED,
        StoredState.UNKNOWN,
    )
    known = [f"{data.counts[s]} {s}" for s in order if data.counts.get(s)]
    other = [f"{n} {escape(s)}" for s, n in sorted(data.counts.items()) if s not in order and n]
    across = f" of {len(data.pipelines)} pipeline{'s' if len(data.pipelines) != 1 else ''}"
    lines = [f"*{_runs(data.runs)}*{across}: " + (" · ".join(known + other) or "none")]
    finished = data.counts.get(StoredState.SUCCEEDED, 0) + data.failed
    rate = f"Failure rate *{percent(data.failure_rate)}* ({data.failed} of {finished} finished)" if finished else ""
    typical = []
    if data.p50 is not None:
        typical.append(f"median run {human_duration(data.p50)}")
    if data.p95 is not None:
        typical.append(f"95th percentile {human_duration(data.p95)}")
    second = " · ".join(x for x in (rate, *typical) if x)
    if second:
        lines.append(second)
    return "\n".join(lines)


def _name(text: str) -> str:
    """The name in bold (as code if Slack would read formatting in it), cut to ``NAME_LIMIT``."""
    return named(truncate(text[: NAME_LIMIT + 1], NAME_LIMIT, "…"))


def _pipeline_line(day: PipelineDay) -> str:
    figures = _runs(day.runs)
    if day.failed:
        figures += f" · ❌ {day.failed} failed"
    return f"{_name(day.name)} · {figures} · {day.trend or '—'}"


def _failure_line(run: DigestRun) -> str:
    line = f"❌ {_name(run.name)} #{run.run_id} · {slack_date(run.at, '{time}')}"
    if run.duration is not None:
        line += f" after {human_duration(run.duration)}"
    if run.muted:
        line += " · 🔕 muted"
    return line + said(run.message, MESSAGE_LIMIT)


def _slow_line(run: DigestRun) -> str:
    took = human_duration(run.duration) if run.duration is not None else "?"
    return f"🐢 {_name(run.name)} #{run.run_id} · {took} · started {slack_date(run.at, '{time}')}"
