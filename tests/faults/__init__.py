"""The fault suite: the bot killed at random moments, providers and Slack failing at random, the database going
away. Every test ends with the same checks (``assert_delivered``): no run lost, no notification lost or
duplicated, no false failure.

Shared here: a world of emulators on a manual clock with the fake Slack (the bot runs in-process or as a
subprocess, per test), random fault injectors for the provider emulators and the fake Slack, and the checks,
which read only what the fake Slack recorded (what people would have seen) and what the emulators served.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators._server import EmulatorServer
from bot.emulators.slack import FakeSlack
from bot.emulators.slack.faults import Fault as SlackFault
from tests.scenario.harness import (
    FAILING_RIVER,
    World,
    catalog_text,
    make_emulators,
    running_world,
    unlimited_rivery,
)

#: the harness catalog's pipelines; ``orders`` fails at the provider, the others succeed
PIPELINES = ("leads-ods", "orders", "iowa-pda", "budget", "sales-dashboard")
FAILING = "orders"
QUEUED_S, RUNNING_S = 5.0, 20.0
_RUN = re.compile(r"\(run #(\d+)\)")
_ALERT_LINE = re.compile(r"\*([a-z0-9._-]+)\* on [^\n]*? failed(?: (\d+) times)?")


def channels(n: int) -> list[str]:
    return [f"C0FAULT{i:02d}" for i in range(n)]


def emulators_for_faults(clock: ManualClock) -> dict[str, EmulatorServer]:
    emulators = make_emulators(clock)
    unlimited_rivery(emulators)  # dozens of runs of two rivers in seconds: more than Rivery allows
    for e in emulators.values():
        e.state.default = Outcome(queued_s=QUEUED_S, running_s=RUNNING_S)
    emulators["rivery"].state.script(
        FAILING_RIVER, Outcome(result="fail", queued_s=QUEUED_S, running_s=RUNNING_S, message="boom: table locked")
    )
    return emulators


def catalog_with_timeouts(emulators: dict[str, EmulatorServer], timeout: float, *, watch: bool = True) -> str:
    """The harness catalog, each connection giving up on a provider call after ``timeout`` seconds; with
    ``watch=False`` no pipeline is watched passively."""
    lines = []
    for line in catalog_text(emulators, rivery_unlimited=True).splitlines():
        if re.match(r"^  (rivery|tailer|invision|datakitchen): \{provider:", line):
            line = line.rstrip()[:-1] + f", timeout_seconds: {timeout}}}"
        if not watch and line.strip() == "watch: true":
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


@asynccontextmanager
async def fault_world(
    tmp: Path,
    channel_ids: Iterable[str],
    *,
    timeout: float = 30.0,
    watch: bool = True,
    prepare: Callable[[dict[str, EmulatorServer]], None] | None = None,
    **overrides: Any,
) -> AsyncIterator[World]:
    """The harness's world (the real bot in-process, its HTTP endpoint, SQLite) with more channels and
    provider calls that time out after ``timeout`` seconds (``watch``: see ``catalog_with_timeouts``).
    ``prepare`` may change the emulators before they start (wrap a route's handler)."""
    clock = ManualClock()
    emulators = emulators_for_faults(clock)
    if prepare is not None:
        prepare(emulators)
    slack = fake_slack(channel_ids)

    def catalog(started: dict[str, EmulatorServer]) -> str:
        return catalog_with_timeouts(started, timeout, watch=watch)

    async with running_world(tmp, clock, emulators, slack, catalog, **overrides) as w:
        yield w


def fake_slack(channel_ids: Iterable[str], **kw: Any) -> FakeSlack:
    slack = FakeSlack(**kw)
    for channel in channel_ids:
        slack.add_channel(channel, channel.lower())
    return slack


async def start_runs(slack: FakeSlack, n: int, channel_ids: list[str]) -> dict[str, int]:
    """``n`` runs, round-robin over the pipelines and channels, started by alice; returns runs per pipeline."""
    started: Counter[str] = Counter()
    for i in range(n):
        pipeline = PIPELINES[i % len(PIPELINES)]
        response = await slack.command(f"run {pipeline}", user="U0ALICE", channel=channel_ids[i % len(channel_ids)])
        assert response.ok, (response.status, response.text)
        started[pipeline] += 1
    return dict(started)


def cards(slack: FakeSlack, channel_ids: Iterable[str]) -> list[Any]:
    return [m for c in channel_ids for m in slack.messages(c) if any(b.get("type") == "header" for b in m.blocks)]


def all_final(slack: FakeSlack, channel_ids: list[str], n: int) -> Callable[[], bool]:
    """Every card in its final state and every failure's details in its thread. The details go out at Slack's
    pace, a post a second per channel: with several failures in a channel they trail the cards by seconds."""

    def details(card: Any) -> bool:
        replies = slack.messages(card.channel, thread_ts=card.ts, top_level=False)
        return any(r.ts != card.ts and not r.text.startswith("⏰") for r in replies)

    def done() -> bool:
        found = cards(slack, channel_ids)
        return (
            len(found) == n
            and all(("succeeded" in m.text or "failed" in m.text) for m in found)
            and all(details(m) for m in found if "failed" in m.text)
        )

    return done


async def wait(predicate: Callable[[], bool], timeout: float, what: str, slack: FakeSlack) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            found = cards(slack, list(slack.channels))
            states = Counter(
                next((w for w in ("succeeded", "failed", "running", "queued", "unknown") if w in m.text), m.text[:40])
                for m in found
            )
            raise AssertionError(f"timed out waiting for {what}: {len(found)} cards, {dict(states)}")
        await asyncio.sleep(0.1)


def assert_delivered(
    slack: FakeSlack,
    channel_ids: list[str],
    started: dict[str, int],
    emulators: dict[str, EmulatorServer],
    *,
    alert_channel: str = "C0ALERTS",
) -> int:
    """No run lost, no notification lost or duplicated, no false failure, as people would see it. Returns how
    many edits repeated what their message already showed."""
    n = sum(started.values())
    found = cards(slack, channel_ids)
    # no run lost: one card per run, each in its final state; the provider was asked to start each run once
    assert len(found) == n, f"{len(found)} cards for {n} runs"
    runs = [int(_RUN.search(m.text).group(1)) for m in found]  # type: ignore[union-attr]
    assert len(set(runs)) == n, "two cards show the same run"
    triggers = sum(len(e.state.requests_to("trigger")) for e in emulators.values())
    assert triggers == n, f"the providers were asked to start {triggers} runs for {n} commands"
    # no false failure: exactly the runs the provider failed are shown failed
    failed = [m for m in found if "failed" in m.text]
    succeeded = [m for m in found if "succeeded" in m.text]
    assert len(failed) == started.get(FAILING, 0), [m.text for m in failed if FAILING not in m.text][:3]
    assert all(FAILING in m.text for m in failed)
    assert len(succeeded) == n - len(failed)
    # no card posted twice; every card moved to its final state once and never back. An edit repeating the
    # content Slack already shows (a crash between Slack's answer and recording it) is invisible to people: it
    # is counted and returned, not failed
    posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") in channel_ids]
    top = [c for c in posts if not c.params.get("thread_ts")]
    assert len(top) == n, f"{len(top)} cards posted for {n} runs"
    repeated = 0
    for message in found:
        versions = [json.dumps(v.blocks) for v in message.edits] + [json.dumps(message.blocks)]
        shown = [v for i, v in enumerate(versions) if i == 0 or v != versions[i - 1]]
        repeated += len(versions) - len(shown)
        assert len(shown) == len(set(shown)), f"card {message.ts} went back to an earlier content"
        texts = [v.text for v in [*message.edits, message]]
        finals = {t for t in texts if "succeeded" in t or "failed" in t}
        assert len(finals) == 1, f"card {message.ts} showed {len(finals)} different final states: {finals}"
        first_final = next(i for i, t in enumerate(texts) if t in finals)
        assert all(t in finals for t in texts[first_final:]), f"card {message.ts} left its final state"
    # each failure's details exactly once, in its card's thread; nothing in the threads of successes but a
    # warning that a run takes longer than its history says (real time passes while a test holds the clock)
    stuck = Counter((c.params["channel"], c.params["thread_ts"]) for c in posts
                    if c.params.get("thread_ts") and c.params.get("text", "").startswith("⏰"))
    assert set(stuck.values()) <= {1}, "a run was warned about twice"
    # the provider's log beside a failure's details ("Details of run …", bot/service/triage.py) is a reply of its own,
    # once too, and only under a failure
    evidence = Counter((c.params["channel"], c.params["thread_ts"]) for c in posts
                       if c.params.get("thread_ts") and c.params.get("text", "").startswith("Details of run"))
    assert set(evidence.values()) <= {1}, "a failure's log was posted twice"
    assert set(evidence) <= {(m.channel, m.ts) for m in failed}, "a log under a run that did not fail"
    replies = Counter((c.params["channel"], c.params["thread_ts"]) for c in posts
                      if c.params.get("thread_ts") and not c.params.get("text", "").startswith(("⏰", "Details of run")))
    missing = sorted({(m.channel, m.ts) for m in failed} - set(replies))
    extra = sorted(set(replies) - {(m.channel, m.ts) for m in failed})
    said = [c.params.get("text", "")[:120] for c in posts if (c.params["channel"], c.params.get("thread_ts")) in extra]
    assert not missing and not extra, f"failures without their details: {missing}; replies on no failure: {said[:5]}"
    assert set(replies.values()) <= {1}
    # the failures alert once: one message lists the failing pipeline with every failure counted
    listing = []
    for message in slack.messages(alert_channel):
        alert_text = "\n".join([message.text] + [str(b.get("text", {}).get("text", "")) for b in message.blocks])
        listing += [(message.ts, m.group(1), int(m.group(2) or 1)) for m in _ALERT_LINE.finditer(alert_text)]
    about = [entry for entry in listing if entry[1] == FAILING]
    if started.get(FAILING):
        assert len(about) == 1, f"{FAILING} is listed {len(about)} times in the alerts: {about}"
        assert about[0][2] == started[FAILING], f"the alert counts {about[0][2]} of {started[FAILING]} failures"
    assert not [entry for entry in listing if entry[1] != FAILING], f"false alerts: {listing}"
    alert_posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == alert_channel]
    assert len(alert_posts) == len({ts for ts, _, _ in listing}), "an alert message was posted twice"
    return repeated


