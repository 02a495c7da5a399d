"""The App Home, rebuilt each time it is opened: what is running, the open alerts, the mutes and the last day's
failures, a muted failure included (nothing is ever silently dropped)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.emulators.slack import payloads
from bot.emulators.slack.server import FakeView, Message
from bot.slack.blocks import ids
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import ask


def home_text(w: World, user: str = "U0ALICE") -> str:
    view = w.slack.home(user)
    return "\n".join(b["text"]["text"] for b in (view.blocks if view else []) if b.get("type") == "section")


def part(text: str, title: str) -> str:
    """One list of the Home tab: from its title to the next list's."""
    start = text.index(title)
    ends = [text.index(t, start + 1) for t in ("*My pipelines*", "*In flight*", "*Open alerts*", "*Muted*",
                                               "*Failures in the last", "*My subscriptions*")
            if t in text[start + 1:]]
    return text[start:min(ends, default=len(text))]


def run_number(card_text: str) -> str:
    found = re.search(r"#(\d+)", card_text)
    assert found, card_text
    return found.group(1)


async def open_home(w: World, saying: str, user: str = "U0ALICE") -> FakeView:
    await w.slack.open_home(user)
    await w.until(lambda: saying in home_text(w, user), what=f"the Home tab saying {saying!r}\n{home_text(w, user)}")
    view = w.slack.home(user)
    assert view is not None
    return view


async def orders_failed(w: World) -> tuple[Message, str]:
    """``run orders`` (its river fails), up to its alert in C0ALERTS: the failed card and the run's number."""
    await w.command("run orders", user="U0BOB")
    await w.card_saying("orders is queued")
    w.advance(40)
    failed = await w.card_saying("orders failed")
    await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the alert")
    return failed, run_number(json.dumps(failed.blocks))


