"""Alerting people trust: runs started outside Slack alert once, repeats update one alert, recovery
shows, mutes hold and expire, stuck runs get one warning, an unreachable provider one alert and one
"back" notice and never a failed run."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import Fault, Outcome
from bot.emulators.slack.server import Message
from tests.scenario.harness import DK_JOB, RIVER, RIVERY_UNLIMITED, TAILER_CONFIG, World, unlimited_rivery, world
from tests.scenario.surface import ask, shown


def everything(w: World, channel: str) -> str:
    return json.dumps([[m.text, m.blocks] for m in w.slack.messages(channel)])


def alerts_in(w: World, channel: str) -> list[str]:
    return [m.text for m in w.slack.messages(channel) if "failed" in m.text or "failures" in m.text]


async def test_a_run_started_outside_slack_that_fails_alerts_once_even_across_a_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.advance(120)  # the emulators' clock is past the moment watching began
        await w.settle(0.5)  # one watch cycle: watching begins
        dk = w.emulators["datakitchen"]
        dk.external_run(DK_JOB, {}, Outcome(result="fail", queued_s=1, running_s=2, message="Node load failed",
                                             failed_tasks=("load",)))
        w.advance(5)
        await w.until(lambda: any("sales-dashboard" in t for t in alerts_in(w, "C0ALERTS")), 10,
                      what="an alert for the external failure")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "sales-dashboard" in m.text]
        body = json.dumps(alert.blocks)
        assert "<!subteam^S0DATAENG>" in body  # the defaults' owners (a user group)
        assert "run.retry" in alert.action_ids
        assert not w.cards("C0GENERAL")  # external runs get no card of their own

        await w.restart()
        w.advance(5)
        await w.settle(1.5)  # several watch cycles after the restart list the same run again
        assert len([m for m in w.slack.messages("C0ALERTS") if "sales-dashboard" in m.text]) == 1


async def test_an_outside_run_found_before_a_restart_and_failing_after_it_alerts_once(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)  # watching begins
        w.emulators["datakitchen"].external_run(DK_JOB, {}, Outcome(
            result="fail", queued_s=1, running_s=20, message="Node load failed", failed_tasks=("load",)))
        w.advance(2)
        store = w.runtime.store
        assert store is not None

        async def found() -> bool:
            return any(r.origin == "watch" and r.state == "running" for r in await store.runs.in_flight())

        for _ in range(100):  # the watch found it running
            if await found():
                break
            await w.settle(0.05)
        assert await found()
        await w.restart()  # a deploy while it runs
        w.advance(25)  # it fails while the new process follows it
        await w.until(lambda: any("sales-dashboard" in t for t in alerts_in(w, "C0ALERTS")), 10,
                      what="an alert for the external failure")
        await w.settle(1.5)  # more watch cycles and polls: nothing more to say
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "sales-dashboard" in m.text]
        assert "<!subteam^S0DATAENG>" in json.dumps(alert.blocks)
        assert "Node load failed" in everything(w, "C0ALERTS")  # the run's own words, not only the list's

async def test_a_storm_of_failures_is_grouped_and_every_failure_listed(tmp_path: Path) -> None:
    async with world(tmp_path, alert_group_seconds=1.0) as w:
        w.advance(120)
        await w.settle(0.5)
        tailer = w.emulators["tailer"]
        for i in range(40):
            tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1,
                                                          message=f"failure number {i}"))
        w.advance(3)
        await w.until(lambda: "failed 40 times since" in everything(w, "C0OPS"), 30, what="all 40 in the alert")
        posts = [c for c in w.slack.calls_to("chat.postMessage") if c.ok and c.params.get("channel") == "C0OPS"]
        assert 1 <= len([c for c in posts if not c.params.get("thread_ts")]) <= 3  # grouped, not 40 posts
        assert len([c for c in posts if c.params.get("thread_ts")]) <= 1  # the first failure's evidence, once
        # inside the suppression interval the pipeline has one open alert counting every failure
        store = w.runtime.store
        assert store is not None
        [alert] = [a for a in await store.alerting.open_alerts() if a.pipeline == "iowa-pda"]
        assert alert.count == 40
        assert "failed 40 times since" in everything(w, "C0OPS")



STORM_PIPELINES = 20
STORM_EACH = 10
_COUNTED = re.compile(r"\*(storm-\d\d)\* on [^\n]*? failed(?: (\d+) times since)?")


def storm_catalog(raw: dict[str, Any]) -> None:
    for i in range(STORM_PIPELINES):
        raw["pipelines"][f"storm-{i:02d}"] = {
            "connection": "tailer", "account": "000099", "environment": "DEV", "configuration_type": "table-to-table",
            "configuration_id": f"000099_storm_{i:02d}", "watch": True, "channel": "C0STORM", "owners": ["U0BOB"],
        }


async def test_200_failures_of_20_pipelines_in_a_minute_reach_the_channel_as_a_few_grouped_messages(
    tmp_path: Path,
) -> None:
    """Twenty watched pipelines fail ten times each within one minute (runs started outside Slack): the channel
    gets a handful of messages, never faster than Slack's pace, and together they count all 200 failures."""
    async with world(tmp_path, catalog_edit=storm_catalog, alert_group_seconds=1.0) as w:
        w.slack.add_channel("C0STORM", "storm", members=("U0BOB",))
        w.slack.rate_limit_posts_per_second = 1.0  # Slack's pace: 429 for anyone posting faster
        w.advance(120)
        await w.settle(0.5)  # watching begins
        tailer = w.emulators["tailer"]
        for wave in range(STORM_EACH):  # ten waves over 50 s of provider time: each wave, every pipeline fails
            for i in range(STORM_PIPELINES):
                tailer.external_run(f"000099_storm_{i:02d}_DEV", {}, Outcome(
                    result="fail", queued_s=0, running_s=1, message=f"wave {wave} broke storm-{i:02d}"))
            w.advance(5)
            await w.settle(0.3)

        def counted() -> dict[str, int]:
            """Per pipeline, the failures the channel's messages count now (each message as it reads now)."""
            found: dict[str, int] = {}
            for message in w.slack.messages("C0STORM"):
                for name, times in _COUNTED.findall(everything_of(message)):
                    found[name] = max(found.get(name, 0), int(times or 1))
            return found

        # a ceiling, not a target: on a loaded machine the 200 failures take 40 s to be recorded (the store lagged,
        # never the messages: each caught up with the store once it had them)
        await w.until(lambda: sum(counted().values()) == STORM_PIPELINES * STORM_EACH, 90,
                      what=lambda: f"all 200 failures counted in C0STORM: {counted()}")
        assert sorted(counted()) == [f"storm-{i:02d}" for i in range(STORM_PIPELINES)]
        posts = [c for c in w.slack.calls_to("chat.postMessage") if c.params.get("channel") == "C0STORM"]
        sent = [c for c in posts if c.ok]
        # the channel's own messages; the thread of each holds the evidence of its first failure (one reply)
        top_level = [c for c in sent if not c.params.get("thread_ts")]
        assert 1 <= len(top_level) <= 5, f"{len(top_level)} messages for 200 failures"
        assert len(sent) - len(top_level) <= len(top_level), "more than one evidence reply per alert message"
        assert not [c for c in posts if c.status == 429], "the bot posted faster than Slack's pace"
        for a, b in zip(sent, sent[3:], strict=False):  # a burst of 3, then one a second
            assert b.at - a.at >= 1.0, "more than a burst within a second"
        assert "<@U0BOB>" in everything(w, "C0STORM")  # the owners are told
        assert not w.cards("C0GENERAL")  # runs started outside Slack get no card of their own


