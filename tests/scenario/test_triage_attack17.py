"""Issue 17, first independent pass: what a failure's thread and the Full log must never show."""

from __future__ import annotations

import json
from pathlib import Path

from bot.emulators._core import Outcome
from tests.scenario.harness import ENV, RIVER, world


def _text(message: object) -> str:
    return json.dumps(getattr(message, "blocks", []), ensure_ascii=False) + getattr(message, "text", "")


async def test_a_log_that_echoes_another_connections_secret_is_redacted_in_the_thread(tmp_path: Path) -> None:
    """A river's script that prints the DataKitchen password (the same service account, an env dump): Rivery's
    client knows only Rivery's token, the bot knows every connection's secrets."""
    async with world(tmp_path) as w:
        leak = f"connect failed: password={ENV['DK_PASSWORD']} dsn={ENV['INVISION_KEY']}"
        w.emulators["rivery"].state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, log_lines=30,
                                                          failed_tasks=("load",), message=leak))
        await w.command("run leads-ods load_date=2026-11-01")
        await w.card_saying("queued")
        w.advance(10)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the card failed")
        card = w.cards()[-1]
        await w.until(lambda: any("Details of run" in m.text for m in w.thread(card)), what="the details")
        [note] = [m for m in w.thread(card) if "Details of run" in m.text]
        await w.settle()
        posted = [*w.slack.messages("C0GENERAL"), *w.thread(card), *w.slack.messages("C0ALERTS")]
        body = _text(note)
        assert "connect failed" in body
        assert ENV["DK_PASSWORD"] not in body and ENV["INVISION_KEY"] not in body
        await w.slack.click(note.channel, note.ts, "run.log", user="U0CAROL")
        await w.until(lambda: bool(w.slack.open_modals("U0CAROL")), what="the Full log modal")
        [modal] = w.slack.open_modals("U0CAROL")
        await w.until(lambda: "Lines" in _text(w.slack.view(modal.id)), what="the log's last page")
        shown = _text(w.slack.view(modal.id))
        assert "connect failed" in shown
        assert ENV["DK_PASSWORD"] not in shown and ENV["INVISION_KEY"] not in shown
        # the card and the alert carry the provider's message too
        assert all(ENV["DK_PASSWORD"] not in _text(m) for m in posted)


async def test_a_full_log_closed_before_its_log_arrives_says_nothing_more(tmp_path: Path) -> None:
    """Rivery prepares a log for a while (rivery-cli waits minutes): the person closes the modal meanwhile. The
    page that arrives then has no view to go to; that is no error to tell them about."""
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, log_lines=30,
                                                          failed_tasks=("load",), message="disk full"))
        await w.command("run leads-ods load_date=2026-11-01")
        await w.card_saying("queued")
        w.advance(10)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the card failed")
        card = w.cards()[-1]
        await w.until(lambda: any("Details of run" in m.text for m in w.thread(card)), what="the details")
        [note] = [m for m in w.thread(card) if "Details of run" in m.text]
        w.emulators["rivery"].configure({"log_polls": 2})  # about 2 s before the log is ready
        await w.slack.click(note.channel, note.ts, "run.log", user="U0CAROL")
        await w.until(lambda: bool(w.slack.open_modals("U0CAROL")), what="the Full log modal")
        [modal] = w.slack.open_modals("U0CAROL")
        await w.slack.close_view(modal.id)
        asked = len(w.emulators["rivery"].state.requests_to("logs"))
        await w.until(lambda: len(w.emulators["rivery"].state.requests_to("logs")) >= asked + 2, what="the log read")
        await w.until(lambda: bool(w.slack.calls_to("views.update")), what="the page sent")
        await w.settle()
        assert not w.slack.ephemerals(user="U0CAROL") and not w.slack.responses()
