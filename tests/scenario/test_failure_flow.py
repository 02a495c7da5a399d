"""A failing run: card updated, details in its thread with owners mentioned, Retry (once, even when
double-clicked) starts a linked run, Acknowledge and Mute work and are audited."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.scenario.harness import world


def text_of(message: object) -> str:
    return json.dumps(getattr(message, "blocks", [])) + getattr(message, "text", "")


async def test_failure_details_retry_acknowledge_and_mute(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run orders", user="U0BOB")
        card = await w.card_saying("queued")
        w.advance(40)
        failed = await w.card_saying("failed")
        assert failed.ts == card.ts
        await w.until(lambda: len(w.thread(failed)) == 1, what="failure details in the thread")
        [details] = w.thread(failed)
        body = text_of(details)
        # the card sits where the run was started; owners are pinged once, in the pipeline's alert channel
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the alert")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        assert "<@U0BOB>" in text_of(alert)
        assert "<@U0BOB>" not in body
        assert "not found" in body
        assert "<!channel>" not in body and "&lt;!channel&gt;" in body  # the provider's text, escaped
        assert "load" in body  # the failed task

        # two clicks at once start one run
        rivery = w.emulators["rivery"]
        triggers_before = len(rivery.state.requests_to("trigger"))
        await asyncio.gather(
            w.slack.click(failed.channel, failed.ts, "run.retry", user="U0BOB"),
            w.slack.click(failed.channel, failed.ts, "run.retry", user="U0BOB"),
        )
        retry = await w.card_saying("Retry of #1")
        await w.until(lambda: "Retried as #2" in text_of(w.slack.message(failed.channel, failed.ts)),
                      what="the failed card linking to its retry")
        await w.settle()
        assert len(rivery.state.requests_to("trigger")) == triggers_before + 1
        assert len(w.cards()) == 2
        assert any("already retried" in r.text for r in w.slack.responses("U0BOB"))
        assert "run.retry" not in w.slack.message(failed.channel, failed.ts).action_ids
        assert retry.ts != failed.ts

        # acknowledge: the card shows who is on it
        await w.slack.click(failed.channel, failed.ts, "run.ack", user="U0ALICE")
        await w.until(lambda: "is on it" in text_of(w.slack.message(failed.channel, failed.ts)),
                      what="the acknowledgement on the card")
        assert "<@U0ALICE>" in text_of(w.slack.message(failed.channel, failed.ts))

        # mute from the card: allowed for U0ALICE (allow_change), shown on the card, audited
        await w.slack.click(failed.channel, failed.ts, "run.mute", user="U0ALICE", value="1|3600")
        await w.until(lambda: any("muted until" in r.text for r in w.slack.responses("U0ALICE")),
                      what="the mute confirmation")
        muted = await w.runtime.store.mutes.active(now=w.runtime.now())
        assert "orders" in muted

        audit = {(e.action, e.outcome, e.user_id) for e in await w.runtime.store.audit.entries()}
        assert ("run", "ok", "U0BOB") in audit
        assert ("acknowledge", "ok", "U0ALICE") in audit
        assert ("mute", "ok", "U0ALICE") in audit
