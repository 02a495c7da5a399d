"""Providers that fail a fifth of their calls at random (5xx, 429 with Retry-After, calls that time out) while
40 runs go from queued to their end: every run is followed to its real outcome, each card and each failure
notice is shown once, and no provider error is ever shown as a pipeline failure.

No pipeline is watched passively here: a run of a watched pipeline started from Slack can be taken
for an outside run when the watch lists it before the trigger's answer is recorded; that race has its own
deterministic test in ``test_slow_trigger.py``."""

from __future__ import annotations

import random
from pathlib import Path

from tests.faults import (
    QUEUED_S,
    RUNNING_S,
    FlakyProvider,
    all_final,
    assert_delivered,
    cards,
    channels,
    fault_world,
    start_runs,
    wait,
)

RUNS = 40


async def test_providers_failing_a_fifth_of_the_time_lose_nothing_and_fail_nothing(tmp_path: Path) -> None:
    chans = channels(8)
    flaky = FlakyProvider(rate=0.2, timeout=1.0, rng=random.Random(5150))
    async with fault_world(tmp_path, chans, timeout=1.0, poll_interval_seconds=0.3,
                           poll_interval_max_seconds=0.6, watch=False) as w:
        for emulator in w.emulators.values():
            flaky.install(emulator.state)
        started = await start_runs(w.slack, RUNS, chans)
        await wait(lambda: len(cards(w.slack, chans)) == RUNS, 60, "every card posted", w.slack)

        w.advance(QUEUED_S + 1)  # all running: polls keep failing a fifth of the time meanwhile
        await wait(lambda: all("running" in m.text for m in cards(w.slack, chans)), 60, "every card running", w.slack)
        w.advance(RUNNING_S)  # all ended at the providers
        await wait(all_final(w.slack, chans, RUNS), 90, "every card in its final state", w.slack)
        await w.settle(2.0)  # anything still pending (alerts, thread replies) goes out now

        assert_delivered(w.slack, chans, started, w.emulators)
        # the faults did happen, of every kind, and the bot saw some of them
        assert sum(flaky.injected.values()) >= 20, flaky.injected
        assert set(flaky.injected) == {"500", "502", "503", "429", "timeout"}, flaky.injected
        statuses = sum(len(e.state.requests_to("status")) for e in w.emulators.values())
        assert statuses > RUNS * 2
        # no "cannot reach" alert: a provider answering four calls in five is not down
        assert not [m for m in w.slack.messages("C0ALERTS") if "Cannot reach" in m.text]
