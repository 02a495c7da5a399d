"""What the benchmarks share: the machine, a world of emulators and a fake Slack in this process, the bot as a
separate process (so its CPU and memory are its own), percentiles and printing.

Every benchmark starts the real bot (``python -m bot run``) against the fake Slack and the provider emulators,
talks to it only through HTTP (signed Slack requests in, Web API calls and provider calls out) and reads its
``/metrics`` and ``/proc/<pid>`` for what it costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bot.emulators._core import EmulatorState, Fault, Outcome, RealClock
from bot.emulators._server import EmulatorServer
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.invision import InVisionEmulator
from bot.emulators.rivery import RiveryEmulator
from bot.emulators.slack import FakeSlack
from bot.emulators.tailer import TailerEmulator

__all__ = [
    "PROVIDERS",
    "SECRETS",
    "BotProcess",
    "Emulators",
    "ProcSampler",
    "Timing",
    "bench_args",
    "catalog_yaml",
    "machine",
    "pct",
    "print_header",
    "print_table",
    "save_json",
    "seed_runs",
    "spread",
    "start_runs",
    "wait_until",
]

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ("rivery", "tailer", "invision", "datakitchen")
#: credentials the emulators accept and the bot reads from its environment; the security checks look for them
SECRETS = {
    "RIVERY_TOKEN": "bench-rivery-token-7f3a9c",
    "TAILER_JWT": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJiZW5jaCJ9.c2lnLWJlbmNo",
    "INVISION_KEY": "bench-invision-key-91c2d4",
    "DK_USER": "bench@example.com",
    "DK_PASSWORD": "bench-dk-password-55e0b1",
}


# -- the machine ------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    memory_gb = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cpu": model or "unknown",
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def print_header(title: str, args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    mode = "quick" if getattr(args, "quick", False) else "full"
    print(f"# {title} ({mode})")
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB, {info['os']}, "
        f"Python {info['python']}, SQLite {info['sqlite']}"
    )
    load = info["load_average"]
    print(f"load average at start: {load[0]} {load[1]} {load[2]}  ({info['when']})")
    if load[0] > 1.5:
        print("WARNING: the machine is busy (load average above 1.5): figures will be pessimistic")
    print()
    return info


def bench_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: finishes in under a minute")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (bot logs, database)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def save_json(path: Path | None, data: Mapping[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(data, indent=2, default=str))
        print(f"\nfigures written to {path}")


# -- figures ----------------------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def spread(values: Sequence[float], scale: float = 1000.0, digits: int = 1) -> dict[str, float]:
    """p50 / p99 / max (and n), scaled (default: seconds → ms)."""
    return {
        "n": len(values),
        "p50": round(pct(values, 50) * scale, digits),
        "p99": round(pct(values, 99) * scale, digits),
        "max": round(max(values) * scale, digits) if values else 0.0,
    }


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A Markdown table, so the output can go into the docs as it is."""
    rows = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


