"""Issue 14, item 5: a failed task's line does not repeat the run's message. Rivery's task message embeds it
("load Failed: <the run's message>", the seed's check_run shape): the card and the alert say it once."""

from __future__ import annotations

import json
from pathlib import Path

from bot.emulators.slack.server import Message
from tests.scenario.harness import world

SAID = "Table &lt;!channel&gt; not found"  # the harness's failing river, as mrkdwn shows it


def block_texts(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


async def test_failed_task_line_does_not_repeat_the_runs_message(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run orders", user="U0BOB")
        await w.settle(0.5)
        w.advance(40)
        card = await w.card_saying("Tasks")
        await w.until(lambda: any("Failed tasks" in block_texts(m) for m in w.slack.messages("C0ALERTS")),
                      what="the alert with its failed tasks")
        alert = w.slack.messages("C0ALERTS")[-1]
        for message in (card, alert):
            shown = block_texts(message)
            assert shown.count(SAID) == 1, shown
            assert "load Failed" in shown, shown  # the task's own words, less the repeated message, stay
