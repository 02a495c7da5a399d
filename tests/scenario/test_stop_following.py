"""A run whose connection left the catalog for good: the bot cannot ask how it goes nor cancel it, so it stayed in
flight for ever (in ``status``, holding a workflow's step) with nothing in Slack to end it. Whoever may cancel it
can now stop following it, from its card or from ``/pipeline cancel``: it ends here as unknown, saying who ended
it and that it may still run at the provider, and is not retried."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.slack.blocks import ids
from tests.scenario.harness import World, world
from tests.scenario.surface import add_stranger, answered_in_place, ask, audit_of, reply_to, shown


def _gone(raw: dict[str, Any]) -> None:
    del raw["connections"]["invision"]
    del raw["pipelines"]["budget"]


async def _run_left_behind(w: World) -> None:
    """``run budget`` by Alice, then a deploy without InVision: the bot cannot follow run #1 any more."""
    await w.command("run budget")
    await w.card_saying("budget is queued")
    await w.restart(_gone)
    for _ in range(6):
        w.advance(30)
        await w.settle(0.2)
    await w.card_saying("so the bot cannot ask how it went")


async def test_stop_following_from_the_card_ends_the_run_for_whoever_may_cancel_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await _run_left_behind(w)
        card = await w.card_saying("so the bot cannot ask how it went")
        assert ids.RUN_STOP_FOLLOWING in card.action_ids and ids.RUN_CANCEL not in card.action_ids
        assert "or stop following it" in shown(card)

        stranger = add_stranger(w)
        _, refused = await reply_to(
            w, w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user=stranger), user=stranger
        )
        assert "who started the run" in refused.text, refused.text  # says who may
        _, refused = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user="U0BOB"),
                                    user="U0BOB")  # an owner of other pipelines, not of this run
        assert "who started the run" in refused.text, refused.text
        assert "is no longer followed" not in shown(await w.card_saying("budget"))

        _, done = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user="U0ALICE"))
        assert "Stopped following run #1" in done.text, done.text
        ended = await w.card_saying("budget is no longer followed")
        assert "<@U0ALICE> stopped following it" in shown(ended), shown(ended)
        assert "may still run on InVision" in shown(ended) or "may still run on invision" in shown(ended)
        # no alert to acknowledge or mute; Retry as for any unknown end (its pipeline left too: refused, saying what works)
        assert ended.action_ids == [ids.RUN_RETRY], ended.action_ids
        await w.until(lambda: any("<@U0ALICE> stopped following this run" in m.text for m in w.thread(ended)), 5,
                      what="the thread's note")
        _, refused = await reply_to(w, w.slack.click("C0GENERAL", ended.ts, ids.RUN_RETRY, user="U0ALICE"))
        assert "put it back in pipelines.yml" in refused.text, refused.text

        status = await ask(w, "status")
        assert "#1" not in status.text and "budget" not in status.text, status.text  # no longer in flight
        record = await w.runtime.parts.store.runs.get(1)
        assert record is not None and record.final and record.state == "unknown"
        assert [(e.action, e.outcome, e.user_id) for e in await audit_of(w) if e.action == "stop following"] == [
            ("stop following", "refused", stranger), ("stop following", "refused", "U0BOB"),
            ("stop following", "ok", "U0ALICE"),
        ]

        # the connection put back: the run stays as it was ended, not polled again
        await w.restart(lambda raw: None)
        asked = len(w.emulators["invision"].state.requests)
        for _ in range(6):
            w.advance(30)
            await w.settle(0.2)
        assert len(w.emulators["invision"].state.requests) == asked
        assert (await w.runtime.parts.store.runs.get(1)) == record


async def test_cancel_of_a_run_the_bot_cannot_follow_offers_to_stop_following_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await _run_left_behind(w)
        prompt = await ask(w, "cancel 1")
        assert "cannot be canceled from here" in prompt.text, prompt.text
        assert "provider's console" in prompt.text and "put the connection back" in prompt.text, prompt.text
        assert "Stop following it?" in prompt.text and "may still run at the provider" in prompt.text, prompt.text
        assert prompt.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS]
        answer = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=prompt.ts), prompt)
        assert "Stopped following run #1" in answer.text, answer.text
        await w.card_saying("budget is no longer followed")

        again = await ask(w, "cancel 1")
        assert "already ended (unknown)" in again.text, again.text


async def test_a_run_the_bot_still_follows_is_canceled_not_dropped(tmp_path: Path) -> None:
    """Stop following is only for a run whose connection this bot lacks: a click on an old card's button (or a
    replayed one) once the connection is back is refused, saying what stops it at its provider."""
    async with world(tmp_path) as w:
        await _run_left_behind(w)
        card = await w.card_saying("so the bot cannot ask how it went")
        await w.restart(lambda raw: None)
        _, refused = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user="U0ALICE"))
        # InVision offers no cancel: "Cancel it to stop it at its provider" named a button the card does not have
        assert "The bot follows run #1" in refused.text and "InVision offers no cancel" in refused.text, refused.text
        record = await w.runtime.parts.store.runs.get(1)  # followed again (it may have ended since, as InVision says)
        assert record is not None and record.stopped_by is None and record.state != "unknown", record