def everything_of(message: Message) -> str:
    return "\n".join([message.text] + [str(b.get("text", {}).get("text", "")) for b in message.blocks])

async def test_repeats_update_one_alert_then_recovery_shows(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)
        tailer = w.emulators["tailer"]
        fail = Outcome(result="fail", queued_s=0, running_s=1, message="Table missing")
        tailer.external_run(TAILER_CONFIG, {}, fail)
        w.advance(2)
        await w.until(lambda: "iowa-pda" in everything(w, "C0OPS"), 10, what="the first alert")
        tailer.external_run(TAILER_CONFIG, {}, fail)
        tailer.external_run(TAILER_CONFIG, {}, fail)
        w.advance(2)
        await w.until(lambda: "failed 3 times since" in everything(w, "C0OPS"), 10, what="the alert counting 3")
        tailer.external_run(TAILER_CONFIG, {}, Outcome(queued_s=0, running_s=1))
        w.advance(2)
        await w.until(lambda: "recovered" in everything(w, "C0OPS"), 10, what="the recovery")
        top_level = [m for m in w.slack.messages("C0OPS") if "iowa-pda" in m.text]
        assert len(top_level) == 1  # one alert message, updated in place


async def test_a_mute_holds_and_expires(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        response = await w.command("mute iowa-pda 1h", user="U0ALICE")
        assert response.ok
        await w.until(lambda: any("muted until" in r.text for r in w.slack.responses("U0ALICE")), what="mute reply")
        w.advance(120)
        await w.settle(0.5)
        tailer = w.emulators["tailer"]
        tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1, message="boom"))
        w.advance(2)
        store = w.runtime.store
        assert store is not None
        muted_alerts = []
        for _ in range(200):  # the watch finds the run and records its failure: wait for that, not for a time
            muted_alerts = [a for a in await store.alerting.open_alerts() if a.pipeline == "iowa-pda"]
            if muted_alerts:
                break
            await w.settle(0.05)
        assert muted_alerts and muted_alerts[0].muted  # recorded, for the App Home…
        await w.settle(1.5)  # a grouping window and more: an unmuted alert would have been posted by now
        assert "iowa-pda" not in everything(w, "C0OPS")  # …but muted: no alert posted
        await store.mutes.mute("iowa-pda", until=w.runtime.now() - timedelta(seconds=1), user_id="U0ALICE",
                         now=w.runtime.now())  # the mute runs out
        await store.alerting.recover("iowa-pda", 0, now=w.runtime.now())
        tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1, message="again"))
        w.advance(2)
        await w.until(lambda: "iowa-pda" in everything(w, "C0OPS"), 10, what="an alert once the mute expired")


