"""The Block Kit builders: valid for slack_sdk and the fake Slack, within limits for any input, escaped, stable.

Every payload goes through three checks: ``slack_sdk.models`` parsing and ``validate_json`` block by block,
the fake Slack's validator (the same that rejects payloads in scenario tests), and explicit assertions of
the limits in SLACK.md. Huge and hostile inputs are the point of most tests.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.catalog.model import ParameterSpec, Pipeline
from bot.emulators.slack.blockkit import validate_message, validate_view
from bot.emulators.slack.payloads import state_values
from bot.models import RunState, RunStatus, TaskStatus
from bot.providers.base import JobConfig
from bot.service.history import trend
from bot.service.views import RunView, run_view
from bot.slack.blocks import (
    CardView,
    catalog_list,
    confirm_op,
    ephemeral_error,
    failure_details,
    ids,
    last_runs,
    notice,
    parameters_from_state,
    pipeline_from_state,
    run_card,
    run_modal,
    stats,
    status_list,
    submission_errors,
)
from bot.slack.text import TRUNCATION_NOTE
from bot.store.records import RunOrigin, RunRecord, StoredState

T0 = datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
EVIL = ("<!channel>", "<@U123>", "<https://evil|docs>", "R&D")
EVIL_TEXT = " ".join(EVIL)
HUGE = "m" * 100_000

# -- factories -----------------------------------------------------------------------------------------


def make_run(**changes: Any) -> RunView:
    """A run as the builders get it: a store record (``changes`` are its fields) made a view."""
    base = RunRecord(
        id=12, pipeline="leads-ods", provider="rivery", connection="rivery-main", job={"river_id": "5e8e"},
        parameters={"execution_date": "2024-01-31"}, provider_run_id="r-1", state=StoredState.RUNNING,
        raw_status="R", message="", warning="", tasks=(), extra={}, final=False, origin=RunOrigin.SLACK,
        started_by="U0ALICE", channel="C0DATA", retry_of=None, attempt=1, created_at=T0, updated_at=T0,
        started_at=T0 + timedelta(seconds=3), ended_at=None, next_poll_at=None, polls=1, unknown_since=None,
        last_error="", acknowledged_by=None, acknowledged_at=None,
    )
    return run_view(dataclasses.replace(base, **changes))


def failed_run(**changes: Any) -> RunView:
    fields: dict[str, Any] = {
        "state": "failed", "raw_status": "E", "final": True, "message": "river failed: bad column",
        "ended_at": T0 + timedelta(minutes=3, seconds=8),
    }
    return make_run(**{**fields, **changes})


def view_of(run: RunView, **changes: Any) -> CardView:
    fields: dict[str, Any] = {
        "run": run, "display_name": "Rivery", "job_text": "river 5e8e", "now": T0 + timedelta(minutes=1),
        "console_url": "https://console.rivery.io/runs/r-1", "can_cancel": True,
    }
    return CardView(**{**fields, **changes})


def pipeline(name: str = "leads-ods", provider: str = "rivery", **changes: Any) -> Pipeline:
    return Pipeline(name=name, provider=provider, connection=f"{provider}-main", job=JobConfig(), **changes)


PARAMS = {
    "execution_date": ParameterSpec(type="date", default="2024-01-31", description="day to load"),
    "mode": ParameterSpec(type="choice", choices=("full", "incremental"), default="incremental"),
    "batch": ParameterSpec(type="int", default="100"),
    "note": ParameterSpec(required=True),
    "comment": ParameterSpec(),
}

# -- validation helpers ----------------------------------------------------------------------------------


def walk(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def check_limits(blocks: Sequence[Mapping[str, Any]], *, max_blocks: int) -> None:
    assert len(blocks) <= max_blocks
    for block in blocks:
        kind = block["type"]
        if kind == "header":
            assert len(block["text"]["text"]) <= 150
        if kind == "section":
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        if kind == "context":
            assert 1 <= len(block["elements"]) <= 10
        for node in walk(block):
            if node.get("type") == "button":
                assert len(node["text"]["text"]) <= 75
                assert len(node.get("value", "")) <= 2000
                assert len(node.get("url", "")) <= 3000
            if "action_id" in node:
                assert len(node["action_id"]) <= 255


def check_message(text: str, blocks: list[dict[str, Any]]) -> None:
    """slack_sdk, the fake Slack's validator, and the explicit limits."""
    assert text.strip() and len(text) <= 40_000
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
    assert validate_message(blocks) == []
    check_limits(blocks, max_blocks=50)


