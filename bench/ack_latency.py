"""Ack latency: signed slash commands and button clicks at 10, 50 and 200 requests/s against the bot in HTTP mode.

The fake Slack sends each request as Slack does (form body, ``X-Slack-Signature``) to the bot's
``/slack/events`` and times the HTTP answer: that answer is the ack Slack waits for (3 s at most). The load is
open-loop (request i leaves at i/rate whatever the earlier ones did) and mixes commands that answer in the ack
(``help``, ``list``), commands that ack empty and work afterwards (``run``, ``status``, ``last``) and clicks
(Refresh on a card, Run on a list). Every provider call answers after ``--provider-delay`` seconds (default 1 s):
an ack that waited for one would show it.

The baseline is a slash-command endpoint as Slack's samples write it (``bench/baseline.py serve``): it calls the
provider, then answers.

    python -m bench.ack_latency [--quick] [--rates 10,50,200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    BotProcess,
    Emulators,
    ProcSampler,
    bench_args,
    catalog_yaml,
    free_port,
    print_header,
    print_table,
    save_json,
    spread,
    wait_until,
)
from bot.emulators._core import Outcome
from bot.emulators.slack import FakeSlack, payloads
from bot.emulators.slack.server import AppResponse
from bot.ops.metrics import POLLS
from bot.slack.blocks import ids

#: the request mix, repeated in this order: (kind, what)
MIX = (
    ("command", "help"),
    ("command", "run rivery-00"),
    ("click", "refresh"),
    ("command", "status"),
    ("command", "list"),
    ("click", "list-run"),
    ("command", "run datakitchen-00"),
    ("command", "last tailer-00"),
    ("click", "refresh"),
    ("command", "help run"),
)


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rates", help="requests per second (default 10,50,200)")
    parser.add_argument("--seconds", type=float, help="seconds of load per rate (default 20; quick 5)")
    parser.add_argument("--provider-delay", type=float, default=1.0, help="seconds every provider call takes")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--profile", action="store_true", help="run the bot under cProfile; print where time went")


class Target:
    """Where requests go, with what clicks need (a card, a list message)."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.cards: list[tuple[str, str]] = []
        self.listing_ts = ""

    async def prepare(self) -> None:
        slack = self.slack
        for name in ("rivery-01", "tailer-01", "invision-01"):
            await slack.command(f"run {name}", channel="C0GENERAL")
        await wait_until(lambda: len(_cards(slack)) >= 3, 60, "three cards")
        self.cards = [(m.channel, m.ts) for m in _cards(slack)]
        await slack.command("list", channel="C0GENERAL")
        listing = [e for e in slack.ephemerals("C0GENERAL", "U0ALICE") if ids.list_run_action_id(0) in e.action_ids]
        self.listing_ts = listing[-1].ts

    async def send(self, i: int) -> tuple[str, AppResponse]:
        kind, what = MIX[i % len(MIX)]
        slack = self.slack
        if kind == "command":
            return f"/pipeline {what.split()[0]}", await slack.command(what, channel="C0GENERAL")
        if what == "refresh":
            channel, ts = self.cards[i % len(self.cards)]
            return "click Refresh", await slack.click(channel, ts, ids.RUN_REFRESH)
        return "click Run (list)", await slack.click_ephemeral(
            "C0GENERAL", ids.list_run_action_id(0), ts=self.listing_ts
        )


