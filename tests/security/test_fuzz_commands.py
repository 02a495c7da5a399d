"""Every command's text, fuzzed (hypothesis), through the real signed HTTP endpoint: the bot always answers with
HTTP 200 within Slack's 3 s, always replies (in the ack, as an ephemeral, with a modal, or by starting what was
asked: a run, a workflow), never with "something went wrong" or a trace, never logs an unhandled error, and never
echoes injected mrkdwn as written. One world serves every example."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.commands.grammar import COMMANDS
from tests.scenario.harness import World
from tests.scenario.surface import OUR_FAULT, add_stranger, everything_sent
from tests.security import INJECTIONS, Recorder, ThreadedWorld, unescaped

CHANNEL = "C0GENERAL"
NAMES = ["leads-ods", "orders", "iowa-pda", "budget", "sales-dashboard", "notes-load", "nightly", "broken"]
WORDS = st.one_of(
    st.sampled_from(NAMES),
    st.sampled_from(INJECTIONS),
    st.sampled_from([
        "1", "#1", "0", "-1", "999999999999999999999", "1h", "30m", "7d", "2w", "0s", "forever", "#data-ops",
        "<#C0OPS|data-ops>", "C0OPS", "rivery:5e8e1eb46b028e37b73f44f0", "tailer:x", "datakitchen:a/b/c", "invision:",
        "load_date=2024-01-31", "load_date=2024-02-30", "note=<!channel>", 'note="two words"', "note='", "=", "a=b=c",
        "execution_date=", "&lt;!channel&gt;", "&amp;", "*", "_", "~", "`", "```", ">", "\u200b", "\u202e", "\x00",
        "💥", "ı", "ß", "ǅ", "Ⅻ",
    ]),
    st.text(max_size=40),
)
TEXTS = st.one_of(
    st.builds(
        lambda command, words, sep: (command + sep + " ".join(words)).strip(" "),
        st.sampled_from([c.name for c in COMMANDS] + [w for c in COMMANDS for w in c.aliases] + ["", "RUN", "stat"]),
        st.lists(WORDS, max_size=5),
        st.sampled_from([" ", "  ", "\t", "\n", "\u00a0"]),
    ),
    st.text(max_size=300),
)


def _counts(w: World, user: str) -> tuple[int, ...]:
    with sqlite3.connect(w.tmp / "bot.db") as db:
        runs = db.execute("select count(*) from runs").fetchone()[0]
        flows = db.execute("select count(*) from workflow_runs").fetchone()[0]
    return (len(w.slack.ephemerals(CHANNEL, user)), len(w.slack.responses(user)), len(w.slack.views), runs, flows)


async def _one(w: World, text: str, user: str) -> str | None:
    """Send one command; the problem found, or None."""
    before = _counts(w, user)
    response = await w.slack.command(text, user=user, channel=CHANNEL)
    if response.status != 200 or not response.within_deadline:
        return f"HTTP {response.status} after {response.elapsed:.2f} s"
    said = response.text if isinstance(response.body, (str, dict)) and response.text.strip() else ""
    deadline = asyncio.get_running_loop().time() + 5
    while not said and _counts(w, user) == before:
        if asyncio.get_running_loop().time() > deadline:
            return "no reply at all"
        await asyncio.sleep(0.02)
    replies = [e.text for e in w.slack.ephemerals(CHANNEL, user)[before[0]:]] + [said]
    bad = [r for r in replies if any(fault in r for fault in OUR_FAULT)]
    return f"an error reply: {bad[0][:200]}" if bad else None


def test_fuzzed_command_text_always_gets_a_reply_and_never_an_error(tmp_path: Path) -> None:
    problems: list[tuple[str, str, str]] = []
    sent_texts: list[str] = []
    with Recorder() as logs, ThreadedWorld(tmp_path) as threaded:
        w = threaded.world
        add_stranger(w)

        @settings(max_examples=200, deadline=None, database=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        @given(text=TEXTS, user=st.sampled_from(["U0ALICE", "U0DAVE", "U0CAROL"]))
        def one(text: str, user: str) -> None:
            sent_texts.append(text)
            problem = threaded.call(_one(w, text, user))
            if problem:
                problems.append((user, text, problem))

        one()
        threaded.call(asyncio.sleep(1.0))  # the background work of the last commands
        sent = everything_sent(w)
        errors = [f"{r.name}: {r.getMessage()[:300]}" for r in logs.errors()]
    assert len(sent_texts) >= 200 and len(w.slack.deliveries) >= 200
    assert not problems, problems[:10]
    assert not unescaped(sent), f"reached Slack as written: {unescaped(sent)}"
    assert not errors, errors[:10]