async def test_a_run_past_its_expected_duration_gets_one_stuck_warning(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.runtime.stop()
        pipelines = dict(w.runtime.catalog.pipelines)
        from dataclasses import replace

        pipelines["budget"] = replace(pipelines["budget"], expected_duration=timedelta(seconds=1))
        w.runtime.catalog = replace(w.runtime.catalog, pipelines=pipelines)
        await w.restart()
        w.emulators["invision"].state.default = Outcome(result="hang", queued_s=0)
        await w.command("run budget", user="U0BOB")
        card = await w.card_saying("running")
        await w.until(lambda: any("may be stuck" in m.text for m in w.thread(card)), 10, what="the stuck warning")
        await w.settle(1.0)
        warnings = [m for m in w.thread(card) if "may be stuck" in m.text]
        assert len(warnings) == 1
        assert "<!subteam^S0DATAENG>" in json.dumps(warnings[0].blocks)


async def test_an_unreachable_provider_gives_one_alert_one_back_notice_and_no_failed_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run leads-ods")
        card = await w.card_saying("queued")
        rivery = w.emulators["rivery"]
        rivery.state.add_fault(Fault(route="status", status=503, times=None))
        await w.until(lambda: "Cannot reach" in everything(w, "C0ALERTS"), 15, what="the unreachable alert")
        await w.settle(2.0)  # the outage goes on: still one alert
        assert len([m for m in w.slack.messages("C0ALERTS") if "Cannot reach" in m.text]) == 1
        rivery.state.clear_faults()
        w.advance(40)
        await w.until(lambda: "is back" in everything(w, "C0ALERTS"), 15, what="the back notice")
        await w.card_saying("succeeded")
        await w.settle(1.0)
        assert len([m for m in w.slack.messages("C0ALERTS") if "is back" in m.text]) == 1
        assert "failed" not in w.slack.message(card.channel, card.ts).text


async def test_watch_and_unwatch_from_slack_and_a_channel_that_refuses_falls_back(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        refused = await w.command("watch budget", user="U0ALICE")
        assert refused.ok
        await w.until(lambda: any("no list of runs" in r.text for r in w.slack.responses("U0ALICE")), what="refusal")
        await w.command("watch leads-ods", user="U0ALICE")
        await w.until(lambda: any("api: v1" in r.text for r in w.slack.responses("U0ALICE")), what="v1 hint")

        await w.command("unwatch iowa-pda", user="U0ALICE")
        await w.until(lambda: any("No longer watching" in r.text for r in w.slack.responses("U0ALICE")))
        await w.settle(0.8)  # a watch cycle already under way when unwatch landed has finished
        # the emulators' clock stays at about real time here: this run ends before watching resumes
        tailer = w.emulators["tailer"]
        fail = Outcome(result="fail", queued_s=0, running_s=1, message="nobody watches this")
        tailer.external_run(TAILER_CONFIG, {}, fail)
        w.advance(2)
        await w.settle(1.5)
        assert "nobody watches this" not in everything(w, "C0OPS")

        # watched again, into a private channel the bot is in, then removed from: the alert comes to the default
        # channel (a channel the bot is not in when watch is typed is refused, below)
        private = w.slack.channels["C0PRIVATE"]
        private.member = True
        await w.command("watch iowa-pda <#C0PRIVATE|private-ops>", user="U0ALICE")
        await w.until(lambda: any("Watching" in r.text for r in w.slack.responses("U0ALICE")), what="watching")
        private.member = False
        await w.settle(0.5)
        w.advance(60)
        tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1, message="seen now"))
        w.advance(2)
        await w.until(lambda: "iowa-pda failed" in everything(w, "C0ALERTS"), 10,
                      what="the alert in the fallback channel")
        await w.until(lambda: "could not post to <#C0PRIVATE>" in everything(w, "C0ALERTS"), 10,
                      what="the notice that the channel refused")  # posted right after the alert it moved
        assert not w.slack.messages("C0PRIVATE")
        # Tailer reports no failure message: the one run that failed while unwatched was not announced
        assert len([m for m in w.slack.messages("C0ALERTS") if "iowa-pda" in m.text]) == 1


