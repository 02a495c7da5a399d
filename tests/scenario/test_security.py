"""Security at the boundary: signed requests only, no replays, untrusted text shown as text, and button values
and modal metadata treated as the client input they are."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from pathlib import Path

import pytest
import slack_sdk.signature

from bot.emulators._core import Outcome
from bot.emulators.slack import payloads
from bot.emulators.slack.signing import signature
from bot.slack.blocks import ids
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import DK_JOB, FAILING_RIVER, World, world
from tests.scenario.surface import (
    add_stranger,
    ask,
    audit_of,
    click_as,
    command_body,
    everything_sent,
    reply_to,
    run_number,
    shown,
)

INJECTED = "Table <!channel> not found, see <https://evil|docs> & ask <@U0CAROL>"
RAW = ("<!channel>", "<!here>", "<https://evil", "<@U0CAROL>")


def _forged_click(w: World, op: str, target: str) -> str:
    """A block_actions body confirming a change, as an attacker would write it."""
    payload = payloads.block_actions(
        token=w.slack.verification_token, api_app_id=w.slack.api_app_id, team={"id": w.slack.team_id},
        user=payloads.user_ref("U0ALICE", "alice", w.slack.team_id),
        container={"type": "message", "message_ts": "1.000001", "channel_id": "C0GENERAL", "is_ephemeral": True},
        trigger_id="1.1.forged", channel={"id": "C0GENERAL", "name": "general"},
        actions=[{"action_id": ids.OP_CONFIRM, "block_id": "op_actions", "type": "button",
                  "value": ids.op_value(op, target), "action_ts": "1.000002"}],
        response_url=f"{w.slack.url}/_response/forged",
    )
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


async def _nothing_happened(w: World) -> None:
    for emulator in w.emulators.values():
        assert not emulator.state.requests_to("trigger")
    assert not w.emulators["tailer"].state.requests_to("configuration")
    assert {c.method for c in w.slack.calls} <= {"auth.test"}
    assert not w.slack.ephemerals() and not w.slack.responses() and not w.slack.views
    assert w.runtime.store is not None and await w.runtime.store.runs.get(1) is None
    assert not await audit_of(w)


async def test_forged_unsigned_and_stale_requests_get_401_and_do_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        body = command_body(w, "run leads-ods")
        now = int(time.time())
        attempts = {
            "forged signature": await w.slack.post_raw(body, signature="v0=" + "0" * 64),
            "another secret": await w.slack.post_raw(body, timestamp=now, signature=signature("guess", now, body)),
            "six minutes old": await w.slack.post_raw(body, timestamp=now - 360),
            "six minutes ahead": await w.slack.post_raw(body, timestamp=now + 360),
            "unsigned": await w.slack.post_raw(body, sign=False),
            "body changed after signing": await w.slack.post_raw(
                body.replace("leads-ods", "orders"), timestamp=now, signature=w.slack.signature_for(now, body)),
            "forged click": await w.slack.post_raw(_forged_click(w, "disable", "iowa-pda"), signature="v0=deadbeef"),
            "stale click": await w.slack.post_raw(_forged_click(w, "disable", "iowa-pda"), timestamp=now - 360),
        }
        for what, response in attempts.items():
            assert response.status == 401, (what, response.status, response.text)
        await w.settle(0.3)
        await _nothing_happened(w)

        # the very same body, correctly signed now, is a valid command: the refusals were about the signature
        accepted = await w.slack.post_raw(body, timestamp=int(time.time()))
        assert accepted.ok
        await w.card_saying("leads-ods is queued")
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1


async def test_a_valid_request_replayed_after_five_minutes_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:
        signed_at = int(time.time())
        body = command_body(w, "run leads-ods")
        first = await w.slack.post_raw(body, timestamp=signed_at)
        assert first.ok
        await w.card_saying("leads-ods is queued")

        # six minutes later by the clock the bot checks signatures with, the same bytes and headers come again
        real = time.time
        monkeypatch.setattr(slack_sdk.signature, "time", lambda: real() + 360)
        replay = await w.slack.post_raw(body, timestamp=signed_at)
        assert replay.status == 401
        fresh = await w.slack.post_raw(command_body(w, "help"), timestamp=int(real()) + 360)
        assert fresh.ok and "run and watch data pipelines" in fresh.text  # the clock itself is fine
        await w.settle(0.3)
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1
        assert len(w.cards()) == 1


async def test_untrusted_text_is_shown_as_text_and_never_pings(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(
            FAILING_RIVER, Outcome(result="fail", queued_s=5, running_s=30, message=INJECTED, failed_tasks=("load",)))
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(40)
        card = await w.card_saying("orders failed")
        await w.until(lambda: bool(w.thread(card)), what="the failure details")
        escaped = "Table &lt;!channel&gt; not found, see &lt;https://evil|docs&gt; &amp; ask &lt;@U0CAROL&gt;"
        assert escaped in shown(card)
        [details] = w.thread(card)
        assert escaped in shown(details)
        # the alert mentions the owners: mentions come from ids in the catalog, never from the provider's text
        await w.until(lambda: any("cc <@U0BOB>" in shown(m) for m in w.slack.messages("C0ALERTS")), what="the alert")

        # the same run as the person asks for it, and its history
        assert escaped in shown(await ask(w, f"status {run_number(card)}"))
        assert "&lt;!channel&gt;" in shown(await ask(w, "last orders"))
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: w.slack.home("U0ALICE") is not None, what="the Home tab")

        # command text echoed back (Slack escapes it when should_escape is on; the bot must not rely on that)
        for text in ("run <!channel>", "list <!here>", "mute <https://evil|docs>", "run leads-ods load_date=<!channel>",
                     "run &lt;!channel&gt;", "status <@U0CAROL>", "<!channel>"):
            reply = await ask(w, text)
            assert reply.text.startswith("⚠️"), (text, reply.text)

        recorded = everything_sent(w)
        for raw in RAW:
            assert raw not in recorded, f"{raw!r} reached Slack unescaped"
        assert "&lt;!channel&gt;" in recorded and "&lt;!here&gt;" in recorded


async def test_tampered_button_values_get_an_ephemeral_not_a_crash(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        dave = add_stranger(w)
        w.emulators["datakitchen"].state.script(DK_JOB, Outcome(result="fail", queued_s=1, running_s=2))
        await w.command("run orders")
        await w.command("run sales-dashboard")
        await w.card_saying("orders is queued")
        await w.card_saying("sales-dashboard is queued")
        w.advance(40)
        orders = await w.card_saying("orders failed")
        sales = await w.card_saying("sales-dashboard failed")
        triggers = {name: len(e.state.requests_to("trigger")) for name, e in w.emulators.items()}

        async def click(action_id: str, value: object, user: str = dave) -> str:
            _, reply = await reply_to(w, w.slack.click("C0GENERAL", orders.ts, action_id, user=user, value=value),
                                      user=user)
            return reply.text

        invalid = "That button's value is not valid"
        assert invalid in await click(ids.RUN_RETRY, "abc")
        assert invalid in await click(ids.RUN_RETRY, "9" * 40)
        assert invalid in await click(ids.RUN_RETRY, "-1")
        assert invalid in await click(ids.RUN_ACK, "1; DROP TABLE runs")
        assert "There is no run #999999999999" in await click(ids.RUN_RETRY, "999999999999")
        # another run's id, one dave may not touch: the server checks the run the value names
        assert "You may not retry *sales-dashboard*" in await click(ids.RUN_RETRY, str(run_number(sales)))

        def option(value: str) -> dict[str, object]:
            return {"type": "static_select", "selected_option": {"text": {"type": "plain_text", "text": "x"},
                                                                 "value": value}}

        assert invalid in await click(ids.RUN_MUTE, option(f"{run_number(orders)}|5"), user="U0ALICE")
        assert invalid in await click(ids.RUN_MUTE, option("abc|3600"), user="U0ALICE")
        assert "You may not mute *sales-dashboard*" in await click(ids.RUN_MUTE, option(f"{run_number(sales)}|3600"))

        # a confirmation whose value was rewritten
        question = await ask(w, "disable iowa-pda")
        for value, says in [("not json", invalid), ("[1, 2]", invalid), ('{"op": "drop", "target": "iowa-pda"}', invalid),
                            ('{"op": "cancel", "target": "x", "run": null}', invalid),
                            ('{"op": "cancel", "target": "x", "run": true}', invalid),
                            (ids.op_value("disable", "nope"), "There is no pipeline *nope*"),
                            # a name Slack would read formatting in is shown as written (before: "*no*pe*")
                            (ids.op_value("disable", "no*pe"), "There is no pipeline `no*pe`"),
                            (ids.op_value("cancel", "x", 424242), "There is no run #424242")]:
            _, reply = await reply_to(w, click_as(w, question, ids.OP_CONFIRM, user="U0ALICE", value=value))
            assert says in reply.text, (value, reply.text)
        assert "You may not archive *iowa-pda*" in (await reply_to(
            w, click_as(w, question, ids.OP_CONFIRM, user=dave, value=ids.op_value("archive", "iowa-pda")),
            user=dave))[1].text

        # nothing started or changed anywhere, and the bot still answers
        assert {name: len(e.state.requests_to("trigger")) for name, e in w.emulators.items()} == triggers
        assert not w.emulators["tailer"].state.requests_to("configuration")
        assert w.runtime.store is not None and not await w.runtime.store.mutes.active(now=w.runtime.now())
        assert (await ask(w, "status")).text == "No runs in flight."


async def test_tampered_modal_metadata_cannot_send_the_card_elsewhere(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        dave = add_stranger(w)  # not in the private channel C0OPS

        async def submit(user: str, channel: str, metadata: str | None) -> None:
            response = await w.command("run", user=user, channel=channel)
            assert response.ok
            await w.until(lambda: bool(w.slack.open_modals(user)), what="the modal")
            modal = w.slack.open_modals(user)[-1]
            await w.slack.click_view(modal.id, ids.PIPELINE_SELECT, value="budget")
            await w.until(lambda: "*budget*" in json.dumps(w.slack.view(modal.id).blocks), what="the redraw")
            if metadata is not None:
                w.slack.view(modal.id).view["private_metadata"] = metadata  # what a tampering client sends back
            submitted = await w.slack.submit(modal.id, {})
            assert submitted.ok and submitted.within_deadline, (metadata, submitted.status, submitted.text)
            assert w.slack.view(modal.id).closed

        tampered = ['{"channel":"C0OPS","pipeline":null}', "not json", "[1, 2]", '{"channel":"<!channel>"}',
                    '{"channel": ["C0OPS"]}']
        for metadata in tampered:
            await submit(dave, "C0GENERAL", metadata)
        await submit("U0ALICE", "C0OPS", None)  # the real thing: alice is in C0OPS, her card goes there
        await w.until(lambda: len(w.cards("C0ALERTS")) == len(tampered), what="every tampered run's card")
        await w.until(lambda: len(w.cards("C0OPS")) == 1, what="alice's card in C0OPS")
        assert "<@U0ALICE>" in str(w.cards("C0OPS")[0].blocks)
        assert {c.params.get("channel") for c in w.slack.calls_to("chat.postMessage")} == {"C0ALERTS", "C0OPS"}
        assert all(c.ok for c in w.slack.calls_to("chat.postMessage"))
        assert len(w.emulators["invision"].state.requests_to("trigger")) == len(tampered) + 1


async def test_control_characters_are_refused_and_nul_from_a_provider_is_stored_on_postgresql(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL refuses NUL in text: an ad-hoc id carrying one started a provider run whose every poll then failed
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url) as w:
            caplog.set_level(logging.WARNING)
            for text, expected in (
                ("run rivery:abc\x00def", "U+0000"),
                ("run rivery:abc\u202edef", "U+202E"),
                ("run rivery:" + "a" * 3900, "at most 200"),
                ("run rivery:abc;def", "is not a job id"),
            ):
                reply = await ask(w, text, user="U0CAROL")
                assert reply.text.startswith("⚠️") and expected in reply.text, (text, reply.text)
                assert "Something went wrong" not in reply.text
                assert "\x00" not in everything_sent(w) and "\u202e" not in everything_sent(w)
            for text in ("run leads-ods\x00", "status 1\x1b[2J"):  # not an admin: refused as clearly, no error
                reply = await ask(w, text)
                assert reply.text.startswith("⚠️") and "U+00" in reply.text, (text, reply.text)
            assert not w.emulators["rivery"].state.requests_to("trigger")
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    finally:
        await drop_postgres_database(url)


async def test_a_provider_message_with_nul_is_recorded_and_shown_on_postgresql(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url) as w:
            caplog.set_level(logging.WARNING)
            w.emulators["rivery"].state.script(
                FAILING_RIVER, Outcome(result="fail", queued_s=5, running_s=30, message="disk\x00 full",
                                       failed_tasks=("load",)))
            await w.command("run orders")
            await w.card_saying("orders is queued")
            w.advance(40)
            card = await w.card_saying("orders failed")
            assert "disk full" in shown(card)
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        await drop_postgres_database(url)
