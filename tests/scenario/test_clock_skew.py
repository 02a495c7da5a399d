"""docs/FIRST-HOUR.md tells a person whose bot refuses Slack's requests while the signing secret is right to look
for "request too old" in the log: clock skew. The log said "no valid signature" either way, the same words as a
wrong secret. Through the real HTTP endpoint, signed with the right secret, the log line is asserted."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from tests.scenario.harness import world
from tests.scenario.surface import command_body


async def test_a_request_from_a_skewed_clock_is_logged_as_too_old(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.slack.http")
    async with world(tmp_path) as w:
        body = command_body(w, "help")
        skewed = await w.slack.post_raw(body, timestamp=int(time.time()) - 420)  # right secret, clock 7 min apart
        forged = await w.slack.post_raw(body, signature="v0=" + "0" * 64)
        assert (skewed.status, forged.status) == (401, 401)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused a request to /slack/events")]
    assert len(said) == 2, said
    assert re.search(
        r": request too old: its X-Slack-Request-Timestamp is 42[01] s from this machine's clock \(at most 300 s\); if "
        r"Slack sent it just now, synchronise the clock \(NTP\)$", said[0]
    ), said[0]
    assert said[1].endswith(": no valid signature"), said[1]