async def wait_until(predicate: Callable[[], bool], limit: float, what: str, step: float = 0.1) -> float:
    """Wait for ``predicate``; returns the seconds it took. Raises TimeoutError naming ``what`` after ``limit``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > limit:
            raise TimeoutError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(step)
    return time.monotonic() - started


# -- the bot's process ------------------------------------------------------------------------------------------


class ProcSampler:
    """CPU time and memory of one process, from /proc (Linux)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._tick  # utime, stime

    def _status(self, key: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def rss_mb(self) -> float:
        return self._status("VmRSS")

    def peak_rss_mb(self) -> float:
        return self._status("VmHWM")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotProcess:
    """``python -m bot run`` in HTTP mode with the given environment; its log goes to a file in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        slack: FakeSlack,
        catalog: Path,
        *,
        database_url: str,
        env: Mapping[str, str] | None = None,
        profile: Path | None = None,
        memory: Path | None = None,
        trace: bool = False,
        name: str = "bot",
    ) -> None:
        self.port = free_port()
        self.log_path = workdir / f"{name}-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()/kill()
        full = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "POLL_", "DATABASE_"))}
        full.update(SECRETS)
        full.update(
            SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=slack.signing_secret,
            SLACK_API_URL=slack.api_url,
            DATABASE_URL=database_url,
            PIPELINES_FILE=str(catalog),
            PORT=str(self.port),
            HOST="127.0.0.1",
            LOG_FORMAT="json",
            SLACK_ADMINS="U0CAROL",
            DIGEST_TIME="",
        )
        full.update(env or {})
        command = [sys.executable, "-m", "bot", "run", "--env-file", str(workdir / "none.env")]
        if profile is not None:
            command = [sys.executable, "-m", "bench.common", "profiled-bot", str(profile)]
        elif memory is not None:  # the same ``run``, writing where its memory is (bench/memory_bot.py)
            command = [sys.executable, "-m", "bench.memory_bot", str(memory), *(["trace"] if trace else []), "--",
                       *command[3:]]
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, env=full, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.sampler = ProcSampler(self.proc.pid)

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    async def ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the bot exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"the bot did not become ready; see {self.log_path}")

    async def metrics(self) -> dict[str, float]:
        """Every series of /metrics, ``name{labels}`` → value."""
        async with httpx.AsyncClient(timeout=30) as client:
            text = (await client.get(f"{self.url}/metrics")).text
        found: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                found[key] = float(value)
        return found

    @staticmethod
    def total(metrics: Mapping[str, float], name: str, **labels: str) -> float:
        """Sum of a metric's series whose labels include ``labels``."""
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(
            v for k, v in metrics.items() if k.split("{", 1)[0] == name and all(w in k for w in wanted)
        )

    def kill(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    async def shutdown(self, grace: float = 30.0) -> int:
        """SIGTERM and wait without blocking this process's event loop (the emulators and the fake Slack the bot
        is still talking to live in it); SIGKILL after ``grace`` seconds. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            deadline = time.monotonic() + grace
            while self.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110 - a child process
                await asyncio.sleep(0.05)
        self.stop(timeout=0.1)
        return self.proc.returncode

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


# -- provider emulators -----------------------------------------------------------------------------------------


@dataclass
class Timing:
    """When each status request arrived at an emulator and when it was answered, by request identity (a run's
    status request is the same bytes every time it is polled), plus counts by provider and route."""

    by_key: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    routes: Counter[tuple[str, str]] = field(default_factory=Counter)
    record: bool = True

    def clear(self) -> None:
        self.by_key.clear()
        self.routes.clear()

    def status_calls(self, provider: str | None = None) -> int:
        return sum(n for (p, route), n in self.routes.items() if route == "status" and provider in (None, p))


class Emulators:
    """The four provider emulators on the real clock, each timed; ``delay_status`` makes status calls slow."""

    def __init__(self, default: Outcome | None = None) -> None:
        self.timing = Timing()
        default = default or Outcome(queued_s=1, running_s=4)

        def state() -> EmulatorState:
            # a bounded record of requests: long runs stay small
            return EmulatorState(clock=RealClock(), default=default, keep_requests=5000)

        self.servers: dict[str, EmulatorServer] = {
            "rivery": RiveryEmulator(state(), tokens=[SECRETS["RIVERY_TOKEN"]]),
            "tailer": TailerEmulator(state(), tokens=[SECRETS["TAILER_JWT"]]),
            "invision": InVisionEmulator(state(), api_keys=[SECRETS["INVISION_KEY"]]),
            "datakitchen": DataKitchenEmulator(state(), users={SECRETS["DK_USER"]: SECRETS["DK_PASSWORD"]}),
        }
        # the benches start rivers far more often than Rivery allows (2 runs of a river a minute, 15 per token):
        # lifted here and in the catalog (``catalog_yaml``), as the bot's throughput is what they measure
        self.servers["rivery"].configure({"river_runs_per_minute": 0, "token_runs_per_minute": 0})
        for key, server in self.servers.items():
            original = server.build_app
            server.build_app = self._timed(key, original)  # type: ignore[method-assign]

    def _timed(self, provider: str, build: Callable[[], web.Application]) -> Callable[[], web.Application]:
        timing = self.timing

        def build_app() -> web.Application:
            app = build()

            @web.middleware
            async def timed(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                            ) -> web.StreamResponse:
                arrived = time.time()
                response = await handler(request)
                info = request.match_info
                name = info.route.name if info.http_exception is None else None
                if name is not None and timing.record:
                    timing.routes[(provider, name)] += 1
                    if name == "status":
                        body = (await request.read()).decode("utf-8", "replace")
                        if "get_last_status" not in body:  # one run's status call; not a batch of many runs
                            timing.by_key[f"{provider} {request.method} {request.path_qs} {body}"].append(
                                (arrived, time.time())
                            )
                return response

            app.middlewares.insert(0, timed)
            return app

        return build_app

    def __getitem__(self, provider: str) -> EmulatorServer:
        return self.servers[provider]

    async def start(self) -> None:
        for server in self.servers.values():
            await server.start()

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()

    def delay_status(self, seconds: float) -> None:
        """Every status call answers after ``seconds`` (a provider answering in 200 ms: 0.2), batched ones too
        (DataKitchen's order status of a kitchen, Rivery v1's runs of a river; Tailer's share the status route)."""
        for server in self.servers.values():
            for route in ("status", "list", "v1_runs"):
                server.state.add_fault(Fault(route=route, kind="delay", delay=seconds, times=None))

    def delay_everything(self, seconds: float) -> None:
        for server in self.servers.values():
            server.state.add_fault(Fault(route="*", kind="delay", delay=seconds, times=None))

    def clear_faults(self) -> None:
        for server in self.servers.values():
            server.state.clear_faults()

    def urls(self) -> dict[str, str]:
        return {key: server.url for key, server in self.servers.items()}


# -- the catalog ------------------------------------------------------------------------------------------------


def identity(provider: str, i: int) -> dict[str, str]:
    """The provider's identity of the i-th bench job of that provider."""
    if provider == "rivery":
        return {"river_id": f"{0xBE0C000 + i:024x}"}
    if provider == "tailer":
        return {"account": "000099", "environment": "DEV", "configuration_type": "table-to-table",
                "configuration_id": f"000099_bench_{i:03d}"}
    if provider == "invision":
        return {"dataflow_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{i}"))}
    return {"kitchen": "production", "recipe": f"bench_{i:03d}", "variation": "daily"}


def pipeline_name(provider: str, i: int) -> str:
    return f"{provider}-{i:02d}"


def catalog_yaml(
    urls: Mapping[str, str],
    *,
    per_provider: int = 2,
    max_concurrency: int = 8,
    timeout_seconds: float = 30.0,
    channels: Sequence[str] = ("C0ALERTS",),
    extra_pipelines: str = "",
) -> str:
    """Four connections (one per provider) and ``per_provider`` pipelines each, spread over ``channels``."""
    common = f"max_concurrency: {max_concurrency}, timeout_seconds: {timeout_seconds}"
    lines = [
        "defaults:",
        '  channel: "C0ALERTS"',
        "  owners: [U0BOB, S0DATAENG]",
        '  allow_run: ["*"]',
        "  allow_change: [U0ALICE]",
        "connections:",
        f'  rivery: {{provider: rivery, base_url: "{urls["rivery"]}/api", api_token: "${{RIVERY_TOKEN}}", {common}, '
        "river_runs_per_minute: 1000000, runs_per_minute: 1000000}",
        f'  tailer: {{provider: tailer, base_url: "{urls["tailer"]}", token: "${{TAILER_JWT}}", {common}}}',
        f'  invision: {{provider: invision, base_url: "{urls["invision"]}/invision/", '
        f'api_key: "${{INVISION_KEY}}", {common}}}',
        f'  datakitchen: {{provider: datakitchen, base_url: "{urls["datakitchen"]}", username: "${{DK_USER}}", '
        f'password: "${{DK_PASSWORD}}", {common}}}',
        "pipelines:",
    ]
    n = 0
    for provider in PROVIDERS:
        for i in range(per_provider):
            ident = ", ".join(f'{k}: "{v}"' for k, v in identity(provider, i).items())
            channel = channels[n % len(channels)]
            lines.append(f'  {pipeline_name(provider, i)}: {{connection: {provider}, {ident}, channel: "{channel}"}}')
            n += 1
    return "\n".join(lines) + "\n" + textwrap.dedent(extra_pipelines)


def parse_catalog_text(text: str) -> Any:
    import yaml

    from bot.catalog.load import parse_catalog

    return parse_catalog(yaml.safe_load(text), dict(SECRETS))


# -- runs in flight --------------------------------------------------------------------------------------------


async def start_runs(emulators: Emulators, catalog: Any, n: int, per_provider: int) -> list[dict[str, Any]]:
    """Start ``n`` runs at the emulators through the bot's own clients (so their ids are what the bot gets)."""
    from bot.service.clients import ClientPool

    pool = ClientPool.for_catalog(catalog)
    gate = asyncio.Semaphore(64)
    jobs = [(p, i) for p in PROVIDERS for i in range(per_provider)]

    async def one(k: int) -> dict[str, Any]:
        provider, i = jobs[k % len(jobs)]
        pipeline = catalog.pipelines[pipeline_name(provider, i)]
        async with gate:
            started = await pool.client(pipeline.connection).trigger(pipeline.job, {})
        return {"pipeline": pipeline.name, "provider": provider, "connection": pipeline.connection,
                "job": pipeline.job.model_dump(), "provider_run_id": started.run_id, "channel": "C0GENERAL"}

    try:
        return list(await asyncio.gather(*(one(k) for k in range(n))))
    finally:
        await pool.aclose()


async def seed_runs(database_url: str, started: list[dict[str, Any]], first_due: datetime, interval: float) -> None:
    """Record the runs as the bot would have: queued, origin watch (found by passive watch: no card, failures
    alert in the pipeline's channel), first polls spread over ``interval`` from ``first_due``."""
    from sqlalchemy import insert

    from bot.store.engine import make_engine, migrate
    from bot.store.tables import runs

    engine = make_engine(database_url)
    await migrate(engine)
    now = datetime.now(UTC)
    rows = [
        {
            "pipeline": r["pipeline"], "provider": r["provider"], "connection": r["connection"], "job": r["job"],
            "parameters": {}, "provider_run_id": r["provider_run_id"], "state": "queued", "raw_status": "",
            "message": "", "warning": "", "tasks": [], "extra": {}, "final": False, "origin": "watch",
            "started_by": None, "channel": None, "retry_of": None, "attempt": 1, "created_at": now,
            "updated_at": now, "next_poll_at": first_due + timedelta(seconds=interval * k / len(started)),
            "polls": 0, "last_error": "",
        }
        for k, r in enumerate(started)
    ]
    if "notified_state" in runs.c:  # the bot marks a run notified once its card and alerts are written
        for row in rows:
            row["notified_state"] = "queued"
    random.shuffle(rows)
    async with engine.begin() as conn:
        for i in range(0, len(rows), 2000):
            await conn.execute(insert(runs), rows[i : i + 2000])
    await engine.dispose()



# -- Slack ------------------------------------------------------------------------------------------------------


def slack_calls(slack: FakeSlack, method: str, *, ok: bool | None = None, since: int = 0) -> list[Any]:
    return [c for c in slack.calls[since:] if c.method == method and (ok is None or c.ok == ok)]


def top_level_posts(slack: FakeSlack, since: int = 0) -> list[Any]:
    return [c for c in slack_calls(slack, "chat.postMessage", ok=True, since=since) if not c.params.get("thread_ts")]


# -- the bot under cProfile -------------------------------------------------------------------------------------


def _profiled_bot(out: Path) -> int:
    """``pipeline-bot run`` under cProfile; the profile is written when SIGTERM arrives, before the bot stops
    (so a slow or stuck shutdown cannot lose it)."""
    import cProfile
    import signal

    from bot.catalog.load import load_catalog
    from bot.config import environment, load_settings
    from bot.ops.logs import setup_logging
    from bot.runtime import Runtime

    settings = load_settings(env_file=None)
    catalog = load_catalog(settings.pipelines_file, environment(None))
    setup_logging(settings.log_level, settings.log_format)
    profiler = cProfile.Profile()

    async def serve() -> None:
        runtime = Runtime(settings, catalog)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await runtime.start()
        profiler.enable()
        await stop.wait()
        profiler.disable()
        profiler.dump_stats(str(out))
        await runtime.stop()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["profiled-bot"]:
        sys.exit(_profiled_bot(Path(sys.argv[2])))
    print("usage: python -m bench.common profiled-bot PROFILE_FILE", file=sys.stderr)
    sys.exit(2)
