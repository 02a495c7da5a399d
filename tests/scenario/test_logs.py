"""Logs: every line about a run carries its run id, pipeline and provider; no secret ever appears."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.emulators._core import Fault
from bot.ops.logs import ContextFilter, JsonFormatter
from tests.scenario.harness import ENV, world


async def test_log_lines_about_runs_name_them_and_never_hold_a_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(ContextFilter())
    async with world(tmp_path) as w:
        await w.command("run orders")  # fails at the provider with a message
        await w.card_saying("queued")
        w.emulators["rivery"].state.add_fault(Fault(route="status", kind="expired_token", times=3))
        w.advance(40)
        await w.card_saying("failed", timeout=20)
        w.slack.fail_next("chat.postMessage", status=429, retry_after=1)
        await w.command("run budget")
        await w.card_saying("budget")
        await w.settle(1.5)

    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    secrets = [*ENV.values(), w.settings.slack_bot_token.get_secret_value(),  # type: ignore[union-attr]
               w.settings.slack_signing_secret.get_secret_value()]  # type: ignore[union-attr]
    for secret in secrets:
        assert not [line for line in lines if secret in line], f"a log line holds the secret {secret[:4]}…"
    about_runs = [r for r in caplog.records if r.name.startswith(("bot.tracking.poller", "bot.delivery"))]
    assert about_runs, "the poller logged nothing about the provider's 401s"
    for record in about_runs:
        assert getattr(record, "run_id", None) is not None, record.getMessage()
    polled = [r for r in about_runs if r.name == "bot.tracking.poller"]
    assert all(getattr(r, "pipeline", None) == "orders" and getattr(r, "provider", None) == "rivery" for r in polled)
