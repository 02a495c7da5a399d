"""The tracking benchmark's own arithmetic (bench/tracking_scale.py): what it counts must neither flatter nor
wrong the bot or the baseline."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._postgres import PostgresCpu
from bench.common import Timing, seed_runs
from bench.tracking_scale import lags, never_polled, overdue, per_thousand, polled_twice

INTERVAL = 10.0


def _started(*providers: str) -> list[dict[str, Any]]:
    return [{"provider": p} for p in providers]


def _timing(calls: dict[str, list[float]]) -> Timing:
    """Each key's calls arrive at the given times and are answered 0.2 s later."""
    timing = Timing()
    for key, arrivals in calls.items():
        timing.by_key[key] = [(at, at + 0.2) for at in arrivals]
    return timing


def test_lags_counts_never_polled_among_the_runs_polled_one_by_one() -> None:
    """The baseline polls every run one by one, but the lag (like the bot's) is read on the providers the bot
    does not batch: runs of the batched providers are not "never polled" (they were half the baseline's)."""
    timing = _timing({"rivery GET /run/1 ": [0.0, 10.2, 20.4], "invision GET /run/2 ": [1.0, 11.2, 21.4],
                      "tailer POST /status run-3": [2.0, 12.2], "datakitchen GET /order/4 ": [3.0, 13.2]})
    started = _started("rivery", "invision", "tailer", "datakitchen")

    found, never = lags(timing, INTERVAL, 10.0, 22.0, started)

    assert never == 0
    assert len(found) == 4  # the second and third calls of the two runs polled one by one
    assert max(found) < 0.1


def test_lags_counts_a_run_never_polled() -> None:
    timing = _timing({"rivery GET /run/1 ": [0.0, 10.2]})

    _, never = lags(timing, INTERVAL, 5.0, 15.0, _started("rivery", "invision", "tailer"))

    assert never == 1  # the InVision run; the Tailer one is batched, so not seen either way


def test_polled_twice_counts_calls_within_half_an_interval() -> None:
    """Two replicas holding the same run poll it twice in one interval: the second call is counted; a batch's
    calls (many runs, one key) are not, nor calls after the end of the window."""
    timing = _timing({
        "rivery GET /run/1 ": [0.0, 10.2, 12.0, 22.0],  # 12.0 is 1.8 s after 10.2: twice in one interval
        "invision GET /run/2 ": [1.0, 11.2, 21.4, 22.0],  # 22.0 is after the end
        "rivery GET /run/3 ": [2.0, 6.9, 12.0],  # 4.9 s: less than half an interval
        "datakitchen GET /kitchen/production ": [0.0, 1.0, 2.0],
    })

    assert polled_twice(timing, INTERVAL, end=21.9) == (2, 2)
    assert polled_twice(timing, INTERVAL, end=30.0) == (3, 3)


def _size(runs: int, cpu: float, rss: float, db: float | None = None, replicas: int = 1) -> dict[str, Any]:
    return {"runs": runs, "replicas": replicas, "cpu_cores": cpu, "rss_mb": rss, "db_cpu_cores": db}


def test_per_thousand_gives_the_cost_and_the_increment_per_1000_runs() -> None:
    sizes = [_size(1000, 0.1, 100.0, db=0.02), _size(5000, 0.3, 180.0, db=0.06), _size(20000, 1.0, 480.0, db=0.2)]

    per_thousand(sizes)

    first, middle, last = (s["per_1000_runs"] for s in sizes)
    assert first == {"cpu_cores": 0.1, "db_cpu_cores": 0.02, "cpu_cores_with_db": 0.12, "rss_mb": 100.0,
                     "increment_cpu_cores": None, "increment_rss_mb": None}
    assert middle["cpu_cores"] == 0.06
    assert middle["rss_mb"] == 36.0
    assert middle["increment_cpu_cores"] == 0.05  # (0.3 - 0.1) / 4
    assert middle["increment_rss_mb"] == 20.0  # (180 - 100) / 4
    assert last["increment_rss_mb"] == 20.0  # (480 - 180) / 15
    assert last["db_cpu_cores"] == 0.01


