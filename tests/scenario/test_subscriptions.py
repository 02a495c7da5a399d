"""Self-serve subscriptions through the signed endpoint and the fake Slack: a channel subscribed to a pipeline,
a tag or a provider hears of its failures besides the routed channel (never twice in one channel); ``all``
subscribers get a note when a run ends; unsubscribing stops it; "notify me" DMs the person whose run ended;
and the refusals: no rights, an unknown subject, a channel the bot cannot post in."""

from __future__ import annotations

import json
from pathlib import Path

from bot.emulators.slack import payloads
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from bot.slack.commands.grammar import COMMANDS
from bot.slack.commands.help import examples
from tests.scenario.harness import World, world
from tests.scenario.surface import add_stranger, answered_in_place, ask, run_number, shown


def said(message: Message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def saying(w: World, channel: str, words: str) -> list[Message]:
    if channel not in w.slack.channels:  # a DM exists once the bot wrote in it
        return []
    return [m for m in w.slack.messages(channel) if words in said(m)]


async def fail_orders(w: World, user: str = "U0BOB") -> Message:
    """A run of orders (its river fails), ended: its failed card."""
    before = len([c for c in w.cards() if "orders failed" in said(c)])
    await w.command("run orders", user=user)
    await w.until(lambda: any("orders is queued" in said(c) for c in w.cards()), what="the card")
    w.advance(40)
    await w.until(lambda: len([c for c in w.cards() if "orders failed" in said(c)]) > before, what="the failure")
    return [c for c in w.cards() if "orders failed" in said(c)][-1]


async def test_a_failure_is_announced_in_the_subscribed_channel_too_until_unsubscribed(tmp_path: Path) -> None:
    # a repeat inside the suppression interval folds into the open alert: a short one, so each failure is news
    async with world(tmp_path, alert_suppress_seconds=0.01) as w:
        reply = await ask(w, "subscribe orders #data-ops")
        assert "Subscribed" in shown(reply) and "<#C0OPS>" in shown(reply)
        # the routed channel subscribed too: the alert is there already, so nothing is posted twice
        assert "Subscribed" in shown(await ask(w, "subscribe orders #data-alerts all"))

        card = await fail_orders(w)
        await w.until(lambda: bool(saying(w, "C0ALERTS", "orders")), what="the routed alert")
        await w.until(lambda: bool(saying(w, "C0OPS", "orders")), what="the failure in the subscribed channel")
        [copy] = saying(w, "C0OPS", "orders")
        text = said(copy)
        assert "failed" in text and "run #" in text
        assert "the alert is in <#C0ALERTS>" in text
        assert f"/archives/C0GENERAL/p{card.ts.replace('.', '')}" in text  # the card's permalink
        assert "unsubscribe orders" in text  # says how to stop it
        assert "<@U0BOB>" not in text  # owners are pinged once, in the alert
        await w.settle(1.0)
        assert len(saying(w, "C0ALERTS", "orders")) == 1, "the routed channel's subscription posted again"
        assert not saying(w, "C0GENERAL", "subscribed to"), "the card's channel was told again"

        reply = await ask(w, "unsubscribe orders #data-ops")
        assert "Unsubscribed" in shown(reply)
        await fail_orders(w)
        await w.until(lambda: len(saying(w, "C0ALERTS", "orders")) == 2, what="the second alert")
        await w.settle(1.0)
        assert len(saying(w, "C0OPS", "orders")) == 1, "an unsubscribed channel was told"


async def test_all_subscribers_get_one_note_when_a_run_ends(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert "Subscribed" in shown(await ask(w, "subscribe leads-ods #data-ops all"))
        # the provider covers leads-ods too: one note in one channel all the same
        assert "Subscribed" in shown(await ask(w, "subscribe rivery #data-ops all"))
        # failures only: no note of a success
        assert "Subscribed" in shown(await ask(w, "subscribe leads-ods #data-alerts"))
        await w.command("run leads-ods", user="U0BOB")
        await w.card_saying("leads-ods is queued")
        w.advance(40)
        card = await w.card_saying("leads-ods succeeded")
        await w.until(lambda: bool(saying(w, "C0OPS", "leads-ods")), what="the end note")
        await w.settle(1.0)
        [note] = saying(w, "C0OPS", "leads-ods")
        assert "succeeded" in said(note) and f"p{card.ts.replace('.', '')}" in said(note)
        assert not saying(w, "C0ALERTS", "leads-ods"), "a failures subscription was told of a success"

        # subscribing again changes the level: failures only now, so the next success is not told
        assert "changed" in shown(await ask(w, "subscribe leads-ods #data-ops failures"))
        assert "Unsubscribed" in shown(await ask(w, "unsubscribe rivery #data-ops"))
        await w.command("run leads-ods", user="U0BOB")
        await w.until(lambda: "queued (run #2)" in json.dumps([said(c) for c in w.cards()]), what="run 2's card")
        w.advance(40)
        await w.until(lambda: len([c for c in w.cards() if "leads-ods succeeded" in said(c)]) == 2, what="run 2")
        await w.settle(1.0)
        assert len(saying(w, "C0OPS", "leads-ods")) == 1


async def test_notify_me_dms_the_person_whose_run_ended(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert "direct message" in shown(await ask(w, "notify me", user="U0BOB"))
        await fail_orders(w, user="U0BOB")
        await w.until(lambda: bool(saying(w, "D0BOB", "orders")), what="bob's DM")
        [dm] = saying(w, "D0BOB", "orders")
        assert "Your run #" in said(dm) and "failed" in said(dm)
        assert "/archives/C0GENERAL/p" in said(dm) and "notify me off" in said(dm)

        # someone else's run: no DM to bob, none to alice (she did not ask)
        await fail_orders(w, user="U0ALICE")
        await w.settle(1.0)
        assert len(saying(w, "D0BOB", "orders")) == 1 and not saying(w, "D0ALICE", "orders")

        assert "No more direct messages" in shown(await ask(w, "notify me off", user="U0BOB"))
        await w.command("run leads-ods", user="U0BOB")  # another river: Rivery allows 2 runs of one a minute
        await w.card_saying("leads-ods is queued")
        w.advance(40)
        await w.card_saying("leads-ods succeeded")
        await w.settle(1.0)
        assert not saying(w, "D0BOB", "leads-ods")


async def test_subscriptions_are_listed_and_refused_in_plain_words(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        dave = add_stranger(w)
        refused = shown(await ask(w, "subscribe orders", user=dave))
        assert "⚠️" in refused and "may not" in refused
        assert "Did you mean `orders`" in shown(await ask(w, "subscribe ordrs"))
        # a public channel without the bot: a subscription needs the bot in it (a watch does not)
        assert "The bot is not in <#C0RANDOM>" in shown(await ask(w, "subscribe orders #random"))
        # a private channel without the bot: by name it is not found, by id Slack does not show it either
        assert "needs the bot invited" in shown(await ask(w, "subscribe orders #private-ops"))
        assert "There is no channel <#C0PRIVATE> the bot can see" in shown(await ask(w, "subscribe orders C0PRIVATE"))
        assert "no channel #nowhere" in shown(await ask(w, "subscribe orders #nowhere"))
        assert "was not subscribed" in shown(await ask(w, "unsubscribe orders"))
        assert "Subscribed" in shown(await ask(w, "subscribe orders"))  # this channel
        assert "Subscribed" in shown(await ask(w, "subscribe rivery #data-ops all"))

        listed = shown(await ask(w, "subscriptions", user=dave))
        assert "(2)" in listed and "<#C0GENERAL>" in listed and "<#C0OPS>" in listed and "<@U0ALICE>" in listed
        assert "(0)" in shown(await ask(w, "subscriptions mine", user=dave))
        # another's subscription is removed only with the rights it needed
        assert "may not" in shown(await ask(w, "unsubscribe orders", user=dave))
        assert "(2)" in shown(await ask(w, "subscriptions mine"))


def home_says(w: World, user: str = "U0ALICE") -> str:
    view = w.slack.home(user)
    return json.dumps(view.blocks if view else [], ensure_ascii=False)


def unsubscribe_buttons(w: World, user: str = "U0ALICE") -> dict[str, str]:
    """The Home tab's Unsubscribe (and notify me's Turn off) buttons: label → action id."""
    view = w.slack.home(user)
    assert view is not None
    return {
        str(e["text"]["text"]): str(e["action_id"])
        for _, e in payloads.interactive_elements(view.blocks)
        if str(e["action_id"]).startswith(ids.SUB_REMOVE)
    }


async def test_my_subscriptions_on_the_home_tab_each_with_its_unsubscribe_button(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert "Subscribed" in shown(await ask(w, "subscribe orders #data-ops"))
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: "My subscriptions* (1)" in home_says(w), what="My subscriptions")
        # "notify me" off says so (the tab said nothing of it until it was on)
        assert "Notify me: *off*" in home_says(w) and "Turn off" not in unsubscribe_buttons(w)
        assert "direct message" in shown(await ask(w, "notify me"))
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: "Notify me: *on*" in home_says(w), what="notify me on, on the Home tab")
        text = home_says(w)
        assert "<#C0OPS>" in text and "*orders*" in text and "DM me when the runs I start end" in text
        assert "Notify me: *off*" not in text
        buttons = unsubscribe_buttons(w)
        assert set(buttons) == {"Unsubscribe", "Turn off"}  # the subscription, and "notify me"
        view = w.slack.home("U0ALICE")
        assert view is not None
        response = await w.slack.click_view(view.id, buttons["Unsubscribe"], user="U0ALICE")
        assert response.ok and response.within_deadline
        await w.until(lambda: "Unsubscribed." in home_says(w), what="the Home tab answering the click")
        assert "My subscriptions* (0)" in home_says(w) and "<#C0OPS>" not in home_says(w)
        assert "(0)" in shown(await ask(w, "subscriptions"))


async def test_every_example_help_shows_for_the_new_commands_works(tmp_path: Path) -> None:
    """As the browser test types help's examples in the demo: each answers without a warning, here with this
    catalog's names (it has no tags: the tag's example is left out)."""
    async with world(tmp_path) as w:
        services = w.runtime.services
        typed = []
        for name in ("subscribe", "unsubscribe", "subscriptions", "notify"):
            [spec] = [s for s in COMMANDS if s.name == name]
            for example in examples(spec, services.catalog, lambda p, c: True):
                reply = shown(await ask(w, example))
                assert "⚠️" not in reply, (example, reply)
                typed.append(example)
        assert "subscribe rivery failures" in typed and "notify me off" in typed
        assert not [e for e in typed if "finance" in e]


async def test_notify_me_tells_of_a_canceled_run_and_all_subscribers_hear_of_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert "direct message" in shown(await ask(w, "notify me"))
        assert "Subscribed" in shown(await ask(w, "subscribe leads-ods #data-ops all"))
        await w.command("run leads-ods")
        await w.card_saying("leads-ods is queued")
        w.advance(6)
        card = await w.card_saying("leads-ods is running")
        number = run_number(card)
        question = await ask(w, f"cancel {number}")
        # the answer replaces the prompt (one confirmation)
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        w.advance(1)
        await w.card_saying("leads-ods was canceled")
        await w.until(lambda: bool(saying(w, "D0ALICE", "leads-ods")), what="alice's DM")
        [dm] = saying(w, "D0ALICE", "leads-ods")
        assert f"Your run #{number} of *leads-ods*" in said(dm) and "was canceled" in said(dm)
        await w.until(lambda: bool(saying(w, "C0OPS", "leads-ods")), what="the end note")
        assert "was canceled" in said(saying(w, "C0OPS", "leads-ods")[0])


async def test_a_repeat_folded_into_the_open_alert_is_news_only_to_all_subscribers(tmp_path: Path) -> None:
    async with world(tmp_path) as w:  # the default suppression: the second failure folds into the first alert
        w.slack.add_channel("C0FINANCE", "finance")
        assert "Subscribed" in shown(await ask(w, "subscribe orders #data-ops all"))
        assert "Subscribed" in shown(await ask(w, "subscribe orders #finance"))
        await fail_orders(w)
        await w.until(lambda: bool(saying(w, "C0FINANCE", "orders")), what="the failure in #finance")
        await w.until(lambda: bool(saying(w, "C0OPS", "orders")), what="the failure in #data-ops")
        await fail_orders(w)
        await w.until(lambda: len(saying(w, "C0OPS", "orders")) == 2, what="the note of the repeat")
        await w.settle(1.0)
        first, repeat = saying(w, "C0OPS", "orders")
        assert "the alert is in" in said(first) and "the alert is in" not in said(repeat)
        assert len(saying(w, "C0FINANCE", "orders")) == 1, "a repeat was posted to a failures subscriber"
        assert len(saying(w, "C0ALERTS", "orders")) == 1  # the routed channel: the one alert, updated
