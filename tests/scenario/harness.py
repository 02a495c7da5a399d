"""A whole world for scenario tests: the fake Slack, the four provider emulators on one manual clock,
and the real bot (runtime, HTTP endpoint, scheduler, SQLite file) with short poll intervals; or the bot as a
process of its own (``BotProcess``, ``bot_env``, ``bot_command``), started through its CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from bot.catalog.load import parse_catalog
from bot.config import Settings
from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators._server import EmulatorServer
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.invision import InVisionEmulator
from bot.emulators.rivery import RiveryEmulator
from bot.emulators.slack import FakeSlack
from bot.emulators.slack.server import AppResponse, Message
from bot.emulators.tailer import TailerEmulator
from bot.runtime import Runtime

RIVER = "5e8e1eb46b028e37b73f44f0"
FAILING_RIVER = "63b724fc690def001131d242"
FLOW = "2b081248-4963-43b3-ba06-5b7403d58b4d"
TAILER_CONFIG = "000099_iowa_liquor_prepare_pda_DEV"
DK_JOB = "production/sales_dashboard/daily"

ENV = {
    "RIVERY_TOKEN": "rivery-secret-token",
    "TAILER_JWT": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0.sig",
    "INVISION_KEY": "invision-secret-key",
    "DK_USER": "bot@example.com",
    "DK_PASSWORD": "dk-secret-password",
}

CATALOG = """
defaults:
  channel: "C0ALERTS"
  owners: [S0DATAENG]
  allow_run: ["*"]
  allow_change: [U0ALICE]
connections:
  rivery: {{provider: rivery, base_url: "{rivery}/api", api_token: "${{RIVERY_TOKEN}}"}}
  tailer: {{provider: tailer, base_url: "{tailer}", token: "${{TAILER_JWT}}"}}
  invision: {{provider: invision, base_url: "{invision}/invision/", api_key: "${{INVISION_KEY}}"}}
  datakitchen: {{provider: datakitchen, base_url: "{datakitchen}", username: "${{DK_USER}}", password: "${{DK_PASSWORD}}"}}
pipelines:
  leads-ods:
    connection: rivery
    river_id: {river}
    owners: [U0BOB, S0DATAENG]
    parameters: {{load_date: {{type: date}}}}
  orders:
    connection: rivery
    river_id: {failing}
    owners: [U0BOB]
  iowa-pda:
    connection: tailer
    account: "000099"
    environment: DEV
    configuration_type: table-to-table
    configuration_id: 000099_iowa_liquor_prepare_pda
    parameters: {{execution_date: {{type: date}}}}
    watch: true
    channel: C0OPS
  budget:
    connection: invision
    dataflow_id: {flow}
  sales-dashboard:
    connection: datakitchen
    kitchen: production
    recipe: sales_dashboard
    variation: daily
    allow_run: [U0ALICE]
    parameters: {{source_date: {{type: date}}}}
    watch: true
