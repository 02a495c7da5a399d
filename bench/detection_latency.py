"""Detection latency: from a status change at the provider to the Slack message that shows it.

Runs are started with ``/pipeline run`` (one every half second, over 10 channels); the emulators move each run
from queued to running and then to its end at known instants (real clock). For each change, the latency is the
time of the first Slack call that shows it (the card's edit; for a failure also its thread reply) minus the
instant of the change. The target is the poll interval plus 2 s; the bot polls a run every
``POLL_INTERVAL_SECONDS`` (5 s by default) in its first minute, every 3× that up to 10 minutes, and so on.

The baseline is the vendor loop with the same interval (a check every 5 s, a message per check).

    python -m bench.detection_latency [--quick] [--runs 40] [--interval 5] [--long]
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
    spread,
    wait_until,
)
from bot.emulators._core import EmuRun, Outcome
from bot.emulators.slack import FakeSlack
from bot.ops.metrics import POLLS
from bot.service.clients import ClientPool

CHANNELS = [f"C0DETECT{i}" for i in range(10)]
_RUN = re.compile(r"\(run #(\d+)\)")


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="runs (default 40; quick 12)")
    parser.add_argument("--interval", type=float, help="POLL_INTERVAL_SECONDS (default 5, the bot's default; quick 2)")
    parser.add_argument("--long", action="store_true",
                        help="also runs lasting 70-130 s, polled at 3× the interval after their first minute")


def _outcomes(n: int, interval: float, long: bool) -> list[Outcome]:
    rng = random.Random(7)
    found = []
    for i in range(n):
        running = rng.uniform(70, 130) if long else rng.uniform(3 * interval, 8 * interval)
        found.append(Outcome(result="fail" if i % 3 == 0 else "succeed", queued_s=rng.uniform(0.5, 2 * interval),
                             running_s=running, message="detected?"))
    return found


def _emu_run(emulators: Emulators, provider: str, provider_run_id: str) -> EmuRun:
    state = emulators[provider].state
    found = state.runs.get(provider_run_id)
    if found is not None:
        return found
    return next(r for r in state.runs.values() if r.extra.get("order_id") == provider_run_id)


async def bot_latency(workdir: Path, n: int, interval: float, long: bool, name: str) -> dict[str, Any]:
    emulators = Emulators()
    outcomes = iter(_outcomes(n, interval, long))
    for server in emulators.servers.values():
        server.state.next_outcome = lambda job: next(outcomes)  # type: ignore[method-assign]
    slack = FakeSlack()
    for channel in CHANNELS:
        slack.add_channel(channel, channel.lower(), members=["U0ALICE"])
    await slack.start()
    await emulators.start()
    path = workdir / f"{name}.yml"
    path.write_text(catalog_yaml(emulators.urls(), per_provider=2))
    db = workdir / f"{name}.db"
    bot = BotProcess(workdir, slack, path, database_url=f"sqlite+aiosqlite:///{db}",
                     env={"POLL_INTERVAL_SECONDS": str(interval)}, name=name)
    try:
        await bot.ready()
        slack.app_url = bot.events_url
        for i in range(n):
            assert (await slack.command(f"run {PROVIDERS[i % 4]}-00", channel=CHANNELS[i % len(CHANNELS)])).ok
            await asyncio.sleep(0.5)

        def cards() -> list[Any]:
            return [m for c in CHANNELS for m in slack.messages(c) if any(b.get("type") == "header" for b in m.blocks)]

        def ended() -> bool:
            found = cards()
            return len(found) == n and all(("succeeded" in m.text or "failed" in m.text) for m in found)

        await wait_until(ended, 240 if long else 120, "every card in its final state", step=0.5)
        await asyncio.sleep(3)
        with sqlite3.connect(db) as conn:
            runs = {r[0]: (r[1], r[2]) for r in conn.execute("select id, provider, provider_run_id from runs")}
        started, finished, threads = [], [], []
        for card in cards():
            run_id = int(_RUN.search(card.text).group(1))  # type: ignore[union-attr]
            provider, provider_run_id = runs[run_id]
            emu = _emu_run(emulators, provider, provider_run_id)
            began = emu.started_at()
            end = began + emu.outcome.running_s
            shown = sorted(
                (c.at, c.params.get("text", "")) for c in slack.calls
                if c.ok and c.method in ("chat.update", "chat.postMessage") and c.params.get("channel") == card.channel
                and (c.params.get("ts") == card.ts or c.response.get("ts") == card.ts)
            )
            running_at = next((at for at, text in shown if "running" in text or "succeeded" in text
                               or "failed" in text), None)
            final_at = next((at for at, text in shown if "succeeded" in text or "failed" in text), None)
            if running_at is not None and running_at >= began:
                started.append(running_at - began)
            if final_at is not None:
                finished.append(final_at - end)
            replies = [c.at for c in slack.calls_to("chat.postMessage")
                       if c.ok and c.params.get("thread_ts") == card.ts]
            if emu.outcome.result == "fail" and replies:
                threads.append(min(replies) - end)
        metrics = await bot.metrics()
        return {"runs": n, "interval_s": interval, "long": long,
                "queued_to_running_s": spread(started, 1.0, 2), "to_final_card_s": spread(finished, 1.0, 2),
                "to_failure_reply_s": spread(threads, 1.0, 2),
                "polls_per_run": round(BotProcess.total(metrics, POLLS) / n, 1)}
    finally:
        await bot.shutdown(grace=20)
        await emulators.stop()
        await slack.stop()


async def baseline_latency(n: int, interval: float, long: bool) -> dict[str, Any]:
    emulators = Emulators()
    outcomes = iter(_outcomes(n, interval, long))
    for server in emulators.servers.values():
        server.state.next_outcome = lambda job: next(outcomes)  # type: ignore[method-assign]
    slack = FakeSlack()
    await slack.start()
    await emulators.start()
    catalog = parse_catalog_text(catalog_yaml(emulators.urls(), per_provider=2))
    pool = ClientPool.for_catalog(catalog)
    stats = BaselineStats()
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=slack.api_url) as http:
            loops = []
            for i in range(n):
                pipeline = catalog.pipelines[f"{PROVIDERS[i % 4]}-00"]
                client = pool.client(pipeline.connection)
                run_id = (await client.trigger(pipeline.job, {})).run_id
                emu = _emu_run(emulators, pipeline.provider, run_id)
                seen: dict[str, bool] = {}

                async def status(c: Any = client, j: Any = pipeline.job, r: str = run_id,
                                 s: dict[str, bool] = seen) -> Any:
                    answer = await c.get_status(j, r)
                    s["final"] = answer.final
                    return answer

                async def post(text: str, e: EmuRun = emu, s: dict[str, bool] = seen) -> None:
                    await post_message(http, slack.bot_token, "C0GENERAL", text, stats)
                    if s.get("final"):  # the message that tells the team the run ended
                        latencies.append(time.time() - (e.started_at() + e.outcome.running_s))

                loops.append(asyncio.create_task(
                    vendor_loop(status, post, name=pipeline.name, interval=interval, stats=stats)))
                await asyncio.sleep(0.5)
            await asyncio.gather(*loops)
        return {"runs": n, "latency_s": spread(latencies, 1.0, 2), "checks_per_run": round(stats.checks / n, 1),
                "messages_per_run": round(stats.posts / n, 1)}
    finally:
        await pool.aclose()
        await emulators.stop()
        await slack.stop()


async def main() -> int:
    args = bench_args("detection latency", _extra)
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    info = print_header("detection latency", args)
    n = args.runs or (12 if args.quick else 40)
    interval = args.interval or (2.0 if args.quick else 5.0)
    workdir = Path(tempfile.mkdtemp(prefix="bench-detect-"))
    results: dict[str, Any] = {"machine": info}
    try:
        print(f"{n} runs, POLL_INTERVAL_SECONDS={interval:g}; runs last {3 * interval:g}-{8 * interval:g} s")
        results["short"] = await bot_latency(workdir, n, interval, False, "short")
        results["baseline"] = await baseline_latency(n, interval, False)
        if args.long:
            print(f"… and {n} runs lasting 70-130 s (polled every {3 * interval:g} s after their first minute)")
            results["long"] = await bot_latency(workdir, n, interval, True, "long")
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("## seconds from the provider's change to the Slack message (p50 / p99 / max)")
    rows = []
    for key in ("short", "long"):
        r = results.get(key)
        if r is None:
            continue
        limit = (3 if r["long"] else 1) * interval + 2
        for what, label in (("queued_to_running_s", "queued → running: card edit"),
                            ("to_final_card_s", "running → ended: card edit"),
                            ("to_failure_reply_s", "failed: thread reply")):
            s = r[what]
            rows.append([f"{'long' if r['long'] else 'short'} runs", label, s["n"], s["p50"], s["p99"], s["max"],
                         f"{limit:g}", "yes" if s["max"] <= limit else "NO"])
    b = results["baseline"]
    rows.append(["baseline (vendor loop)", "running → ended: message", b["latency_s"]["n"], b["latency_s"]["p50"],
                 b["latency_s"]["p99"], b["latency_s"]["max"], "–", "–"])
    print_table(["runs", "change → message", "n", "p50", "p99", "max", "target", "met"], rows)
    print(f"provider calls per run: the bot {results['short']['polls_per_run']}, the baseline "
          f"{b['checks_per_run']}; Slack messages per run: the baseline {b['messages_per_run']}")
    save_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
