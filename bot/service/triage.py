"""Triage starts in the failure's thread: the provider's own log, fetched once when a run fails, and what changed
since the pipeline's last success; the Full log's pages, read again from the provider at each click.

Once: the note is keyed (``keys.run_evidence``), and a failure handed here again (recovery after a crash) finds it
written and asks the provider nothing. A provider without logs (InVision, Tailer, Rivery's v1 API) is said so in
the note; a log call that fails leaves its (redacted) error in the note instead of the lines: the failure itself
was already told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from bot.errors import InvalidRequest, OperationNotSupported, PipelineBotError
from bot.models import RunLog, RunState
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.events import Reporter
from bot.service.evidence import LOG_PAGE, Comparison, Evidence, LogPage, compare, page_of, relevant
from bot.store import keys
from bot.store.away import database_away
from bot.store.records import RunRecord
from bot.store.store import Store

__all__ = ["Triage"]

log = logging.getLogger(__name__)

#: how far back a pipeline's last success is looked for, in runs
_LOOK_BACK = 100
#: failures recorded this long ago without their evidence are left without it by a running process (a bug
#: reading them: tried again at each sweep for this long, no longer)
_SWEEP_WINDOW = timedelta(hours=1)
#: how far back a process's first sweeps reach, once each: failures recorded before it started whose evidence was
#: never written (the bot stopped between handling them and the sweep, and stayed down). A day: what the watch
#: looks back on after downtime too; older, the thread is long scrolled past and the run triaged in the console
_RESTART_WINDOW = timedelta(days=1)
#: failures read at once by one sweep, and at most in flight across sweeps (a slow log goes on beside the next)
_SWEEP_BATCH = 20
#: how long a sweep waits for the reads it started before it returns (the next sweep then reads the failures
#: recorded meanwhile): a Rivery log can take minutes to prepare, and must not hold the others back
_SWEEP_WAIT_S = 2.0


class Triage:
    def __init__(self, store: Store, pool: ClientPool, reporter: Reporter, now: Callable[[], datetime]) -> None:
        self.store = store
        self.pool = pool
        self.reporter = reporter
        self.now = now
        #: the catch-up of failures recorded before this process started: the last run id it read (None: done)
        self._caught_up_to: int | None = 0
        self._started = now()
        #: the reads in flight, by run id: a later sweep finds these failures still without their note, and
        #: leaves them to the read under way (each run's evidence is fetched once)
        self._reading: dict[int, asyncio.Task[None]] = {}

    async def sweep(self) -> int:
        """The periodic job: the evidence of the failures recorded lately that lack it, read at once (a batch of
        them). Off the path a failure takes (its card, alert and details come first, without waiting for a
        provider that prepares its log), and durable: a crash before the note is written leaves the failure
        without it, and the next sweep (of this process or another) reads it again. A watched run's goes in the
        thread of the alert that announced it, once that is posted. A read still waiting after ``_SWEEP_WAIT_S``
        (Rivery prepares a log for minutes) goes on past the sweep, which returns: the next sweeps leave its
        failure to it and read the others.

        Until it has caught up, each sweep also reads a batch of the failures recorded up to ``_RESTART_WINDOW``
        before the process started, each once (a cursor over their ids): those recorded since are the window's."""
        since = self.now() - _SWEEP_WINDOW
        if len(self._reading) >= _SWEEP_BATCH:
            return 0
        # oldest first: the reads under way (still without their note) come back, and are left out below; the
        # batch's others are at most as many as there is room for
        found = await self.store.outbox.failed_runs_without(keys.EVIDENCE, since=since, limit=_SWEEP_BATCH)
        if self._caught_up_to is not None:
            older = await self.store.outbox.failed_runs_without(
                keys.EVIDENCE, since=self._started - _RESTART_WINDOW, limit=_SWEEP_BATCH, after=self._caught_up_to
            )
            self._caught_up_to = older[-1][0] if len(older) == _SWEEP_BATCH else None
            found += older
        threads = {run_id: thread for run_id, thread in found if run_id not in self._reading}
        runs = await self.store.runs.many(list(threads))
        started = [self._read(run, threads[run.id]) for run in runs.values()]
        if started:
            done, _ = await asyncio.wait(started, timeout=_SWEEP_WAIT_S)
            for task in done:
                task.result()  # a failure here (the database away) is the job's, as it was before
        return len(runs)

    def _read(self, run: RunRecord, thread: str | None) -> asyncio.Task[None]:
        task = asyncio.ensure_future(self.failed(run, thread=thread))
        self._reading[run.id] = task
        task.add_done_callback(partial(self._read_done, run.id))
        return task

    def _read_done(self, run_id: int, task: asyncio.Task[None]) -> None:
        self._reading.pop(run_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # read past its sweep: nobody awaits it. The note is not written, so a later sweep reads it again
            log.warning("reading the evidence of run %s failed: %s", run_id, exc, extra={"run_id": run_id})

    async def drain(self, grace: float) -> None:
        """At stop: the reads still under way finish within ``grace``, or are cut off (the next start's sweep
        reads those failures again: their notes were not written)."""
        if not self._reading:
            return
        _, pending = await asyncio.wait(set(self._reading.values()), timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def failed(self, run: RunRecord, *, thread: str | None = None) -> None:
        """The failure's evidence in its thread (``thread``: the message it goes under, by default the run's
        card), once."""
        if run.provider_run_id is None or await self.store.outbox.written_at(keys.run_evidence(run.id)) is not None:
            return  # never started (nothing to read), or already told
        try:
            evidence = await self.evidence(run)
        except Exception as exc:  # a bug reading an answer must not stop what follows the failure (subscribers…)
            if database_away(exc):
                raise  # the database comes back: the failure is handed here again (recovery), and the note follows
            log.exception("reading the evidence of run %s failed", run.id, extra={"run_id": run.id})
            # said once, so that the sweep does not read it again and again
            missing = f"The bot could not read what {self._display(run)} answered about this run (it is logged)."
            evidence = Evidence(run_id=run.id, display_name=self._display(run), missing=missing)
        await self.reporter.run_evidence(run, evidence, thread=thread)

    async def evidence(self, run: RunRecord) -> Evidence:
        display = self._display(run)
        comparison = await self.comparison(run)
        can_resume = run.provider_run_id is not None and self._can_resume(run)
        note = partial(Evidence, run_id=run.id, display_name=display, comparison=comparison, can_resume=can_resume)
        try:
            found = await self._log(run)
        except OperationNotSupported as refused:
            return note(missing=str(refused))
        except PipelineBotError as failed:  # provider errors come redacted (bot.providers._http)
            missing = f"{display} did not give this run's log: {failed}"
            return note(missing=missing)
        if not found.lines:
            missing = f"{display}'s log of this run is empty."
            return note(missing=missing)
        return note(lines=relevant(found.lines), total_lines=len(found.lines), source=found.source)

    async def log_page(self, run_id: int, page: int) -> LogPage:
        """A page of the run's log for the Full log modal: the run re-checked (the button's value is input), the
        log read again from the provider (it is never stored, nor sent whole)."""
        run = await self.store.runs.get(run_id)
        if run is None:
            raise InvalidRequest(f"There is no run #{run_id}.")
        if run.run_state is not RunState.FAILED:
            raise InvalidRequest(f"Run #{run.id} did not fail: the Full log is offered for failed runs.")
        found = await self._log(run)
        if found.cut:  # the log is longer than what the client keeps: its whole, where the provider exports it
            assert run.provider_run_id is not None  # _log read it
            client = self.pool.client(run.connection, run.provider)
            job = self.pool.job(run.provider, run.job)
            try:
                whole = await client.run_log_page(job, run.provider_run_id, page, LOG_PAGE)
            except PipelineBotError as failed:  # the export refused or broken: the lines kept are still worth paging
                log.warning("the whole log of run %s could not be read: %s", run.id, failed, extra={"run_id": run.id})
                whole = None
            if whole is not None:
                return LogPage(run.id, whole.lines, whole.first, whole.total, whole.page, whole.pages)
        return page_of(run.id, found.lines, page)

    async def comparison(self, run: RunRecord) -> Comparison | None:
        """``run`` beside its pipeline's last success before it, when the bot knows of one."""
        if run.pipeline is None:
            return None
        earlier = await self.store.runs.recent(run.pipeline, limit=_LOOK_BACK)
        success = next((r for r in earlier if r.id < run.id and r.run_state is RunState.SUCCEEDED), None)
        if success is None:
            return None
        return compare(
            success_id=success.id,
            success_ended=success.ended_at,
            durations=(_duration(success), _duration(run)),
            parameters=(success.parameters, run.parameters),
            tasks=(success.tasks, run.tasks),
        )

    async def _log(self, run: RunRecord) -> RunLog:
        if run.provider_run_id is None:
            raise InvalidRequest(f"Run #{run.id} never started at {self._display(run)}: it has no log.")
        # a client without logs raises its own refusal, which says what the provider offers instead
        client = self.pool.client(run.connection, run.provider)
        return await client.run_log(self.pool.job(run.provider, run.job), run.provider_run_id)

    def _can_resume(self, run: RunRecord) -> bool:
        try:
            return self.pool.client(run.connection, run.provider).can(Capability.RESUME)
        except Exception:  # the catalog changed under the run: no button rather than a broken note
            return False

    def _display(self, run: RunRecord) -> str:
        try:
            return self.pool.client(run.connection, run.provider).display_name
        except Exception:  # the catalog changed under the run: its provider key still names it
            return run.provider


def _duration(run: RunRecord) -> timedelta | None:
    return run.ended_at - run.started_at if run.ended_at and run.started_at else None
