"""The one error path of the slash command: whatever a handler raises reaches Bolt's error handler, and the person
gets exactly one ephemeral answer while the log gets one line with the traceback."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.errors import ProviderUnavailable
from bot.service.queries import RunQueries
from tests.scenario.harness import world

APOLOGY = "Something went wrong on our side; it is logged. Try again in a moment."


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_an_unexpected_error_after_the_ack_gives_one_apology_and_one_logged_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:

        async def broken(self: RunQueries) -> None:
            raise RuntimeError("the store fell over")

        monkeypatch.setattr(RunQueries, "in_flight", broken)
        caplog.set_level(logging.INFO)
        response = await w.command("status")
        assert response.ok and response.within_deadline and response.text == ""
        await w.until(lambda: bool(w.slack.ephemerals(user="U0ALICE")), what="the apology")
        await w.settle(0.2)
        [reply] = w.slack.ephemerals(user="U0ALICE")
        assert reply.text == "⚠️ " + APOLOGY
        [line] = _errors(caplog)
        assert line.getMessage() == "command 'status' failed"
        assert line.exc_info is not None and "the store fell over" in str(line.exc_info[1])


async def test_an_unexpected_error_before_the_ack_is_answered_in_the_ack(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:

        def broken(self: object) -> dict[str, str]:
            raise RuntimeError("no display names")

        # Services is frozen (the composition root builds it once): the method is replaced on its class
        monkeypatch.setattr(type(w.runtime.services), "display_names", broken)
        caplog.set_level(logging.INFO)
        response = await w.command("list")
        assert response.ok and response.within_deadline
        assert isinstance(response.body, dict) and response.body["text"] == "⚠️ " + APOLOGY
        await w.settle(0.2)
        assert [e.text for e in w.slack.ephemerals(user="U0ALICE")] == ["⚠️ " + APOLOGY]
        [line] = _errors(caplog)
        assert line.getMessage() == "command 'list' failed" and line.exc_info is not None


async def test_a_provider_error_is_answered_with_its_message_and_not_logged_as_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:

        async def down(self: RunQueries) -> None:
            raise ProviderUnavailable("Rivery is not answering; try again in a few minutes.")

        monkeypatch.setattr(RunQueries, "in_flight", down)
        caplog.set_level(logging.INFO)
        await w.command("status")
        await w.until(lambda: bool(w.slack.ephemerals(user="U0ALICE")), what="the reply")
        await w.settle(0.2)
        [reply] = w.slack.ephemerals(user="U0ALICE")
        assert reply.text == "⚠️ Rivery is not answering; try again in a few minutes."
        assert _errors(caplog) == []