"""


@dataclass
class World:
    slack: FakeSlack
    clock: ManualClock
    emulators: dict[str, EmulatorServer]
    runtime: Runtime
    tmp: Path
    settings: Settings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tailer(self) -> TailerEmulator:
        """The Tailer emulator as its own class (its configurations and resets, which other emulators lack)."""
        emulator = self.emulators["tailer"]
        assert isinstance(emulator, TailerEmulator)
        return emulator

    async def command(self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL") -> AppResponse:
        return await self.slack.command(text, user=user, channel=channel)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def until(
        self, predicate: Callable[[], bool], timeout: float = 10.0, what: str | Callable[[], str] = ""
    ) -> None:
        """Wait for ``predicate``; ``what`` names it in the failure (a callable: what it reads at the timeout)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                said = what() if callable(what) else what
                raise AssertionError(f"timed out waiting for {said or predicate}\n{self.slack.describe()}")
            await asyncio.sleep(0.02)

    def cards(self, channel: str = "C0GENERAL") -> list[Message]:
        return [m for m in self.slack.messages(channel) if any(b.get("type") == "header" for b in m.blocks)]

    def thread(self, card: Message) -> list[Message]:
        return [m for m in self.slack.messages(card.channel, thread_ts=card.ts, top_level=False) if m.ts != card.ts]

    async def card_saying(self, words: str, channel: str = "C0GENERAL", timeout: float = 10.0) -> Message:
        found: list[Message] = []

        def seen() -> bool:
            found[:] = [m for m in self.cards(channel) if words in m.text or words in json.dumps(m.blocks)]
            return bool(found)

        await self.until(seen, timeout, what=f"a card saying {words!r} in {channel}")
        return found[-1]

    async def restart(self, edit: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Stop the bot and start a new one on the same database (emulators and Slack keep their state); ``edit``
        changes the catalog's YAML first (a deploy that removed or renamed something)."""
        await self.runtime.stop()
        catalog = self.runtime.catalog
        if edit is not None:
            raw = yaml.safe_load(catalog_text(self.emulators))
            edit(raw)
            catalog = parse_catalog(raw, ENV)
        self.runtime = Runtime(self.settings, catalog)
        await self.runtime.start()
        assert self.runtime.http is not None
        self.slack.app_url = f"{self.runtime.http.url}/slack/events"

    async def settle(self, seconds: float = 0.4) -> None:
        """Let the tracker and delivery run a few ticks."""
        await asyncio.sleep(seconds)


def settings_for(slack: FakeSlack, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": slack.bot_token,
        "slack_signing_secret": slack.signing_secret,
        "slack_api_url": slack.api_url,
        "database_url": f"sqlite+aiosqlite:///{tmp / 'bot.db'}",
        "host": "127.0.0.1",
        "port": 0,
        "slack_admins": ["U0CAROL"],
        "poll_interval_seconds": 0.2,
        "poll_interval_max_seconds": 0.5,
        "poll_tick_seconds": 0.05,
        "delivery_tick_seconds": 0.05,
        "unknown_after_seconds": 1.0,
        "shutdown_grace_seconds": 2.0,
        "watch_interval_seconds": 0.3,
        "alert_group_seconds": 0.5,
        "message_edit_gap_seconds": 0.5,
        "provider_down_after_seconds": 2.0,
        "stuck_check_seconds": 0.3,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def make_emulators(clock: ManualClock, env: Mapping[str, str] = ENV) -> dict[str, EmulatorServer]:
    """The four emulators, accepting the credentials of ``env`` (the harness's ``ENV`` unless told)."""

    def state() -> EmulatorState:
        return EmulatorState(clock=clock, default=Outcome(queued_s=5, running_s=30))

    rivery = RiveryEmulator(state(), tokens=[env["RIVERY_TOKEN"]])
    rivery.state.script(FAILING_RIVER, Outcome(result="fail", queued_s=5, running_s=30,
                                               message="Table <!channel> not found", failed_tasks=("load",)))
    return {
        "rivery": rivery,
        "tailer": TailerEmulator(state(), tokens=[env["TAILER_JWT"]]),
        "invision": InVisionEmulator(state(), api_keys=[env["INVISION_KEY"]]),
        "datakitchen": DataKitchenEmulator(state(), users={env["DK_USER"]: env["DK_PASSWORD"]}),
    }


#: Rivery allows 2 runs of a river a minute and 15 per API token (Boomi's legacy API reference), and the bot
#: and the emulator both hold to that. A test that starts rivers faster to prove something else (throughput,
#: recovery, workflows) lifts the limits on both sides: this in the catalog's connection, ``unlimited_rivery``
#: on the emulator.
RIVERY_UNLIMITED = {"river_runs_per_minute": 1000, "runs_per_minute": 1000}


def unlimited_rivery(emulators: dict[str, EmulatorServer]) -> None:
    emulators["rivery"].configure({"river_runs_per_minute": 0, "token_runs_per_minute": 0})


def catalog_text(emulators: dict[str, EmulatorServer], *, rivery_unlimited: bool = False) -> str:
    urls = {name: e.url for name, e in emulators.items()}
    text = textwrap.dedent(CATALOG).format(river=RIVER, failing=FAILING_RIVER, flow=FLOW, **urls)
    if rivery_unlimited:
        lifted = ", ".join(f"{k}: {v}" for k, v in RIVERY_UNLIMITED.items())
        text = text.replace('api_token: "${RIVERY_TOKEN}"}', f'api_token: "${{RIVERY_TOKEN}}", {lifted}}}')
    return text


@asynccontextmanager
async def world(
    tmp: Path, *, catalog_edit: Callable[[dict[str, Any]], None] | None = None, **overrides: Any
) -> AsyncIterator[World]:
    """``catalog_edit`` changes the parsed YAML of the test catalog before it is validated."""
    clock = ManualClock()
    async with running_world(tmp, clock, make_emulators(clock), FakeSlack(), catalog_text,
                             catalog_edit=catalog_edit, **overrides) as w:
        yield w


@asynccontextmanager
async def running_world(
    tmp: Path,
    clock: ManualClock,
    emulators: dict[str, EmulatorServer],
    slack: FakeSlack,
    catalog_for: Callable[[dict[str, EmulatorServer]], str],
    *,
    catalog_edit: Callable[[dict[str, Any]], None] | None = None,
    env: Mapping[str, str] = ENV,
    **overrides: Any,
) -> AsyncIterator[World]:
    """Start the fake Slack and the emulators, then the real bot on the catalog ``catalog_for`` writes for the
    emulators' addresses (its ``${NAME}`` read from ``env``); stop them all at the end. The worlds of every suite
    are made here."""
    import yaml

    watchdog = asyncio.get_running_loop().call_later(HANG_REPORT_SECONDS, _print_tasks)
    await slack.start()
    for emulator in emulators.values():
        await emulator.start()
    raw = yaml.safe_load(catalog_for(emulators))
    if catalog_edit is not None:
        catalog_edit(raw)
    settings = settings_for(slack, tmp, **overrides)
    runtime = Runtime(settings, parse_catalog(raw, env))
    the_world = World(slack, clock, emulators, runtime, tmp, settings)
    try:
        await runtime.start()
        assert runtime.http is not None
        slack.app_url = f"{runtime.http.url}/slack/events"
        yield the_world
    finally:
        # each of the stop's waits is bounded by its grace period: a stop that outlives them all is a hang, said
        # with where each task waits
        stopping = asyncio.ensure_future(the_world.runtime.stop())
        if not (await asyncio.wait({stopping}, timeout=STOP_LIMIT_SECONDS))[0]:
            _print_tasks()
            stopping.cancel()
            raise AssertionError(f"the bot did not stop within {STOP_LIMIT_SECONDS:g} s")
        await stopping
        for emulator in emulators.values():
            await emulator.stop()
        await slack.stop()
        watchdog.cancel()


# pytest-timeout (pyproject.toml) fails a test at 300 s with the main thread's stack, which in a world is the event
# loop's wait: where each task waits is printed first, so a hang says which await never returned
HANG_REPORT_SECONDS = 280.0
STOP_LIMIT_SECONDS = 60.0


def _print_tasks() -> None:
    tasks = asyncio.all_tasks()
    print(f"a world's {len(tasks)} tasks, where each waits:", file=sys.stderr)
    for task in tasks:
        task.print_stack(file=sys.stderr)


# -- the bot as a process of its own ------------------------------------------------------------------------------


def bot_env(**settings: str) -> dict[str, str]:
    """The environment of ``python -m bot …`` in a test: this process's, less any Slack, database or catalog
    setting, with the providers' credentials (``ENV``) and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "PIPELINES_FILE"))}
    env.update(ENV)
    env.update(settings)
    return env


def bot_command(folder: Path, *args: str) -> list[str]:
    """``python -m bot ARGS`` with an env file that does not exist: the settings come from the environment alone."""
    return [sys.executable, "-m", "bot", *args, "--env-file", str(folder / "none.env")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotProcess:
    """``python -m bot run`` in HTTP mode on a SQLite file in ``tmp``, against the fake Slack, with short poll
    intervals; ``extra`` settings on top. Its log goes to a file in ``tmp``."""

    def __init__(self, tmp: Path, slack: FakeSlack, catalog: Path, extra: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = open(tmp / f"bot-{self.port}.log", "w")  # noqa: SIM115 - closed in stop()
        env = bot_env(
            SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=slack.signing_secret, SLACK_API_URL=slack.api_url,
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'bot.db'}", PIPELINES_FILE=str(catalog), PORT=str(self.port),
            HOST="127.0.0.1", POLL_INTERVAL_SECONDS="0.2", POLL_INTERVAL_MAX_SECONDS="0.5", POLL_TICK_SECONDS="0.05",
            DELIVERY_TICK_SECONDS="0.05", LOG_FORMAT="json", SLACK_ADMINS="U0CAROL",
        )
        env.update(extra or {})
        self.proc = subprocess.Popen(bot_command(tmp, "run"), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    async def ready(self, timeout: float = 60.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while asyncio.get_running_loop().time() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the bot exited with {self.proc.returncode}; see {self.log.name}")
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"the bot did not become ready; see {self.log.name}")

    def metric(self, name: str) -> float:
        """Sum of a metric's series, read from the process's /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()


def card_runs(slack: FakeSlack, channel: str) -> dict[str, str]:
    """card ts → its current text, for the cards (top-level messages with a header) of a channel."""
    return {m.ts: m.text for m in slack.messages(channel) if any(b.get("type") == "header" for b in m.blocks)}


async def wait(predicate: Callable[[], bool], timeout: float, what: str, slack: FakeSlack) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{slack.describe()}")
        await asyncio.sleep(0.05)