# -- random faults ------------------------------------------------------------------------------------------------


@dataclass
class FlakyProvider:
    """Makes an emulator answer ``routes`` with an error, a timeout or a 429 ``rate`` of the time."""

    rate: float
    timeout: float
    rng: random.Random
    routes: frozenset[str] = frozenset({"status", "list", "v1_runs", "login", "validatetoken"})
    injected: Counter[str] = field(default_factory=Counter)

    def install(self, state: EmulatorState) -> None:
        original = state.take_fault

        def take_fault(route: str) -> Fault | None:
            if route in self.routes and self.rng.random() < self.rate:
                kind = self.rng.choice(("500", "502", "503", "429", "timeout"))
                self.injected[kind] += 1
                if kind == "timeout":
                    return Fault(route=route, kind="delay", delay=self.timeout + 0.5)
                if kind == "429":
                    return Fault(route=route, status=429, retry_after=0.2)
                return Fault(route=route, status=int(kind))
            return original(route)

        state.take_fault = take_fault  # type: ignore[method-assign]


@dataclass
class FlakySlack:
    """Makes the fake Slack answer ``methods`` with a 429 (Retry-After 1) or a 5xx ``rate`` of the time."""

    rate: float
    rng: random.Random
    methods: frozenset[str] = frozenset({"chat.postMessage", "chat.update"})
    injected: Counter[str] = field(default_factory=Counter)
    enabled: bool = True

    def install(self, slack: FakeSlack) -> None:
        original = slack.faults.take

        def take_fault(method: str) -> SlackFault | None:
            queued = original(method)
            if queued is not None or not self.enabled or method not in self.methods or self.rng.random() >= self.rate:
                return queued
            status = self.rng.choice((429, 500, 503))
            self.injected[str(status)] += 1
            error = {429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}[status]
            return SlackFault(status=status, error=error, retry_after=1 if status == 429 else None)

        slack.faults.take = take_fault  # type: ignore[method-assign]
