"""The /metrics text: every declared series, counters printed whole, histograms, gauges read at scrape time, and
one registry per ``Metrics`` (a test process runs several bots)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.ops.metrics import ALERTS, OUTBOX_PENDING, POLL_DELAY, POLLS, RUNS, SLACK_ACK, SPECS, Metrics


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` → value, as Prometheus's own parser reads the text."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


async def test_a_counter_past_a_million_is_printed_exactly() -> None:
    metrics = Metrics()
    metrics.inc(POLLS, {"connection": "rivery"}, by=1_234_567)
    metrics.inc(POLLS, {"connection": "rivery"})
    metrics.inc(POLLS, {"connection": "tailer"}, by=123_456_789_012)
    text = await metrics.render()
    [line] = [line for line in text.splitlines() if line.startswith('pipeline_bot_polls_total{connection="rivery"} ')]
    assert float(line.rsplit(" ", 1)[1]) == 1_234_568  # every digit (as {value:g}, 1.23457e+06: 1,234,570)
    found = samples(text)
    assert found['pipeline_bot_polls_total{connection="rivery"}'] == 1_234_568
    assert found['pipeline_bot_polls_total{connection="tailer"}'] == 123_456_789_012


async def test_every_declared_series_is_typed_and_nothing_else_is_printed() -> None:
    text = await Metrics().render()
    types = {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert types == {name: spec.kind for name, spec in SPECS.items()}
    assert "_created" not in text


async def test_histograms_count_what_they_observe() -> None:
    metrics = Metrics()
    for seconds in (0.02, 0.3, 4.0):
        metrics.observe(SLACK_ACK, seconds)
    metrics.observe(POLL_DELAY, 0.2)
    found = samples(await metrics.render())
    assert found['pipeline_bot_slack_ack_seconds_bucket{le="0.025"}'] == 1
    assert found['pipeline_bot_slack_ack_seconds_bucket{le="3.0"}'] == 2  # Slack's deadline
    assert found['pipeline_bot_slack_ack_seconds_bucket{le="+Inf"}'] == 3
    assert found["pipeline_bot_slack_ack_seconds_count"] == 3
    assert abs(found["pipeline_bot_slack_ack_seconds_sum"] - 4.32) < 1e-9
    assert found["pipeline_bot_poll_delay_seconds_count"] == 1
    assert metrics.value("pipeline_bot_slack_ack_seconds_count") == 3


async def test_scraped_gauges_show_the_last_read_and_none_when_it_fails() -> None:
    metrics = Metrics()
    answers: list[dict[tuple[tuple[str, str], ...], float] | None] = [
        {(("final", "false"), ("state", "running")): 3.0, (("final", "true"), ("state", "failed")): 1.0},
        None,
    ]

    async def runs() -> dict[tuple[tuple[str, str], ...], float]:
        answer = answers.pop(0)
        if answer is None:
            raise ConnectionError("the database went away")
        return answer

    async def outbox() -> dict[tuple[tuple[str, str], ...], float]:
        return {(): 2.0}

    metrics.source(RUNS, runs)
    metrics.source(OUTBOX_PENDING, outbox)
    found = samples(await metrics.render())
    assert found['pipeline_bot_runs{final="false",state="running"}'] == 3
    assert found['pipeline_bot_runs{final="true",state="failed"}'] == 1
    assert found["pipeline_bot_outbox_pending"] == 2
    text = await metrics.render()  # the database is away: no runs series, the scrape still answers
    assert "# TYPE pipeline_bot_runs gauge" in text
    assert not [key for key in samples(text) if key.startswith("pipeline_bot_runs")]
    assert samples(text)["pipeline_bot_outbox_pending"] == 2


async def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.inc(POLLS, {"connection": 'a"b\\c\nd'})
    assert 'pipeline_bot_polls_total{connection="a\\"b\\\\c\\nd"} 1.0' in await metrics.render()


def test_each_metrics_has_a_registry_of_its_own() -> None:
    first, second = Metrics(), Metrics()
    first.inc(ALERTS, {"outcome": "new"})
    assert first.value(ALERTS, {"outcome": "new"}) == 1
    assert second.value(ALERTS, {"outcome": "new"}) == 0
