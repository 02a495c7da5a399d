"""The failure's evidence and the Full log modal within Block Kit's limits, the provider's words escaped; the pure
choices behind them (relevant lines, pages, the comparison)."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.models import RunState, TaskStatus
from bot.service.evidence import Evidence, compare, page_of, relevant
from bot.slack.blocks import ids
from bot.slack.blocks.evidence import evidence_note, log_modal, log_sections


def _texts(blocks: list[dict[str, object]]) -> list[str]:
    found = []
    for block in blocks:
        text = block.get("text")
        if isinstance(text, dict):
            found.append(str(text["text"]))
    return found


def test_relevant_lines_end_at_the_last_error() -> None:
    lines = [f"INFO {i}" for i in range(30)] + ["ERROR boom"] + [f"INFO after {i}" for i in range(5)]
    shown = relevant(lines, keep=4)
    assert shown == ("INFO 27", "INFO 28", "INFO 29", "ERROR boom")
    assert relevant(["a", "b", "c"], keep=2) == ("b", "c")  # no error: the last lines
    assert relevant([], keep=2) == ()


def test_pages_count_from_the_end_and_clamp() -> None:
    lines = [str(i) for i in range(1, 121)]
    last = page_of(7, lines, 0, size=50)
    assert (last.first, last.lines[0], last.lines[-1], last.pages) == (71, "71", "120", 3)
    first = page_of(7, lines, 2, size=50)
    assert (first.first, first.lines, first.page) == (1, tuple(str(i) for i in range(1, 21)), 2)
    assert page_of(7, lines, 99, size=50) == first and page_of(7, lines, -3, size=50) == last
    empty = page_of(7, [], 0)
    assert (empty.lines, empty.pages, empty.total) == ((), 1, 0)


def test_the_comparison_names_what_differs() -> None:
    passed = (TaskStatus("extract", RunState.SUCCEEDED, "D"), TaskStatus("load", RunState.SUCCEEDED, "D"))
    now = (TaskStatus("extract", RunState.SUCCEEDED, "D"), TaskStatus("load", RunState.FAILED, "F"),
           TaskStatus("new", RunState.FAILED, "F"))
    got = compare(success_id=3, success_ended=None, durations=(timedelta(seconds=5), timedelta(seconds=50)),
                  parameters=({"day": "1", "same": "x", "gone": "y"}, {"day": "2", "same": "x", "added": "z"}),
                  tasks=(passed, now))
    assert got.parameters == (("added", None, "z"), ("day", "1", "2"), ("gone", "y", None))
    assert got.steps == ("load",)  # "new" did not pass then: it did not exist
    assert (got.duration_then, got.duration_now, got.steps_known) == (timedelta(seconds=5), timedelta(seconds=50), True)
    unknown = compare(success_id=3, success_ended=None, durations=(None, None), parameters=({}, {}), tasks=((), now))
    assert not unknown.steps_known and unknown.steps == ()


def test_hostile_and_huge_log_lines_stay_inside_their_code_blocks_and_the_limits() -> None:
    hostile = ["<!channel> ```closed``` <https://evil|docs> & " + "x" * 5000] * 60
    blocks = log_sections(hostile, limit=100)
    for text in _texts(blocks):
        assert len(text) <= 3000
        assert text.startswith("```") and text.endswith("```") and text.count("```") == 2
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "<https://" not in text


def test_the_note_offers_full_log_and_resume_only_when_there_is_something_to_open_or_resume() -> None:
    note = Evidence(run_id=4, display_name="DataKitchen", lines=("ERROR x",), total_lines=10, source="POST details",
                    can_resume=True)
    _, blocks = evidence_note(note)
    sent = json.dumps(blocks)
    assert ids.RUN_LOG in sent and ids.RUN_RESUME in sent and "1 of 10 lines" in sent
    _, blocks = evidence_note(Evidence(run_id=4, display_name="InVision", missing="InVision's API gives no log <!here>"))
    sent = json.dumps(blocks)
    assert ids.RUN_LOG not in sent and ids.RUN_RESUME not in sent
    assert "&lt;!here&gt;" in sent and "<!here>" not in sent
    assert len(blocks) <= 50


def test_a_full_log_page_fits_a_modal() -> None:
    lines = ["y" * 400] * 10_000
    view = log_modal(page_of(9, lines, 3))
    assert len(view["blocks"]) <= 100
    assert all(len(t) <= 3000 for t in _texts(view["blocks"]))
    sent = json.dumps(view, ensure_ascii=False)
    assert ids.LOG_EARLIER in sent and ids.LOG_LATER in sent and len(view["title"]["text"]) <= 24
    assert "Lines 9801–9850 of 10000" in sent
