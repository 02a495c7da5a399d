"""An alert's whole life through the signed endpoint and the fake Slack (issue 14, items 1, 2 and 4): posted with its
error, failed tasks and owners; acknowledged, retried ("Retrying as #n…" at once, the retry's card where the first
card is), resolved, its message keeping all of it and a timeline in order, its state said once; reopened by a failure
within the suppression interval; the alert and the card linking each other by permalink."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault, Outcome
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from tests.scenario.harness import FAILING_RIVER, RIVERY_UNLIMITED, World, unlimited_rivery, world

FAIL = Outcome(result="fail", queued_s=0, running_s=1, message="Table <!channel> not found", failed_tasks=("load",))
SUCCEED = Outcome(queued_s=0, running_s=1)
PERMALINK = re.compile(r"<(http://[^|>]+/archives/(C\w+)/p\d+)\|([^>]*)>")


def unlimited(raw: dict[str, Any]) -> None:
    raw["connections"]["rivery"].update(RIVERY_UNLIMITED)


def shown(message: Message) -> str:
    """What a person reads: the message's section and context texts, in order."""
    texts = []
    for block in message.blocks:
        if block.get("type") == "section":
            texts.append(block["text"]["text"])
        elif block.get("type") == "context":
            texts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(texts)


def alerts_of(w: World, pipeline: str) -> list[Message]:
    return [m for m in w.slack.messages("C0ALERTS") if pipeline in m.text]


async def the_alert(w: World, pipeline: str = "orders") -> Message:
    await w.until(lambda: bool(alerts_of(w, pipeline)), 10, what=f"the alert of {pipeline}")
    [alert] = alerts_of(w, pipeline)
    return alert


def now_shows(w: World, alert: Message, words: str) -> bool:
    return words in shown(w.slack.message("C0ALERTS", alert.ts))


async def test_an_alert_keeps_its_story_from_its_post_to_its_resolution(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"]
        rivery.state.script(FAILING_RIVER, [FAIL, SUCCEED])
        await w.command("run orders", user="U0CAROL")  # the card in C0GENERAL; the alert in the default C0ALERTS
        await w.card_saying("orders")
        w.advance(2)
        first_card = await w.card_saying("failed")
        w.advance(2)
        alert = await the_alert(w)
        posted = shown(alert)
        assert posted.startswith("🔴 *orders* on Rivery failed")
        assert "cc <@U0BOB>" in posted  # the owners, mentioned on the first post
        assert "Table &lt;!channel&gt; not found" in posted and "<!channel>" not in posted  # escaped
        tasks = posted[posted.index("*Failed tasks*") :].splitlines()[1]
        assert tasks.startswith("• `") and "load Failed" in tasks  # Rivery names its tasks "task n"
        assert "Started by <@U0CAROL>" in posted
        assert "Open in console" in json.dumps(alert.blocks)

        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_ACK, user="U0BOB")
        await w.until(lambda: now_shows(w, alert, "acknowledged by <@U0BOB>"), 10, what="the acknowledgement")
        acknowledged = w.slack.message("C0ALERTS", alert.ts)
        assert shown(acknowledged).startswith("👀 *orders*") and ids.RUN_ACK not in acknowledged.action_ids

        store = w.runtime.store
        assert store is not None
        [failed] = await store.runs.recent("orders")
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_MUTE, user="U0ALICE", value=ids.mute_value(failed.id, 3600))
        await w.until(lambda: now_shows(w, alert, "muted by <@U0ALICE> until"), 10, what="the mute in the timeline")
        # and in the header, where the state is read (it was only in the timeline: the header said nothing)
        head = shown(w.slack.message("C0ALERTS", alert.ts)).splitlines()[0]
        assert head.startswith("👀 *orders*") and " · 🔕 muted until <!date^" in head, head

        # the retry's trigger is slow to answer: "Retrying as #n…" comes before it, from the run's row
        rivery.state.add_fault(Fault(route="trigger", kind="delay", delay=3, times=1))
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.until(
            lambda: any("Retrying as #" in e.text for e in w.slack.ephemerals("C0ALERTS", "U0ALICE")),
            2.5,
            what="the retry's number, at once",
        )
        [said] = [e.text for e in w.slack.ephemerals("C0ALERTS", "U0ALICE") if "Retrying as #" in e.text]
        retry = next(r for r in await store.runs.recent("orders") if r.retry_of == failed.id)
        assert said == f"🔁 Retrying as #{retry.id}…"
        assert retry.provider_run_id is None  # said before the provider answered the trigger
        # the retry's card goes where the first card is (C0GENERAL), not where Retry was clicked
        await w.until(lambda: len(w.cards("C0GENERAL")) == 2, 15, what="the retry's card")
        assert not w.cards("C0ALERTS")
        w.advance(3)
        await w.until(lambda: now_shows(w, alert, "recovered"), 15, what="the resolution")
        await w.until(
            lambda: bool(PERMALINK.search(shown(w.slack.message("C0ALERTS", alert.ts)).split("retried")[-1])),
            10,
            what="the retry's card linked from the timeline",
        )

        final = w.slack.message("C0ALERTS", alert.ts)
        text = shown(final)
        whole = final.text + json.dumps(final.blocks, ensure_ascii=False)
        assert text.startswith(f"✅ *orders* on Rivery failed · run #{failed.id} · recovered")
        assert f"by run #{retry.id}" in text
        assert sum(whole.count(mark) for mark in ("🔴", "👀", "✅")) == 1  # the state, said once
        assert "Table &lt;!channel&gt; not found" in text and tasks in text and "cc <@U0BOB>" in text
        timeline = text[text.index("*Timeline*") :].splitlines()[1:]
        said_in_order = [re.sub(r"^<!date\^\d+\^\{time\}\|[^>]+> ", "", line) for line in timeline]
        assert said_in_order[0] == f"❌ failed (#{failed.id})"
        assert said_in_order[1] == "🙋 acknowledged by <@U0BOB>"
        assert said_in_order[2].startswith("🔕 muted by <@U0ALICE> until <!date^")
        assert re.fullmatch(
            rf"🔁 retried by <@U0ALICE> as <http://\S+/archives/C0GENERAL/p\d+\|#{retry.id}>", said_in_order[3]
        ), said_in_order[3]
        assert said_in_order[4] == f"🟢 resolved by #{retry.id} (succeeded)"
        assert len(said_in_order) == 5
        assert not final.action_ids or set(final.action_ids) <= {ids.RUN_CONSOLE}  # nothing left to act on
        assert final.text == "orders failed, since recovered"

        # the links both ways: the alert to the failed run's card, the card to the alert and who it paged
        links = {label: (url, channel) for url, channel, label in PERMALINK.findall(text)}
        assert links[f"Run #{failed.id}'s card"][1] == "C0GENERAL"
        assert links[f"Run #{failed.id}'s card"][0].endswith(first_card.ts.replace(".", ""))
        await w.until(
            lambda: "See the alert" in json.dumps(w.slack.message("C0GENERAL", first_card.ts).blocks),
            10,
            what="the card linking its alert",
        )
        card_text = json.dumps(w.slack.message("C0GENERAL", first_card.ts).blocks, ensure_ascii=False)
        assert "🔔 Paged <@U0BOB>" in card_text and f"/archives/C0ALERTS/p{alert.ts.replace('.', '')}" in card_text
        # the owners were pinged once: the post mentioned them, every later version kept the same cc line
        assert all("cc <@U0BOB>" in json.dumps(v.blocks) for v in final.edits)


