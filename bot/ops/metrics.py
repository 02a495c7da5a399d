"""Prometheus metrics: counters the components bump, gauges read at scrape time, one text exposition.

Small on purpose: counters and gauges with labels are all the bot exports, and the text format is a
few lines (https://prometheus.io/docs/instrumenting/exposition_formats/).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping

__all__ = ["Metrics"]

Labels = tuple[tuple[str, str], ...]
GaugeSource = Callable[[], Awaitable[Mapping[Labels, float]]]

HELP: dict[str, tuple[str, str]] = {
    "pipeline_bot_runs": ("gauge", "Runs known to the bot, by state (in flight and ended)."),
    "pipeline_bot_polls_total": ("counter", "Status calls made to providers, by connection."),
    "pipeline_bot_poll_lag_seconds": ("gauge", "How late polls of the last tick were (max and p50)."),
    "pipeline_bot_provider_errors_total": ("counter", "Provider calls that failed, by connection and kind."),
    "pipeline_bot_slack_calls_total": ("counter", "Slack Web API calls made by delivery, by method and outcome."),
    "pipeline_bot_slack_rate_limited_total": ("counter", "Slack answers that asked us to wait (429)."),
    "pipeline_bot_outbox_pending": ("gauge", "Slack messages and card updates waiting to be sent."),
    "pipeline_bot_alerts_total": ("counter", "Failure alerts recorded, by outcome (new, repeat, muted)."),
    "pipeline_bot_alert_messages_total": ("counter", "Alert messages posted, by size (single, grouped)."),
    "pipeline_bot_external_runs_total": ("counter", "Runs found by passive watch that nobody started from Slack."),
    "pipeline_bot_slack_requests_refused_total": (
        "counter",
        "Requests to /slack/events refused, by reason: repeat (a replay or retry already taken), or the HTTP status.",
    ),
}


def _labels(labels: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = {}
        self._gauges: dict[str, dict[Labels, float]] = {}
        self._sources: dict[str, GaugeSource] = {}
        self._lock = threading.Lock()

    def inc(self, name: str, labels: Mapping[str, str] | None = None, by: float = 1.0) -> None:
        key = _labels(labels)
        with self._lock:
            series = self._counters.setdefault(name, {})
            series[key] = series.get(key, 0.0) + by

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        with self._lock:
            self._gauges.setdefault(name, {})[_labels(labels)] = value

    def source(self, name: str, read: GaugeSource) -> None:
        """A gauge read when scraped (e.g. counted in the database)."""
        self._sources[name] = read

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        key = _labels(labels)
        return self._counters.get(name, {}).get(key, self._gauges.get(name, {}).get(key, 0.0))

    async def render(self) -> str:
        gauges = {name: dict(series) for name, series in self._gauges.items()}
        for name, read in self._sources.items():
            try:
                gauges[name] = dict(await read())
            except Exception:  # a scrape must not fail because the database is away: /readyz says that
                gauges.setdefault(name, {})
        lines: list[str] = []
        with self._lock:
            counters = {name: dict(series) for name, series in self._counters.items()}
        for name in sorted(set(HELP) | set(counters) | set(gauges)):
            kind, text = HELP.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in sorted((counters.get(name) or gauges.get(name) or {}).items()):
                shown = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                lines.append(f"{name}{{{shown}}} {value:g}" if shown else f"{name} {value:g}")
        return "\n".join(lines) + "\n"
