"""Workflow Builder's "Run a pipeline" step: a custom step (Slack's custom functions) that starts a pipeline's run
as the person who used the workflow, and completes when the run ends, or at once when the step does not wait.

The step is one more way to start a run: the same permission check (``allow_run``, as the person named by Slack's
``user_context``), the same card in the pipeline's channel, the same retries and alerts. What is its own: the
execution is claimed before the run starts (a repeated event starts nothing), the run is linked to it, and its
completion is an outbox message (``OutboxKind.FUNCTION``, key ``keys.function_completion``) written when the run
ends, so it is sent once and survives a restart of the bot while the run goes on."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.errors import InvalidRequest, UserError
from bot.models import RunState
from bot.ops.redact import PROCESS
from bot.ops.text import escape, mention_user
from bot.service.permissions import Actor
from bot.service.runs import RunService
from bot.store import keys
from bot.store.records import OutboxKind, RunOrigin, RunRecord
from bot.store.store import Store

__all__ = ["StepService"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
ERROR_LIMIT = 1000  # what Workflow Builder shows of a failed step: a sentence, not a log
#: a claim this old without a run nor a completion was left by a bot that stopped (``fail_stale_claims``)
CLAIM_STALE = timedelta(minutes=2)
#: how far back such claims are looked for: Slack has given up on older executions (an assumption: a day)
CLAIM_LOOK_BACK = timedelta(days=1)
STOPPED = (
    "The bot restarted while it was starting this step's run, so the step cannot say how it went. "
    "Look for the run's card in the pipeline's channel, and run the workflow again if there is none."
)


class StepService:
    def __init__(self, store: Store, runs: RunService, now: Now) -> None:
        self.store = store
        self.runs = runs
        self.now = now

    async def begin(
        self, execution_id: str, user_id: str, pipeline: str, parameters: Mapping[str, str], *, wait: bool
    ) -> RunRecord | None:
        """Start the step's run. None when this execution was seen already (Slack delivered its event again).

        Whatever stops the run (permission, parameters, the provider refusing it) fails the step with the reason;
        a step that does not wait completes as soon as the run started."""
        if not await self.claim(execution_id, user_id=user_id, wait=wait):
            log.info("step %s: a repeated delivery, ignored", execution_id)
            return None

        async def linked(record: RunRecord) -> None:
            await self.store.functions.started(execution_id, record.id)

        try:
            target = self.runs.catalog.pipelines.get(pipeline.strip())
            if target is None:
                raise InvalidRequest(  # and what works: a deploy may have removed the pipeline the step names
                    f"There is no pipeline named {pipeline.strip()!r} in the bot's catalog (pipelines.yml): name one "
                    "that /pipeline list shows in this step's settings, or put the pipeline back in the catalog."
                )
            # past the provider's pace the run waits its turn: a workflow has nobody to "try again at" a time
            record = await self.runs.start(
                Actor(user_id), target, parameters, channel=None, origin=RunOrigin.SLACK, on_recorded=linked,
                queue=True,
            )
        except UserError as exc:
            await self.fail(execution_id, _plain(str(exc)))
            return None
        if not wait:
            await self._complete(execution_id, record)
        return record

    async def fail_stale_claims(self) -> int:
        """The periodic job: executions claimed by a bot that stopped before their run was recorded (a restart, a
        crash) fail, saying so. Slack does not deliver the event again (Bolt acknowledged it), and the claim
        makes a repeated one start nothing: without this, the workflow would wait on the step for ever."""
        now = self.now()
        found = await self.store.functions.stale_claims(before=now - CLAIM_STALE, since=now - CLAIM_LOOK_BACK)
        for execution_id in found:
            log.warning("step %s: claimed, then the bot stopped before its run was recorded; failed", execution_id)
            await self.fail(execution_id, STOPPED)
        return len(found)

    async def run_ended(self, run: RunRecord) -> None:
        """``run`` ended and no attempt follows it (``Outcomes``): the steps waiting for it, or for an earlier
        attempt it retried, complete with its outcome."""
        chain = [run.id]
        earlier = run.retry_of
        while earlier is not None and len(chain) < 20:  # the policy's attempts, and people's retries of them
            chain.append(earlier)
            before = await self.store.runs.get(earlier)
            earlier = before.retry_of if before is not None else None
        for step in await self.store.functions.waiting_on(chain):
            if run.run_state is RunState.SUCCEEDED:
                await self._complete(step.execution_id, run)
            else:
                await self.fail(step.execution_id, _failure(run), run)

    async def _complete(self, execution_id: str, run: RunRecord) -> None:
        outputs = {"run_number": run.id, "state": str(run.state)}
        await self.store.outbox.enqueue(
            keys.function_completion(execution_id),
            kind=OutboxKind.FUNCTION,
            channel=execution_id,
            text=f"step {execution_id}: run #{run.id} {run.state}",
            blocks=[{"outputs": outputs}],
            run_id=run.id,
            now=self.now(),
        )

    async def claim(self, execution_id: str, *, user_id: str, wait: bool) -> bool:
        """Record an execution before anything else: False when Slack delivered it already."""
        return await self.store.functions.claim(execution_id, user_id=user_id, wait=wait, now=self.now())

    async def fail(self, execution_id: str, error: str, run: RunRecord | None = None) -> None:
        """Fail the step with ``error`` (plain text: Workflow Builder shows it as it is). Slack's steps end in
        success or error only: a run canceled ends its step in error too, recorded as canceled."""
        ended = "canceled" if run is not None and run.run_state is RunState.CANCELED else "failed"
        await self.store.outbox.enqueue(
            keys.function_completion(execution_id),
            kind=OutboxKind.FUNCTION,
            channel=execution_id,
            text=f"step {execution_id}: {ended}",
            # redacted before it is cut (half a secret is not recognised), as every text that leaves the bot
            blocks=[{"error": PROCESS.redact(error)[:ERROR_LIMIT] or "The run failed."}],
            run_id=run.id if run is not None else None,
            now=self.now(),
        )


def _failure(run: RunRecord) -> str:
    """What the step's failure says: the run, its end and the provider's own message (escaped: untrusted). A
    canceled run says who canceled it, and whether it never started (its message is then the bot's, not the
    provider's): the step ends in error all the same, and the person reading it must not look for a failure."""
    name = escape(run.pipeline or run.provider)
    if run.stopped_by:
        by = ""
        with contextlib.suppress(ValueError):
            by = f" by @{mention_user(run.stopped_by)[2:-1]}"
        return (
            f"Run #{run.id} of {name} was ended{by} without its outcome: {escape(run.stopped_why)}, so the bot could "
            "not follow it; how it went is unknown."
        )
    if run.run_state is RunState.CANCELED:
        by = ""
        if run.cancel_requested_by:
            with contextlib.suppress(ValueError):
                by = f" by @{mention_user(run.cancel_requested_by)[2:-1]}"
        retried = f" It was the retry of run #{run.retry_of}." if run.retry_of is not None else ""
        if run.provider_run_id is None:
            return f"Run #{run.id} of {name} was canceled{by} before it started: it never ran.{retried}"
        said = f": {escape(run.message)}" if run.message else ""
        return f"Run #{run.id} of {name} was canceled{by}{said}.{retried}"
    said = f": {escape(run.message)}" if run.message else ""
    return f"Run #{run.id} of {name} {run.state}{said}"


#: Slack's markup in the replies we write: a date (its fallback is the text), a mention, a channel, a link
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_MENTION = re.compile(r"<(@[UW][A-Z0-9]+)>")
_GROUP = re.compile(r"<!subteam\^(S[A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")


def _plain(mrkdwn: str) -> str:
    """A reply written for Slack messages, as Workflow Builder shows a step's error: plain text. The markup we
    wrote becomes words (a date its UTC fallback, a mention the id), and what came from elsewhere stays escaped
    as in the reply (Slack decodes the three entities in plain text): nothing in it is read as markup."""
    text = _DATE.sub(r"\1", mrkdwn)
    text = _MENTION.sub(r"\1", text)
    text = _GROUP.sub(r"@\1", text)
    text = _CHANNEL.sub(r"#\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    # any other markup (none is written today) shown as text rather than read
    return text.replace("*", "").replace("`", "").replace("<", "&lt;").replace(">", "&gt;")