class RawTarget:
    """The same requests, signed by hand, for the baseline (which keeps no messages to click on)."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack

    async def prepare(self) -> None:
        return None

    async def send(self, i: int) -> tuple[str, AppResponse]:
        kind, what = MIX[i % len(MIX)]
        slack = self.slack
        if kind == "command":
            fields = payloads.slash_command(
                token=slack.verification_token, team_id=slack.team_id, team_domain=slack.team_domain,
                channel_id="C0GENERAL", channel_name="general", user_id="U0ALICE", user_name="alice",
                command="/pipeline", text=what, api_app_id=slack.api_app_id,
                response_url=f"{slack.url}/_response/none", trigger_id="1.1.x",
            )
            return f"/pipeline {what.split()[0]}", await slack.post_raw(urllib.parse.urlencode(fields))
        payload = {"type": "block_actions", "user": {"id": "U0ALICE"},
                   "actions": [{"action_id": "run", "value": "rivery-00"}]}
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return ("click Refresh" if what == "refresh" else "click Run (list)"), await slack.post_raw(body)


def _cards(slack: FakeSlack) -> list[Any]:
    return [m for m in slack.messages("C0GENERAL") if any(b.get("type") == "header" for b in m.blocks)]


async def load(target: Target | RawTarget, rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop: request i leaves at start + i/rate. Returns latencies by kind and how late the sender was."""
    count = int(rate * seconds)
    latencies: dict[str, list[float]] = {}
    statuses: dict[int, int] = {}
    late: list[float] = []
    tasks = []
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        try:
            kind, response = await target.send(i)
        except TimeoutError:  # no answer within the fake Slack's app_timeout: counted, never hidden
            statuses[0] = statuses.get(0, 0) + 1
            return
        latencies.setdefault(kind, []).append(response.elapsed)
        statuses[response.status] = statuses.get(response.status, 0) + 1

    for i in range(count):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        late.append(max(0.0, time.perf_counter() - due))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks, return_exceptions=False)
    everything = [x for values in latencies.values() for x in values]
    return {
        "rate": rate, "requests": count, "all_ms": spread(everything),
        "by_kind_ms": {k: spread(v) for k, v in sorted(latencies.items())},
        "over_3s": sum(1 for x in everything if x >= 3.0), "statuses": statuses,
        "sender_late_ms": spread(late),
    }


async def run_bot(args: argparse.Namespace, rates: list[float], seconds: float, workdir: Path) -> list[dict[str, Any]]:
    emulators = Emulators(default=Outcome(queued_s=1, running_s=600))  # cards keep their Refresh button
    slack = FakeSlack(app_timeout=30)
    await slack.start()
    await emulators.start()
    emulators.delay_everything(args.provider_delay)
    catalog = workdir / "pipelines.yml"
    catalog.write_text(catalog_yaml(emulators.urls(), per_provider=2))
    bot = BotProcess(workdir, slack, catalog, database_url=f"sqlite+aiosqlite:///{workdir / 'bot.db'}",
                     env={"POLL_INTERVAL_SECONDS": "2", "POLL_INTERVAL_MAX_SECONDS": "5", "LOG_LEVEL": "WARNING"},
                     profile=workdir / "bot.prof" if args.profile else None)
    results = []
    try:
        await bot.ready()
        slack.app_url = bot.events_url
        target = Target(slack)
        await target.prepare()
        me = ProcSampler(os.getpid())
        for rate in rates:
            cpu0, me0, t0 = bot.sampler.cpu_seconds(), me.cpu_seconds(), time.monotonic()
            result = await load(target, rate, seconds)
            wall = time.monotonic() - t0
            result["bot_cpu_cores"] = round((bot.sampler.cpu_seconds() - cpu0) / wall, 3)
            result["driver_cpu_cores"] = round((me.cpu_seconds() - me0) / wall, 3)
            result["bot_rss_mb"] = round(bot.sampler.rss_mb(), 1)
            results.append(result)
            await asyncio.sleep(2)  # let the background work of this rate drain a little
        metrics = await bot.metrics()
        results.append({"polls": BotProcess.total(metrics, POLLS)})
    finally:
        await bot.shutdown(grace=20)
        await emulators.stop()
        await slack.stop()
    return results


