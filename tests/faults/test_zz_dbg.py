from __future__ import annotations
import random, asyncio, sqlite3
from pathlib import Path
from tests.faults import *
from tests.faults import QUEUED_S, RUNNING_S

async def test_dbg(tmp_path: Path) -> None:
    chans = channels(8)
    flaky = FlakyProvider(rate=0.2, timeout=1.0, rng=random.Random(5150))
    async with fault_world(tmp_path, chans, timeout=1.0, poll_interval_seconds=0.3,
                           poll_interval_max_seconds=0.6, watch=False) as w:
        for emulator in w.emulators.values():
            flaky.install(emulator.state)
        started = await start_runs(w.slack, 40, chans)
        await wait(lambda: len(cards(w.slack, chans)) == 40, 60, "every card posted", w.slack)
        w.advance(QUEUED_S + 1)
        await wait(lambda: all("running" in m.text for m in cards(w.slack, chans)), 60, "every card running", w.slack)
        w.advance(RUNNING_S)
        await wait(all_final(w.slack, chans, 40), 90, "every card in its final state", w.slack)
        for t in (2, 10, 40):
            await asyncio.sleep(t)
            with sqlite3.connect(tmp_path / "bot.db") as c:
                print("T", t, "ALERTS", c.execute("select id, pipeline, state, count, runs, group_key from alerts").fetchall())
                print("UNNOTIFIED", c.execute("select id, state, notified_state from runs where notified_state is null or notified_state != state").fetchall())
            for m in w.slack.messages("C0ALERTS"):
                print("MSG", m.ts, [b.get("text", {}).get("text", "")[:60] for b in m.blocks])