async def test_a_failure_soon_after_the_resolution_reopens_the_alert_instead_of_posting_another(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, catalog_edit=unlimited) as w:
        unlimited_rivery(w.emulators)  # three runs of one river within a minute or two
        rivery = w.emulators["rivery"]
        rivery.state.script(FAILING_RIVER, [FAIL, SUCCEED, FAIL])
        for number, expect in ((1, "failed"), (2, "succeeded")):
            await w.command("run orders")
            await w.card_saying(f"(run #{number})")
            w.advance(2)
            await w.card_saying(f"orders {expect} (run #{number})")
            w.advance(2)
            await the_alert(w)
        alert = await the_alert(w)
        await w.until(lambda: now_shows(w, alert, "recovered"), 10, what="the resolution")
        w.advance(120)  # well within the suppression interval (1 h)
        await w.command("run orders")
        await w.card_saying("(run #3)")
        w.advance(2)
        await w.card_saying("orders failed (run #3)")
        w.advance(2)
        await w.until(lambda: now_shows(w, alert, "reopened"), 10, what="the alert reopened")
        assert len(alerts_of(w, "orders")) == 1  # no second alert
        text = shown(w.slack.message("C0ALERTS", alert.ts))
        assert text.startswith("🔴 *orders* on Rivery failed 2 times since")
        assert "recovered" not in text.split("\n")[0]  # the header says open, once
        lines = text[text.index("*Timeline*") :].splitlines()[1:]
        assert [re.sub(r"^<!date[^>]+> (\S+) .*$", r"\1", line) for line in lines] == ["❌", "🟢", "↩️"]
        assert ids.RUN_RETRY in w.slack.message("C0ALERTS", alert.ts).action_ids  # open again: act on it


async def test_a_mute_lifted_early_leaves_the_alert_header(tmp_path: Path) -> None:
    """The header said "muted until …" after `/pipeline unmute`, until the mute's old end: the alert lied about
    whether its owners hear of the pipeline's failures."""
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(FAILING_RIVER, [FAIL])
        await w.command("run orders", user="U0CAROL")
        w.advance(2)
        await w.card_saying("failed")
        w.advance(2)
        alert = await the_alert(w)
        assert (await w.command("mute orders 4h", user="U0ALICE")).ok
        await w.until(lambda: "🔕 muted until" in shown(w.slack.message("C0ALERTS", alert.ts)).splitlines()[0], 10,
                      what="the mute in the header")
        assert (await w.command("unmute orders", user="U0ALICE")).ok
        await w.until(lambda: now_shows(w, alert, "unmuted by <@U0ALICE>"), 10, what="the unmute in the timeline")
        head = shown(w.slack.message("C0ALERTS", alert.ts)).splitlines()[0]
        assert "muted until" not in head, head
