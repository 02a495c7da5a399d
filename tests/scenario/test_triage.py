"""Triage starts in the failure's thread: the provider's own log (last relevant lines, escaped, redacted), what
changed since the pipeline's last success, and a Full log modal that pages through a 10,000-line log; on Rivery
(its legacy log download) and on DataKitchen (its order-run details)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.emulators._core import Fault, Outcome
from bot.emulators.slack.server import Message
from bot.store import keys
from bot.store.engine import make_engine
from bot.store.store import Store
from bot.store.tables import runs
from tests.scenario.harness import ENV, FLOW, RIVER, World, world
from tests.scenario.surface import add_stranger, reply_to, run_number

DK_KEY = "production/sales_dashboard/daily"


def text_of(message: object) -> str:
    return json.dumps(getattr(message, "blocks", []), ensure_ascii=False) + getattr(message, "text", "")


async def _evidence(w: World, card: Message) -> Message:
    def found() -> list[Message]:
        return [m for m in w.thread(card) if "Details of run" in m.text]

    await w.until(lambda: bool(found()), what="the provider's details in the failure's thread")
    [note] = found()
    return note


async def _second_failed(w: World) -> Message:
    """The second card, once it says its run failed (the first card's words may hold "failed" too)."""
    await w.until(lambda: len(w.cards()) == 2 and "failed" in w.cards()[-1].text, what="the second card failed")
    return w.cards()[-1]


async def _succeed_then_fail(w: World, first: str, second: str, emulator: str, key: str, outcome: Outcome,
                             user: str = "U0BOB") -> Message:
    """A success of the pipeline, then a failure of it: the failure's card."""
    await w.command(first, user=user)
    await w.card_saying("queued")
    w.advance(10)
    await w.card_saying("succeeded")
    w.emulators[emulator].state.script(key, outcome)
    w.advance(40)  # past Rivery's two runs of a river a minute
    await w.command(second, user=user)
    await w.until(lambda: len(w.cards()) == 2, what="the second card")
    w.advance(40)
    return await _second_failed(w)


async def test_a_failed_rivery_run_shows_its_log_and_what_changed_since_the_last_success(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, Outcome(queued_s=1, running_s=5))
        failing = Outcome(result="fail", queued_s=1, running_s=20, tasks=("extract", "load"), failed_tasks=("load",),
                          message=f"Table <!channel> not found (token {ENV['RIVERY_TOKEN']})")
        await w.command("run leads-ods load_date=2026-11-01")
        await w.card_saying("queued")
        w.advance(10)
        card = await _succeed_then_fail_after(w, failing)
        note = await _evidence(w, card)
        body = text_of(note)
        assert "From Rivery" in body and "ERROR" in body
        assert "&lt;!channel&gt;" in body and "<!channel>" not in body  # the log's words, escaped
        assert ENV["RIVERY_TOKEN"] not in body  # and redacted
        assert "activities/runs/logs" in body  # where the lines come from
        assert "Since the last success" in body and "run #1" in body
        assert "`load_date`" in body and "2026-11-01" in body and "2026-11-02" in body
        assert "Failed now, passed then: `task 2`" in body  # check_run names no task: the bot numbers them
        assert "Duration:" in body
        assert "run.resume" not in note.action_ids  # Rivery cannot resume a run
        # fetched once: a second look at the thread later finds the same one note
        w.advance(60)
        await w.settle()
        assert len([m for m in w.thread(card) if "run.log" in m.action_ids]) == 1
        assert len(w.emulators["rivery"].state.requests_to("logs")) >= 2


async def _succeed_then_fail_after(w: World, failing: Outcome) -> Message:
    await w.card_saying("succeeded")
    w.emulators["rivery"].state.script(RIVER, failing)
    w.advance(40)
    await w.command("run leads-ods load_date=2026-11-02")
    await w.until(lambda: len(w.cards()) == 2, what="the second card")
    w.advance(40)
    return await _second_failed(w)


async def test_the_full_log_of_a_10000_line_log_pages_in_a_modal(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, log_lines=10_000,
                                                          failed_tasks=("load",), message="disk full"))
        await w.command("run leads-ods load_date=2026-11-01")
        await w.card_saying("queued")
        w.advance(10)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the card failed")
        card = w.cards()[-1]
        note = await _evidence(w, card)
        assert "of 10002 lines" in text_of(note)
        assert len(json.dumps(note.blocks)) < 12_000  # the thread shows the last lines, not the log
        await w.slack.click(note.channel, note.ts, "run.log", user="U0CAROL")
        await w.until(lambda: bool(w.slack.open_modals("U0CAROL")), what="the Full log modal")
        [modal] = w.slack.open_modals("U0CAROL")  # opened at once, saying it reads the log
        await w.until(lambda: "Lines" in text_of(w.slack.view(modal.id)), what="the log's last page")
        modal = w.slack.view(modal.id)
        first = text_of(modal)
        assert "Lines 9953–10002 of 10002" in first and "page 201 of 201" in first
        assert "disk full" in first
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in modal.blocks)
        await w.slack.click_view(modal.id, "log.earlier", user="U0CAROL")
        await w.until(lambda: "Lines 9903–9952" in text_of(w.slack.view(modal.id)), what="the earlier page")
        earlier = text_of(w.slack.view(modal.id))
        assert "step 9903 of 10000" in earlier and "step 9952 of" in earlier and "step 9953 of" not in earlier
        await w.slack.click_view(modal.id, "log.later", user="U0CAROL")
        await w.until(lambda: "Lines 9953–10002" in text_of(w.slack.view(modal.id)), what="back to the end")


