from __future__ import annotations
import random, asyncio, time
from pathlib import Path
from tests.faults import *
from tests.faults import QUEUED_S, RUNNING_S

async def test_dbg(tmp_path: Path) -> None:
    chans = channels(8)
    flaky = FlakyProvider(rate=0.2, timeout=1.0, rng=random.Random(5150))
    async with fault_world(tmp_path, chans, timeout=1.0, poll_interval_seconds=0.3,
                           poll_interval_max_seconds=0.6, watch_interval_seconds=3600) as w:
        for emulator in w.emulators.values():
            flaky.install(emulator.state)
        started = await start_runs(w.slack, 40, chans)
        await wait(lambda: len(cards(w.slack, chans)) == 40, 60, "every card posted", w.slack)
        w.advance(QUEUED_S + 1)
        try:
            await wait(lambda: all("running" in m.text for m in cards(w.slack, chans)), 30, "every card running", w.slack)
        except AssertionError:
            for r in await w.runtime.store.runs_in_flight():
                if r.state != "running":
                    print("STUCK", r.id, r.pipeline, r.state, r.raw_status, r.polls, r.unknown_since, r.next_poll_at, r.last_error[:200], r.lease_owner if hasattr(r,'lease_owner') else '')
                    print("now", w.runtime.now())
            for m in cards(w.slack, chans):
                if "running" not in m.text: print("CARD", m.text)
            raise