def check_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    for block in view["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()
    assert validate_view(view) == []
    for key in ("title", "submit", "close"):
        assert len(view[key]["text"]) <= 24
    assert len(view["private_metadata"]) <= 3000
    check_limits(view["blocks"], max_blocks=100)


def dump(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def assert_no_raw_evil(*payloads: Any) -> None:
    for payload in payloads:
        dumped = payload if isinstance(payload, str) else dump(payload)
        for raw in EVIL:
            assert raw not in dumped, raw


def action_ids(blocks: Sequence[Mapping[str, Any]]) -> list[str]:
    return [n["action_id"] for n in walk(list(blocks)) if "action_id" in n]


# -- the card --------------------------------------------------------------------------------------------

STATES: dict[str, dict[str, Any]] = {
    "starting": {"state": "starting", "raw_status": "", "provider_run_id": None},
    "queued": {"state": "queued", "raw_status": "Q"},
    "running": {"state": "running", "raw_status": "R"},
    "unknown-live": {"state": "unknown", "raw_status": "CHECKED"},
    "succeeded": {"state": "succeeded", "raw_status": "D", "final": True, "ended_at": T0 + timedelta(hours=1)},
    "failed": {"state": "failed", "raw_status": "E", "final": True, "ended_at": T0 + timedelta(minutes=4)},
    "canceled": {"state": "canceled", "raw_status": "C", "final": True, "ended_at": T0 + timedelta(minutes=4)},
    "unknown-final": {"state": "unknown", "raw_status": "SERVING_RERAN", "final": True, "ended_at": T0},
}
HEADERS = {
    "starting": "🚀 leads-ods is starting",
    "queued": "⏳ leads-ods is queued",
    "running": "▶️ leads-ods is running",
    "unknown-live": "❔ leads-ods is in an unknown state",
    "succeeded": "✅ leads-ods succeeded",
    "failed": "❌ leads-ods failed",
    "canceled": "⏹️ leads-ods was canceled",
    "unknown-final": "❔ leads-ods is in an unknown state",
}
LIVE = ("starting", "queued", "running", "unknown-live")


@pytest.mark.parametrize("state", sorted(STATES))
def test_card_is_valid_in_every_state(state: str) -> None:
    text, blocks = run_card(view_of(make_run(**STATES[state])))
    check_message(text, blocks)
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == HEADERS[state]
    assert text.startswith(HEADERS[state])


@pytest.mark.parametrize("state", LIVE)
def test_live_card_does_not_change_as_time_passes(state: str) -> None:
    run = make_run(**STATES[state], message="working", tasks=(TaskStatus("a", RunState.RUNNING, "R"),))
    first = run_card(view_of(run, now=T0 + timedelta(seconds=5)))
    later = run_card(view_of(run, now=T0 + timedelta(hours=7)))
    assert first == later
    assert "Duration" not in dump(first[1])


@pytest.mark.parametrize("state", ["succeeded", "failed", "canceled", "unknown-final"])
def test_final_card_shows_duration_and_does_not_change_either(state: str) -> None:
    run = make_run(**STATES[state])
    first = run_card(view_of(run, now=T0 + timedelta(hours=2)))
    later = run_card(view_of(run, now=T0 + timedelta(days=9)))
    assert first == later
    fields = [f["text"] for f in first[1][1]["fields"]]
    assert any(f.startswith("*Duration*") for f in fields)


def test_failed_card_fields() -> None:
    _, blocks = run_card(view_of(failed_run(attempt=2)))
    fields = {f["text"].split("\n")[0]: f["text"].split("\n", 1)[1] for f in blocks[1]["fields"]}
    assert fields["*State*"] == "failed"  # human words first: not "failed (raw: E)"
    assert fields["*Started by*"] == "<@U0ALICE>"
    assert fields["*Started*"].startswith("<!date^")
    assert fields["*Duration*"] == "3m 05s"
    assert fields["*Run*"] == "#12"  # the provider's id is in the context line only
    assert fields["*Attempt*"] == "2"
    contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert "Rivery run `r-1` · Rivery status `E`" in contexts
    sections = [b for b in blocks if b["type"] in ("section", "header")]
    assert "r-1" not in dump(sections) and "`E`" not in dump(sections)


def test_card_for_a_run_started_outside_slack() -> None:
    _, blocks = run_card(view_of(make_run(started_by=None, origin="watch")))
    assert "outside Slack (schedule or console)" in dump(blocks[1])
    _, forged = run_card(view_of(make_run(started_by="<!channel>")))
    assert "outside Slack" in dump(forged[1]) and "<!channel>" not in dump(forged)


def test_unknown_note_appears_once_the_provider_is_silent_for_long_enough() -> None:
    run = make_run(unknown_since=T0 + timedelta(minutes=10))
    early = run_card(view_of(run, now=T0 + timedelta(minutes=11)))
    late = run_card(view_of(run, now=T0 + timedelta(minutes=12)))
    much_later = run_card(view_of(run, now=T0 + timedelta(hours=5)))
    assert "status unknown since" not in dump(early)
    assert "status unknown since <!date^" in dump(late)
    assert "Rivery is not answering; the run's real outcome will be shown when it answers" in dump(late)
    assert late == much_later  # it flips once, then stays put
    custom = run_card(view_of(run, now=T0 + timedelta(minutes=11), unknown_after=timedelta(seconds=30)))
    assert "status unknown since" in dump(custom)


def buttons(blocks: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) <= 1
    return {e["action_id"]: e for e in actions[0]["elements"]} if actions else {}


@pytest.mark.parametrize("state", LIVE)
def test_live_card_buttons(state: str) -> None:
    run = make_run(**STATES[state])
    found = buttons(run_card(view_of(run))[1])
    assert list(found) == [ids.RUN_REFRESH, ids.RUN_CANCEL, ids.RUN_CONSOLE]
    assert found[ids.RUN_REFRESH]["value"] == "12"
    cancel = found[ids.RUN_CANCEL]
    assert cancel["style"] == "danger" and cancel["value"] == "12"
    assert cancel["confirm"]["text"]["text"] == "Cancel this run of leads-ods?"
    assert found[ids.RUN_CONSOLE]["url"] == "https://console.rivery.io/runs/r-1"
    assert found[ids.RUN_CONSOLE]["value"] == "12"


def test_no_cancel_when_the_provider_cannot_and_no_console_when_unknown() -> None:
    found = buttons(run_card(view_of(make_run(), can_cancel=False, console_url=None))[1])
    assert list(found) == [ids.RUN_REFRESH]
    odd = buttons(run_card(view_of(make_run(), console_url="javascript:alert(1)"))[1])
    assert ids.RUN_CONSOLE not in odd


@pytest.mark.parametrize(("state", "alerted"), [("failed", False), ("unknown-final", True)])
def test_alert_card_buttons(state: str, alerted: bool) -> None:
    found = buttons(run_card(view_of(make_run(**STATES[state]), alerted=alerted))[1])
    assert list(found) == [ids.RUN_RETRY, ids.RUN_ACK, ids.RUN_MUTE, ids.RUN_CONSOLE]
    assert found[ids.RUN_RETRY]["style"] == "primary" and found[ids.RUN_RETRY]["value"] == "12"
    assert found[ids.RUN_ACK]["value"] == "12"
    mute = found[ids.RUN_MUTE]
    assert mute["type"] == "static_select" and mute["placeholder"]["text"] == "Mute…"
    # the same menu for everyone: what owners may not pick (over their 24 h cap) says so
    assert [o["text"]["text"] for o in mute["options"]] == ["1 hour", "4 hours", "1 day", "1 week (needs allow_change)"]
    assert [o["value"] for o in mute["options"]] == ["12|3600", "12|14400", "12|86400", "12|604800"]
    assert all(ids.parse_mute_value(o["value"])[0] == 12 for o in mute["options"])


def test_canceled_card_offers_retry_but_no_acknowledge_or_mute() -> None:
    """A canceled run did not fail: someone stopped it, nothing to acknowledge or mute; once it reached the provider
    it may be run again as it was (twentieth pass: it had no Retry anywhere), until it has its retry."""
    text, blocks = run_card(view_of(make_run(**STATES["canceled"]), alerted=True))
    check_message(text, blocks)
    assert list(buttons(blocks)) == [ids.RUN_RETRY, ids.RUN_CONSOLE]
    assert blocks[0]["text"]["text"] == "⏹️ leads-ods was canceled"
    _, blocks = run_card(view_of(make_run(**STATES["canceled"]), retried_as=13))
    assert list(buttons(blocks)) == [ids.RUN_CONSOLE]
    _, blocks = run_card(view_of(make_run(**STATES["canceled"], provider_run_id=None)))  # never sent
    assert ids.RUN_RETRY not in list(buttons(blocks))


def test_a_run_the_bot_cannot_follow_offers_stop_following_then_retry() -> None:
    """Its connection left the catalog: no Cancel (nothing can reach its provider) but Stop following, behind Slack's
    confirm dialog; once stopped it says who ended it, in the bot's words (not "<provider> says"), with Retry as any
    unknown end (its pipeline may be in the catalog at a renamed connection), no Acknowledge nor Mute: no alert."""
    live = make_run(state="unknown", raw_status="Pending", unknown_since=T0)
    text, blocks = run_card(view_of(live, can_cancel=False, console_url=None, gone_connection="invision",
                                    now=T0 + timedelta(minutes=5)))
    check_message(text, blocks)
    assert list(buttons(blocks)) == [ids.RUN_REFRESH, ids.RUN_STOP_FOLLOWING]
    assert "or stop following it" in json.dumps(blocks)
    dialog = buttons(blocks)[ids.RUN_STOP_FOLLOWING]["confirm"]
    assert "invision" in dialog["text"]["text"] and dialog["confirm"]["text"] == "Stop following"
    waiting = make_run(state="waiting", provider_run_id=None, raw_status="")  # nothing at the provider: Cancel
    assert ids.RUN_STOP_FOLLOWING not in buttons(run_card(view_of(waiting, gone_connection="invision"))[1])
    stopped = make_run(state="unknown", raw_status="Pending", final=True, extra={"stopped_by": "U0CAROL"},
                       message="the bot stopped following it", ended_at=T0 + timedelta(minutes=5))
    text, blocks = run_card(view_of(stopped, can_cancel=False, console_url=None, gone_connection="invision"))
    check_message(text, blocks)
    assert blocks[0]["text"]["text"] == "❔ leads-ods is no longer followed"
    assert "<@U0CAROL> stopped following it" in json.dumps(blocks) and "says" not in json.dumps(blocks)
    assert list(buttons(blocks)) == [ids.RUN_RETRY]
    assert list(buttons(run_card(view_of(stopped, console_url=None, retried_as=13))[1])) == []


def test_unknown_end_without_an_alert_offers_retry_only() -> None:
    """A run that ended unknown (or did not start) may be retried; Acknowledge and Mute act on an alert, and
    only some such ends alert (a schedule's missed slot), so they show only when one counts the run."""
    for changes in (STATES["unknown-final"], {"state": "unknown", "final": True, "provider_run_id": None,
                                               "raw_status": "", "message": "not started: refused"}):
        text, blocks = run_card(view_of(make_run(**changes)))
        check_message(text, blocks)
        assert list(buttons(blocks)) == [ids.RUN_RETRY, ids.RUN_CONSOLE]
        alerted = buttons(run_card(view_of(make_run(**changes), alerted=True))[1])
        assert list(alerted) == [ids.RUN_RETRY, ids.RUN_ACK, ids.RUN_MUTE, ids.RUN_CONSOLE]


def test_stuck_run_says_so_in_its_header_until_it_ends() -> None:
    warned = T0 + timedelta(minutes=30)
    text, blocks = run_card(view_of(make_run(), stuck_since=warned))
    check_message(text, blocks)
    assert blocks[0]["text"]["text"] == "⏳ leads-ods may be stuck"
    assert text.startswith("⏳ leads-ods may be stuck (run #12)")
    assert f"⏳ Running longer than expected since <!date^{int(warned.timestamp())}" in dump(blocks)
    assert list(buttons(blocks)) == [ids.RUN_REFRESH, ids.RUN_CANCEL, ids.RUN_CONSOLE]
    later = run_card(view_of(make_run(), stuck_since=warned, now=T0 + timedelta(days=2)))
    assert later == (text, blocks)  # no clock in it: the card does not churn
    ended = run_card(view_of(make_run(**STATES["succeeded"]), stuck_since=warned))
    assert ended[1][0]["text"]["text"] == "✅ leads-ods succeeded" and "longer than expected" not in dump(ended)


def test_failed_task_line_does_not_repeat_the_runs_message() -> None:
    message = "Task load failed: column x does not exist"
    tasks = (TaskStatus("load", RunState.FAILED, "E", message="column x does not exist"),
             TaskStatus("other", RunState.FAILED, "E", message="disk full"),
             TaskStatus("odd", RunState.UNKNOWN, "SERVING_RERAN"))
    _, blocks = run_card(view_of(failed_run(message=message, tasks=tasks)))
    section = next(b["text"]["text"] for b in blocks if "*Tasks*" in b.get("text", {}).get("text", ""))
    lines = section.split("\n")
    assert lines[1] == "❌ load · failed"  # the message above says it already
    assert lines[2] == "❌ other · failed: disk full"
    assert lines[3] == "❔ odd · unknown (`SERVING_RERAN`)"  # the provider's code where the word says nothing
    _, thread = failure_details(failed_run(message=message, tasks=tasks), owners=(), display_name="Rivery",
                                console_url=None)
    assert dump(thread).count("column x does not exist") == 1


def test_succeeded_card_has_only_the_console_link() -> None:
    assert list(buttons(run_card(view_of(make_run(**STATES["succeeded"])))[1])) == [ids.RUN_CONSOLE]
    _, blocks = run_card(view_of(make_run(**STATES["succeeded"]), console_url=None))
    assert buttons(blocks) == {}
    check_message("x", blocks)


def test_retried_and_acknowledged_alert() -> None:
    run = failed_run(acknowledged_by="U0BOB", retry_of=11)
    text, blocks = run_card(view_of(run, retried_as=13, retry_of_link="https://slack.example/p123"))
    check_message(text, blocks)
    assert list(buttons(blocks)) == [ids.RUN_MUTE, ids.RUN_CONSOLE]
    dumped = dump(blocks)
    assert "👀 <@U0BOB> is on it" in dumped
    assert "Retry of <https://slack.example/p123|#11>" in dumped
    assert "Retried as #13" in dumped


def test_retry_of_as_text_and_muted_until() -> None:
    run = failed_run(retry_of=11)
    _, blocks = run_card(view_of(run, retry_of_link="#11", muted_until=T0 + timedelta(hours=4)))
    dumped = dump(blocks)
    assert "Retry of #11" in dumped
    assert "muted until <!date^" in dumped


def test_card_lists_failed_tasks_first_and_counts_the_rest() -> None:
    tasks = tuple(TaskStatus(f"task-{i}", RunState.SUCCEEDED, "D") for i in range(495)) + tuple(
        TaskStatus(f"broken-{i}", RunState.FAILED, "E", message=f"error {i}") for i in range(5)
    )
    text, blocks = run_card(view_of(failed_run(tasks=tasks)))
    check_message(text, blocks)
    section = next(b["text"]["text"] for b in blocks if "*Tasks*" in b.get("text", {}).get("text", ""))
    lines = section.split("\n")
    assert lines[0] == "*Tasks* (500, 5 failed)"
    assert [line.split(" ")[1] for line in lines[1:6]] == [f"broken-{i}" for i in range(5)]
    assert "error 0" in lines[1]
    assert len(lines) == 1 + 10 + 1
    assert lines[-1] == "…and 490 more (490 succeeded)"


def test_card_with_huge_inputs_stays_within_limits() -> None:
    long_name = "n" * 1000
    run = failed_run(
        pipeline=long_name, message=HUGE, raw_status="R" * 5000, provider_run_id="p" * 5000, warning=HUGE,
        tasks=tuple(TaskStatus("t" * 1000, RunState.FAILED, "E" * 1000, HUGE) for _ in range(500)),
        parameters={f"k{i}" * 100: "v" * 5000 for i in range(200)},
    )
    text, blocks = run_card(view_of(run, job_text=HUGE, display_name="D" * 1000, retry_of_link=HUGE))
    check_message(text, blocks)
    message = next(b for b in blocks if b.get("text", {}).get("text", "").startswith("*D"))
    assert len(message["text"]["text"]) == 3000
    assert message["text"]["text"].endswith(TRUNCATION_NOTE)
    assert len(text) < 1000


def test_live_card_with_huge_inputs_stays_within_limits() -> None:
    run = make_run(pipeline="x" * 1000, message=HUGE, unknown_since=T0)
    text, blocks = run_card(view_of(run, now=T0 + timedelta(hours=1), display_name="Y" * 1000))
    check_message(text, blocks)


def test_card_escapes_every_untrusted_field() -> None:
    run = failed_run(
        pipeline=EVIL_TEXT, message=EVIL_TEXT, raw_status=EVIL_TEXT, provider_run_id=EVIL_TEXT,
        warning=EVIL_TEXT, parameters={EVIL_TEXT: EVIL_TEXT},
        tasks=(TaskStatus(EVIL_TEXT, RunState.FAILED, EVIL_TEXT, EVIL_TEXT),
               TaskStatus(EVIL_TEXT, RunState.SUCCEEDED, EVIL_TEXT)),
        acknowledged_by=EVIL_TEXT,
    )
    for view in (
        view_of(run, display_name=EVIL_TEXT, job_text=EVIL_TEXT, retry_of_link=EVIL_TEXT),
        view_of(dataclasses.replace(run, run_state=RunState.RUNNING, final=False, ended_at=None, unknown_since=T0),
                display_name=EVIL_TEXT, job_text=EVIL_TEXT, now=T0 + timedelta(hours=1)),
    ):
        text, blocks = run_card(view)
        check_message(text, blocks)
        assert_no_raw_evil(text, blocks)
        assert "&lt;!channel&gt;" in dump(blocks)
        assert "R&amp;D" in dump(blocks)


def test_card_for_an_ad_hoc_run_names_provider_and_job() -> None:
    _, blocks = run_card(view_of(make_run(pipeline=None)))
    assert blocks[0]["text"]["text"] == "▶️ rivery:5e8e is running"


# -- replies ---------------------------------------------------------------------------------------------


def test_failure_details_mentions_owners_and_carries_the_facts() -> None:
    tasks = (TaskStatus("load", RunState.FAILED, "E", "disk full"), TaskStatus("extract", RunState.SUCCEEDED, "D"))
    run = failed_run(tasks=tasks, attempt=3)
    text, blocks = failure_details(
        run, owners=["U0ALICE", "S0DATA", "*", "C0CHAN", "U0ALICE"], display_name="Rivery",
        console_url="https://console.rivery.io/runs/r-1",
    )
    check_message(text, blocks)
    dumped = dump(blocks)
    assert "cc <@U0ALICE> <!subteam^S0DATA>" in dumped
    assert dumped.count("<@U0ALICE>") == 1
    assert "river failed: bad column" in dumped and "river failed: bad column" in text
    assert "*Failed tasks*" in dumped and "disk full" in dumped and "extract" not in dumped
    assert "Duration 3m 05s" in dumped and "Attempt 3" in dumped
    assert "<https://console.rivery.io/runs/r-1|Open in Rivery>" in dumped


def test_failure_details_with_huge_and_hostile_input() -> None:
    run = failed_run(
        pipeline=EVIL_TEXT, message=EVIL_TEXT + HUGE, provider_run_id=EVIL_TEXT,
        tasks=tuple(TaskStatus(EVIL_TEXT, RunState.FAILED, EVIL_TEXT, EVIL_TEXT + HUGE) for _ in range(500)),
    )
    text, blocks = failure_details(
        run, owners=[f"U{i:04d}X" for i in range(300)], display_name=EVIL_TEXT, console_url="javascript:x"
    )
    check_message(text, blocks)
    assert_no_raw_evil(text, blocks)
    assert TRUNCATION_NOTE in dump(blocks)


def test_ephemeral_error_and_notice_escape() -> None:
    for text, blocks in (ephemeral_error(EVIL_TEXT), notice(EVIL_TEXT), ephemeral_error(HUGE), notice(HUGE)):
        check_message(text, blocks)
        assert_no_raw_evil(text, blocks)
    text, blocks = notice("back: <@U0ALICE>", formatted=True)
    assert "<@U0ALICE>" in blocks[0]["text"]["text"]
    assert ephemeral_error("no such pipeline")[0] == "⚠️ no such pipeline"


def test_confirm_op_carries_the_operation_and_asks_once() -> None:
    text, blocks = confirm_op("cancel", "leads-ods", "Cancel run #12 of leads-ods?", "Cancel run", run_id=12)
    check_message(text, blocks)
    found = buttons(blocks)
    assert list(found) == [ids.OP_CONFIRM, ids.OP_DISMISS]
    confirm = found[ids.OP_CONFIRM]
    assert confirm["style"] == "danger" and confirm["text"]["text"] == "Cancel run"
    assert "confirm" not in confirm  # the prompt is the confirmation: no second "are you sure" dialog
    assert confirm["value"] == '{"op":"cancel","target":"leads-ods","run":12}'
    assert ids.parse_op_value(confirm["value"]) == ("cancel", "leads-ods", 12)
    _, plain = confirm_op("disable", "leads-ods", "Disable?", "Disable")
    assert ids.parse_op_value(buttons(plain)[ids.OP_CONFIRM]["value"]) == ("disable", "leads-ods", None)


def test_confirm_op_escapes_and_refuses_an_oversized_value() -> None:
    text, blocks = confirm_op("reset", "t", EVIL_TEXT * 50, "R" * 200)
    check_message(text, blocks)
    assert_no_raw_evil(text, blocks)
    with pytest.raises(ValueError, match="2000"):
        confirm_op("reset", "t" * 3000, "?", "Reset")


def test_status_list() -> None:
    text, blocks = status_list([], T0)
    check_message(text, blocks)
    assert text == "No runs in flight."
    runs = [make_run(id=i, state="queued" if i % 2 else "running") for i in range(3)]
    text, blocks = status_list(runs, T0 + timedelta(minutes=5))
    check_message(text, blocks)
    lines = blocks[0]["text"]["text"].split("\n")
    assert lines[0] == "*In flight* (3)"
    assert lines[1].startswith("▶️ *leads-ods* #0 · running · started <!date^") and lines[1].endswith("(4m 57s)")


def test_status_list_of_thousands_stays_within_limits() -> None:
    runs = [make_run(id=i, pipeline=EVIL_TEXT + "x" * 300) for i in range(3000)]
    text, blocks = status_list(runs, T0)
    check_message(text, blocks)
    assert_no_raw_evil(text, blocks)
    assert blocks[-1]["type"] == "context" and "more" in blocks[-1]["elements"][0]["text"]


def test_last_runs() -> None:
    statuses = [
        RunStatus("r-3", RunState.SUCCEEDED, "D", started_at=T0, duration=timedelta(minutes=2)),
        RunStatus("r-2", RunState.FAILED, "E", message="boom", started_at=T0, ended_at=T0 + timedelta(seconds=9)),
        RunStatus("r-1", RunState.RUNNING, "R"),
        RunStatus("r-0", RunState.UNKNOWN, "SERVING_RERAN"),
    ]
    trend_line = trend(statuses, newest_first=True)
    assert trend_line == "✅❌▶️❔"  # the same order as the list: newest first
    text, blocks = last_runs("leads-ods", statuses, trend_line, {"r-3": 7, "r-2": 6})
    check_message(text, blocks)
    lines = blocks[0]["text"]["text"].split("\n")
    assert lines[0] == "*Last 4 runs of leads-ods*, newest first   ✅❌▶️❔"
    assert text == "Last 4 runs of leads-ods, newest first: ✅❌▶️❔"
    # the bot's #n where it knows the run, human words first, no raw code beside a word that says it all
    assert lines[1].startswith("✅ #7 · succeeded · <!date^") and lines[1].endswith("· 2m 00s")
    assert lines[2].startswith("❌ #6 · failed · <!date^") and lines[2].endswith("9s: boom")
    assert lines[3] == "▶️ run `r-1` · running · start unknown"  # not started by the bot: the provider's id
    assert lines[4] == "❔ run `r-0` · unknown (`SERVING_RERAN`) · start unknown"
    empty_text, empty = last_runs("leads-ods", [], "")
    check_message(empty_text, empty)


def test_last_runs_huge_and_hostile() -> None:
    statuses = [RunStatus(EVIL_TEXT * 20, RunState.FAILED, EVIL_TEXT, message=HUGE, started_at=T0)] * 500
    text, blocks = last_runs(EVIL_TEXT * 100, statuses, "❌" * 500)
    check_message(text, blocks)
    assert_no_raw_evil(text, blocks)


def test_stats() -> None:
    text, blocks = stats(
        "leads-ods", "last 7 days", {StoredState.SUCCEEDED: 8, StoredState.FAILED: 2, StoredState.UNKNOWN: 1}, 0.2,
        timedelta(minutes=3), timedelta(minutes=9), [("leads-ods #12", timedelta(minutes=20))],
    )
    check_message(text, blocks)
    assert_no_raw_evil(text, blocks)
    dumped = dump(blocks)
    assert "*Runs*\\n11" in dumped and "20.0%" in dumped and "✅ succeeded: 8" in dumped
    assert "3m 00s / 9m 00s" in dumped and "leads-ods #12: 20m 00s" in dumped
    text, blocks = stats("all pipelines", "today", {}, 0.0, None, None, [])
    check_message(text, blocks)


# -- the catalog list ------------------------------------------------------------------------------------

NAMES = {"rivery": "Rivery", "tailer": "Tailer"}


def test_catalog_list() -> None:
    pipelines = [pipeline(description="Leads to the ODS", tags=("crm", "daily")), pipeline("sales", "tailer")]
    text, blocks = catalog_list(pipelines, NAMES)
    check_message(text, blocks)
    first = blocks[1]
    assert first["text"]["text"] == "*leads-ods* · Rivery\nLeads to the ODS\n`crm` `daily`"
    assert first["accessory"]["text"]["text"] == "Run"
    assert first["accessory"]["value"] == "leads-ods"
    assert all(ids.LIST_RUN_PATTERN.match(a) for a in action_ids(blocks))
    assert blocks[2]["text"]["text"] == "*sales* · Tailer"
    assert catalog_list([], NAMES)[0] == "No pipelines in the catalog."


def test_catalog_list_of_200_pipelines_stays_within_50_blocks() -> None:
    pipelines = [pipeline(f"p{i:03d}", description="d" * 5000, tags=tuple("t" * 100 for _ in range(50)))
                 for i in range(200)]
    text, blocks = catalog_list(pipelines, NAMES)
    check_message(text, blocks)
    assert len(blocks) == 50
    assert len(set(action_ids(blocks))) == 47
    assert "p199" in blocks[-2]["text"]["text"]
    assert blocks[-1]["elements"][0]["text"] == "153 more: narrow with /pipeline list &lt;provider|tag&gt;"


def test_catalog_list_with_long_and_hostile_fields() -> None:
    pipelines = [pipeline("n" * 1000, EVIL_TEXT, description=EVIL_TEXT, tags=(EVIL_TEXT,))] * 60
    text, blocks = catalog_list(pipelines, {EVIL_TEXT: EVIL_TEXT})
    check_message(text, blocks)
    assert_no_raw_evil(text, blocks)


# -- the run modal ---------------------------------------------------------------------------------------


def test_modal_without_a_choice() -> None:
    view = run_modal([pipeline(), pipeline("sales")], selected=None, channel="C0DATA")
    check_view(view)
    assert view["callback_id"] == ids.RUN_MODAL
    assert (view["title"]["text"], view["submit"]["text"], view["close"]["text"]) == ("Run a pipeline", "Run", "Cancel")
    assert json.loads(view["private_metadata"]) == {"channel": "C0DATA", "pipeline": None}
    select = view["blocks"][0]
    assert select["block_id"] == ids.PIPELINE_BLOCK and select["dispatch_action"] is True
    assert select["element"]["action_id"] == ids.PIPELINE_SELECT
    assert [o["value"] for o in select["element"]["options"]] == ["leads-ods", "sales"]
    assert len(view["blocks"]) == 1


def test_modal_with_a_choice_has_one_input_per_parameter() -> None:
    chosen = pipeline(description="Leads to the ODS", parameters=PARAMS)
    view = run_modal([chosen, pipeline("sales")], selected=chosen, channel="C0DATA")
    check_view(view)
    assert json.loads(view["private_metadata"]) == {"channel": "C0DATA", "pipeline": "leads-ods"}
    assert view["blocks"][0]["element"]["initial_option"]["value"] == "leads-ods"
    inputs = {b["block_id"]: b for b in view["blocks"] if b.get("block_id", "").startswith("param:")}
    assert list(inputs) == [f"param:{name}" for name in PARAMS]
    date, mode, batch = inputs["param:execution_date"], inputs["param:mode"], inputs["param:batch"]
    assert date["element"] == {"type": "datepicker", "action_id": "value", "initial_date": "2024-01-31"}
    assert date["hint"]["text"] == "day to load" and date["optional"] is True
    assert mode["element"]["type"] == "static_select"
    assert mode["element"]["initial_option"]["value"] == "incremental"
    assert batch["element"]["type"] == "plain_text_input" and batch["element"]["initial_value"] == "100"
    assert inputs["param:note"]["optional"] is False
    assert "Leads to the ODS" in view["blocks"][1]["text"]["text"]


def test_modal_groups_options_by_provider() -> None:
    pipelines = [pipeline("a", "rivery"), pipeline("b", "tailer"), pipeline("c", "rivery")]
    view = run_modal(pipelines, selected=pipelines[2], channel="C0DATA", display_names=NAMES)
    check_view(view)
    groups = view["blocks"][0]["element"]["option_groups"]
    assert [(g["label"]["text"], [o["value"] for o in g["options"]]) for g in groups] == [
        ("Rivery", ["a", "c"]), ("Tailer", ["b"]),
    ]


def test_modal_with_200_pipelines_offers_100_and_keeps_the_choice() -> None:
    pipelines = [pipeline(f"p{i:03d}", "rivery" if i % 2 else "tailer", description="d" * 500) for i in range(200)]
    pipelines.append(pipeline("z" * 1000))  # too long for an option value: left out, not cut
    chosen = pipelines[150]
    view = run_modal(pipelines, selected=chosen, channel="C0DATA")
    check_view(view)
    element = view["blocks"][0]["element"]
    values = [o["value"] for g in element["option_groups"] for o in g["options"]]
    assert len(values) == 100 and chosen.name in values
    assert element["initial_option"]["value"] == chosen.name
    assert view["blocks"][0]["hint"]["text"].startswith("Showing 100 of 201")


def test_modal_with_many_hostile_parameters_and_errors() -> None:
    params = {f"p{i}": ParameterSpec(description=EVIL_TEXT * 200, default="d" * 2000) for i in range(150)}
    params["kind"] = ParameterSpec(type="choice", choices=tuple(f"c{i}" for i in range(300)), default="c5")
    chosen = pipeline(description=EVIL_TEXT + HUGE, parameters=params)
    view = run_modal(
        [chosen], selected=chosen, channel="C0DATA", errors={"p0": EVIL_TEXT}, pipeline_error="not allowed",
    )
    check_view(view)
    assert_no_raw_evil(view["blocks"])
    assert view["blocks"][2]["hint"]["text"] == "⚠️ &lt;!channel&gt; &lt;@U123&gt; &lt;https://evil|docs&gt; R&amp;D"
    assert view["blocks"][0]["hint"]["text"] == "⚠️ not allowed"


def test_modal_refuses_oversized_metadata() -> None:
    with pytest.raises(ValueError, match="private_metadata"):
        run_modal([], selected=None, channel="C" * 3000)


def test_parameters_from_state_round_trip() -> None:
    chosen = pipeline(parameters=PARAMS)
    view = run_modal([chosen], selected=chosen, channel="C0DATA")
    values = state_values(view["blocks"], {
        "pipeline": {"pipeline.select": "leads-ods"},
        "param:execution_date": {"value": "2024-02-01"},
        "param:mode": {"value": "full"},
        "param:batch": {"value": " 250 "},
        "param:note": {"value": "two words"},
        "param:comment": {"value": "   "},
    })
    assert pipeline_from_state(values) == "leads-ods"
    assert parameters_from_state(values, chosen) == {
        "execution_date": "2024-02-01", "mode": "full", "batch": "250", "note": "two words",
    }


def test_parameters_from_state_omits_blanks_and_ignores_undeclared_blocks() -> None:
    chosen = pipeline(parameters=PARAMS)
    view = run_modal([chosen], selected=chosen, channel="C0DATA")
    values = state_values(view["blocks"], {})  # Slack sends every input, empty
    values["param:forged"] = {"value": {"type": "plain_text_input", "value": "x"}}
    assert parameters_from_state(values, chosen) == {}
    assert pipeline_from_state(values) is None
    assert pipeline_from_state({}) is None


def test_submission_errors() -> None:
    assert submission_errors({"batch": "must be a whole number"}, pipeline_error="unknown") == {
        "response_action": "errors",
        "errors": {"param:batch": "must be a whole number", "pipeline": "unknown"},
    }


# -- ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "12", "12|60", "x|3600", "12|", "|3600", "12|3600|1", "-1|3600"])
def test_parse_mute_value_rejects_what_the_menu_did_not_write(bad: str) -> None:
    with pytest.raises(ValueError, match=r"mute choice|run id"):
        ids.parse_mute_value(bad)


@pytest.mark.parametrize("bad", ["", "abc", "{}", "[]", '{"op":1,"target":"t"}', '{"op":"a","target":"t","run":"1"}',
                                 '{"op":"a","target":"t","run":true}'])
def test_parse_op_value_rejects_forged_values(bad: str) -> None:
    with pytest.raises(ValueError, match=r"operation value|run must be"):
        ids.parse_op_value(bad)


@pytest.mark.parametrize("bad", ["", "-1", "1.5", "x", "1" * 30])
def test_parse_run_value_rejects_non_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not a run id"):
        ids.parse_run_value(bad)


def test_list_run_pattern() -> None:
    assert ids.LIST_RUN_PATTERN.match(ids.list_run_action_id(7))
    assert ids.LIST_RUN_PATTERN.match(ids.LIST_RUN)
    assert not ids.LIST_RUN_PATTERN.match("list.running")
