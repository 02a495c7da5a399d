"""Several replicas on one PostgreSQL share the work: three bot processes, 300 runs in flight, one
process killed (SIGKILL) midway. Every run reaches its card's final state, no Slack message is posted
twice, and the dead replica's work is taken over within the lease time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from bot.emulators._core import ManualClock, Outcome
from bot.emulators.slack import FakeSlack, Message, MessageVersion
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import BotProcess, catalog_text, make_emulators, unlimited_rivery, wait

pytestmark = pytest.mark.slow

RUNS = 300
CHANNELS = [f"C0LOAD{i:02d}" for i in range(30)]
LEASE = 10.0


def final_cards(slack: FakeSlack) -> dict[str, str]:
    found = {}
    for channel in CHANNELS:
        for m in slack.messages(channel):
            if any(b.get("type") == "header" for b in m.blocks):
                found[f"{channel}/{m.ts}"] = m.text
    return found


async def database_summary(url: str) -> str:
    from sqlalchemy import text

    from bot.store.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            runs = (await conn.execute(text(
                "SELECT state, final, lease_owner IS NOT NULL, count(*) FROM runs GROUP BY 1, 2, 3"))).all()
            live = (await conn.execute(text(
                "SELECT id, state, provider_run_id, next_poll_at, polls, unknown_since, last_error, notified_state "
                "FROM runs WHERE NOT final LIMIT 5"))).all()
            cards = (await conn.execute(text(
                "SELECT version > sent_version, lease_owner IS NOT NULL, last_error, count(*) FROM cards "
                "GROUP BY 1, 2, 3"))).all()
    finally:
        await engine.dispose()
    return f"runs (state, final, leased, n): {runs}\nlive: {live}\ncards (behind, leased, error, n): {cards}"


async def leased_runs(url: str, owner_part: str) -> list[int]:
    """Ids of the runs whose lease an owner holds (``owner_part``: ``:<pid>:``)."""
    from sqlalchemy import text

    from bot.store.engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id FROM runs WHERE lease_owner LIKE :owner AND lease_expires_at > now()"),
                {"owner": f"%{owner_part}%"},
            )
            return [int(r[0]) for r in rows]
    finally:
        await engine.dispose()


async def taken_over_after(url: str, run_ids: set[int], dead_part: str, limit: float) -> float:
    """Seconds until every run in ``run_ids`` is leased by another replica, or has ended (someone polled it)."""
    from sqlalchemy import text

    from bot.store.engine import make_engine

    started = time.monotonic()
    engine = make_engine(url)
    try:
        while time.monotonic() - started < limit:
            async with engine.connect() as conn:
                rows = (await conn.execute(
                    text("SELECT id, lease_owner, polls FROM runs WHERE id = ANY(:ids)"), {"ids": list(run_ids)}
                )).all()
            if all(r.lease_owner is None or dead_part not in r.lease_owner for r in rows):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
    return time.monotonic() - started


async def test_three_replicas_share_300_runs_and_survive_losing_one(tmp_path: Path) -> None:
    url = await create_postgres_database()
    clock = ManualClock()
    emulators = make_emulators(clock)
    unlimited_rivery(emulators)  # 300 runs of one river in seconds: far past what Rivery allows
    for e in emulators.values():
        e.state.default = Outcome(queued_s=5, running_s=20)
    slack = FakeSlack()
    for channel in CHANNELS:
        slack.add_channel(channel, channel.lower())
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators, rivery_unlimited=True))
    env = {
        "DATABASE_URL": url, "LEASE_SECONDS": str(LEASE), "WATCH_INTERVAL_SECONDS": "1",
        "POLL_INTERVAL_SECONDS": "2", "POLL_INTERVAL_MAX_SECONDS": "3", "POLL_TICK_SECONDS": "0.2",
        "DELIVERY_TICK_SECONDS": "0.1",
    }
    bots = [BotProcess(tmp_path, slack, catalog, extra=env) for _ in range(3)]
    try:
        for bot in bots:
            await bot.ready()
        slack.app_url = f"{bots[0].url}/slack/events"
        for i in range(RUNS):
            response = await slack.command("run leads-ods", user="U0ALICE", channel=CHANNELS[i % len(CHANNELS)])
            assert response.ok
        try:
            await wait(lambda: len(final_cards(slack)) == RUNS, 90, "all 300 cards posted", slack)
        except AssertionError as exc:
            raise AssertionError(f"{len(final_cards(slack))} cards posted\n{await database_summary(url)}\n{exc}") from None

        clock.advance(6)  # all running
        await asyncio.sleep(1.0)
        dead = f":{bots[1].proc.pid}:"
        deadline = time.monotonic() + 30
        while not await leased_runs(url, dead):  # kill it while it holds runs, or the kill proves nothing
            assert time.monotonic() < deadline, "the replica to be killed never held a run"
            await asyncio.sleep(0.02)
        bots[1].kill()  # a replica dies holding leases on runs, cards and messages
        killed_at = time.monotonic()
        held = set(await leased_runs(url, dead))  # what it held when it died
        taken_over = await taken_over_after(url, held, dead, limit=LEASE + 20)
        clock.advance(21)  # all done

        def all_final() -> bool:
            cards = final_cards(slack)
            return len(cards) == RUNS and all("succeeded" in t for t in cards.values())

        try:
            await wait(all_final, 90, "every card in its final state", slack)
        except AssertionError as exc:
            cards = final_cards(slack)
            stale = [f"{k}: {t}" for k, t in cards.items() if "succeeded" not in t][:10]
            raise AssertionError(
                f"{len(cards)} cards; not final: {stale}\n{await database_summary(url)}\n{str(exc)[:3000]}"
            ) from None
        took = time.monotonic() - killed_at
        await asyncio.sleep(1.5)

        posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and not c.params.get("thread_ts")]
        per_channel = Counter(c.params["channel"] for c in posts)
        assert sum(per_channel.values()) == RUNS  # one card per run, none posted twice
        assert set(per_channel.values()) == {RUNS // len(CHANNELS)}
        for key in final_cards(slack):
            channel, ts = key.split("/")
            message = slack.message(channel, ts)
            versions: list[MessageVersion | Message] = [*message.edits, message]
            finals = [v for v in versions if "succeeded" in v.text]
            assert len(finals) == 1, f"{key} got its final update {len(finals)} times"
        assert took < LEASE + 30, f"every card final {took:.1f} s after the kill"
        # the takeover: every run the dead replica held was polled by another within its lease and a few ticks
        assert held, "the killed replica held no run: the kill proved nothing"
        assert taken_over <= LEASE + 3, f"the runs of the dead replica were taken over after {taken_over:.1f} s"
        print(f"{len(held)} runs held by the dead replica, taken over {taken_over:.1f} s after the kill "
              f"(lease {LEASE:.0f} s); every card final after {took:.1f} s")
        # all three shared the polling: each surviving replica polled, the dead one had too before
        for bot in (bots[0], bots[2]):
            assert bot.metric("pipeline_bot_polls_total") > 0
    finally:
        for bot in bots:
            await asyncio.to_thread(bot.stop)  # the fake Slack answers meanwhile
        for e in emulators.values():
            await e.stop()
        await slack.stop()
        await drop_postgres_database(url)
