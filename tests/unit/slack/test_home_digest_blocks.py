"""The App Home and daily digest builders: within Slack's limits for any input, escaped, nothing dropped silently."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.emulators.slack.blockkit import validate_view
from bot.service.views import AlertView, alert_view
from bot.slack.blocks.digest import DigestData, DigestRun, PipelineDay, digest_message, percent
from bot.slack.blocks.home import home_view, line_sections
from bot.store.alerting import Alert
from bot.store.records import StoredState
from tests.unit.slack.test_blocks import EVIL, EVIL_TEXT, HUGE, T0, check_limits, check_message, failed_run, make_run

NOW = T0 + timedelta(hours=2)
DAY = date(2024, 1, 31)
MORE = re.compile(r"…and (\d+) more")


def check_home(view: dict[str, Any]) -> None:
    assert view["type"] == "home"
    View(**view).validate_json()
    for block in view["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
    assert validate_view(view) == []
    check_limits(view["blocks"], max_blocks=100)


def texts(blocks: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")


def dumped(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False)


def no_raw_evil(payload: Any) -> None:
    for raw in EVIL:
        assert raw not in dumped(payload), raw


def alert(**changes: Any) -> AlertView:
    values: dict[str, Any] = {
        "id": 1, "kind": "failure", "pipeline": "orders", "connection": None, "channel": "C0ALERTS", "state": "open",
        "count": 1, "runs": (12,), "last_run_id": 12, "message": "Table missing", "muted": False, "group_key": None,
        "first_at": T0, "last_at": T0, "recovered_at": None, "recovered_by_run": None,
    }
    values.update(changes)
    return alert_view(Alert(**values))


def home(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"in_flight": [], "alerts": [], "mutes": {}, "failures": [], "now": NOW,
                              "command": "/pipeline"}
    values.update(changes)
    return home_view(**values)


def section_of(view: dict[str, Any], title: str) -> str:
    """The text of the list that starts with ``title``, all its sections (and contexts) together."""
    found: list[str] = []
    for block in view["blocks"]:
        if block["type"] == "divider":
            if found:
                break
            continue
        if block["type"] == "section" and (found or block["text"]["text"].startswith(title)):
            found.append(block["text"]["text"])
        elif block["type"] == "context" and found:  # "…and N more" under a list of rows with buttons
            found += [e["text"] for e in block["elements"]]
    assert found, title
    return "\n".join(found)


# -- App Home --------------------------------------------------------------------------------------------


def test_an_empty_home_is_valid_and_says_so() -> None:
    view = home()
    check_home(view)
    shown = texts(view["blocks"])
    for words in ("_Nothing running._", "_No open alerts._", "_Nothing muted._", "_No failures._"):
        assert words in shown


def test_home_shows_in_flight_alerts_mutes_and_failures_with_their_details() -> None:
    running = make_run(id=7, pipeline="leads-ods", acknowledged_by="U0CAROL")
    failures = [
        failed_run(id=12, pipeline="orders", message="Table missing"),
        failed_run(id=11, pipeline="budget", message="quota", acknowledged_by="U0BOB"),
        failed_run(id=10, pipeline="leads-ods", message="bad column"),
    ]
    view = home(
        in_flight=[running],
        alerts=[alert(count=3, muted=True), alert(id=2, kind="unreachable", pipeline=None, connection="tailer-main",
                                                  runs=(), last_run_id=None, message="503")],
        mutes={"orders": (T0 + timedelta(hours=4), "U0ALICE"), "inventory": (T0 + timedelta(hours=1), None)},
        failures=failures,
        muted_runs={12},
        acknowledged={12: "U0BOB"},
    )
    check_home(view)
    flying = section_of(view, "*In flight* (1)")
    assert "*leads-ods* #7 · running" in flying and "👀 <@U0CAROL>" in flying

    alerts = section_of(view, "*Open alerts* (2)")
    assert "❌ *orders* failed 3 times since <!date^" in alerts
    assert "· run #12 · 🔕 muted · 👀 <@U0BOB> is on it" in alerts
    assert "> Table missing" in alerts
    assert "🔌 *Cannot reach* *tailer-main* since <!date^" in alerts  # the name bold on its own (named)

    mutes = section_of(view, "*Muted* (2)")
    assert re.search(r"🔕 \*orders\* until <!date\^\d+\^[^>]+> by <@U0ALICE>", mutes)
    assert "🔕 *inventory* until <!date^" in mutes and "inventory* until" in mutes.split("\n")[1]  # soonest first

    failed = section_of(view, "*Failures in the last 24 h* (3, 1 muted)")
    lines = failed.split("\n")
    orders = next(line for line in lines if "*orders* #12" in line)
    assert "🔕 muted" in orders  # a muted failure is listed, marked
    budget = next(line for line in lines if "*budget* #11" in line)
    assert "🔕" not in budget and "👀 <@U0BOB>" in budget
    leads = next(line for line in lines if "*leads-ods* #10" in line)
    assert "🔕" not in leads and "after 3m 05s" in leads
    assert "> bad column" in failed
    # newest first, as given
    assert failed.index("#12") < failed.index("#11") < failed.index("#10")


def test_a_failure_of_a_pipeline_muted_now_is_marked_muted_even_without_its_alert() -> None:
    view = home(failures=[failed_run(id=5, pipeline="orders")], mutes={"orders": (NOW + timedelta(hours=1), None)})
    assert "*orders* #5" in section_of(view, "*Failures in the last 24 h* (1, 1 muted)")
    assert "🔕 muted" in section_of(view, "*Failures in the last 24 h*")


def test_home_escapes_everything_untrusted() -> None:
    run = make_run(pipeline=EVIL_TEXT, acknowledged_by="<!channel>")
    view = home(
        in_flight=[run],
        alerts=[alert(pipeline=EVIL_TEXT, message=EVIL_TEXT), alert(kind="unreachable", connection=EVIL_TEXT)],
        mutes={EVIL_TEXT: (NOW, "<!here>")},
        failures=[failed_run(pipeline=EVIL_TEXT, message=EVIL_TEXT, acknowledged_by="<@U123>")],
        acknowledged={12: "<!channel>"},
        command="/pipe<!channel>",
    )
    check_home(view)
    no_raw_evil(view)
    assert "<!here>" not in dumped(view)
    assert "&lt;!channel&gt;" in dumped(view) and "R&amp;D" in dumped(view)


def test_home_stays_within_100_blocks_and_counts_what_does_not_fit() -> None:
    n = 3000
    in_flight = [make_run(id=i, pipeline=f"pipeline-{i}-" + "x" * 60) for i in range(n)]
    alerts = [alert(id=i, pipeline=f"p{i}-" + "q" * 500, message=HUGE, count=i + 2) for i in range(n)]
    mutes = {f"muted-{i}" + "y" * 60: (NOW + timedelta(minutes=i), "U0ALICE") for i in range(n)}
    failures = [failed_run(id=i, pipeline=EVIL_TEXT + str(i), message=HUGE) for i in range(n)]
    view = home(in_flight=in_flight, alerts=alerts, mutes=mutes, failures=failures, muted_runs=set(range(0, n, 2)))
    check_home(view)
    no_raw_evil(view)
    for title, marker in (("*In flight*", "· running"), ("*Open alerts*", "❌ *"), ("*Muted*", "🔕 *muted-"),
                          ("*Failures in the last 24 h*", "❌ *")):
        listed = section_of(view, title)
        [more] = MORE.findall(listed)
        shown = sum(marker in line for line in listed.split("\n")[1:])
        assert shown > 0 and shown + int(more) == n, title


def test_line_sections_pack_lines_and_count_the_rest() -> None:
    lines = [f"line {i} " + "z" * 90 for i in range(500)]
    blocks = line_sections("*Title*", lines, max_blocks=3)
    assert len(blocks) == 3
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)
    text = texts(blocks)
    [more] = MORE.findall(text)
    shown = text.count("line ")
    assert shown + int(more) == 500
    assert text.index("line 0 ") < text.index("line 1 ")
    assert line_sections("*Title*", [], max_blocks=3, empty="_none_") == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Title*\n_none_"}}]
    assert "…and" not in texts(line_sections("*T*", lines[:5], max_blocks=1))


# -- daily digest ----------------------------------------------------------------------------------------


def digest(pipelines: Sequence[PipelineDay] = (), failures: Sequence[DigestRun] = (),
           slowest: Sequence[DigestRun] = (), **changes: Any) -> DigestData:
    values: dict[str, Any] = {
        "channel": "C0DATA", "day": DAY, "timezone": "Europe/Oslo",
        "runs": sum(p.runs for p in pipelines),
        "counts": {
            StoredState.SUCCEEDED: sum(p.succeeded for p in pipelines),
            StoredState.FAILED: sum(p.failed for p in pipelines),
        },
        "failure_rate": 0.25, "p50": timedelta(minutes=3), "p95": timedelta(minutes=40),
        "pipelines": tuple(pipelines), "failures": tuple(failures), "slowest": tuple(slowest),
    }
    values.update(changes)
    return DigestData(**values)


def test_percent_never_rounds_a_failure_away() -> None:
    assert percent(0.0) == "0%"
    assert percent(1 / 6) == "17%"
    assert percent(1.0) == "100%"
    assert percent(0.001) == "<1%"


def test_the_digest_lists_every_pipeline_with_counts_and_trend_failures_and_slowest() -> None:
    pipelines = [PipelineDay(f"pipe-{i:02d}", runs=4, succeeded=3, failed=1, trend="✅❌✅✅") for i in range(40)]
    failures = [DigestRun(run_id=100 + i, name=f"pipe-{i:02d}", at=T0, duration=timedelta(seconds=65),
                          message=f"boom {i}", muted=i == 0) for i in range(40)]
    slowest = [DigestRun(run_id=7, name="pipe-03", at=T0, duration=timedelta(hours=1, minutes=2)),
               DigestRun(run_id=8, name="pipe-04", at=T0, duration=timedelta(minutes=30))]
    data = digest(pipelines, failures, slowest, counts={StoredState.SUCCEEDED: 120, StoredState.FAILED: 40, StoredState.RUNNING: 2}, runs=162)
    text, blocks = digest_message("C0DATA", DAY, data)
    check_message(text, blocks)
    assert text == "Daily digest for 2024-01-31: 162 runs, 40 failed (failure rate 25%)"
    assert blocks[0]["text"]["text"] == "📊 Daily digest · 2024-01-31 (Wednesday)"
    shown = texts(blocks)
    for i in range(40):
        assert f"*pipe-{i:02d}* · 4 runs · ❌ 1 failed · ✅❌✅✅" in shown
        assert f"#{100 + i}" in shown and f"> boom {i}" in shown
    assert "*162 runs* of 40 pipelines: 120 succeeded · 40 failed · 2 running" in shown
    assert "Failure rate *25%* (40 of 160 finished)" in shown
    assert "median run 3m 00s · 95th percentile 40m 00s" in shown
    assert "🔕 muted" in next(line for line in shown.split("\n") if "#100 " in line)
    assert "🔕" not in next(line for line in shown.split("\n") if "#101 " in line)
    slow = shown[shown.index("*Slowest*"):]
    assert slow.index("*pipe-03* #7 · 1h 02m") < slow.index("*pipe-04* #8 · 30m 00s")
    assert "Europe/Oslo" in dumped(blocks[-1])
    assert "…and" not in shown


def test_a_clean_day_has_no_failure_section() -> None:
    data = digest([PipelineDay("leads-ods", runs=2, succeeded=2, failed=0, trend="✅✅")], failure_rate=0.0)
    text, blocks = digest_message("C0DATA", DAY, data)
    check_message(text, blocks)
    assert text == "Daily digest for 2024-01-31: 2 runs, 0 failed"
    assert "*Failures*" not in texts(blocks) and "Failure rate *0%* (0 of 2 finished)" in texts(blocks)


@pytest.mark.parametrize("count", [1, 300, 5000])
def test_the_digest_stays_within_50_blocks_and_counts_what_does_not_fit(count: int) -> None:
    pipelines = [PipelineDay(EVIL_TEXT + f"-{i}" + "p" * 70, runs=3000, succeeded=1, failed=2999,
                             trend="…" + "❌" * 30) for i in range(count)]
    failures = [DigestRun(run_id=i, name=EVIL_TEXT + str(i), at=T0, duration=timedelta(days=3), message=HUGE + EVIL_TEXT,
                          muted=True) for i in range(count)]
    slowest = [DigestRun(run_id=i, name=HUGE, at=T0, duration=timedelta(hours=i)) for i in range(5)]
    data = digest(pipelines, failures, slowest, timezone="Europe/Oslo<!channel>")
    text, blocks = digest_message("C0DATA", DAY, data)
    check_message(text, blocks)
    no_raw_evil([text, blocks])
    pipeline_text = section_of({"blocks": blocks}, "*Per pipeline*").split("*Failures*")[0]
    failure_text = texts(blocks)[texts(blocks).index("*Failures*"):].split("*Slowest*")[0]
    for listed, marker in ((pipeline_text, " · 3000 runs · "), (failure_text, "❌ *")):
        more = [int(m) for m in MORE.findall(listed)]
        shown = listed.count(marker)
        assert shown + sum(more) == count
        assert len(more) == (1 if count == 5000 else 0 if count == 1 else len(more))
        assert len(more) <= 1


def test_the_digest_escapes_names_and_messages() -> None:
    data = digest([PipelineDay(EVIL_TEXT, runs=1, succeeded=0, failed=1, trend="❌")],
                  [DigestRun(run_id=1, name=EVIL_TEXT, at=T0, message=EVIL_TEXT)],
                  [DigestRun(run_id=2, name=EVIL_TEXT, at=T0, duration=timedelta(seconds=5))], failure_rate=1.0)
    text, blocks = digest_message("C0DATA", DAY, data)
    check_message(text, blocks)
    no_raw_evil([text, blocks])
    assert "&lt;!channel&gt;" in texts(blocks) and "R&amp;D" in texts(blocks)


def test_failure_time_is_a_date_token_readers_see_in_their_zone() -> None:
    when = datetime(2024, 1, 31, 23, 30, tzinfo=UTC)
    data = digest([PipelineDay("a", runs=1, succeeded=0, failed=1, trend="❌")],
                  [DigestRun(run_id=1, name="a", at=when, message="x")])
    _, blocks = digest_message("C0DATA", DAY, data)
    assert f"<!date^{int(when.timestamp())}^{{time}}|2024-01-31 23:30 UTC>" in texts(blocks)
