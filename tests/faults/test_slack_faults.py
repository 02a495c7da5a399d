"""Slack answering a fifth of the bot's posts and edits with 429 (Retry-After) or 5xx while 40 runs start, run
and end: every card reaches its final state, each message goes out once, failure details follow their card."""

from __future__ import annotations

import random
from pathlib import Path

from tests.faults import (
    QUEUED_S,
    RUNNING_S,
    FlakySlack,
    all_final,
    assert_delivered,
    cards,
    channels,
    fault_world,
    start_runs,
    wait,
)

RUNS = 40


async def test_slack_refusing_a_fifth_of_the_calls_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    chans = channels(8)
    flaky = FlakySlack(rate=0.2, rng=random.Random(4290))
    async with fault_world(tmp_path, chans, poll_interval_seconds=0.3, poll_interval_max_seconds=0.6,
                           watch=False) as w:
        flaky.install(w.slack)
        started = await start_runs(w.slack, RUNS, chans)
        await wait(lambda: len(cards(w.slack, chans)) == RUNS, 90, "every card posted", w.slack)
        w.advance(QUEUED_S + 1)
        await w.settle(1.0)
        w.advance(RUNNING_S)
        await wait(all_final(w.slack, chans, RUNS), 120, "every card in its final state", w.slack)
        flaky.enabled = False
        await w.settle(3.0)

        assert_delivered(w.slack, chans, started, w.emulators)
        refused = [c for c in w.slack.calls if c.method in ("chat.postMessage", "chat.update") and not c.ok]
        assert len(refused) == sum(flaky.injected.values()) >= 15, flaky.injected
        assert {"429", "500", "503"} <= set(flaky.injected)
        # a thread reply never went out before its card: each names a card that Slack already had
        for call in w.slack.calls_to("chat.postMessage"):
            if call.ok and call.params.get("thread_ts"):
                assert w.slack.message(call.params["channel"], call.params["thread_ts"]) is not None