def _unwatched(raw: dict[str, Any]) -> None:
    """sales-dashboard not watched: the success compared with is the test's own run, not one the watch adopted."""
    raw["pipelines"]["sales-dashboard"]["watch"] = False


async def test_a_failed_datakitchen_run_shows_its_order_run_details_and_offers_resume(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_unwatched) as w:
        dk = w.emulators["datakitchen"]
        dk.state.script(DK_KEY, Outcome(queued_s=1, running_s=5, tasks=("extract", "transform", "publish")))
        failing = Outcome(result="fail", queued_s=1, running_s=20, tasks=("extract", "transform", "publish"),
                          failed_tasks=("transform",), message=f"bad row (password {ENV['DK_PASSWORD']})")
        card = await _succeed_then_fail(w, "run sales-dashboard source_date=2026-11-01",
                                        "run sales-dashboard source_date=2026-11-03", "datakitchen", DK_KEY, failing,
                                        user="U0ALICE")
        note = await _evidence(w, card)
        body = text_of(note)
        assert "From DataKitchen" in body and "[transform] ERROR node transform: bad row" in body
        assert ENV["DK_PASSWORD"] not in body
        assert "v2/order/details" in body
        assert "Failed now, passed then: `transform`" in body and "2026-11-03" in body, body
        assert "run.resume" in note.action_ids

        # a person without the right to retry cannot resume either
        dave = add_stranger(w)
        _, refused = await reply_to(w, w.slack.click(note.channel, note.ts, "run.resume", user=dave), user=dave)
        assert "You may not resume *sales-dashboard*" in refused.text
        assert not dk.state.requests_to("resume")

        # Resume from the failed step: DataKitchen resumes the order run (PUT v2/order/resume), as Retry would be
        # allowed (U0ALICE: allow_change); the new attempt is linked as a retry
        await w.slack.click(note.channel, note.ts, "run.resume", user="U0ALICE")
        await w.until(lambda: len(dk.state.requests_to("resume")) == 1, what="DataKitchen asked to resume")
        await w.until(lambda: len(w.cards()) == 3, what="the resumed run's card")
        assert "Retry of #2" in text_of(w.cards()[-1])
        assert len(dk.state.requests_to("trigger")) == 2  # no new order: the failed one resumed

        # Rivery cannot resume at all: said so
        await w.command("run orders", user="U0ALICE")
        await w.until(lambda: "orders is queued" in w.cards()[-1].text, what="the Rivery run")
        rivery_run = run_number(w.cards()[-1])
        w.advance(40)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the Rivery run failed")
        _, refused = await reply_to(w, w.slack.click(note.channel, note.ts, "run.resume", user="U0ALICE",
                                                     value=str(rivery_run)))
        assert "Rivery cannot resume a run from its failed step: Retry runs *orders* again" in refused.text
        assert len(dk.state.requests_to("resume")) == 1
        assert not w.emulators["rivery"].state.requests_to("resume")


