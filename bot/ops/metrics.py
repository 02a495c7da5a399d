"""Prometheus metrics: counters and histograms the components feed, gauges set or read at scrape time.

Every series the bot exports is declared once in ``SPECS`` (name, type, help, labels); components name them by
the constants below. Each ``Metrics`` has a registry of its own (prometheus_client's, not the process-wide one:
a test process builds several bots), rendered by ``prometheus_client.generate_latest`` in the text format
(https://prometheus.io/docs/instrumenting/exposition_formats/), so a counter past a million prints whole.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = [
    "ALERTS",
    "ALERT_MESSAGES",
    "EXTERNAL_RUNS",
    "OUTBOX_PENDING",
    "POLLS",
    "POLL_DELAY",
    "POLL_LAG",
    "PROVIDER_ERRORS",
    "RUNS",
    "SLACK_ACK",
    "SLACK_CALLS",
    "SLACK_RATE_LIMITED",
    "SLACK_REQUESTS_REFUSED",
    "SPECS",
    "Metrics",
    "Spec",
]

Labels = tuple[tuple[str, str], ...]
GaugeSource = Callable[[], Awaitable[Mapping[Labels, float]]]

# no `_created` series beside each counter and histogram: the bot's exposition stays what it was, one series each
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus_client

RUNS = "pipeline_bot_runs"
POLLS = "pipeline_bot_polls_total"
POLL_LAG = "pipeline_bot_poll_lag_seconds"
POLL_DELAY = "pipeline_bot_poll_delay_seconds"
PROVIDER_ERRORS = "pipeline_bot_provider_errors_total"
SLACK_CALLS = "pipeline_bot_slack_calls_total"
SLACK_RATE_LIMITED = "pipeline_bot_slack_rate_limited_total"
SLACK_REQUESTS_REFUSED = "pipeline_bot_slack_requests_refused_total"
SLACK_ACK = "pipeline_bot_slack_ack_seconds"
OUTBOX_PENDING = "pipeline_bot_outbox_pending"
ALERTS = "pipeline_bot_alerts_total"
ALERT_MESSAGES = "pipeline_bot_alert_messages_total"
EXTERNAL_RUNS = "pipeline_bot_external_runs_total"


@dataclass(frozen=True)
class Spec:
    kind: Literal["counter", "gauge", "histogram"]
    help: str
    labels: tuple[str, ...] = ()
    #: a gauge whose series are read at each scrape (``Metrics.source``), not set
    scraped: bool = False
    buckets: tuple[float, ...] = ()


SPECS: dict[str, Spec] = {
    RUNS: Spec("gauge", "Runs known to the bot, by state (in flight and ended).", ("final", "state"), scraped=True),
    POLLS: Spec("counter", "Status calls made to providers, by connection.", ("connection",)),
    POLL_LAG: Spec("gauge", "How late polls of the last tick were (max and p50).", ("quantile",)),
    POLL_DELAY: Spec(
        "histogram",
        "How late each poll was, from the moment its run was due to the tick that took it.",
        buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    ),
    PROVIDER_ERRORS: Spec("counter", "Provider calls that failed, by connection and kind.", ("connection", "kind")),
    SLACK_CALLS: Spec("counter", "Slack Web API calls made by delivery, by method and outcome.", ("method", "outcome")),
    SLACK_RATE_LIMITED: Spec("counter", "Slack answers that asked us to wait (429)."),
    OUTBOX_PENDING: Spec("gauge", "Slack messages and card updates waiting to be sent.", scraped=True),
    ALERTS: Spec("counter", "Failure alerts recorded, by outcome (new, repeat, muted).", ("outcome",)),
    ALERT_MESSAGES: Spec("counter", "Alert messages posted, by size (single, grouped).", ("size",)),
    EXTERNAL_RUNS: Spec("counter", "Runs found by passive watch that nobody started from Slack.", ("pipeline",)),
    SLACK_REQUESTS_REFUSED: Spec(
        "counter",
        "Requests to /slack/events refused, by reason: repeat (a replay or retry already taken), or the HTTP status.",
        ("reason",),
    ),
    SLACK_ACK: Spec(
        "histogram",
        "From a Slack request's arrival to its ack (HTTP: the answer written; Socket Mode: the ack sent), for the "
        "requests Bolt acked. Slack waits 3 s.",
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
    ),
}


class _Scraped(Collector):
    """A gauge whose series are those of its last read (none when the read failed)."""

    def __init__(self, name: str, spec: Spec) -> None:
        self.name = name
        self.spec = spec
        self.read: GaugeSource | None = None
        self.values: dict[Labels, float] = {}

    async def refresh(self) -> None:
        if self.read is None:
            return
        try:
            self.values = dict(await self.read())
        except Exception:  # a scrape must not fail because the database is away: /readyz says that
            self.values = {}

    def collect(self) -> Iterable[Metric]:
        family = Metric(self.name, self.spec.help, "gauge")
        for labels, value in sorted(self.values.items()):
            family.add_sample(self.name, dict(labels), value)
        return [family]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._histograms: dict[str, Histogram] = {}
        self._scraped: dict[str, _Scraped] = {}
        for name, spec in SPECS.items():
            if spec.kind == "counter":
                self._counters[name] = Counter(name, spec.help, spec.labels, registry=self.registry)
            elif spec.kind == "histogram":
                self._histograms[name] = Histogram(
                    name, spec.help, spec.labels, registry=self.registry, buckets=spec.buckets
                )
            elif spec.scraped:
                self._scraped[name] = scraped = _Scraped(name, spec)
                self.registry.register(scraped)
            else:
                self._gauges[name] = Gauge(name, spec.help, spec.labels, registry=self.registry)

    def inc(self, name: str, labels: Mapping[str, str] | None = None, by: float = 1.0) -> None:
        counter = self._counters[name]
        (counter.labels(**labels) if labels else counter).inc(by)

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        gauge = self._gauges[name]
        (gauge.labels(**labels) if labels else gauge).set(value)

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        histogram = self._histograms[name]
        (histogram.labels(**labels) if labels else histogram).observe(value)

    def source(self, name: str, read: GaugeSource) -> None:
        """The series of gauge ``name`` are read when scraped (e.g. counted in the database)."""
        self._scraped[name].read = read

    def value(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """A series' value now (a histogram's: ``name`` with ``_count`` or ``_sum``); 0 for one not there."""
        found = self.registry.get_sample_value(name, dict(labels or {}))
        return 0.0 if found is None else found

    async def render(self) -> str:
        for scraped in self._scraped.values():
            await scraped.refresh()
        return generate_latest(self.registry).decode("utf-8")
