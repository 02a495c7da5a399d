"""A person's retry and the policy's retry of one failure (found by the fifth independent pass, fixed by the sixth).

The policy's retry is decided when the failure is handled; a person's `/pipeline retry` typed before that takes its
place (``AlreadyRetried``), and the failure's alert waits for that attempt. If it then did not start, its end was
told only to the person: the failure itself was never announced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault, Outcome
from bot.errors import UserError
from bot.service.permissions import Actor
from bot.store.records import RunRecord
from tests.scenario.harness import FLOW, RIVER, World, world

FAILS = Outcome(result="fail", queued_s=0, running_s=1, message="boom")


def _alerts(w: World, words: str) -> list[str]:
    return [json.dumps([m.text, m.blocks]) for m in w.slack.messages("C0ALERTS") if words in m.text]


def _retried(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 2, "backoff": "1s"}


async def test_a_persons_retry_before_the_policys_that_does_not_start_leaves_the_failure_alerted(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, catalog_edit=_retried) as w:
        invision = w.emulators["invision"].state
        invision.default = FAILS
        retrier = w.runtime.parts.retrier
        original = retrier.maybe_retry
        answers: list[str] = []

        async def maybe_retry(run: RunRecord) -> bool:
            if run.attempt == 1 and not answers:  # the person's Retry comes in first, and is refused by InVision
                invision.add_fault(Fault(route="trigger", status=400, times=1))
                try:  # what the card's Retry button does (its card is not refreshed yet: it is the same service)
                    await w.runtime.parts.runs.retry(Actor("U0BOB"), run.id, channel=None)
                except UserError as exc:
                    answers.append(str(exc))
                else:
                    answers.append("started")
            return await original(run)

        retrier.maybe_retry = maybe_retry  # type: ignore[method-assign]
        assert (await w.command("run budget")).ok
        for _ in range(20):  # the emulator's clock: the run fails after a second
            if answers:
                break
            w.advance(1)
            await w.settle(0.3)
        assert any("did not start" in a for a in answers), answers
        await w.until(lambda: bool(_alerts(w, "budget")), what="the failure's alert")
        await w.settle(1.0)
        assert len(_alerts(w, "budget")) == 1
        assert len(invision.requests_to("trigger")) == 2  # the policy did not start a third


OK = Outcome(queued_s=0, running_s=1)


async def test_a_retry_the_provider_is_too_busy_to_start_waits_again_instead_of_ending(tmp_path: Path) -> None:
    """Found by the fifth independent pass, fixed by the sixth: a retry's trigger answered 429 or 503 (nothing
    started: the provider is busy) ended that attempt and alerted the failure, while a start held by a provider's
    cap waits its turn. It now waits again (the provider's Retry-After, else the policy's backoff)."""
    async with world(tmp_path, catalog_edit=_retried) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [FAILS, OK])
        assert (await w.command("run budget")).ok
        for _ in range(20):  # the first attempt fails; its retry, a second later, is refused once: busy
            if len(invision.requests_to("trigger")) == 1 and not invision.faults:
                invision.add_fault(Fault(route="trigger", status=503, retry_after=1, times=1))
            if len(invision.requests_to("trigger")) == 3:
                break
            w.advance(1)
            await w.settle(0.3)
        assert len(invision.requests_to("trigger")) == 3, "the retry tried again once the provider was free"
        for _ in range(10):
            if any("succeeded" in c.text for c in w.cards()):
                break
            w.advance(1)
            await w.settle(0.3)
        assert any("succeeded" in c.text for c in w.cards()), "the retry succeeding"
        await w.settle(1.0)
        assert not _alerts(w, "budget")  # the policy's attempt succeeded: nothing to alert


async def test_a_persons_retry_refused_by_a_cap_while_the_policy_held_the_failure_for_it_leaves_it_alerted(
    tmp_path: Path,
) -> None:
    """Found by the seventh independent pass: a person's Retry is a row before the provider's cap is checked; the
    policy's retry of the same failure, decided in between, found that row (``AlreadyRetried``) and held the failure
    for it; the cap then refused the person's retry and deleted its row, so the failure was held for a retry that no
    longer existed and never announced. A person's retry now waits its turn under the cap, as the policy's does."""
    from bot.store.records import RunOrigin
    from tests.scenario.test_rivery_limits import a_minute_passes

    def edit(raw: dict[str, Any]) -> None:
        raw["pipelines"]["leads-ods"]["retry"] = {"attempts": 2, "backoff": "1s"}

    async with world(tmp_path, catalog_edit=edit) as w:
        rivery = w.emulators["rivery"].state
        rivery.script(RIVER, [FAILS, OK, OK, OK])
        store = w.runtime.store
        assert store is not None
        retrier, limits = w.runtime.parts.retrier, store.limits
        original_retry, original_admit = retrier.maybe_retry, limits.admit
        held: list[bool] = []
        answers: list[str] = []

        async def admit(run_id: int, *args: Any, **kwargs: Any) -> Any:
            run = await store.runs.get(run_id)
            if run is not None and run.origin == RunOrigin.RETRY and run.started_by == "U0BOB" and not held:
                assert run.retry_of is not None
                failed = await store.runs.get(run.retry_of)
                assert failed is not None
                held.append(await original_retry(failed))  # the policy decides now: the person's row is there
            return await original_admit(run_id, *args, **kwargs)

        async def maybe_retry(run: RunRecord) -> bool:
            if run.attempt == 1 and not answers:  # the person's Retry comes in while the failure is being handled
                try:
                    await w.runtime.parts.runs.retry(Actor("U0BOB"), run.id, channel=None)
                except UserError as exc:
                    answers.append(str(exc))
                else:
                    answers.append("accepted")
                return True  # the policy's decision was taken above, inside the person's retry
            return await original_retry(run)

        limits.admit = admit  # type: ignore[method-assign]
        retrier.maybe_retry = maybe_retry  # type: ignore[method-assign]
        assert (await w.command("run leads-ods")).ok
        assert (await w.command("run leads-ods")).ok  # the second run of the river this minute: the cap is reached
        for _ in range(20):
            if answers:
                break
            w.advance(1)
            await w.settle(0.3)
        assert held == [True], held  # the policy held the failure for the person's retry
        await a_minute_passes(w)  # the cap lets a third start through
        for _ in range(80):  # whatever became of the person's retry, the failure is alerted or recovered from
            if _alerts(w, "leads-ods") or len(rivery.requests_to("trigger")) >= 3:
                break
            w.advance(2)
            await w.settle(0.2)
        assert _alerts(w, "leads-ods") or len(rivery.requests_to("trigger")) >= 3, answers