async def test_invision_s_failure_thread_says_it_gives_no_log_and_a_failing_full_log_says_why(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.emulators["invision"].state.script(FLOW, Outcome(result="fail", queued_s=1, running_s=2))
        await w.command("run budget", user="U0ALICE")
        await w.card_saying("budget is queued")
        w.advance(10)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the InVision run failed")
        note = await _evidence(w, w.cards()[-1])
        assert "InVision's API gives no log and no step details" in text_of(note)
        assert "run.log" not in note.action_ids and "run.resume" not in note.action_ids

        # Rivery's log download failing for good when the Full log is opened: the modal says so, escaped
        await w.command("run orders", user="U0ALICE")
        await w.until(lambda: "orders is queued" in w.cards()[-1].text, what="the Rivery run")
        w.advance(40)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the Rivery run failed")
        note = await _evidence(w, w.cards()[-1])
        w.emulators["rivery"].state.add_fault(Fault(route="logs", status=503, times=None))
        await w.slack.click(note.channel, note.ts, "run.log", user="U0ALICE")
        await w.until(lambda: bool(w.slack.open_modals("U0ALICE")), what="the Full log modal")
        [modal] = w.slack.open_modals("U0ALICE")
        await w.until(lambda: "⚠️" in text_of(w.slack.view(modal.id)), what="the modal saying why")
        assert "Rivery" in text_of(w.slack.view(modal.id))


async def test_a_watched_runs_failure_shows_its_log_in_its_alerts_thread(tmp_path: Path) -> None:
    """A run started outside Slack has no card: its failure is announced as an alert, and its evidence goes in
    that alert's thread (it was never read: the sweep took only runs with a card)."""
    async with world(tmp_path) as w:
        w.advance(120)  # the emulators' clock is past the moment watching began
        await w.settle(0.5)  # one watch cycle: watching begins
        dk = w.emulators["datakitchen"]
        dk.external_run(DK_KEY, {}, Outcome(result="fail", queued_s=1, running_s=2, tasks=("extract", "load"),
                                             failed_tasks=("load",), message="Node load failed: <!here> quota"))
        w.advance(5)

        def alert() -> list[Message]:
            return [m for m in w.slack.messages("C0ALERTS") if "sales-dashboard" in m.text]

        await w.until(lambda: bool(alert()), what="the alert for the external failure")
        note = await _evidence(w, alert()[0])  # in the alert's own thread
        body = text_of(note)
        assert "From DataKitchen" in body and "[load] ERROR node load: Node load failed" in body
        assert "&lt;!here&gt;" in body and "<!here>" not in body
        assert "v2/order/details" in body
        await w.slack.click(note.channel, note.ts, "run.log", user="U0CAROL")
        await w.until(lambda: bool(w.slack.open_modals("U0CAROL")), what="the Full log modal")
        [modal] = w.slack.open_modals("U0CAROL")
        await w.until(lambda: "Node load failed" in text_of(w.slack.view(modal.id)), what="the log in the modal")
        await w.settle()
        assert len([m for m in w.thread(alert()[0]) if "Details of run" in m.text]) == 1  # once


async def test_a_failure_left_without_its_evidence_by_a_stop_gets_it_from_the_restarted_bot(tmp_path: Path) -> None:
    """The bot stopped after handling a failure and before its evidence was read, and stayed down two hours: the
    failure is older than the running sweep's hour, and the restarted bot's first sweeps (a day back) read it."""
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"].state
        rivery.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, failed_tasks=("load",),
                                     message="disk full"))
        rivery.add_fault(Fault(route="logs", kind="delay", delay=4.0, times=None))  # the log read outlives the stop
        await w.command("run leads-ods load_date=2026-11-01")
        await w.card_saying("queued")
        w.advance(10)
        card = await w.card_saying("failed")
        await w.until(lambda: any("failed" in m.text for m in w.thread(card)), what="the failure's details")
        await w.until(lambda: bool(rivery.requests_to("logs")), what="the sweep reading the log")
        store = w.runtime.store
        assert store is not None
        [run_id] = [r for r in await store.runs.many(range(1, 10))]
        await w.runtime.stop()
        await _two_hours_ago(tmp_path, run_id)
        rivery.clear_faults()

        await w.restart()
        note = await _evidence(w, card)
        assert "disk full" in text_of(note)