async def run_baseline(args: argparse.Namespace, rates: list[float], seconds: float, workdir: Path
                       ) -> list[dict[str, Any]]:
    emulators = Emulators()
    slack = FakeSlack(app_timeout=30)
    await slack.start()
    await emulators.start()
    emulators.delay_everything(args.provider_delay)
    catalog = workdir / "baseline-pipelines.yml"
    catalog.write_text(catalog_yaml(emulators.urls(), per_provider=2))
    port = free_port()
    proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own module, a process we measure
        [sys.executable, "-m", "bench.baseline", "serve", "--catalog", str(catalog), "--port", str(port),
         "--signing-secret", slack.signing_secret],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    results = []
    try:
        assert proc.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        if b"ready" not in line:
            raise RuntimeError(f"the baseline did not start: {line!r}")
        slack.app_url = f"http://127.0.0.1:{port}/slack/events"
        target = RawTarget(slack)
        for rate in rates:
            results.append(await load(target, rate, seconds))
    finally:
        proc.kill()
        proc.wait()
        await emulators.stop()
        await slack.stop()
    return results


async def main() -> int:
    args = bench_args("ack latency", _extra)
    logging.getLogger("aiohttp").setLevel(logging.CRITICAL)
    info = print_header("ack latency", args)
    rates = [float(r) for r in (args.rates or ("10,50" if args.quick else "10,50,200")).split(",")]
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    print(f"rates {rates} requests/s, {seconds:g} s each; every provider call takes {args.provider_delay:g} s; "
          f"request mix: {', '.join(f'{k} {w}' for k, w in MIX)}")
    print()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ack-"))
    try:
        bot = await run_bot(args, rates, seconds, workdir)
        baseline = [] if args.no_baseline else await run_baseline(args, rates, seconds, workdir)
        if (workdir / "bot.prof").exists():
            print("## profile of the bot (top 30 by cumulative time)")
            pstats.Stats(str(workdir / "bot.prof")).sort_stats("cumulative").print_stats(30)
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    measured = [r for r in bot if "rate" in r]
    print("## the bot: ack latency (ms), all requests")
    print_table(
        ["rate/s", "requests", "p50", "p99", "max", "≥ 3 s", "non-200", "bot CPU cores", "driver CPU cores"],
        [[f"{r['rate']:g}", r["requests"], r["all_ms"]["p50"], r["all_ms"]["p99"], r["all_ms"]["max"], r["over_3s"],
          sum(n for s, n in r["statuses"].items() if s != 200), r["bot_cpu_cores"], r["driver_cpu_cores"]]
         for r in measured],
    )
    print("## the bot: by kind (ms, p50 / p99 / max)")
    kinds = sorted({k for r in measured for k in r["by_kind_ms"]})
    print_table(
        ["kind", *[f"{r['rate']:g}/s" for r in measured]],
        [[kind, *[_three(r["by_kind_ms"].get(kind)) for r in measured]] for kind in kinds],
    )
    if baseline:
        print("## the baseline (calls the provider, then answers) and the bot as a ratio of it")
        print_table(
            ["rate/s", "p50 ms", "p99 ms", "max ms", "≥ 3 s", "bot p99 ÷ baseline p99"],
            [[f"{b['rate']:g}", b["all_ms"]["p50"], b["all_ms"]["p99"], b["all_ms"]["max"], b["over_3s"],
              f"{r['all_ms']['p99'] / b['all_ms']['p99']:.3f}×" if b["all_ms"]["p99"] else "–"]
             for r, b in zip(measured, baseline, strict=True)],
        )
    late = max(r["sender_late_ms"]["max"] for r in measured)
    print(f"the load generator left each request at most {late:.0f} ms after its scheduled time")
    save_json(args.json, {"machine": info, "provider_delay_s": args.provider_delay, "seconds": seconds,
                          "bot": bot, "baseline": baseline})
    return 0


def _three(s: dict[str, float] | None) -> str:
    return "–" if not s else f"{s['p50']:.0f} / {s['p99']:.0f} / {s['max']:.0f}"


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