def test_per_thousand_without_a_database_figure_and_by_replicas() -> None:
    sizes = [_size(1000, 0.1, 100.0), _size(2000, 0.4, 300.0, replicas=2)]

    per_thousand(sizes)

    assert sizes[0]["per_1000_runs"]["db_cpu_cores"] is None
    assert sizes[0]["per_1000_runs"]["cpu_cores_with_db"] is None
    assert sizes[1]["per_1000_runs"]["increment_cpu_cores"] is None  # no smaller size with 2 replicas


async def test_overdue_reads_every_provider_s_runs_from_the_database(tmp_path: Path) -> None:
    """The emulators' timing names no batched run: a batched scope left behind shows only in the database."""
    started: list[dict[str, Any]] = [
        {"pipeline": f"{p}-00", "provider": p, "connection": p, "job": {}, "provider_run_id": f"{p}-{k}"}
        for p in ("rivery", "tailer") for k in range(2)
    ]
    database = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    now = datetime.now(UTC)
    await seed_runs(database, started, now - timedelta(seconds=60), interval=40)  # due 60, 50, 40, 30 s ago

    assert await overdue(database, now) == {"rivery": 2, "tailer": 2, "invision": 0, "datakitchen": 0}
    # 40 s earlier, more than 5 s overdue: the two due 60 and 50 s ago (the Rivery runs: seeded in order)
    assert await overdue(database, now - timedelta(seconds=40)) == {"rivery": 2, "tailer": 0, "invision": 0,
                                                                   "datakitchen": 0}


def _process(proc: Path, pid: int, comm: str, title: str, utime: int, stime: int, cutime: int = 0) -> None:
    entry = proc / str(pid)
    entry.mkdir()
    (entry / "comm").write_text(comm + "\n")
    after = ["S", "1", str(pid), str(pid), "0", "-1", "4194304", "0", "0", "0", "0",
             str(utime), str(stime), str(cutime), "0", "20", "0", "1"]
    (entry / "stat").write_text(f"{pid} ({comm}) " + " ".join(after) + "\n")
    (entry / "cmdline").write_bytes(title.replace(" ", "\0").encode())


def test_postgres_cpu_sums_the_server_s_processes_and_names_the_database_s_backends(tmp_path: Path) -> None:
    """The postmaster's reaped children's time holds the backends that ended; other processes are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    _process(tmp_path, 10, "postgres", "/usr/lib/postgresql/15/bin/postgres -D /data", tick, 0, cutime=3 * tick)
    _process(tmp_path, 11, "postgres", "postgres: 15/main: postgres bot_bench_1 127.0.0.1(5000) idle", tick, tick)
    _process(tmp_path, 12, "postgres", "postgres: 15/main: postgres bot_bench_10 127.0.0.1(5001) idle", tick, 0)
    _process(tmp_path, 13, "python", "python -m bot run", 50 * tick, 0)
    (tmp_path / "self").mkdir()
    server = PostgresCpu(tmp_path)

    assert server.available
    assert server.seconds() == 7.0  # 1 + 3 reaped, 2, 1; not the python process
    assert server.database_seconds("postgresql+asyncpg://postgres@127.0.0.1:5432/bot_bench_1") == {11: 2.0}
    assert not PostgresCpu(tmp_path / "self").available


async def test_the_warm_up_counts_the_runs_never_polled_from_the_database(tmp_path: Path) -> None:
    """Every run's first poll is a change (recorded queued, found running), heavier than the steady state the window
    measures: the warm-up waits while the database still has runs never polled."""
    from sqlalchemy import update

    from bot.store.engine import make_engine
    from bot.store.tables import runs

    started: list[dict[str, Any]] = [
        {"pipeline": "rivery-00", "provider": "rivery", "connection": "rivery", "job": {}, "provider_run_id": f"r-{k}"}
        for k in range(3)
    ]
    database = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await seed_runs(database, started, datetime.now(UTC), interval=10)
    assert await never_polled(database) == 3
    engine = make_engine(database)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.provider_run_id != "r-2").values(polls=1))
    finally:
        await engine.dispose()
    assert await never_polled(database) == 1