async def test_the_home_shows_runs_in_flight_open_alerts_mutes_and_failures(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        first = await open_home(w, "_Nothing running._")
        assert "_No open alerts._" in home_text(w) and "_Nothing muted._" in home_text(w)

        # an ordinary failure: its alert goes to the default channel
        failed, failed_id = await orders_failed(w)
        await w.slack.click(failed.channel, failed.ts, "run.ack", user="U0ALICE")
        await w.until(lambda: "is on it" in json.dumps(w.slack.message(failed.channel, failed.ts).blocks),
                      what="the acknowledgement")

        # a mute, then a failure of the muted pipeline: recorded, not announced, but on the Home tab
        assert (await w.command("mute budget 4h", user="U0ALICE")).ok
        await w.until(lambda: any("muted until" in r.text for r in w.slack.responses("U0ALICE")), what="the mute")
        w.emulators["invision"].state.script(FLOW, Outcome(result="fail", queued_s=5, running_s=30,
                                                            message="Dataflow broke"))
        await w.command("run budget", user="U0BOB")
        await w.card_saying("budget is queued")
        w.advance(40)
        muted_card = await w.card_saying("budget failed")
        muted_id = run_number(json.dumps(muted_card.blocks))

        # and one still running
        await w.command("run leads-ods", user="U0BOB")
        running = await w.card_saying("leads-ods is queued")
        running_id = run_number(json.dumps(running.blocks))
        await w.settle()

        view = await open_home(w, "*In flight* (1)")
        assert view.id == first.id  # the same Home tab, published again
        text = home_text(w)
        flying = part(text, "*In flight* (1)")
        assert f"*leads-ods* #{running_id}" in flying

        alerts = part(text, "*Open alerts*")
        orders = next(line for line in alerts.split("\n") if "*orders*" in line)
        assert "failed" in orders and f"run #{failed_id}" in orders and "👀 <@U0ALICE> is on it" in orders
        budget = next(line for line in alerts.split("\n") if "*budget*" in line)
        assert "🔕 muted" in budget and f"run #{muted_id}" in budget

        assert re.search(r"🔕 \*budget\* until <!date\^\d+\^[^|]+\|[^>]+> by <@U0ALICE>", part(text, "*Muted* (1)"))

        failures = part(text, "*Failures in the last 24 h* (2, 1 muted)")
        orders_failure = next(line for line in failures.split("\n") if f"*orders* #{failed_id}" in line)
        assert "🔕" not in orders_failure and "👀 <@U0ALICE>" in orders_failure
        budget_failure = next(line for line in failures.split("\n") if f"*budget* #{muted_id}" in line)
        assert "🔕 muted" in budget_failure
        assert "> Table &lt;!channel&gt; not found" in failures  # the provider's words, escaped
        assert "<!channel>" not in json.dumps(view.blocks)
        assert not any("budget" in m.text for m in w.slack.messages("C0ALERTS"))  # muted: never announced


def _watched(w: World, pipeline: str) -> bool:
    with sqlite3.connect(w.tmp / "bot.db") as db:
        return bool(db.execute("select 1 from watches where pipeline = ?", (pipeline,)).fetchall())


def schedule_leads(raw: dict[str, Any]) -> None:
    raw["pipelines"]["leads-ods"]["schedule"] = {"cron": "0 6 * * *", "timezone": "UTC", "missed": "skip"}


def row_of(text: str, pipeline: str) -> str:
    """A pipeline's row under "My pipelines": its two lines."""
    mine = part(text, "*My pipelines*")
    start = mine.rindex("\n", 0, mine.index(f"*{pipeline}*")) + 1
    return "\n".join(mine[start:].split("\n")[:2])


async def test_an_owner_sees_their_pipelines_acknowledges_from_home_and_refresh_redraws(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=schedule_leads) as w:
        # bob owns orders and leads-ods by name, and, in data-eng, every pipeline with the default owners
        await w.command("run orders", user="U0BOB")
        await w.card_saying("orders is queued")
        w.advance(40)
        failed = await w.card_saying("orders failed")
        failed_id = run_number(json.dumps(failed.blocks))
        await w.until(lambda: any(ids.RUN_ACK in json.dumps(m.blocks) for m in w.slack.messages("C0ALERTS")),
                      what="the alert")
        alert = next(m for m in w.slack.messages("C0ALERTS") if ids.RUN_ACK in json.dumps(m.blocks))

        view = await open_home(w, "*My pipelines*", user="U0BOB")
        text = home_text(w, "U0BOB")
        orders = row_of(text, "orders")
        assert orders.startswith("❌ *orders* · you own it") and f"last: failed #{failed_id}" in orders
        assert orders.endswith("❌ · not scheduled"), orders  # its one run, as the trend
        leads = row_of(text, "leads-ods")
        assert "no runs yet" in leads and re.search(r"next run <!date\^\d+\^", leads), leads
        assert part(text, "*My pipelines*").index("*orders*") < part(text, "*My pipelines*").index("*leads-ods*")
        # a Run button per row, the list's: it opens the run modal with the pipeline chosen
        run = next(e for _, e in payloads.interactive_elements(view.blocks) if e.get("value") == "orders"
                   and str(e["action_id"]).startswith(ids.LIST_RUN))
        assert (await w.slack.click_view(view.id, str(run["action_id"]), user="U0BOB")).ok
        await w.until(lambda: bool(w.slack.open_modals("U0BOB")), what="the run modal")
        assert "orders" in json.dumps(w.slack.open_modals("U0BOB")[-1].blocks)

        # Acknowledge from the Home tab: the alert's own action and check; the alert says so, the tab too
        ack = next(e for _, e in payloads.interactive_elements(view.blocks)
                   if str(e["action_id"]).startswith(ids.RUN_ACK))
        assert ack["value"] == failed_id
        response = await w.slack.click_view(view.id, str(ack["action_id"]), user="U0BOB")
        assert response.ok and response.within_deadline
        await w.until(lambda: "acknowledged by <@U0BOB>" in json.dumps(w.slack.message("C0ALERTS", alert.ts).blocks),
                      10, what="the alert saying it was acknowledged")
        await w.until(lambda: f"👀 You are on run #{failed_id} of *orders*" in home_text(w, "U0BOB"),
                      what="the Home tab's answer")
        redrawn = w.slack.home("U0BOB")
        assert redrawn is not None and redrawn.id == view.id
        assert "👀 <@U0BOB> is on it" in part(home_text(w, "U0BOB"), "*Open alerts*")
        assert not [e for _, e in payloads.interactive_elements(redrawn.blocks)
                    if str(e["action_id"]).startswith(ids.RUN_ACK)], "Acknowledge offered twice"

        # Refresh redraws: a run started meanwhile shows as in flight
        await w.command("run leads-ods", user="U0BOB")
        await w.card_saying("leads-ods is queued")
        assert "*In flight* (0)" in home_text(w, "U0BOB")
        refresh = next(e for _, e in payloads.interactive_elements(redrawn.blocks)
                       if e["action_id"] == ids.HOME_REFRESH)
        assert (await w.slack.click_view(redrawn.id, str(refresh["action_id"]), user="U0BOB")).ok
        await w.until(lambda: "*In flight* (1)" in home_text(w, "U0BOB"), what="the refreshed Home tab")
        assert "👀 You are on run" not in home_text(w, "U0BOB")  # the answer to the last click is gone


async def test_unmute_from_home_lifts_the_mute_and_a_recovered_failure_is_marked(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.emulators["invision"].state.script(FLOW, [Outcome(result="fail", queued_s=5, running_s=30,
                                                            message="Dataflow broke"),
                                                    Outcome(queued_s=5, running_s=30)])
        await w.command("run budget", user="U0BOB")
        await w.card_saying("budget is queued")
        w.advance(40)
        failed = await w.card_saying("budget failed")
        failed_id = run_number(json.dumps(failed.blocks))
        await w.command("run budget", user="U0BOB")
        await w.card_saying("budget is queued")  # the first card says failed by now: this is the second's
        w.advance(40)
        await w.until(lambda: any("budget succeeded" in m.text for m in w.slack.messages("C0GENERAL")), 10,
                      what="the second run's success")
        assert (await w.command("mute budget 4h", user="U0ALICE")).ok
        await w.until(lambda: any("muted until" in r.text for r in w.slack.responses("U0ALICE")), what="the mute")

        view = await open_home(w, "*Muted* (1)", user="U0BOB")
        failures = part(home_text(w, "U0BOB"), "*Failures in the last 24 h*")
        assert f"*budget* #{failed_id}" in failures and "✅ recovered by #" in failures
        unmute = next(e for _, e in payloads.interactive_elements(view.blocks)
                      if str(e["action_id"]).startswith(ids.HOME_UNMUTE))
        assert unmute["value"] == "budget"  # bob owns budget through data-eng: he may lift an owner's mute
        assert (await w.slack.click_view(view.id, str(unmute["action_id"]), user="U0BOB")).ok
        await w.until(lambda: "🔔 Unmuted *budget*" in home_text(w, "U0BOB"), what="the Home tab's answer")
        assert "*Muted* (0)" in home_text(w, "U0BOB")
        assert (await w.command("unmute budget", user="U0BOB")).ok  # already lifted: nothing left to unmute


async def test_watched_and_subscribed_pipelines_are_mine_too_and_others_are_not(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        # carol is an admin but owns nothing: her pipelines are the one she watches and those her subscription covers
        # the catalog watches iowa-pda: its first watch cycle records that (by nobody); carol's watch comes after
        await w.until(lambda: _watched(w, "iowa-pda"), 10, what="the first watch cycle")
        watched = await ask(w, "watch iowa-pda", user="U0CAROL")
        assert "iowa-pda" in watched.text and "⚠️" not in watched.text, watched.text
        subscribed = await ask(w, "subscribe invision #data-ops", user="U0CAROL")
        assert "Subscribed" in subscribed.text, subscribed.text
        await open_home(w, "*My pipelines* (2)", user="U0CAROL")
        mine = part(home_text(w, "U0CAROL"), "*My pipelines*")
        assert "*iowa-pda* · you watch it" in mine and "*budget* · you subscribed" in mine
        assert "*leads-ods*" not in mine and "*orders*" not in mine
        # bob owns by name (orders) and through data-eng (budget): owning outranks watching
        await open_home(w, "*My pipelines* (5)", user="U0BOB")
        assert "*orders* · you own it" in part(home_text(w, "U0BOB"), "*My pipelines*")


async def test_a_failure_whose_alert_was_muted_after_it_failed_stays_marked_muted_once_unmuted(tmp_path: Path) -> None:
    """A failure that came while its pipeline was muted stays marked 🔕 on the Home tab; one whose alert was muted
    afterwards (the alert's Mute menu) was marked only while the mute lasted: unmuted, the tab no longer said it
    had been silenced, though its alert's timeline did."""
    async with world(tmp_path) as w:
        _, failed_id = await orders_failed(w)
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_MUTE, user="U0ALICE",
                            value=ids.mute_value(int(failed_id), 3600))
        await w.until(lambda: "muted by <@U0ALICE>" in json.dumps(w.slack.message("C0ALERTS", alert.ts).blocks),
                      what="the mute on the alert")
        assert "no longer muted" in (await ask(w, "unmute orders")).text

        await open_home(w, "*Muted* (0)")
        failures = part(home_text(w), "*Failures in the last 24 h* (1, 1 muted)")
        line = next(line for line in failures.split("\n") if f"*orders* #{failed_id}" in line)
        assert "🔕 muted" in line, line
