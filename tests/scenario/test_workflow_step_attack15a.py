"""Fifteenth independent pass (a) of issue 11: a Workflow Builder step waiting for a run that recovery gives up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from bot.emulators._core import Fault
from bot.store.tables import runs
from tests.scenario.harness import world
from tests.scenario.test_workflow_step import STEP, declare_outputs


async def test_a_step_waiting_for_a_run_its_starter_left_starting_fails_saying_so(tmp_path: Path) -> None:
    """A "Run a pipeline" step that waits: its run is recorded, its trigger sent, and the process starting it is
    killed (its start lease held by nobody alive). Recovery gives the run up, "unknown whether it started". The step
    must end with it: before, recovery told the card, the thread, a workflow of the bot's own and a failure held for
    a retry, but not the steps waiting for the run: Workflow Builder's workflow waited for ever."""
    async with world(tmp_path, shutdown_grace_seconds=0.5) as w:
        declare_outputs(w)
        w.emulators["invision"].state.add_fault(Fault(route="*", kind="delay", delay=3, times=1))
        step = await w.slack.execute_function(STEP, {"pipeline": "budget", "wait": True}, user="U0ALICE")
        await w.settle(1.0)
        [run] = await w.runtime.store.runs.recent("budget", 5)
        assert run.state == "starting" and step.state == "running"
        async with w.runtime.store.engine.begin() as conn:  # its starter is gone: the lease expired, nobody renews it
            await conn.execute(update(runs).where(runs.c.id == run.id).values(
                lease_owner="killed", lease_expires_at=w.runtime.now() - timedelta(seconds=1)))
        [given_up] = await w.runtime.recovery.recover_starting(timedelta(seconds=30))
        assert given_up.id == run.id and given_up.state == "unknown"
        await w.until(lambda: step.state != "running", timeout=3.0, what="the step ended with its run")
        assert step.state == "failed", step
        assert step.error is not None and "unknown whether it started" in step.error, step.error
        await w.settle(3.0)  # the trigger's answer comes after all (this process is not gone): handled before the end
