"""mrkdwn injection from every untrusted source reaches Slack as text: provider messages (Rivery's run message,
DataKitchen's order-run log), task and node names, the provider's own name for a job, provider error bodies, run
parameters (typed in the command and in the modal), and runs started outside Slack found by passive watch. (Tailer
and InVision answer with status codes and ids only: no free text of theirs reaches a message.) Each source carries its own marker, so the test
also proves each one was shown (escaped), not silently dropped. Command text itself is fuzzed in
``test_fuzz_commands.py``; the first provider-message case lives in ``tests/scenario/test_security.py``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.emulators._core import Outcome
from bot.emulators._server import EmulatorServer, json_response
from bot.slack.blocks import ids
from tests.scenario.harness import DK_JOB, FAILING_RIVER, FLOW, RIVER, TAILER_CONFIG
from tests.scenario.surface import ask, everything_sent
from tests.security import WATCHED_RIVER, security_world, unescaped

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def evil(tag: str) -> str:
    return f"<!channel> <@U0EVIL{tag}> <https://evil.example/{tag}|look> *{tag}*"


def shown_escaped(sent: str, tag: str) -> bool:
    return f"&lt;@U0EVIL{tag}&gt;" in sent


def _error_bodies(emulators: dict[str, EmulatorServer]) -> None:
    """InVision refuses its first trigger with an error body written by an attacker."""
    invision = emulators["invision"]
    original: Handler = invision.on_start  # type: ignore[attr-defined]
    calls = {"n": 0}

    async def start(request: web.Request) -> web.StreamResponse:
        calls["n"] += 1
        if calls["n"] == 1:
            return json_response({"message": evil("ERR")}, status=400)
        return await original(request)

    invision.on_start = start  # type: ignore[attr-defined]


async def test_text_from_every_untrusted_source_is_shown_as_text(tmp_path: Path) -> None:
    async with security_world(tmp_path, prepare=_error_bodies) as w:
        state = {name: e.state for name, e in w.emulators.items()}
        state["rivery"].script(RIVER, Outcome(result="fail", queued_s=1, running_s=2, message=evil("MSGR"),
                                              tasks=(f"load {evil('TASK')}",), failed_tasks=(f"load {evil('TASK')}",)))
        w.emulators["rivery"].river_names[FAILING_RIVER] = evil("NAME")  # type: ignore[attr-defined]
        state["rivery"].script(FAILING_RIVER, Outcome(result="succeed", queued_s=1, running_s=2))
        state["tailer"].script(TAILER_CONFIG, Outcome(result="fail", queued_s=1, running_s=2))
        state["invision"].script(FLOW, Outcome(result="fail", queued_s=1, running_s=2))
        state["datakitchen"].script(DK_JOB, Outcome(result="fail", queued_s=1, running_s=2, message=evil("MSGD"),
                                                    tasks=(f"node {evil('NODE')}",)))

        refused = await ask(w, "run budget")  # the provider's error body, in the reply
        assert refused.text.startswith("⚠️"), refused.text
        for text in ("run leads-ods", "run orders", "run iowa-pda", "run budget", "run sales-dashboard",
                     f'run notes-load note="{evil("PARAM")}"'):
            assert (await w.command(text)).ok
        # a parameter typed in the modal
        await w.command("run")
        await w.until(lambda: bool(w.slack.open_modals("U0ALICE")), what="the modal")
        modal = w.slack.open_modals("U0ALICE")[-1]
        await w.slack.click_view(modal.id, ids.PIPELINE_SELECT, value="notes-load")
        await w.until(lambda: ids.param_block_id("note") in json.dumps(w.slack.view(modal.id).blocks),
                      what="the note field")
        await w.slack.submit(modal.id, {ids.PIPELINE_BLOCK: {ids.PIPELINE_SELECT: "notes-load"},
                                        ids.param_block_id("note"): {ids.PARAM_ACTION: evil("MODAL")}})
        # a run started outside Slack, failing, found by passive watch
        w.emulators["rivery"].external_run(WATCHED_RIVER, {}, Outcome(result="fail", queued_s=1, running_s=2,
                                                                      message=evil("WATCH")))
        await w.until(lambda: len(w.cards()) == 7, 30, what="every card")  # paced: one post a second
        w.advance(5)
        for name in ("leads-ods", "iowa-pda", "budget", "sales-dashboard"):
            await w.card_saying(f"{name} failed")
        await w.until(lambda: shown_escaped(everything_sent(w), "WATCH"), timeout=30, what="the watched failure")
        # the same runs as people look them up afterwards
        for text in ("status", "last leads-ods", "last iowa-pda", "last sales-dashboard", "last orders"):
            await ask(w, text)
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: w.slack.home("U0ALICE") is not None, what="the Home tab")
        await w.settle(1.0)

        sent = everything_sent(w)
        assert not unescaped(sent), f"reached Slack as written: {unescaped(sent)}"
        assert "<!channel>" not in sent and "<https://evil" not in sent
        tags = ("ERR", "MSGR", "TASK", "NAME", "MSGD", "NODE", "PARAM", "MODAL", "WATCH")
        missing = [tag for tag in tags if not shown_escaped(sent, tag)]
        assert not missing, f"never shown at all (so not proven escaped): {missing}"
