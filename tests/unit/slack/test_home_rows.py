"""The App Home's rows with buttons: the person's pipelines (trend, next run, Run), open alerts (Acknowledge),
mutes (Unmute), a Refresh, recovered failures marked; within Slack's limits for 200 pipelines, escaped."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

from bot.emulators.slack import payloads
from bot.service.queries import PipelineRow
from bot.slack.blocks import ids
from bot.slack.blocks.home import PIPELINE_ROWS, home_view
from bot.store.records import RunOrigin, RunRecord, StoredState
from tests.unit.slack.test_blocks import EVIL, EVIL_TEXT, T0, failed_run
from tests.unit.slack.test_home_digest_blocks import NOW, alert, check_home, section_of

BASE = RunRecord(
    id=1, pipeline="orders", provider="rivery", connection="rivery-main", job={"river_id": "5e8e"}, parameters={},
    provider_run_id="r-1", state=StoredState.SUCCEEDED, raw_status="D", message="", warning="", tasks=(), extra={},
    final=True, origin=RunOrigin.SLACK, started_by="U0ALICE", channel="C0DATA", retry_of=None, attempt=1,
    created_at=T0, updated_at=T0, started_at=T0, ended_at=T0 + timedelta(minutes=2), next_poll_at=None, polls=1,
    unknown_since=None, last_error="", acknowledged_by=None, acknowledged_at=None,
)


def record(**changes: Any) -> RunRecord:
    return dataclasses.replace(BASE, **changes)


def home(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"in_flight": [], "alerts": [], "mutes": {}, "failures": [], "now": NOW,
                              "command": "/pipeline"}
    values.update(changes)
    return home_view(**values)


def rendered(view: dict[str, Any]) -> str:
    """What Slack renders: the blocks without their buttons (a button's value is the raw name, never shown)."""
    return json.dumps([{k: v for k, v in b.items() if k != "accessory"} for b in view["blocks"]], ensure_ascii=False)


def buttons(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(e["action_id"]), str(e.get("value", ""))) for _, e in payloads.interactive_elements(view["blocks"])]


def test_a_pipeline_row_has_last_status_a_trend_oldest_first_the_next_run_and_a_run_button() -> None:
    runs = [record(id=i, state=StoredState.FAILED if i in (3, 9) else StoredState.SUCCEEDED) for i in range(10, 0, -1)]
    row = PipelineRow("orders", "owner", runs, NOW + timedelta(hours=3))
    view = home(pipelines=[row, PipelineRow("budget", "subscribed", [], None)])
    check_home(view)
    mine = section_of(view, "*My pipelines* (2)")
    orders = mine.split("*orders*", 1)[1]
    assert "you own it" in orders and "last: succeeded #10" in orders
    assert "✅✅❌✅✅✅✅✅❌✅" in orders  # #1 … #10, oldest first: #3 and #9 failed
    assert f"next run <!date^{int((NOW + timedelta(hours=3)).timestamp())}^" in orders
    assert "no runs yet" in mine and "not scheduled" in mine and "you subscribed" in mine
    assert (ids.list_run_action_id(0), "orders") in buttons(view) and (ids.list_run_action_id(1), "budget") in buttons(view)
    assert (ids.HOME_REFRESH, "home") in buttons(view)


def test_200_pipelines_stay_within_the_limits_and_the_rest_is_counted_with_where_to_see_them() -> None:
    rows = [PipelineRow(f"{EVIL_TEXT} p{i}-" + "x" * 200, "owner", [record(id=j) for j in range(10)], NOW)
            for i in range(200)]
    alerts = [alert(id=i, pipeline=f"p{i}", last_run_id=i) for i in range(50)]
    mutes = {f"p{i}": (NOW + timedelta(hours=1), "U0ALICE") for i in range(50)}
    failures = [failed_run(id=i, pipeline=f"p{i}") for i in range(500)]
    view = home(pipelines=rows, alerts=alerts, mutes=mutes, failures=failures, answer="🔔 Unmuted *x*.",
                may_acknowledge={f"p{i}" for i in range(50)}, may_unmute={f"p{i}" for i in range(50)})
    check_home(view)
    for raw in EVIL:
        assert raw not in rendered(view), raw
    assert len(view["blocks"]) <= 100
    assert f"…and {200 - PIPELINE_ROWS} more: `/pipeline list`" in section_of(view, "*My pipelines* (200)")
    assert "…and 40 more" in section_of(view, "*Open alerts* (50)")
    assert "…and 42 more: `/pipeline unmute &lt;pipeline&gt;`" in section_of(view, "*Muted* (50)")
    shown = buttons(view)
    assert len({a for a, _ in shown}) == len(shown), "an action id repeated within the view"
    assert sum(a.startswith(ids.LIST_RUN) for a, _ in shown) == PIPELINE_ROWS
    assert all(len(v) <= 2000 for _, v in shown)


def test_hostile_names_are_escaped_in_rows_and_kept_whole_in_button_values() -> None:
    evil = EVIL_TEXT
    view = home(pipelines=[PipelineRow(evil, "watching", [], None)], mutes={evil: (NOW, "<!channel>")},
                may_unmute={evil}, answer=None)
    check_home(view)
    for raw in EVIL:
        assert raw not in rendered(view), raw
    assert "&lt;!channel&gt;" in rendered(view) and "R&amp;D" in rendered(view)
    assert (ids.home_unmute_action_id(0), evil) in buttons(view)  # the value is the name, checked at click


def test_acknowledge_and_unmute_are_offered_only_where_the_person_may_and_not_twice() -> None:
    alerts = [alert(id=1, pipeline="orders", last_run_id=12), alert(id=2, pipeline="budget", last_run_id=13),
              alert(id=3, pipeline="leads", last_run_id=14)]
    mutes = {"orders": (NOW, None), "budget": (NOW, None)}
    view = home(alerts=alerts, mutes=mutes, acknowledged={14: "U0BOB"}, may_acknowledge={"orders", "leads"},
                may_unmute={"budget"})
    check_home(view)
    shown = buttons(view)
    assert [v for a, v in shown if a.startswith(ids.RUN_ACK)] == ["12"]  # budget: not theirs; leads: taken
    assert [v for a, v in shown if a.startswith(ids.HOME_UNMUTE)] == ["budget"]
    assert "👀 <@U0BOB> is on it" in section_of(view, "*Open alerts*")


def test_a_recovered_failure_is_marked_with_the_run_that_succeeded() -> None:
    view = home(failures=[failed_run(id=5, pipeline="orders"), failed_run(id=6, pipeline="budget")],
                recovered={5: 7})
    failures = section_of(view, "*Failures in the last 24 h*")
    assert "*orders* #5" in failures and "✅ recovered by #7" in failures
    assert failures.count("recovered") == 1
