"""Slack efficiency: Slack calls per run by outcome, and a storm of failures: messages per channel.

Part 1, per run: runs started with ``/pipeline run`` that succeed, fail or are canceled at the provider; every
Slack Web API call the bot makes is attributed to its run (the card's post and updates, replies in its thread)
or to the alerts (shared by the failures of one burst). Compared with the number of state changes each run went
through (the target: at most one post plus one update per state change).

Part 2, the storm: ``--storm`` failures (default 500) of runs nobody started from Slack (found by passive watch),
spread over 40 pipelines in 5 channels, all failing within ``--storm-seconds`` (default 60). The fake Slack
enforces Slack's posting limit (1 message per second per channel, bursts of 3). Counted per channel: messages
posted, edits, 429s; and whether the messages, as finally shown, list every failure.

The baseline: the vendor loop (a check every poll interval, a message per check) for the same runs.

    python -m bench.slack_efficiency [--quick] [--runs 10] [--storm 500] [--storm-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.baseline import BaselineStats, post_message, vendor_loop
from bench.common import (
    PROVIDERS,
    BotProcess,
    Emulators,
    bench_args,
    catalog_yaml,
    parse_catalog_text,
    print_header,
    print_table,
    save_json,
    seed_runs,
    start_runs,
    wait_until,
)
from bot.emulators._core import Outcome
from bot.emulators.slack import FakeSlack
from bot.ops.metrics import OUTBOX_PENDING
from bot.service.clients import ClientPool

OUTCOMES = {"succeed": "00", "fail": "01", "cancel": "02"}
QUEUED_S, RUNNING_S, INTERVAL = 2.0, 8.0, 2.0
STORM_CHANNELS = [f"C0STORM{i}" for i in range(1, 6)]
STORM_PER_PROVIDER = 10
STORM_INTERVAL = 5.0
_RUN = re.compile(r"\(run #(\d+)\)")
_ALERT_LINE = re.compile(r"\*([a-z0-9._-]+)\* on [^\n]*? failed(?: (\d+) times)?")


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="runs per outcome in part 1 (default 10; quick 4)")
    parser.add_argument("--storm", type=int, help="failures in the storm (default 500; quick 80)")
    parser.add_argument("--storm-seconds", type=float, help="the storm's length (default 60; quick 10)")


# the emulator's key of a pipeline's job, per provider (what its scripted outcomes are looked up by)
_JOB_KEYS: dict[str, Callable[[Any], str]] = {
    "rivery": lambda j: j.river_id,
    "tailer": lambda j: f"{j.configuration_id}_{j.environment}",
    "invision": lambda j: j.dataflow_id,
    "datakitchen": lambda j: f"{j.kitchen}/{j.recipe}/{j.variation}",
}


def _script(emulators: Emulators, catalog: Any) -> None:
    """X-00 succeeds, X-01 fails, X-02 is canceled at the provider; each queued 2 s, running 8 s."""
    for provider in PROVIDERS:
        for outcome, suffix in OUTCOMES.items():
            pipeline = catalog.pipelines[f"{provider}-{suffix}"]
            job = pipeline.job
            key = _JOB_KEYS[provider](job)
            emulators[provider].state.script(key, Outcome(result=outcome, queued_s=QUEUED_S, running_s=RUNNING_S,  # type: ignore[arg-type]
                                                          message=f"{outcome} by the bench"))


def _event_list(db: Path, run_id: int) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        query = "select state, raw_status from run_events where run_id = ? order by id"
        return conn.execute(query, (run_id,)).fetchall()


def _events(db: Path) -> dict[int, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("select run_id, count(*) from run_events group by run_id").fetchall())


async def per_run(args: argparse.Namespace, workdir: Path, k: int) -> dict[str, Any]:
    emulators = Emulators()
    slack = FakeSlack()
    await slack.start()
    await emulators.start()
    text = catalog_yaml(emulators.urls(), per_provider=3)
    catalog = parse_catalog_text(text)
    _script(emulators, catalog)
    path = workdir / "pipelines.yml"
    path.write_text(text)
    db = workdir / "bot.db"
    bot = BotProcess(workdir, slack, path, database_url=f"sqlite+aiosqlite:///{db}",
                     env={"POLL_INTERVAL_SECONDS": str(INTERVAL), "POLL_INTERVAL_MAX_SECONDS": str(INTERVAL),
                          "ALERT_GROUP_SECONDS": "3"})
    try:
        await bot.ready()
        slack.app_url = bot.events_url
        names = {outcome: [f"{PROVIDERS[i % 4]}-{suffix}" for i in range(k)] for outcome, suffix in OUTCOMES.items()}
        for outcome in OUTCOMES:
            for name in names[outcome]:
                assert (await slack.command(f"run {name}", channel="C0GENERAL")).ok
        total = k * len(OUTCOMES)

        def cards() -> list[Any]:
            return [m for m in slack.messages("C0GENERAL") if any(b.get("type") == "header" for b in m.blocks)]

        def ended() -> bool:
            found = cards()
            return len(found) == total and all(
                any(w in m.text for w in ("succeeded", "failed", "canceled")) for m in found)

        await wait_until(ended, 120, "every card in its final state")
        # thread replies trail the cards at Slack's pace (a post a second in one channel), alerts are grouped
        # (3 s window here): count once nothing is left to send
        await asyncio.sleep(INTERVAL + 5)
        for _ in range(600):
            if BotProcess.total(await bot.metrics(), OUTBOX_PENDING) == 0:
                break
            await asyncio.sleep(0.1)
        events = _events(db)
        rows = []
        by_outcome: dict[str, dict[str, list[int]]] = {o: defaultdict(list) for o in OUTCOMES}
        excess: list[dict[str, Any]] = []
        for card in cards():
            run_id = int(_RUN.search(card.text).group(1))  # type: ignore[union-attr]
            suffix = re.search(r"[a-z]+-(\d\d)", card.text).group(1)  # type: ignore[union-attr]
            outcome = next(o for o, s in OUTCOMES.items() if s == suffix)  # scripted, whatever the card says
            posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.response.get("ts") == card.ts]
            updates = [c for c in slack.calls_to("chat.update") if c.ok and c.params.get("ts") == card.ts]
            thread = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("thread_ts") == card.ts]
            stats = by_outcome[outcome]
            stats["posts"].append(len(posts))
            stats["updates"].append(len(updates))
            stats["thread"].append(len(thread))
            # starting (recorded before the trigger) → queued → running → ended: each event is a change
            stats["changes"].append(events.get(run_id, 0))
            if len(updates) > events.get(run_id, 0):
                excess.append({"run": run_id, "events": _event_list(db, run_id),
                               "versions": [v.text for v in card.edits] + [card.text]})
        alert_posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == "C0ALERTS"]
        alert_updates = [c for c in slack.calls_to("chat.update") if c.ok and c.params.get("channel") == "C0ALERTS"]
        for outcome, stats in by_outcome.items():
            n = len(stats["posts"])
            rows.append({
                "outcome": outcome, "runs": n,
                "posts_per_run": sum(stats["posts"]) / n, "updates_per_run": sum(stats["updates"]) / n,
                "thread_replies_per_run": sum(stats["thread"]) / n,
                "state_changes_per_run": sum(stats["changes"]) / n,
                "max_updates_over_changes": max(u - c for u, c in zip(stats["updates"], stats["changes"], strict=True)),
                "max_posts": max(stats["posts"]),
            })
        other = Counter(c.method for c in slack.calls if c.method not in ("chat.postMessage", "chat.update"))
        return {"runs": rows, "alert_posts": len(alert_posts), "alert_updates": len(alert_updates),
                "failed_runs": len(by_outcome["fail"]["posts"]), "other_calls": dict(other), "excess": excess}
    finally:
        await bot.shutdown(grace=20)
        await emulators.stop()
        await slack.stop()


async def per_run_baseline(k: int) -> dict[str, Any]:
    emulators = Emulators()
    slack = FakeSlack()
    await slack.start()
    await emulators.start()
    catalog = parse_catalog_text(catalog_yaml(emulators.urls(), per_provider=3))
    _script(emulators, catalog)
    pool = ClientPool.for_catalog(catalog)
    found: dict[str, float] = {}
    try:
        async with httpx.AsyncClient(base_url=slack.api_url) as http:
            for outcome, suffix in OUTCOMES.items():
                stats = BaselineStats()
                loops = []
                for i in range(k):
                    pipeline = catalog.pipelines[f"{PROVIDERS[i % 4]}-{suffix}"]
                    client = pool.client(pipeline.connection)
                    run_id = (await client.trigger(pipeline.job, {})).run_id

                    def status(c: Any = client, j: Any = pipeline.job, r: str = run_id) -> Any:
                        return c.get_status(j, r)

                    async def post(text: str, s: BaselineStats = stats) -> None:
                        await post_message(http, slack.bot_token, "C0GENERAL", text, s)

                    loops.append(vendor_loop(status, post, name=pipeline.name, interval=INTERVAL, stats=stats))
                await asyncio.gather(*loops)
                found[outcome] = stats.posts / k
    finally:
        await pool.aclose()
        await emulators.stop()
        await slack.stop()
    return found


async def storm(args: argparse.Namespace, workdir: Path, n: int, seconds: float) -> dict[str, Any]:
    emulators = Emulators()
    slack = FakeSlack(rate_limit_posts_per_second=1.0, rate_limit_burst=3)
    for channel in STORM_CHANNELS:
        slack.add_channel(channel, channel.lower())
    await slack.start()
    await emulators.start()
    text = catalog_yaml(emulators.urls(), per_provider=STORM_PER_PROVIDER, channels=STORM_CHANNELS)
    catalog = parse_catalog_text(text)
    path = workdir / "storm.yml"
    path.write_text(text)
    db = workdir / "storm.db"
    env = {"POLL_INTERVAL_SECONDS": str(STORM_INTERVAL), "POLL_INTERVAL_MAX_SECONDS": str(STORM_INTERVAL)}
    bot = BotProcess(workdir, slack, path, database_url=f"sqlite+aiosqlite:///{db}", env=env, name="storm")
    try:
        await bot.ready()
        for server in emulators.servers.values():
            server.state.next_outcome = lambda job: Outcome(  # type: ignore[method-assign]
                result="fail", queued_s=0, running_s=random.uniform(0, seconds), message="storm: table locked")
        started = time.monotonic()
        runs = await start_runs(emulators, catalog, n, STORM_PER_PROVIDER)
        await seed_runs(f"sqlite+aiosqlite:///{db}", runs, datetime.now(UTC), STORM_INTERVAL)

        def all_alerted() -> bool:
            with sqlite3.connect(db) as conn:
                failed = conn.execute("select count(*) from runs where state = 'failed'").fetchone()[0]
                counted = conn.execute("select coalesce(sum(count), 0) from alerts").fetchone()[0]
                waiting = conn.execute("select count(*) from alerts where state = 'pending'").fetchone()[0]
            return bool(failed == n and counted == n and waiting == 0)

        await wait_until(all_alerted, seconds + 120, "every failure recorded as an alert", step=0.5)
        detected = time.monotonic() - started

        for _ in range(240):  # what is decided goes out: wait for the outbox (cards, alerts) to be empty
            if BotProcess.total(await bot.metrics(), OUTBOX_PENDING) == 0:
                break
            await asyncio.sleep(0.5)
        shown_at = time.monotonic() - started
        per_channel = []
        listed: Counter[str] = Counter()
        for channel in STORM_CHANNELS:
            posts = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == channel]
            updates = [c for c in slack.calls_to("chat.update") if c.params.get("channel") == channel]
            for message in slack.messages(channel):
                texts = [message.text] + [b.get("text", {}).get("text", "") for b in message.blocks]
                for line in _ALERT_LINE.finditer("\n".join(texts)):
                    listed[line.group(1)] += int(line.group(2) or 1)
            per_channel.append({
                "channel": channel, "messages": sum(1 for c in posts if c.ok), "edits": sum(1 for c in updates if c.ok),
                "rate_limited": sum(1 for c in posts + updates if c.status == 429),
            })
        failed_by_pipeline = Counter(r["pipeline"] for r in runs)
        return {
            "failures": n, "seconds": seconds, "channels": per_channel, "detected_s": round(detected, 1),
            "shown_s": round(shown_at, 1), "failures_listed": sum(listed.values()),
            "pipelines_failed": len(failed_by_pipeline),
            "pipelines_listed": sum(1 for p in failed_by_pipeline if listed.get(p) == failed_by_pipeline[p]),
        }
    finally:
        await bot.shutdown(grace=20)
        await emulators.stop()
        await slack.stop()


async def storm_baseline(n: int, seconds: float) -> dict[str, Any]:
    emulators = Emulators()
    slack = FakeSlack(rate_limit_posts_per_second=1.0, rate_limit_burst=3)
    for channel in STORM_CHANNELS:
        slack.add_channel(channel, channel.lower())
    await slack.start()
    await emulators.start()
    catalog = parse_catalog_text(catalog_yaml(emulators.urls(), per_provider=STORM_PER_PROVIDER,
                                              channels=STORM_CHANNELS))
    for server in emulators.servers.values():
        server.state.next_outcome = lambda job: Outcome(  # type: ignore[method-assign]
            result="fail", queued_s=0, running_s=random.uniform(0, seconds), message="storm: table locked")
    runs = await start_runs(emulators, catalog, n, STORM_PER_PROVIDER)
    pool = ClientPool.for_catalog(catalog)
    stats = BaselineStats()
    try:
        async with httpx.AsyncClient(base_url=slack.api_url, limits=httpx.Limits(max_connections=200)) as http:
            loops = []
            for run in runs:
                client, job = pool.client(run["connection"]), pool.job(run["provider"], run["job"])
                channel = catalog.channel_for(catalog.pipelines[run["pipeline"]])

                def status(c: Any = client, j: Any = job, r: str = run["provider_run_id"]) -> Any:
                    return c.get_status(j, r)

                async def post(text: str, ch: str = channel) -> None:
                    await post_message(http, slack.bot_token, ch, text, stats)

                loops.append(vendor_loop(status, post, name=run["pipeline"], interval=STORM_INTERVAL, stats=stats,
                                         first_wait=random.uniform(0, STORM_INTERVAL)))
            await asyncio.gather(*loops)
        per_channel = []
        for channel in STORM_CHANNELS:
            posts = [c for c in slack.calls_to("chat.postMessage") if c.params.get("channel") == channel]
            per_channel.append({"channel": channel, "attempted": len(posts), "messages": sum(1 for c in posts if c.ok),
                                "rate_limited": sum(1 for c in posts if c.status == 429)})
        return {"channels": per_channel}
    finally:
        await pool.aclose()
        await emulators.stop()
        await slack.stop()


async def main() -> int:
    args = bench_args("Slack efficiency", _extra)
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    info = print_header("Slack efficiency", args)
    k = args.runs or (4 if args.quick else 10)
    n = args.storm or (80 if args.quick else 500)
    seconds = args.storm_seconds or (10.0 if args.quick else 60.0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-slack-"))
    try:
        print(f"part 1: {k} runs per outcome, queued {QUEUED_S:g} s then running {RUNNING_S:g} s, polled every "
              f"{INTERVAL:g} s")
        part1 = await per_run(args, workdir, k)
        base1 = await per_run_baseline(k)
        print()
        print("## Slack calls per run, by outcome (the card: one post, then edits; thread: failure details)")
        print_table(
            ["outcome", "runs", "state changes/run", "posts/run", "edits/run", "thread replies/run",
             "within target", "baseline messages/run", "bot ÷ baseline"],
            [[r["outcome"], r["runs"], r["state_changes_per_run"], r["posts_per_run"], r["updates_per_run"],
              r["thread_replies_per_run"],
              "yes" if r["max_posts"] <= 1 and r["max_updates_over_changes"] <= 0 else "NO",
              base1[r["outcome"]],
              f"{(r['posts_per_run'] + r['updates_per_run'] + r['thread_replies_per_run']) / base1[r['outcome']]:.2f}×"]
             for r in part1["runs"]],
        )
        for case in part1["excess"]:
            print(f"more edits than state changes: run #{case['run']}: states {case['events']}; card versions "
                  f"{case['versions']}")
        print(f"alerts for the {part1['failed_runs']} failed runs (in C0ALERTS, grouped): {part1['alert_posts']} "
              f"message(s), {part1['alert_updates']} edit(s); other Slack calls: {part1['other_calls']}")
        print()
        print(f"part 2: a storm of {n} failures within {seconds:g} s, {4 * STORM_PER_PROVIDER} pipelines in "
              f"{len(STORM_CHANNELS)} channels, Slack limiting posts to 1/s per channel (bursts of 3)")
        part2 = await storm(args, workdir, n, seconds)
        base2 = await storm_baseline(n, seconds)
        print()
        print("## the storm: messages per channel")
        print_table(
            ["channel", "bot messages", "bot edits", "bot 429s", "baseline attempts", "baseline messages",
             "baseline 429s"],
            [[b["channel"], b["messages"], b["edits"], b["rate_limited"], s["attempted"], s["messages"],
              s["rate_limited"]] for b, s in zip(part2["channels"], base2["channels"], strict=True)],
        )
        print(f"every failure listed: {part2['failures_listed']} of {n} failures counted in the messages as shown; "
              f"{part2['pipelines_listed']} of {part2['pipelines_failed']} failing pipelines listed with all their "
              f"failures; all recorded {part2['detected_s']} s after the storm began, all shown by "
              f"{part2['shown_s']} s")
        save_json(args.json, {"machine": info, "part1": part1, "part1_baseline": base1, "storm": part2,
                              "storm_baseline": base2})
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