async def test_watch_into_a_channel_that_does_not_exist_or_takes_no_post_is_refused_with_what_works(
    tmp_path: Path,
) -> None:
    """``/pipeline watch iowa-pda #nonexistent`` was accepted ("Watching … alert in #nonexistent"): the alerts went
    to a channel that is not there, found only at the first failure. Slack is asked (conversations.list / .info)
    before the watch is kept; a channel that works is kept by its id."""
    async with world(tmp_path) as w:
        store = w.runtime.store
        assert store is not None
        for typed, says in (
            ("#nonexistent", "There is no channel *#nonexistent* the bot can see"),
            ("C0NOSUCH42", "There is no channel <#C0NOSUCH42> the bot can see"),
            ("<#C0PRIVATE|private-ops>", "There is no channel <#C0PRIVATE> the bot can see"),
        ):
            reply = await ask(w, f"watch iowa-pda {typed}")
            assert says in shown(reply), (typed, reply.text)
            assert "Without a channel, `/pipeline watch iowa-pda` alerts in <#C0OPS>." in shown(reply), reply.text
            assert "Watching" not in shown(reply)
        w.slack.add_channel("C0OLDALERTS", "old-alerts", archived=True)
        reply = await ask(w, "watch iowa-pda #old-alerts")
        assert "There is no channel *#old-alerts* the bot can see" in shown(reply), reply.text  # listed without them
        reply = await ask(w, "watch iowa-pda <#C0OLDALERTS|old-alerts>")
        assert "<#C0OLDALERTS> is archived" in shown(reply), reply.text
        kept = (await store.alerting.watches()).get("iowa-pda")
        assert kept is None or kept.channel is None, kept  # no refused channel was kept

        reply = await ask(w, "watch iowa-pda #data-alerts")  # a public channel: by its name, kept by its id
        assert "alert in <#C0ALERTS>" in shown(reply), reply.text
        assert (await store.alerting.watches())["iowa-pda"].channel == "C0ALERTS"


async def test_watch_by_name_reads_a_bounded_number_of_channel_pages_and_takes_a_public_channel_without_the_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``watch X #name`` paged conversations.list without a bound (a huge or looping listing kept the command
    going): it reads at most ``PAGES`` pages, as ``subscribe`` does, and then says to pick the channel from
    Slack's list (which gives its id). A public channel needs no bot in it for a watch (chat:write.public)."""
    monkeypatch.setattr("bot.slack.commands.channels.PAGES", 1, raising=False)
    async with world(tmp_path) as w:
        for i in range(1000):  # a page of 1,000 channels before the one asked for
            w.slack.add_channel(f"C1FILL{i:04d}", f"aaa-fill-{i:04d}")
        w.slack.add_channel("C1LATEALERTS", "zz-late-alerts")
        before = len(w.slack.calls_to("conversations.list"))
        reply = await ask(w, "watch iowa-pda #zz-late-alerts")
        assert "There is no channel *#zz-late-alerts* the bot can see. Type # and pick" in shown(reply), reply.text
        assert len(w.slack.calls_to("conversations.list")) - before == 1
        reply = await ask(w, "watch iowa-pda <#C1LATEALERTS|zz-late-alerts>")  # picked from the list: its id
        assert "alert in <#C1LATEALERTS>" in shown(reply), reply.text
        reply = await ask(w, "watch iowa-pda #random")  # public, the bot not in it
        assert "alert in <#C0RANDOM>" in shown(reply), reply.text