async def _two_hours_ago(tmp_path: Path, run_id: int) -> None:
    """The failure recorded (and ended) two hours ago: the bot has been down since."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        written = await Store(engine).outbox.written_at(keys.run_evidence(run_id))
        assert written is None, "the note was written before the stop: nothing left to catch up"
        async with engine.begin() as conn:
            times = ("created_at", "started_at", "updated_at", "ended_at")
            row = (await conn.execute(select(*(runs.c[c] for c in times)).where(runs.c.id == run_id))).one()
            earlier = {c: at - timedelta(hours=2) for c, at in zip(times, row, strict=True)}
            await conn.execute(update(runs).where(runs.c.id == run_id).values(**earlier))
    finally:
        await engine.dispose()


async def test_the_full_log_of_a_datakitchen_log_longer_than_the_bot_keeps_pages_the_whole_export(
    tmp_path: Path,
) -> None:
    """25,005 log entries: the details' log is kept from its end (20,000 lines) for the thread, and the Full log
    pages through the whole log, read from DataKitchen's full-log export."""
    async with world(tmp_path, catalog_edit=_unwatched) as w:
        dk = w.emulators["datakitchen"]
        dk.state.script(DK_KEY, Outcome(result="fail", queued_s=1, running_s=5, tasks=("extract", "load"),
                                        failed_tasks=("load",), message="disk full", log_lines=25_000))
        await w.command("run sales-dashboard", user="U0ALICE")
        await w.card_saying("queued")
        w.advance(10)
        card = await w.card_saying("failed")
        note = await _evidence(w, card)
        await w.slack.click(note.channel, note.ts, "run.log", user="U0ALICE")
        await w.until(lambda: bool(w.slack.open_modals("U0ALICE")), what="the Full log modal")
        [modal] = w.slack.open_modals("U0ALICE")
        await w.until(lambda: "Lines" in text_of(w.slack.view(modal.id)), what="the log's last page")
        last = text_of(w.slack.view(modal.id))
        assert "Lines 24956–25005 of 25005 (page 501 of 501)" in last, last
        assert "disk full" in last
        assert dk.state.requests_to("export_log")
        await w.slack.click_view(modal.id, "log.earlier", user="U0ALICE")
        await w.until(lambda: "Lines 24906–24955" in text_of(w.slack.view(modal.id)), what="the earlier page")
        # the export refused: the lines the details gave are paged instead (the log's last 20,000)
        dk.state.add_fault(Fault(route="export_log", status=404, times=None))
        await w.slack.click_view(modal.id, "log.later", user="U0ALICE")
        await w.until(lambda: "of 20000" in text_of(w.slack.view(modal.id)), what="the kept lines paged")
