"""Bad input at the endpoint: every mistake gets a short ephemeral reply saying what was wrong and what would
work, within Slack's 3 s, never a stack trace, never silence, and nothing is started."""

from __future__ import annotations

from pathlib import Path

from tests.scenario.harness import world
from tests.scenario.surface import ask, audit_of

# (what the person types, what the reply must say): the problem first, then what would work
CASES: list[tuple[str, list[str]]] = [
    # unknown command, with did-you-mean
    ("runn leads-ods", ["Unknown command `runn`", "Did you mean `run`?", "Usage: `/pipeline run"]),
    ("lsit", ["Unknown command `lsit`", "Did you mean `list`?"]),
    ("frobnicate", ["Unknown command `frobnicate`", "The commands are run, status", "`/pipeline help`"]),
    ("help frobnicate", ["No command `frobnicate`", "The commands are"]),
    ("leads-ods load_date=2024-01-31", ["`leads-ods` is not a command",
                                        "Did you mean `/pipeline run leads-ods load_date=2024-01-31`?"]),
    # unknown pipeline, with did-you-mean
    ("run leads", ["Unknown pipeline or workflow `leads`", "Did you mean `leads-ods`?"]),
    ("run ordrs", ["Unknown pipeline or workflow `ordrs`", "Did you mean `orders`?"]),
    ("run zzz", ["Unknown pipeline or workflow `zzz`", "Known: `budget`, `iowa-pda`", "`/pipeline list`"]),
    ("last sales", ["Unknown pipeline `sales`", "Did you mean `sales-dashboard`?"]),
    ("mute iowa", ["Unknown pipeline `iowa`", "Did you mean `iowa-pda`?"]),
    # bad key=value
    ("run leads-ods load_date", ["`load_date` is not a parameter", "key=value", "`execution_date=2024-01-31`"]),
    ("run leads-ods =2024-01-31", ["has no name before `=`", "key=value"]),
    ("run leads-ods load_date = 2024-01-31", ["Put no spaces around `=`"]),
    ("run leads-ods load_date=1 load_date=2", ["`load_date` is given twice", "give each parameter once"]),
    ('run leads-ods note="two words', ["A quote is not closed", 'like `note="two words"`']),
    ("stats leads-ods 7d x=1", ["Unexpected `x=1`", "Only run takes key=value parameters"]),
    # parameters the pipeline does not take, or with a bad value
    ("run leads-ods foo=1", ["foo is not a parameter of *leads-ods*", "It takes: load_date"]),
    ("run leads-ods load_date=yesterday", ["`load_date=yesterday` must be a date like 2024-01-31"]),
    ("run budget x=1", ["*budget* takes no parameters (got x)"]),
    # missing arguments
    ("cancel", ["`/pipeline cancel` needs a run number like 42 or #42", "`/pipeline status` lists the runs"]),
    ("status abc", ["`abc` is not a run", "like 42 or #42"]),
    ("last", ["`/pipeline last` needs a pipeline name", "For example `/pipeline last budget`"]),
    ("enable", ["`/pipeline enable` needs a pipeline name", "`/pipeline list` shows them all"]),
    ("reset", ["`/pipeline reset` needs a pipeline name"]),
    ("mute", ["`/pipeline mute` needs a pipeline name"]),
    # out of range
    ("last leads-ods 500", ["`500` is not a number of runs", "from 1 to 50"]),
    ("mute leads-ods 99d", ["`99d` is too long a duration", "at most 30d"]),
    ("stats leads-ods 2x", ["`2x` is not a period", "like 24h, 7d, 2w or 30d"]),
    ("cancel leads-ods", ["`leads-ods` is a pipeline, not a run", "`/pipeline last leads-ods` shows its runs"]),
    # runs that do not exist
    ("status 999", ["There is no run #999", "`/pipeline status` lists the runs in flight"]),
    ("cancel #999", ["There is no run #999", "`/pipeline status` lists the runs in flight"]),
    ("status 0", ["`0` is not a run", "run numbers start at 1"]),
    # ad-hoc targets: not a provider; not an admin
    ("run rivry:abc", ["`rivry` is not a provider or connection", "Did you mean `rivery:abc`?"]),
    ("run rivery:", ["has no id after the colon", "`rivery:12345`"]),
    ("run rivery:63b724fc690def001131d299", ["Only admins may run ad-hoc provider targets", "Admins: <@U0CAROL>"]),
]


async def test_every_mistake_gets_an_ephemeral_saying_what_was_wrong_and_what_would_work(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for text, expected in CASES:
            reply = await ask(w, text)  # HTTP 200 within 3 s, an ephemeral, no crash text (checked inside)
            assert reply.text.startswith("⚠️"), (text, reply.text)
            for words in expected:
                assert words in reply.text, f"{text!r}: {words!r} not in {reply.text!r}"
            assert reply.blocks and reply.blocks[0]["type"] == "section"
            assert len(reply.text) < 800, (text, len(reply.text))  # short

        # nothing was started, nothing posted in the channel
        for emulator in w.emulators.values():
            assert not emulator.state.requests_to("trigger"), emulator
        assert not w.slack.messages("C0GENERAL") and not w.slack.calls_to("chat.postMessage")
        assert w.runtime.store is not None and await w.runtime.store.runs.get(1) is None
        # the refused ad-hoc run is audited
        [refused] = await audit_of(w, "U0ALICE")
        assert (refused.action, refused.target, refused.outcome) == (
            "run", "rivery:63b724fc690def001131d299", "refused")


async def test_admin_may_run_an_ad_hoc_target(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        response = await w.command("run rivery:63b724fc690def001131d299", user="U0CAROL")
        assert response.ok and response.within_deadline
        card = await w.card_saying("rivery:63b724fc690def001131d299 is queued")
        assert "<@U0CAROL>" in str(card.blocks)
        [trigger] = w.emulators["rivery"].state.requests_to("trigger")
        assert trigger.body["river_id"] == "63b724fc690def001131d299"
        assert not w.slack.ephemerals(user="U0CAROL")
        [entry] = await audit_of(w, "U0CAROL")
        assert (entry.action, entry.outcome) == ("run", "ok")


async def test_an_impossible_date_is_refused_before_it_reaches_the_provider(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for text in ("run iowa-pda execution_date=2024-02-30", "run leads-ods load_date=2024-13-45"):
            reply = await ask(w, text)
            assert "must be a date like 2024-01-31" in reply.text, reply.text
        assert not w.emulators["tailer"].state.requests_to("trigger")
        assert not w.emulators["rivery"].state.requests_to("trigger")