async def test_a_run_started_from_slack_on_a_watched_pipeline_keeps_its_own_polls(tmp_path: Path) -> None:
    """The watch lists every run of a watched pipeline, the ones started from Slack too: updating them from the
    list must not hold their cards back to the watch's pace (here 30 s) instead of the poll interval."""
    async with world(tmp_path, watch_interval_seconds=30.0) as w:
        await w.command("run iowa-pda")
        await w.card_saying("iowa-pda is queued")
        await w.runtime.watcher.cycle()  # the watch lists the run while it is queued
        w.advance(6)  # running at Tailer
        await w.card_saying("iowa-pda is running", timeout=5)


def first_version(message: Message) -> str:
    """What the message said when it was posted (the one version that notified anyone)."""
    first = message.edits[0] if message.edits else message
    return json.dumps([first.text, first.blocks])


async def leads_ods_runs(w: World) -> list[Any]:
    store = w.runtime.store
    assert store is not None
    return sorted(await store.runs.recent("leads-ods"), key=lambda r: r.id)


async def test_a_failure_followed_within_the_group_window_by_a_later_success_is_announced_then_resolved(
    tmp_path: Path,
) -> None:
    """Run twice in quick succession: the first fails, the second succeeds before the alert's flush. The failure
    is still posted in the alert channel with its owners and its error, and shows resolved by the second run."""
    async with world(tmp_path, alert_group_seconds=3.0) as w:
        w.emulators["rivery"].state.script(RIVER, [
            Outcome(result="fail", queued_s=1, running_s=1, message="Table leads_raw not found"),
            Outcome(queued_s=1, running_s=2),
        ])
        await w.command("run leads-ods", user="U0BOB")
        await w.card_saying("leads-ods is queued")
        await w.command("run leads-ods", user="U0BOB")
        await w.until(lambda: len([c for c in w.cards() if "leads-ods" in c.text]) == 2, what="two cards")
        w.advance(5)  # both end, well inside the 3 s the alert waits for others to group with
        await w.until(lambda: all(any(f"leads-ods {end}" in c.text for c in w.cards()) for end in ("failed",
                      "succeeded")), 5, what="one run failed, the other succeeded")
        failed, succeeded = await leads_ods_runs(w)
        assert (failed.state, succeeded.state) == ("failed", "succeeded")

        await w.until(lambda: "leads-ods" in everything(w, "C0ALERTS"), 10, what="the alert, posted all the same")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "leads-ods" in m.text]
        posted = first_version(alert)
        assert "<@U0BOB>" in posted and "<!subteam^S0DATAENG>" in posted  # its owners, mentioned in the post
        assert "Table leads_raw not found" in posted and f"run #{failed.id}" in posted
        await w.until(lambda: f"by run #{succeeded.id}" in everything(w, "C0ALERTS"), 5, what="resolved by run 2")
        now = json.dumps(w.slack.message("C0ALERTS", alert.ts).blocks)
        assert "recovered" in now and "Table leads_raw not found" in now and "<@U0BOB>" in now
        assert "run.retry" not in w.slack.message("C0ALERTS", alert.ts).action_ids
        store = w.runtime.store
        assert store is not None
        assert not [a for a in await store.alerting.open_alerts() if a.pipeline == "leads-ods"]


