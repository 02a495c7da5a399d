"""The App Home, rebuilt each time it is opened: what is running, the open alerts, the mutes and the last day's
failures, a muted failure included (nothing is ever silently dropped)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.emulators._core import Outcome
from bot.emulators.slack.server import FakeView
from tests.scenario.harness import FLOW, World, world


def home_text(w: World, user: str = "U0ALICE") -> str:
    view = w.slack.home(user)
    return "\n".join(b["text"]["text"] for b in (view.blocks if view else []) if b.get("type") == "section")


def part(text: str, title: str) -> str:
    """One list of the Home tab: from its title to the next list's."""
    start = text.index(title)
    ends = [text.index(t, start + 1) for t in ("*In flight*", "*Open alerts*", "*Muted*", "*Failures in the last")
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


async def test_the_home_shows_runs_in_flight_open_alerts_mutes_and_failures(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        first = await open_home(w, "_Nothing running._")
        assert "_No open alerts._" in home_text(w) and "_Nothing muted._" in home_text(w)

        # an ordinary failure: its alert goes to the default channel
        await w.command("run orders", user="U0BOB")
        await w.card_saying("orders is queued")
        w.advance(40)
        failed = await w.card_saying("orders failed")
        failed_id = run_number(json.dumps(failed.blocks))
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the alert")
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
