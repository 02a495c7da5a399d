"""Tracking at scale: N in-flight runs against emulators answering status calls in 200 ms, each run due every 30 s.

For each size: the runs are started at the emulators (spread over the four providers, 5 pipelines each) and
recorded in a fresh database with their first polls spread over one interval; then the bot starts and tracks
them. After a warm-up of one interval, a window of ``--cycles`` intervals is measured:

- poll lag: when each status call reached the emulator minus when it was due (the previous answer of the same
  run + the interval), p50 / p99 / max; runs not polled by the end of the window count as late as they are;
- provider calls per run per cycle, all routes, and per provider (each has a quarter of the runs): DataKitchen
  and Tailer are polled in batches (one call per kitchen or configuration and interval), Rivery (on its legacy
  connection) and InVision one call per run; the poll lag is measured on the runs polled one by one;
- CPU (cores: CPU seconds / wall seconds) and memory (RSS) of the bot process;
- Slack calls in the window (the runs do not change: there is nothing to say).

The baseline (``bench/baseline.py``: one loop per run, a message per check) tracks the same runs in its own
process afterwards, measured the same way.

    python -m bench.tracking_scale [--quick] [--sizes 500,5000,20000] [--db sqlite|postgres] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._postgres import create_postgres_database, drop_postgres_database
from bench.common import (
    PROVIDERS,
    ROOT,
    BotProcess,
    Emulators,
    ProcSampler,
    bench_args,
    catalog_yaml,
    parse_catalog_text,
    print_header,
    print_table,
    save_json,
    seed_runs,
    spread,
    start_runs,
)
from bot.emulators._core import Outcome
from bot.emulators.slack import FakeSlack
from bot.ops.metrics import POLLS, PROVIDER_ERRORS

PER_PROVIDER = 5
DELAY = 0.2
#: providers whose runs the bot polls in batches here (Rivery is on its legacy connection: one call per run)
BATCHED = ("tailer", "datakitchen")


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", help="comma-separated numbers of in-flight runs (default 500,5000,20000)")
    parser.add_argument("--interval", type=float, help="seconds between polls of a run (default 30; quick 10)")
    parser.add_argument("--cycles", type=int, help="intervals measured after the warm-up (default 2; quick 1)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--max-concurrency", type=int, default=64,
                        help="status calls in flight per connection (catalog max_concurrency; default 64)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--profile", action="store_true", help="run the bot under cProfile for the largest size")


def lags(emulators: Emulators, interval: float, start: float, end: float, n: int) -> tuple[list[float], int]:
    """Lags of the status calls that arrived in [start, end), and how many runs were overdue at ``end``
    (their lag so far is added: a run that is never polled must not look punctual)."""
    found: list[float] = []
    polled = 0
    for key, calls in emulators.timing.by_key.items():
        if key.split(" ", 1)[0] in BATCHED:  # a batch's call serves many runs: its key is no run's (n counts neither)
            continue
        polled += 1
        for (_, answered), (arrived, _) in itertools.pairwise(calls):
            if start <= arrived < end:
                found.append(arrived - (answered + interval))
        last_answer = calls[-1][1]
        if end - (last_answer + interval) > 0 and calls[-1][0] < end:
            overdue = end - (last_answer + interval)
            if overdue > 1.0:
                found.append(overdue)
    never = n - polled
    return found, never


async def measure_bot(
    n: int, args: argparse.Namespace, interval: float, cycles: int, workdir: Path, profile: Path | None
) -> dict[str, Any]:
    emulators = Emulators(default=Outcome(result="hang", queued_s=0))
    slack = FakeSlack()
    await slack.start()
    await emulators.start()
    if args.db == "postgres":
        database = await create_postgres_database(prefix="bot_bench")
    else:
        database = f"sqlite+aiosqlite:///{workdir / f'bot-{n}.db'}"
    text = catalog_yaml(emulators.urls(), per_provider=PER_PROVIDER, max_concurrency=args.max_concurrency)
    path = workdir / f"pipelines-{n}.yml"
    path.write_text(text)
    catalog = parse_catalog_text(text)
    bot = None
    try:
        t0 = time.monotonic()
        started = await start_runs(emulators, catalog, n, PER_PROVIDER)
        warm_start = datetime.now(UTC) + timedelta(seconds=5)
        await seed_runs(database, started, warm_start, interval)
        setup = time.monotonic() - t0
        emulators.timing.clear()
        emulators.delay_status(DELAY)
        env = {"POLL_INTERVAL_SECONDS": str(interval), "POLL_INTERVAL_MAX_SECONDS": str(interval),
               "WATCH_INTERVAL_SECONDS": "3600", "LOG_LEVEL": "WARNING"}
        bot = BotProcess(workdir, slack, path, database_url=database, env=env, profile=profile, name=f"bot-{n}")
        await bot.ready()
        slack.app_url = bot.events_url
        # warm-up: the first interval polls every run once; then the window
        await asyncio.sleep(max(0.0, (warm_start - datetime.now(UTC)).total_seconds()) + interval + 2)
        before = await bot.metrics()
        calls_before = sum(emulators.timing.routes.values())
        routes_before = dict(emulators.timing.routes)
        slack_before = len(slack.calls)
        me = ProcSampler(__import__("os").getpid())
        cpu0, me0, wall0 = bot.sampler.cpu_seconds(), me.cpu_seconds(), time.monotonic()
        window_start = time.time()
        rss: list[float] = []
        while time.monotonic() - wall0 < interval * cycles:
            rss.append(bot.sampler.rss_mb())
            await asyncio.sleep(1.0)
        window_end = time.time()
        wall = time.monotonic() - wall0
        cpu = (bot.sampler.cpu_seconds() - cpu0) / wall
        driver_cpu = (me.cpu_seconds() - me0) / wall
        after = await bot.metrics()
        single = sum(1 for r in started if r["provider"] not in BATCHED)
        found, never = lags(emulators, interval, window_start, window_end, single)
        calls = sum(emulators.timing.routes.values()) - calls_before
        cycles_seen = wall / interval
        per_provider = {
            provider: round(
                sum(c - routes_before.get(key, 0) for key, c in emulators.timing.routes.items() if key[0] == provider)
                / max(1, sum(1 for r in started if r["provider"] == provider)) / cycles_seen, 3)
            for provider in PROVIDERS
        }
        polls = BotProcess.total(after, POLLS) - BotProcess.total(before, POLLS)
        return {
            "runs": n, "interval_s": interval, "window_s": round(wall, 1), "setup_s": round(setup, 1),
            "lag_s": spread(found, scale=1.0, digits=2), "late_over_5s": sum(1 for x in found if x > 5),
            "never_polled": never,
            "provider_calls_per_run_per_cycle": round(calls / n / (wall / interval), 3),
            "polls_per_run_per_cycle": round(polls / n / (wall / interval), 3),
            "provider_calls_per_run_per_cycle_by_provider": per_provider,
            "cpu_cores": round(cpu, 3), "rss_mb": round(max(rss), 1),
            "peak_rss_mb": round(bot.sampler.peak_rss_mb(), 1),
            "slack_calls": len(slack.calls) - slack_before, "driver_cpu_cores": round(driver_cpu, 3),
            "provider_errors": BotProcess.total(after, PROVIDER_ERRORS),
        }
    finally:
        if bot is not None and await bot.shutdown(grace=20) != 0:
            print(f"   (the bot exited with {bot.proc.returncode}; see {bot.log_path})")
        await emulators.stop()
        await slack.stop()
        if args.db == "postgres":
            await drop_postgres_database(database)


async def measure_baseline(n: int, args: argparse.Namespace, interval: float, cycles: int, workdir: Path
                           ) -> dict[str, Any]:
    emulators = Emulators(default=Outcome(result="hang", queued_s=0))
    slack = FakeSlack()
    await slack.start()
    await emulators.start()
    text = catalog_yaml(emulators.urls(), per_provider=PER_PROVIDER, max_concurrency=args.max_concurrency)
    path = workdir / f"baseline-pipelines-{n}.yml"
    path.write_text(text)
    proc = None
    try:
        started = await start_runs(emulators, parse_catalog_text(text), n, PER_PROVIDER)
        runs_file = workdir / f"baseline-runs-{n}.json"
        runs_file.write_text(json.dumps(started))
        emulators.timing.clear()
        emulators.delay_status(DELAY)
        duration = interval * (cycles + 1) + 10
        proc = subprocess.Popen(  # noqa: S603, ASYNC220 - our own module, a process we measure
            [sys.executable, "-m", "bench.baseline", "track", "--catalog", str(path), "--runs", str(runs_file),
             "--slack-url", slack.api_url, "--token", slack.bot_token, "--interval", str(interval),
             "--duration", str(duration)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        sampler = ProcSampler(proc.pid)
        await asyncio.sleep(interval + 2)
        calls_before = sum(emulators.timing.routes.values())
        slack_before = len(slack.calls)
        cpu0, wall0 = sampler.cpu_seconds(), time.monotonic()
        window_start = time.time()
        rss: list[float] = []
        while time.monotonic() - wall0 < interval * cycles:
            rss.append(sampler.rss_mb())
            await asyncio.sleep(1.0)
        window_end = time.time()
        wall = time.monotonic() - wall0
        cpu = (sampler.cpu_seconds() - cpu0) / wall
        found, never = lags(emulators, interval, window_start, window_end, n)
        calls = sum(emulators.timing.routes.values()) - calls_before
        posts = [c for c in slack.calls[slack_before:] if c.method == "chat.postMessage"]
        return {
            "runs": n, "lag_s": spread(found, scale=1.0, digits=2), "late_over_5s": sum(1 for x in found if x > 5),
            "never_polled": never,
            "provider_calls_per_run_per_cycle": round(calls / n / (wall / interval), 3),
            "cpu_cores": round(cpu, 3), "rss_mb": round(max(rss), 1),
            "slack_calls": len(posts), "slack_calls_per_run_per_cycle": round(len(posts) / n / (wall / interval), 3),
        }
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        await emulators.stop()
        await slack.stop()


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "–" if a == 0 else "∞"
    return f"{a / b:.2f}×"


async def main() -> int:
    args = bench_args("tracking at scale", _extra)
    info = print_header("tracking at scale", args)
    sizes = [int(s) for s in (args.sizes or ("300,1000" if args.quick else "500,5000,20000")).split(",")]
    interval = args.interval or (10.0 if args.quick else 30.0)
    cycles = args.cycles or (1 if args.quick else 2)
    workdir = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    print(f"sizes {sizes}, status answered in {DELAY * 1000:.0f} ms, each run due every {interval:g} s, "
          f"window {cycles} interval(s), database {args.db}, max_concurrency {args.max_concurrency} per connection")
    print()
    results: dict[str, Any] = {"machine": info, "sizes": sizes, "interval_s": interval, "db": args.db,
                               "max_concurrency": args.max_concurrency, "bot": [], "baseline": []}
    try:
        for n in sizes:
            profile = workdir / "bot.prof" if args.profile and n == max(sizes) else None
            print(f"… bot, {n} runs", flush=True)
            results["bot"].append(await measure_bot(n, args, interval, cycles, workdir, profile))
            if not args.no_baseline:
                print(f"… baseline, {n} runs", flush=True)
                results["baseline"].append(await measure_baseline(n, args, interval, cycles, workdir))
        print()
        print("## the bot")
        print_table(
            ["runs", "lag p50 s", "lag p99 s", "lag max s", "late >5 s", "provider calls/run/cycle",
             "CPU cores", "RSS MB", "Slack calls"],
            [[r["runs"], r["lag_s"]["p50"], r["lag_s"]["p99"], r["lag_s"]["max"], r["late_over_5s"] + r["never_polled"],
              r["provider_calls_per_run_per_cycle"], r["cpu_cores"], r["rss_mb"], r["slack_calls"]]
             for r in results["bot"]],
        )
        print("provider calls per run per interval, by provider (batched: " + ", ".join(BATCHED) + ")")
        print_table(
            ["runs", *PROVIDERS],
            [[r["runs"], *(r["provider_calls_per_run_per_cycle_by_provider"][p] for p in PROVIDERS)]
             for r in results["bot"]],
        )
        growth = results["bot"]
        if len(growth) > 1:
            print("cost per 1,000 runs: " + ", ".join(
                f"{r['runs']:,}: {1000 * r['cpu_cores'] / r['runs']:.3f} cores, "
                f"{1000 * (r['rss_mb'] - 60) / r['runs']:.1f} MB above ~60 MB" for r in growth))
            print()
        if results["baseline"]:
            print("## the baseline (one loop per run, a message per check), and the bot as a ratio of it")
            print_table(
                ["runs", "lag p99 s", "provider calls/run/cycle", "Slack calls/run/cycle", "CPU cores", "RSS MB",
                 "bot CPU ÷ baseline", "bot RSS ÷ baseline", "bot Slack calls ÷ baseline"],
                [[b["runs"], b["lag_s"]["p99"], b["provider_calls_per_run_per_cycle"],
                  b["slack_calls_per_run_per_cycle"], b["cpu_cores"], b["rss_mb"],
                  ratio(r["cpu_cores"], b["cpu_cores"]), ratio(r["rss_mb"], b["rss_mb"]),
                  ratio(r["slack_calls"], b["slack_calls"])]
                 for r, b in zip(results["bot"], results["baseline"], strict=True)],
            )
        print("driver (emulators + fake Slack) CPU cores during the bot's windows: "
              + ", ".join(f"{r['runs']:,}: {r['driver_cpu_cores']}" for r in results["bot"]))
        prof = workdir / "bot.prof"
        if prof.exists():
            print(f"\n## profile of the bot at {max(sizes):,} runs (top 25 by own time)")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
        save_json(args.json, results)
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