async def test_a_run_begun_before_the_failing_one_that_succeeds_after_it_leaves_the_alert_open(
    tmp_path: Path,
) -> None:
    """A slow run started first succeeds after a later run failed: the failure stands (the App Home says so)
    until a run begun after it (here its Retry) succeeds, which rewrites the posted alert. Three runs of one river
    in seconds: more than Rivery allows, so its limits are lifted here (tests/scenario/test_rivery_limits.py)."""

    def unlimited(raw: dict[str, Any]) -> None:
        raw["connections"]["rivery"].update(RIVERY_UNLIMITED)

    async with world(tmp_path, catalog_edit=unlimited) as w:
        unlimited_rivery(w.emulators)
        rivery = w.emulators["rivery"]
        rivery.state.script(RIVER, [
            Outcome(queued_s=1, running_s=20),
            Outcome(result="fail", queued_s=1, running_s=1, message="Table leads_raw not found"),
        ])
        await w.command("run leads-ods", user="U0BOB")
        await w.card_saying("leads-ods is queued")
        await w.command("run leads-ods", user="U0BOB")
        await w.until(lambda: len([c for c in w.cards() if "leads-ods" in c.text]) == 2, what="two cards")
        w.advance(5)  # the second run fails; the first still runs
        await w.until(lambda: "leads-ods" in everything(w, "C0ALERTS"), 10, what="the alert")
        slow, failed = await leads_ods_runs(w)
        assert (slow.state, failed.state) == ("running", "failed")
        w.advance(30)  # the first run succeeds, after the failure
        await w.until(lambda: any("leads-ods succeeded" in c.text for c in w.cards()), 5, what="the slow success")
        await w.settle(1.0)
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "leads-ods" in m.text]
        assert "recovered" not in everything(w, "C0ALERTS")
        assert "run.retry" in alert.action_ids
        store = w.runtime.store
        assert store is not None
        [still_open] = [a for a in await store.alerting.open_alerts() if a.pipeline == "leads-ods"]
        assert still_open.last_run_id == failed.id

        await w.slack.open_home("U0ALICE")
        await w.until(lambda: "*leads-ods*" in home_text(w), what="the Home tab listing the open alert")
        assert "*Open alerts* (1)" in home_text(w)

        rivery.state.script(RIVER, Outcome(queued_s=1, running_s=1))
        await w.slack.click("C0ALERTS", alert.ts, "run.retry", user="U0BOB")
        await w.until(lambda: len(w.cards()) == 3, what="the retry's card")
        w.advance(5)
        retry = (await leads_ods_runs(w))[-1]
        await w.until(lambda: f"by run #{retry.id}" in everything(w, "C0ALERTS"), 10, what="resolved by the retry")
        assert len([m for m in w.slack.messages("C0ALERTS") if "leads-ods" in m.text]) == 1  # the same message


def home_text(w: World, user: str = "U0ALICE") -> str:
    view = w.slack.home(user)
    return "\n".join(b["text"]["text"] for b in (view.blocks if view else []) if b.get("type") == "section")


async def test_a_repeat_failure_after_a_card_that_was_the_alert_is_announced_with_its_owners(tmp_path: Path) -> None:
    """A run started from the alert channel fails: its card is the alert. The pipeline fails again inside the
    suppression interval, run by its schedule outside Slack (no card): that failure is announced in the alert
    channel with its owners, not folded into the first run's card where nobody would see it. A later success
    resolves both."""
    async with world(tmp_path) as w:
        w.advance(120)
        await w.settle(0.5)  # watching begins
        tailer = w.emulators["tailer"]
        tailer.state.script(TAILER_CONFIG, [Outcome(result="fail", queued_s=0, running_s=1, message="first"),
                                            Outcome(queued_s=0, running_s=1)])
        await w.command("run iowa-pda", channel="C0OPS")
        await w.card_saying("iowa-pda", channel="C0OPS")
        w.advance(2)
        card = await w.card_saying("failed", channel="C0OPS")
        await w.until(lambda: any("S0DATAENG" in json.dumps(m.blocks) for m in w.thread(card)), 5,
                      what="the owners pinged in the card's thread")
        store = w.runtime.store
        assert store is not None
        [first] = await store.runs.recent("iowa-pda")

        w.advance(600)
        tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1, message="second"))
        w.advance(2)

        def alert_messages() -> list[Message]:
            return [m for m in w.slack.messages("C0OPS") if m.ts != card.ts and "iowa-pda" in m.text]

        await w.until(lambda: bool(alert_messages()), 10, what="the repeat failure announced in C0OPS")
        [alert] = alert_messages()
        second = max(await store.runs.recent("iowa-pda"), key=lambda r: r.id)
        assert second.origin == "watch" and second.state == "failed"
        posted = first_version(alert)
        assert "<!subteam^S0DATAENG>" in posted and f"run #{second.id}" in posted
        assert {a.last_run_id for a in await store.alerting.open_alerts()} == {first.id, second.id}

        await w.command("run iowa-pda", channel="C0GENERAL")  # a later run succeeds: both are resolved
        await w.card_saying("iowa-pda", channel="C0GENERAL")
        w.advance(2)
        await w.until(lambda: "recovered" in json.dumps(w.slack.message("C0OPS", alert.ts).blocks), 10,
                      what="the repeat's alert rewritten as recovered")
        assert not [a for a in await store.alerting.open_alerts() if a.pipeline == "iowa-pda"]


