"""The security suite: fuzzed command text, mrkdwn injection from every untrusted source, clicks without the right
on every button, tampered values, secrets kept out of everything. It complements ``tests/scenario/test_security.py``
and ``test_permissions.py`` (signatures, replays, the first injection and tampering cases) without repeating them.

Shared here: the harness's world with a catalog that also has a free-text parameter and two workflows (one
with an approval step, one that fails), the injected strings, and a way to drive a world from a plain thread,
for hypothesis (which runs plain functions)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from bot.emulators._core import ManualClock
from bot.emulators._server import EmulatorServer
from tests.scenario.harness import World, catalog_text, make_emulators, running_world

T = TypeVar("T")

#: what an attacker writes to ping everyone or link elsewhere; none may ever reach Slack as written. The ids are
#: not in any catalog, so no legitimate mention can contain them.
INJECTIONS = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0EVIL1>",
    "<#C0EVIL1>",
    "<!subteam^S0EVIL1>",
    "<https://evil.example/x|click here>",
    "<mailto:evil@example.com|mail>",
)
EVIL = " ".join(INJECTIONS) + " *bold* _it_ `code` ```block``` > quote &amp; & < >"

#: a river on a v1 connection, watched passively (the legacy API has no list endpoint)
WATCHED_RIVER = "64b724fc690def001131d2bb"
EXTRA_PIPELINES = """
  watched-load:
    connection: rivery-v1
    river_id: WATCHED_RIVER
    watch: true
  notes-load:
    connection: rivery
    river_id: 64b724fc690def001131d2aa
    parameters: {note: {type: string}}
workflows:
  nightly:
    steps:
      load: {pipeline: leads-ods, on_success: approve}
      approve: {approval: {approvers: [U0ALICE], question: "Publish the numbers?"}, on_success: publish}
      publish: {pipeline: budget}
  broken:
    allow_run: [U0ALICE]
    steps:
      load: {pipeline: orders}
""".replace("WATCHED_RIVER", WATCHED_RIVER)


def security_catalog(emulators: dict[str, Any]) -> str:
    lines = []
    for line in catalog_text(emulators).splitlines():
        lines.append(line)
        if line.startswith("  rivery: {provider: rivery"):
            lines.append(f'  rivery-v1: {{provider: rivery, api: v1, base_url: "{emulators["rivery"].url}", '
                         'api_token: "${RIVERY_TOKEN}", account_id: acc, environment_id: env}')
    return "\n".join(lines) + "\n" + EXTRA_PIPELINES.lstrip("\n")


@asynccontextmanager
async def security_world(
    tmp: Path, *, prepare: Callable[[dict[str, EmulatorServer]], None] | None = None, **overrides: Any
) -> AsyncIterator[World]:
    """The harness's world (fake Slack, emulators on a manual clock, the real bot in-process over HTTP) with the
    security catalog. ``prepare`` may change the emulators before they start (wrap a route's handler)."""
    from bot.emulators.slack import FakeSlack

    clock = ManualClock()
    emulators = make_emulators(clock)
    if prepare is not None:
        prepare(emulators)
    async with running_world(tmp, clock, emulators, FakeSlack(), security_catalog, **overrides) as w:
        yield w


class ThreadedWorld:
    """A security world running on its own event loop in a background thread, driven from plain code:
    ``call(coroutine)`` runs a coroutine there and returns its result."""

    def __init__(self, tmp: Path, **overrides: Any) -> None:
        self._tmp, self._overrides = tmp, overrides
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="security-world", daemon=True)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> ThreadedWorld:
        self._thread.start()
        self._context = security_world(self._tmp, **self._overrides)
        self.world: World = self.call(self._context.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.call(self._context.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()


class Recorder(logging.Handler):
    """Keeps every log record of the ``bot`` loggers (and the Bolt and aiohttp ones), from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def errors(self) -> list[logging.LogRecord]:
        return [r for r in self.records if r.levelno >= logging.ERROR]

    def __enter__(self) -> Recorder:
        self._previous = logging.getLogger().level
        logging.getLogger().addHandler(self)
        logging.getLogger().setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)
        logging.getLogger().setLevel(self._previous)


def unescaped(sent: str) -> list[str]:
    """The injected strings that appear as written in ``sent`` (everything the fake Slack recorded)."""
    return [token for token in INJECTIONS if token in sent]
