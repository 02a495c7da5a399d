"""Tailer as its documents say, through the real bot: an answer about another run is no news, a data
operation Tailer starts itself is watched but never run, and a static token says before it expires and
when it has."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import Outcome
from bot.emulators.tailer import TailerEmulator
from tests.scenario import harness
from tests.scenario.harness import TAILER_CONFIG, World, world
from tests.scenario.surface import ask, shown

STORAGE_CONFIG = "000099-jarvis-demo-iowa-liquor-storage-to-storage"
#: the emulator's job_id for a file-triggered storage-to-storage data operation (the seed's shape, line 161)
STORAGE_JOB_ID = f"storage-to-storage|000099|{STORAGE_CONFIG}|DEV|file-{{{{FD_DATE}}}}.csv"


def _tailer(w: World) -> TailerEmulator:
    emulator = w.emulators["tailer"]
    assert isinstance(emulator, TailerEmulator)
    return emulator


def _everything(w: World, channel: str) -> str:
    return "\n".join(shown(m) for m in w.slack.messages(channel, top_level=False))


async def test_an_answer_about_another_run_never_shows_on_the_cards_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        tailer = _tailer(w)
        await w.command("run iowa-pda")
        card = await w.card_saying("queued")
        # Tailer answers every check_run_status with its newest run: one that fails, started outside the bot
        w.advance(1)
        tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1, message="other"))
        tailer.newest_for_any_run = True
        w.advance(10)  # ours runs; the other one has failed
        asked = len(tailer.state.requests_to("status"))
        await w.settle(3.0)  # longer than provider_down_after_seconds, many polls
        checks = [r for r in tailer.state.requests_to("status")[asked:] if r.body.get("action") == "check_run_status"]
        assert checks, "the bot kept asking"
        ours = shown(w.slack.message(card.channel, card.ts))
        assert "failed" not in ours and "succeeded" not in ours
        assert "Cannot reach" not in _everything(w, "C0ALERTS")  # Tailer answered: no outage either

        tailer.newest_for_any_run = False
        w.advance(40)
        done = await w.card_saying("succeeded", timeout=15)
        assert done.ts == card.ts


def _with_storage_pipeline(raw: dict[str, Any]) -> None:
    raw["pipelines"]["iowa-files"] = {
        "connection": "tailer", "account": "000099", "environment": "DEV",
        "configuration_type": "storage-to-storage", "configuration_id": STORAGE_CONFIG, "job_id": STORAGE_JOB_ID,
        "watch": True, "channel": "C0OPS",
    }


async def test_a_data_operation_tailer_starts_itself_is_watched_not_run(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_with_storage_pipeline) as w:
        tailer = _tailer(w)
        reply = await ask(w, "run iowa-files")
        assert "cannot be run" in reply.text
        assert "Tables to Tables and Tables to Storage" in reply.text and "watch" in reply.text
        adhoc = await ask(w, f"run tailer:000099/DEV/storage-to-storage/{STORAGE_CONFIG}")
        assert "job_id is required except for table-to-table" in adhoc.text
        adhoc = await ask(w, f"run tailer:000099/DEV/storage-to-storage/{STORAGE_CONFIG}/{STORAGE_JOB_ID}",
                          user="U0CAROL")  # an admin: ad-hoc targets are theirs
        assert "cannot be run" in adhoc.text
        assert not tailer.state.requests_to("trigger")
        assert not w.cards()

        # watched: a file arrives, the run fails, the watch reports it, every status call names the job
        def listed() -> bool:
            return any(r.body.get("configuration_id") == STORAGE_CONFIG for r in tailer.state.requests_to("status"))

        await w.until(listed, what="a watch cycle of iowa-files")
        w.advance(1)
        tailer.external_run(STORAGE_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1))
        w.advance(5)
        await w.until(lambda: "iowa-files" in _everything(w, "C0OPS"), 15, what="the watched failure")
        checks = [r.body for r in tailer.state.requests_to("status") if r.body.get("action") == "check_run_status"
                  and r.body.get("configuration_id") == STORAGE_CONFIG]
        assert checks and all(b["job_id"] == STORAGE_JOB_ID for b in checks)


def _token(exp: float) -> str:
    parts = ({"alg": "RS256", "kid": "k1"}, {"user_id": "bot", "exp": int(exp)})
    encoded = (base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode() for p in parts)
    return ".".join(encoded) + ".c2ln"


async def test_a_static_token_says_once_that_it_is_about_to_expire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(harness.ENV, "TAILER_JWT", _token(time.time() + 300))  # the bot runs on real time
    async with world(tmp_path) as w:
        await w.until(lambda: "expires" in _everything(w, "C0ALERTS"), what="the notice")
        await w.settle(1.0)  # several credential checks
        notices = [m for m in w.slack.messages("C0ALERTS") if "expires" in m.text]
        assert len(notices) == 1
        assert "tailer auth get-token" in notices[0].text and "refresh_token" in notices[0].text
        assert "Cannot reach" not in _everything(w, "C0ALERTS")
        await w.command("run iowa-pda")  # it still works meanwhile
        await w.card_saying("queued")
        assert _tailer(w).state.requests_to("trigger")


async def test_an_expired_static_token_raises_one_alert_and_is_not_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(harness.ENV, "TAILER_JWT", _token(time.time() - 60))
    async with world(tmp_path, provider_down_after_seconds=600.0) as w:  # no waiting for an expired token
        await w.until(lambda: "Cannot reach" in _everything(w, "C0ALERTS"), what="the alert")
        reply = await ask(w, "run iowa-pda")
        assert "did not start" in reply.text and "expired" in reply.text
        await w.settle(1.0)
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "Cannot reach" in m.text]
        assert "expired at" in alert.text and "tailer auth get-token" in alert.text
        assert harness.ENV["TAILER_JWT"] not in _everything(w, "C0ALERTS")
        assert not _tailer(w).state.requests  # nothing was sent with it: no 401s
