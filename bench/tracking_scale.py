"""Tracking at scale: N in-flight runs against emulators answering status calls in 200 ms, each run due every 30 s.

For each size: the runs are started at the emulators (spread over the four providers, 5 pipelines each) and
recorded in a fresh database with their first polls spread over one interval; then the bot starts and tracks
them. After a warm-up (one interval, longer while some run was never polled: every first poll is a change, heavier
than the steady state; then until at most 0.5 % of the runs are more than 5 s overdue: the second polls fall due as
unevenly as the first were done; then one interval more, for the polls recorded late during that backlog; at most
ten intervals in all), a window of ``--cycles`` intervals is measured:

- poll lag: when each status call reached the emulator minus when it was due (the previous answer of the same
  run + the interval), p50 / p99 / max; runs not polled by the end of the window count as late as they are;
- provider calls per run per cycle, all routes, and per provider (each has a quarter of the runs): DataKitchen
  and Tailer are polled in batches (one call per kitchen or configuration and interval), Rivery (on its legacy
  connection) and InVision one call per run; the poll lag is measured on the runs polled one by one;
- CPU (cores: CPU seconds / wall seconds) and memory (RSS) of the bot process;
- Slack calls in the window (the runs do not change: there is nothing to say);
- with ``--db postgres``: the database server's CPU (every ``postgres`` process, ended backends included), and
  of it the backends serving the bot's database (the server is shared with whatever else runs on the machine);
- with ``--replicas N`` (PostgreSQL only): N bot processes on the one database sharing the due runs through
  leases; each replica's share of the polls (its ``/metrics``), CPU and RSS; lag and calls for all together;
- runs polled twice in one interval: status calls of a run less than half an interval after its previous one,
  from the start of the bot(s) to the end of the window (should be 0, with one replica or several);
- the cost per 1,000 runs at each size: CPU cores and RSS MB (all replicas; the database's CPU beside), and the
  increment from the previous size (what 1,000 more runs cost above the fixed part).

The baseline (``bench/baseline.py``: one loop per run, a message per check) tracks the same runs in its own
process afterwards, measured the same way.

    python -m bench.tracking_scale [--quick] [--sizes 500,5000,20000] [--db sqlite|postgres] [--replicas N]
                                   [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._postgres import PostgresCpu, create_postgres_database, drop_postgres_database
from bench.common import (
    PROVIDERS,
    ROOT,
    BotProcess,
    Emulators,
    ProcSampler,
    Timing,
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
#: the share of the runs that may be more than 5 s overdue when the window starts (the bot has caught up)
CAUGHT_UP = 0.005
#: the longest the warm-up waits for every run's first poll, in intervals (then the window starts anyway)
WARM_UP_INTERVALS = 10


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", help="comma-separated numbers of in-flight runs (default 500,5000,20000)")
    parser.add_argument("--interval", type=float, help="seconds between polls of a run (default 30; quick 10)")
    parser.add_argument("--cycles", type=int, help="intervals measured after the warm-up (default 2; quick 1)")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--replicas", type=int, default=1,
                        help="bot processes on the one database (more than 1 needs --db postgres; default 1)")
    parser.add_argument("--max-concurrency", type=int, default=64,
                        help="status calls in flight per connection (catalog max_concurrency; default 64)")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="run the bot (the first replica) under cProfile for the largest size")
    parser.add_argument("--bot-env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable more for the bot's process (say MALLOC_ARENA_MAX=2); repeatable")
    parser.add_argument("--memory", action="store_true",
                        help="the bot (the first replica) writes where its memory is at the largest size: RSS after "
                             "its imports, after its start and at the end of the window, glibc's and pymalloc's "
                             "heaps, objects by type, tasks (bench/memory_bot.py)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="as --memory, and the top allocations since the start by line (tracemalloc: its own "
                             "bookkeeping inflates that run's RSS)")


def one_by_one(started: list[dict[str, Any]]) -> int:
    """How many of the runs are polled one by one (the runs ``lags`` and ``polled_twice`` can see)."""
    return sum(1 for r in started if r["provider"] not in BATCHED)


def lags(timing: Timing, interval: float, start: float, end: float, started: list[dict[str, Any]]
         ) -> tuple[list[float], int]:
    """Lags of the status calls that arrived in [start, end), and how many runs were overdue at ``end``
    (their lag so far is added: a run that is never polled must not look punctual), and how many of the runs
    polled one by one were never polled (batched providers' runs are in neither: a batch's call names no run)."""
    found: list[float] = []
    polled = 0
    for key, calls in timing.by_key.items():
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
    never = one_by_one(started) - polled
    return found, never


def lag_detail(timing: Timing, interval: float, start: float, end: float) -> dict[str, Any]:
    """Where the late polls are: the lag by provider (of those polled one by one), and how many polls more than 5 s
    late arrived in each 10 s of the window (a burst, say after a stall, or late polls all along)."""
    by_provider: dict[str, list[float]] = defaultdict(list)
    late_by_10s = [0] * max(1, math.ceil((end - start) / 10))
    for key, calls in timing.by_key.items():
        provider = key.split(" ", 1)[0]
        if provider in BATCHED:
            continue
        for (_, answered), (arrived, _) in itertools.pairwise(calls):
            if start <= arrived < end:
                lag = arrived - (answered + interval)
                by_provider[provider].append(lag)
                if lag > 5:
                    late_by_10s[min(len(late_by_10s) - 1, int((arrived - start) // 10))] += 1
    return {
        "lag_s_by_provider": {p: spread(found, scale=1.0, digits=2) for p, found in sorted(by_provider.items())},
        "late_over_5s_by_10s_of_window": late_by_10s,
    }


def polled_twice_examples(timing: Timing, interval: float, end: float, most: int = 10) -> list[dict[str, Any]]:
    """Up to ``most`` runs polled twice in one interval, with every status call's arrival and answer (seconds on the
    benchmark's clock): two calls a second apart, the first unanswered, is a client's retry; two full polls, two
    claims."""
    found: list[dict[str, Any]] = []
    for key, calls in timing.by_key.items():
        if key.split(" ", 1)[0] in BATCHED:
            continue
        if any(arrived < end and arrived - before < interval / 2
               for (before, _), (arrived, _) in itertools.pairwise(calls)):
            found.append({"run": key[:80], "calls": [[round(a, 3), round(b, 3)] for a, b in calls]})
            if len(found) >= most:
                break
    return found


def polled_twice(timing: Timing, interval: float, end: float) -> tuple[int, int]:
    """Status calls of a run that arrived less than half an interval after its previous one, before ``end``
    (each run is due once an interval: such a call is a second poll in the same interval, say by two replicas
    holding the same run), and how many runs had one. Runs polled one by one only, as for ``lags``: a batch's
    call serves many runs and names none."""
    twice = runs = 0
    for key, calls in timing.by_key.items():
        if key.split(" ", 1)[0] in BATCHED:
            continue
        found = sum(1 for (before, _), (arrived, _) in itertools.pairwise(calls)
                    if arrived < end and arrived - before < interval / 2)
        twice += found
        runs += found > 0
    return twice, runs


async def measure_bot(
    n: int, args: argparse.Namespace, interval: float, cycles: int, workdir: Path, profile: Path | None,
    memory: Path | None = None,
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
    bots: list[BotProcess] = []
    names = [f"bot-{n}" if args.replicas == 1 else f"bot-{n}-r{i + 1}" for i in range(args.replicas)]
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
        env.update(item.split("=", 1) for item in args.bot_env)
        for i, name in enumerate(names):
            bots.append(BotProcess(workdir, slack, path, database_url=database, env=env,
                                   profile=profile if i == 0 else None, memory=memory if i == 0 else None,
                                   trace=args.tracemalloc, name=name))
        await asyncio.gather(*(bot.ready() for bot in bots))
        slack.app_url = bots[0].events_url
        timeline: list[tuple[float, float]] = []  # the first replica's RSS every 2 s from its start, MB

        async def sample_rss() -> None:
            while bots[0].proc.poll() is None:
                timeline.append((round(time.monotonic() - t0 - setup, 1), round(bots[0].sampler.rss_mb(), 1)))
                await asyncio.sleep(2.0)

        sampling = asyncio.create_task(sample_rss())
        # warm-up: the first interval polls every run once; then the window. Every run's first poll is a change
        # (recorded queued, found running): heavier than the steady state the window measures, so a bot still in
        # its first polls after the interval is waited for (up to WARM_UP_INTERVALS), and the wait is reported
        await asyncio.sleep(max(0.0, (warm_start - datetime.now(UTC)).total_seconds()) + interval + 2)
        warm_up_deadline = time.monotonic() + interval * WARM_UP_INTERVALS
        unpolled = await never_polled(database)
        while unpolled and time.monotonic() < warm_up_deadline:  # another process's database: nothing to await
            await asyncio.sleep(2.0)
            unpolled = await never_polled(database)
        # the first polls done, the second ones fall due as unevenly as the first were done: a backlog the bot
        # works off before it is in the steady state the targets describe; the window starts once it has caught
        # up (at most ``CAUGHT_UP`` of the runs more than 5 s overdue), or at the deadline anyway, and says which
        behind_at_start = sum((await overdue(database, datetime.now(UTC))).values())
        while behind_at_start > n * CAUGHT_UP and time.monotonic() < warm_up_deadline:
            await asyncio.sleep(2.0)
            behind_at_start = sum((await overdue(database, datetime.now(UTC))).values())
        if unpolled == 0 and warm_up_deadline - time.monotonic() > interval:
            # caught up, as the database sees it: the bot schedules a run's next poll from when it recorded the last
            # answer, so the polls it recorded late during the backlog come due once more, late by the emulators'
            # clock; one interval more, and the window sees what the steady state does
            await asyncio.sleep(interval)
        warm_up = round((datetime.now(UTC) - warm_start).total_seconds(), 1)
        before = [await bot.metrics() for bot in bots]
        calls_before = sum(emulators.timing.routes.values())
        routes_before = dict(emulators.timing.routes)
        slack_before = len(slack.calls)
        me = ProcSampler(__import__("os").getpid())
        server = PostgresCpu() if args.db == "postgres" else None
        server_local = server is not None and server.available
        db0 = server.seconds() if server is not None and server_local else 0.0
        ours0 = server.database_seconds(database) if server is not None and server_local else {}
        cpu0 = [bot.sampler.cpu_seconds() for bot in bots]
        me0, wall0 = me.cpu_seconds(), time.monotonic()
        window_start = time.time()
        rss: list[list[float]] = [[] for _ in bots]
        while time.monotonic() - wall0 < interval * cycles:
            for samples, bot in zip(rss, bots, strict=True):
                samples.append(bot.sampler.rss_mb())
            await asyncio.sleep(1.0)
        window_end = time.time()
        wall = time.monotonic() - wall0
        cpus = [(bot.sampler.cpu_seconds() - c0) / wall for bot, c0 in zip(bots, cpu0, strict=True)]
        driver_cpu = (me.cpu_seconds() - me0) / wall
        db_cpu = db_ours = None
        if server is not None and server_local:
            db_cpu = (server.seconds() - db0) / wall
            ours1 = server.database_seconds(database)
            db_ours = sum(s - ours0.get(pid, 0.0) for pid, s in ours1.items()) / wall
        sampling.cancel()
        # after the CPU readings: this query is the benchmark's, not the bot's
        behind = await overdue(database, datetime.fromtimestamp(window_end, UTC))
        after = [await bot.metrics() for bot in bots]
        found, never = lags(emulators.timing, interval, window_start, window_end, started)
        twice, twice_runs = polled_twice(emulators.timing, interval, window_end)
        calls = sum(emulators.timing.routes.values()) - calls_before
        cycles_seen = wall / interval
        per_provider = {
            provider: round(
                sum(c - routes_before.get(key, 0) for key, c in emulators.timing.routes.items() if key[0] == provider)
                / max(1, sum(1 for r in started if r["provider"] == provider)) / cycles_seen, 3)
            for provider in PROVIDERS
        }
        polls_each = [BotProcess.total(a, POLLS) - BotProcess.total(b, POLLS)
                      for a, b in zip(after, before, strict=True)]
        polls = sum(polls_each)
        # the memory of all replicas at the same moments (each one's own peak is beside)
        rss_total = max(sum(at) for at in zip(*rss, strict=True))
        return {
            "runs": n, "replicas": len(bots), "interval_s": interval, "window_s": round(wall, 1),
            "setup_s": round(setup, 1),
            "lag_s": spread(found, scale=1.0, digits=2), "late_over_5s": sum(1 for x in found if x > 5),
            "never_polled": never, "overdue_over_5s_at_end_by_provider": behind,
            **lag_detail(emulators.timing, interval, window_start, window_end),
            "warm_up_s": warm_up, "unpolled_after_warm_up": unpolled, "overdue_at_window_start": behind_at_start,
            "polled_twice_in_an_interval": twice, "runs_polled_twice": twice_runs,
            "polled_twice_examples": polled_twice_examples(emulators.timing, interval, window_end),
            "provider_calls_per_run_per_cycle": round(calls / n / cycles_seen, 3),
            "polls_per_run_per_cycle": round(polls / n / cycles_seen, 3),
            "provider_calls_per_run_per_cycle_by_provider": per_provider,
            "cpu_cores": round(sum(cpus), 3), "rss_mb": round(rss_total, 1),
            "rss_timeline_mb": timeline, "window_from_s": round(wall0 - t0 - setup, 1),
            "peak_rss_mb": round(sum(bot.sampler.peak_rss_mb() for bot in bots), 1),
            "db_in_process": args.db == "sqlite",
            "db_cpu_cores": None if db_cpu is None else round(db_cpu, 3),
            "db_cpu_cores_this_database": None if db_ours is None else round(db_ours, 3),
            "each_replica": [
                {"name": name, "log": bot.log_path.name, "polls": int(p),
                 "share": round(p / polls, 3) if polls else 0.0, "cpu_cores": round(c, 3),
                 "rss_mb": round(max(samples), 1), "peak_rss_mb": round(bot.sampler.peak_rss_mb(), 1)}
                for name, bot, p, c, samples in zip(names, bots, polls_each, cpus, rss, strict=True)
            ],
            "slack_calls": len(slack.calls) - slack_before, "driver_cpu_cores": round(driver_cpu, 3),
            "provider_errors": sum(BotProcess.total(a, PROVIDER_ERRORS) for a in after),
        }
    finally:
        exits = await asyncio.gather(*(bot.shutdown(grace=20) for bot in bots))
        for bot, code in zip(bots, exits, strict=True):
            if code != 0:
                print(f"   (the bot exited with {bot.proc.returncode}; see {bot.log_path})")
        await emulators.stop()
        await slack.stop()
        if args.db == "postgres":
            await drop_postgres_database(database)


async def never_polled(database: str) -> int:
    """Runs the bot has not polled once yet (still as the benchmark recorded them), read from its database."""
    from sqlalchemy import func, select

    from bot.store.engine import make_engine
    from bot.store.tables import runs

    engine = make_engine(database)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(runs).where(runs.c.final.is_(False), runs.c.polls == 0)
            )).scalar_one())
    finally:
        await engine.dispose()


async def overdue(database: str, at: datetime, late: float = 5.0) -> dict[str, int]:
    """Runs, by provider, whose poll was due more than ``late`` seconds before ``at`` and not yet recorded, read
    from the bot's database: the batched providers' runs too, which the emulators' timing cannot name (a batch's
    call names no run), so a batched scope left behind shows here and nowhere else."""
    from sqlalchemy import func, select

    from bot.store.engine import make_engine
    from bot.store.tables import runs

    engine = make_engine(database)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(runs.c.provider, func.count())
                .where(runs.c.final.is_(False), runs.c.next_poll_at < at - timedelta(seconds=late))
                .group_by(runs.c.provider)
            )
            found = {str(provider): int(count) for provider, count in rows.all()}
    finally:
        await engine.dispose()
    return {provider: found.get(provider, 0) for provider in PROVIDERS}


def per_thousand(results: list[dict[str, Any]]) -> None:
    """Adds ``per_1000_runs`` to each size's figures: CPU cores and RSS MB per 1,000 runs (all replicas; the
    database server's CPU beside when measured), and the increment per 1,000 runs from the next smaller size
    measured with as many replicas (the fixed part of the cost left out)."""
    previous: dict[int, dict[str, Any]] = {}
    for r in sorted(results, key=lambda r: (r["replicas"], r["runs"])):
        k = 1000 / r["runs"]
        db = r["db_cpu_cores"]
        figures: dict[str, float | None] = {
            "cpu_cores": round(r["cpu_cores"] * k, 4),
            "db_cpu_cores": None if db is None else round(db * k, 4),
            "cpu_cores_with_db": None if db is None else round((r["cpu_cores"] + db) * k, 4),
            "rss_mb": round(r["rss_mb"] * k, 2),
            "increment_cpu_cores": None, "increment_rss_mb": None,
        }
        last = previous.get(r["replicas"])
        if last is not None and r["runs"] > last["runs"]:
            more = 1000 / (r["runs"] - last["runs"])
            figures["increment_cpu_cores"] = round((r["cpu_cores"] - last["cpu_cores"]) * more, 4)
            figures["increment_rss_mb"] = round((r["rss_mb"] - last["rss_mb"]) * more, 2)
        r["per_1000_runs"] = figures
        previous[r["replicas"]] = r


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
        # the lag on the same runs as the bot's (those it polls one by one), and "never polled" counted among them
        # (counted against all n, half the baseline's runs, the batched providers', were "never polled")
        found, never = lags(emulators.timing, interval, window_start, window_end, started)
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


def _overdue_cell(by_provider: dict[str, int]) -> str:
    """All runs overdue, and the providers they are of: "0", or "250 (tailer 125, datakitchen 125)"."""
    total = sum(by_provider.values())
    if not total:
        return "0"
    return f"{total:,} (" + ", ".join(f"{p} {c:,}" for p, c in by_provider.items() if c) + ")"


def _db_cell(r: dict[str, Any]) -> str:
    """The database server's CPU, and of it the backends serving the bot's database (the rest is other work of a
    shared server); "in-process" for SQLite (counted in the bot's CPU)."""
    if r["db_cpu_cores"] is None:
        return "in-process" if r.get("db_in_process") else "–"
    return f"{r['db_cpu_cores']:.3f} ({r['db_cpu_cores_this_database']:.3f} ours)"


def print_memory(report: dict[str, Any], n: int) -> None:
    """The bot's memory report (bench/memory_bot.py) as tables."""
    print(f"\n## where the bot's memory is at {n:,} runs (bench/memory_bot.py)")
    end = report.get("end", {})
    stages = [("the interpreter", report["interpreter"]), ("imports of `run` done", report["imported"]),
              ("started", report.get("started", {}).get("proc", {})), ("end of the window", end.get("proc", {})),
              ("then malloc_trim(0)", report.get("after_malloc_trim", {}))]
    print_table(["when", "RSS MB", "anonymous MB", "file-backed MB", "peak MB"],
                [[what, p.get("VmRSS"), p.get("RssAnon"), p.get("RssFile"), p.get("VmHWM")] for what, p in stages if p])
    if report.get("trims"):
        print("the runtime's heap trims (RSS MB before → after): "
              + ", ".join(f"{a} → {b}" for a, b in report["trims"]))
    for what in ("started", "end"):
        snap = report.get(what)
        if snap:
            print(f"{what}: glibc {snap['glibc']}; pymalloc {snap['pymalloc']}; {snap['gc_objects']:,} objects "
                  f"tracked; {snap['tasks']} tasks {snap['task_names'][:5]}")
            print("  objects by type: " + ", ".join(f"{t} {c:,}" for t, c in snap["gc_types"][:15]))
            if snap.get("modules_imported"):
                print("  modules the start imported (by package): "
                      + ", ".join(f"{p} {c}" for p, c in snap["modules_imported"][:25]))
    if "top_lines" in end:
        print(f"tracemalloc since the start: {end['traced_mb']} MB traced (its own bookkeeping "
              f"{end['tracemalloc_own_mb']} MB)")
        print_table(["line", "KB", "blocks"], end["top_lines"][:25])
        print_table(["file", "KB", "blocks"], end["top_files"][:15])
        peak = report.get("at_peak")
        if peak:
            print(f"tracemalloc's largest reading (every 3 s): {peak['traced_mb']} MB traced, "
                  f"{peak['seconds_after_start']} s after the start, RSS {peak['proc'].get('VmRSS')} MB")
            print_table(["line", "KB", "blocks"], peak["top_lines"][:20])


def ratio(a: float, b: float) -> str:
    if b == 0:
        return "–" if a == 0 else "∞"
    return f"{a / b:.2f}×"


async def main() -> int:
    args = bench_args("tracking at scale", _extra)
    if args.replicas < 1:
        print("--replicas: at least 1", file=sys.stderr)
        return 2
    if args.replicas > 1 and args.db != "postgres":
        print(f"--replicas {args.replicas}: several bot processes share one database only on PostgreSQL "
              "(SQLite is for one process); add --db postgres", file=sys.stderr)
        return 2
    info = print_header("tracking at scale", args)
    sizes = [int(s) for s in (args.sizes or ("300,1000" if args.quick else "500,5000,20000")).split(",")]
    interval = args.interval or (10.0 if args.quick else 30.0)
    cycles = args.cycles or (1 if args.quick else 2)
    workdir = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    print(f"sizes {sizes}, status answered in {DELAY * 1000:.0f} ms, each run due every {interval:g} s, "
          f"window {cycles} interval(s), database {args.db}, {args.replicas} bot replica(s), "
          f"max_concurrency {args.max_concurrency} per connection")
    print()
    results: dict[str, Any] = {"machine": info, "sizes": sizes, "interval_s": interval, "db": args.db,
                               "replicas": args.replicas, "max_concurrency": args.max_concurrency,
                               "bot": [], "baseline": []}
    try:
        for n in sizes:
            profile = workdir / "bot.prof" if args.profile and n == max(sizes) else None
            memory = workdir / "memory.json" if (args.memory or args.tracemalloc) and n == max(sizes) else None
            print(f"… bot ({args.replicas} replica(s)), {n} runs", flush=True)
            results["bot"].append(await measure_bot(n, args, interval, cycles, workdir, profile, memory))
            if not args.no_baseline:
                print(f"… baseline, {n} runs", flush=True)
                results["baseline"].append(await measure_baseline(n, args, interval, cycles, workdir))
        per_thousand(results["bot"])
        print()
        print("## the bot" + (f" ({args.replicas} replicas together)" if args.replicas > 1 else ""))
        print_table(
            ["runs", "lag p50 s", "lag p99 s", "lag max s", "late >5 s", "overdue >5 s at the end",
             "polled twice in an interval", "provider calls/run/cycle", "CPU cores", "RSS MB", "database CPU cores",
             "Slack calls"],
            [[r["runs"], r["lag_s"]["p50"], r["lag_s"]["p99"], r["lag_s"]["max"], r["late_over_5s"] + r["never_polled"],
              _overdue_cell(r["overdue_over_5s_at_end_by_provider"]), r["polled_twice_in_an_interval"],
              r["provider_calls_per_run_per_cycle"], r["cpu_cores"], r["rss_mb"], _db_cell(r), r["slack_calls"]]
             for r in results["bot"]],
        )
        if args.replicas > 1:
            print("each replica: its share of the polls (its /metrics), CPU and RSS")
            print_table(
                ["runs", "replica", "polls", "share", "CPU cores", "RSS MB"],
                [[r["runs"], e["name"], e["polls"], f"{e['share']:.1%}", e["cpu_cores"], e["rss_mb"]]
                 for r in results["bot"] for e in r["each_replica"]],
            )
        print("provider calls per run per interval, by provider (batched: " + ", ".join(BATCHED) + ")")
        print_table(
            ["runs", *PROVIDERS],
            [[r["runs"], *(r["provider_calls_per_run_per_cycle_by_provider"][p] for p in PROVIDERS)]
             for r in results["bot"]],
        )
        print("cost per 1,000 runs (all replicas; \"more\": what 1,000 more runs cost from the size before)")
        print_table(
            ["runs", "replicas", "CPU cores", "database CPU cores", "RSS MB", "more: CPU cores", "more: RSS MB"],
            [[r["runs"], r["replicas"], f"{c['cpu_cores']:.3f}",
              "–" if c["db_cpu_cores"] is None else f"{c['db_cpu_cores']:.3f}", f"{c['rss_mb']:.1f}",
              "–" if c["increment_cpu_cores"] is None else f"{c['increment_cpu_cores']:.3f}",
              "–" if c["increment_rss_mb"] is None else f"{c['increment_rss_mb']:.1f}"]
             for r in results["bot"] for c in [r["per_1000_runs"]]],
        )
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
        print("warm-up (every run polled once and the backlog worked off; then the window): "
              + ", ".join(f"{r['runs']:,}: {r['warm_up_s']} s"
                          + (f" ({r['unpolled_after_warm_up']:,} runs still unpolled)" if r["unpolled_after_warm_up"]
                             else "")
                          + (f" ({r['overdue_at_window_start']:,} runs more than 5 s overdue at the window's start)"
                             if r["overdue_at_window_start"] > r["runs"] * CAUGHT_UP else "")
                          for r in results["bot"]))
        print("driver (emulators + fake Slack) CPU cores during the bot's windows: "
              + ", ".join(f"{r['runs']:,}: {r['driver_cpu_cores']}" for r in results["bot"]))
        prof = workdir / "bot.prof"
        if prof.exists():
            print(f"\n## profile of the bot at {max(sizes):,} runs (top 25 by own time)")
            pstats.Stats(str(prof)).sort_stats("tottime").print_stats(25)
        memory_report = workdir / "memory.json"
        if memory_report.exists():
            results["memory"] = json.loads(memory_report.read_text())
            print_memory(results["memory"], max(sizes))
        save_json(args.json, results)
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