def orders_retried(backoff: str) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": backoff}

    return edit


async def test_a_failure_held_for_a_retry_that_cannot_start_is_announced_with_its_owners(tmp_path: Path) -> None:
    """``orders`` retries once. Its first attempt fails (no alert yet: an attempt is left); the retry's trigger
    is refused (a 400: sending it again will not help; a busy 503 waits and tries again,
    tests/scenario/test_retry_races.py), so no further attempt runs. The first failure is announced in the alert
    channel, owners mentioned, and the retry's thread says why it did not start."""
    async with world(tmp_path, catalog_edit=orders_retried("1s")) as w:
        await w.command("run orders")  # from C0GENERAL; orders alerts in C0ALERTS
        await w.card_saying("orders")
        w.emulators["rivery"].state.add_fault(Fault(route="trigger", status=400, times=1))
        w.advance(40)  # queued 5 s, running 30 s: the first attempt fails
        retry_card = await w.card_saying("unknown state", timeout=15)
        await w.until(lambda: "orders" in everything(w, "C0ALERTS"), 10, what="the held failure announced")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        store = w.runtime.store
        assert store is not None
        first, retry = sorted(await store.runs.recent("orders"), key=lambda r: r.id)
        assert (first.state, retry.state, retry.provider_run_id) == ("failed", "unknown", None)
        posted = first_version(alert)
        assert "<@U0BOB>" in posted and f"run #{first.id}" in posted and "not found" in posted
        await w.until(lambda: any("did not start" in m.text for m in w.thread(retry_card)), 10, what="the note")
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 2  # the retry was not tried blindly


async def test_a_failure_held_for_a_retry_the_bot_died_starting_is_announced_after_the_restart(tmp_path: Path) -> None:
    """The process dies after claiming the retry and before its trigger (the retry is left ``starting``, its
    owner gone). After the restart the retry ends unknown (it may have started), and the first attempt's
    failure, which waited for it, is announced."""
    from sqlalchemy import update

    from bot.runtime import Runtime
    from bot.store.engine import make_engine
    from bot.store.tables import runs

    async with world(tmp_path, catalog_edit=orders_retried("1h")) as w:
        await w.command("run orders")
        await w.card_saying("orders")
        w.advance(40)
        await w.until(lambda: any("retrying automatically" in m.text
                                  for m in w.slack.messages("C0GENERAL", top_level=False)), 15, what="the retry")
        store = w.runtime.store
        assert store is not None
        first, retry = sorted(await store.runs.recent("orders"), key=lambda r: r.id)
        assert (first.state, retry.state) == ("failed", "waiting")
        await w.runtime.stop()
        # what the killed process left: the retry claimed (starting) a while ago, its lease long expired
        engine = make_engine(w.settings.database_url)
        gone = w.runtime.now() - timedelta(minutes=5)
        async with engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == retry.id).values(
                state="starting", created_at=gone, next_poll_at=None, lease_owner="killed-process",
                lease_expires_at=gone + timedelta(seconds=60)))
        await engine.dispose()
        assert not [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        w.runtime = Runtime(w.settings, w.runtime.catalog)
        await w.runtime.start()
        assert w.runtime.http is not None
        w.slack.app_url = f"{w.runtime.http.url}/slack/events"
        await w.until(lambda: "orders" in everything(w, "C0ALERTS"), 15, what="the held failure announced")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        assert "<@U0BOB>" in first_version(alert) and f"run #{first.id}" in first_version(alert)
        store = w.runtime.store
        assert store is not None
        after = await store.runs.get(retry.id)
        assert after is not None and after.state == "unknown"
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1  # never triggered blindly
