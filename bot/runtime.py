"""Wires the parts into a running bot: store, provider clients, services, Slack app, scheduler, HTTP.

APScheduler's ``AsyncIOScheduler`` drives the periodic work with in-memory jobs defined here; the
durable state (runs, cards, messages, leases) lives in the bot's own database, so a restart resumes
where the last process stopped and several processes can share the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.catalog.model import Catalog
from bot.config import Settings
from bot.delivery.sender import Deliverer
from bot.errors import StartupError
from bot.ops.http import HttpServer
from bot.ops.jobs import RunningJobs
from bot.ops.metrics import OUTBOX_PENDING, RUNS, Metrics
from bot.ops.redact import PROCESS, Redactor
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.service.permissions import Authorizer
from bot.service.retries import Retrier
from bot.service.runs import RunService
from bot.service.workflows import WorkflowEngine
from bot.slack.app import build_app, web_client
from bot.slack.context import Services
from bot.slack.intake import Signatures
from bot.slack.replays import Replays
from bot.slack.tasks import TaskSet
from bot.store.engine import open_database, sqlite_file, writable_problem
from bot.store.lock import ProcessLock
from bot.store.records import RunRecord
from bot.store.store import Store
from bot.tracking.digest import digest_job, schedule_digest
from bot.tracking.intervals import PollIntervals
from bot.tracking.poller import Poller
from bot.tracking.schedules import ScheduleRunner
from bot.tracking.stuck import StuckDetector
from bot.tracking.watch import Watcher

__all__ = ["Runtime", "utcnow"]

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Runtime:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.now = utcnow
        self.store: Store | None = None
        self.http: HttpServer | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self._socket_handler: Any = None
        self._stopping = asyncio.Event()
        self._lock: ProcessLock | None = None
        self.jobs = RunningJobs()

    async def start(self) -> None:
        """Raises StartupError (one line) when the database cannot be used or the port taken."""
        s = self.settings
        database = sqlite_file(s.database_url)
        if database is not None and database.resolve().parent.is_dir():  # open_database reports a missing one
            # before anything touches the file: a second process must not hand back the first one's leases
            self._lock = ProcessLock(database)
            self._lock.acquire()
        # what the log filter redacts while this bot runs: its settings' secrets, then every connection's
        self.secrets = Redactor(s.secret_values())
        PROCESS.include(self.secrets)
        engine = await open_database(s.database_url)
        store = self.store = Store(engine)
        pool = self.pool = ClientPool.for_catalog(self.catalog)
        self.secrets.include(pool.redactor)
        client = web_client(s)
        self.auth = Authorizer(s.slack_admins, _group_members(client))
        notifier = Notifier(
            store, self.catalog, pool, self.now, unknown_after=timedelta(seconds=s.unknown_after_seconds)
        )
        self.metrics = metrics = Metrics()
        lease = timedelta(seconds=s.lease_seconds)
        self.alerter = notifier.alerter = Alerter(
            store,
            self.catalog,
            pool,
            self.now,
            metrics=metrics,
            group_window=timedelta(seconds=s.alert_group_seconds),
            suppress=timedelta(seconds=s.alert_suppress_seconds),
            down_after=timedelta(seconds=s.provider_down_after_seconds),
        )
        runs = RunService(
            store,
            pool,
            self.auth,
            notifier,
            self.now,
            first_poll=timedelta(seconds=s.poll_interval_seconds),
            owner=self.owner,
            lease=lease,
        )
        self.tasks = TaskSet()
        self.retrier = notifier.retrier = Retrier(
            store,
            self.catalog,
            pool,
            notifier,
            now=self.now,
            owner=self.owner,
            lease=lease,
            first_poll=timedelta(seconds=s.poll_interval_seconds),
        )
        self.workflows = notifier.workflows = WorkflowEngine(
            store, self.catalog, runs, notifier, self.auth, now=self.now
        )
        self.schedules = ScheduleRunner(store, self.catalog, self._scheduled_start, owner=self.owner, now=self.now)
        self.services = Services(
            s, self.catalog, store, pool, self.auth, notifier, runs, self.tasks, self.now, workflows=self.workflows
        )
        self.app = build_app(s, self.services, client)
        self.replays = Replays(store.requests, self.now, metrics)
        self.poller = Poller(
            store,
            pool,
            owner=self.owner,
            now=self.now,
            on_change=notifier.on_change,
            on_unknown=self._on_unknown,
            on_provider_error=self.alerter.connection_failed,
            on_provider_ok=self.alerter.connection_ok,
            metrics=metrics,
            lease=lease,
            intervals=PollIntervals(
                base=timedelta(seconds=s.poll_interval_seconds),
                longest=timedelta(seconds=s.poll_interval_max_seconds),
                error_max=timedelta(seconds=max(s.poll_interval_max_seconds, 5 * s.poll_interval_seconds)),
            ),
        )
        self.watcher = Watcher(
            store,
            self.catalog,
            pool,
            now=self.now,
            on_change=notifier.on_change,
            interval=timedelta(seconds=s.watch_interval_seconds),
            metrics=metrics,
        )
        self.stuck = StuckDetector(store, self.catalog, notifier, now=self.now)
        self.deliverer = Deliverer(
            store,
            web_client(s, retry_rate_limits=False),
            owner=self.owner,
            now=self.now,
            fallback=s.fallback_channel or self.catalog.defaults.channel,
            metrics=metrics,
            lease=lease,
            edit_gap=s.message_edit_gap_seconds,
        )
        metrics.source(RUNS, self._runs_by_state)
        metrics.source(OUTBOX_PENDING, self._outbox_pending)
        self._slack_client = client
        try:  # the first writes: a read-only file or volume says so here, in one line
            if store.single_process:
                await store.release_leases()  # a lease in a SQLite file can only be from a process that died
            await runs.recover_starting(timedelta(seconds=30))
            # a process that died between recording a change and writing its card leaves it unnotified
            await runs.recover_unnotified(timedelta(seconds=0) if store.single_process else timedelta(seconds=10))
        except SQLAlchemyError as exc:
            raise writable_problem(exc, s.database_url) from None

        self.scheduler = AsyncIOScheduler(timezone=UTC)
        jobs = (
            ("poll", self.poller.tick, s.poll_tick_seconds),
            ("deliver", self.deliverer.tick, s.delivery_tick_seconds),
            # a dead starter's runs are given up within about a lease after it stopped renewing them
            ("recover", self._recover, min(30.0, s.lease_seconds)),
            ("alerts", self.alerter.flush, min(1.0, max(s.alert_group_seconds / 4, 0.05))),
            ("watch", self._watch, s.watch_interval_seconds),
            ("stuck", self.stuck.tick, s.stuck_check_seconds),
            ("credentials", self.alerter.check_credentials, s.stuck_check_seconds),  # the same kind of slow check
            ("slack", self._check_slack, 60.0),
            ("retries", self.retrier.tick, s.poll_tick_seconds),
            ("approvals", self.workflows.expire_approvals, 5.0),
            ("requests", self.replays.prune, 60.0),  # Slack requests remembered against replays, past their time
        )
        for job_id, func, seconds in jobs:
            self.scheduler.add_job(
                func,
                "interval",
                seconds=seconds,
                id=job_id,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(seconds * 5)),
                next_run_time=self.now(),
            )
        if s.digest_time:
            schedule_digest(self.scheduler, s, digest_job(store, self.catalog, s, owner=self.owner, now=self.now))
        # a tick still running when the next is due is normal under load: not worth a warning each time
        self.schedules.install(self.scheduler)
        for job in self.scheduler.get_jobs():  # every job, whoever added it: stop() lets the running ones finish
            job.modify(func=self.jobs.track(job.func))
        await self.schedules.catch_up()
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        # the port first: a port taken stops the start before any tick runs (one line, no tick cut short)
        secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
        self.http = HttpServer(
            None if s.socket_mode else self.app,
            ready=self.readiness,
            metrics=metrics,
            signatures=Signatures(secret) if secret else None,
            replays=self.replays,
            read_timeout=s.http_read_timeout_seconds,
        )
        try:
            url = await self.http.start(s.host, s.port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(f"cannot listen on {s.host}:{s.port} (HOST, PORT): {reason}") from None
        self.scheduler.start()

        if s.socket_mode:
            from bot.slack.replays import ReplaySafeSocketModeHandler

            assert s.slack_app_token is not None
            handler: Any = ReplaySafeSocketModeHandler(
                self.app, s.slack_app_token.get_secret_value(), self.replays, self.metrics
            )
            await handler.connect_async()
            self._socket_handler = handler
            log.info("connected to Slack in Socket Mode; health on %s", url)
        else:
            log.info("listening for Slack on %s/slack/events", url)

    async def _scheduled_start(self, kind: str, name: str, parameters: dict[str, str]) -> None:
        """A schedule's slot came: start the pipeline or workflow as the bot, into its own channel."""
        if kind == "workflow":
            await self.workflows.start(None, name, parameters, channel=None, origin="schedule")
            return
        pipeline = self.catalog.pipelines[name]
        await self.services.runs.start(None, pipeline, parameters, channel=None, origin="schedule", authorized=True)

    async def _on_unknown(self, run: RunRecord) -> None:
        if self.services.notifier.has_card(run):
            await self.services.notifier.refresh_card(run)

    async def _watch(self) -> None:
        """One watch cycle per interval across the fleet: the slot is claimed in the database."""
        assert self.store is not None
        seconds = self.settings.watch_interval_seconds
        slot = f"{int(self.now().timestamp() // seconds):012d}"
        if await self.store.alerting.claim_slot("watch", slot, self.owner, now=self.now()):
            await self.watcher.cycle()

    async def _recover(self) -> None:
        await self.services.runs.recover_starting(timedelta(seconds=30))
        await self.services.runs.recover_unnotified(timedelta(seconds=10))

    async def _runs_by_state(self) -> dict[tuple[tuple[str, str], ...], float]:
        assert self.store is not None
        counts = await self.store.count_by_state()
        return {
            (("final", "true" if final else "false"), ("state", state)): float(n)
            for (state, final), n in counts.items()
        }

    async def _outbox_pending(self) -> dict[tuple[tuple[str, str], ...], float]:
        assert self.store is not None
        return {(): float(await self.store.outbox_pending())}

    async def _check_slack(self) -> None:
        """Whether Slack's Web API answers us (HTTP mode has no connection of its own to watch)."""
        try:
            await self._slack_client.auth_test()
        except Exception as exc:
            self._slack_problem = f"slack: {type(exc).__name__}"
        else:
            self._slack_problem = ""

    async def readiness(self) -> list[str]:
        problems = []
        if getattr(self, "_slack_problem", ""):
            problems.append(self._slack_problem)
        if self._socket_handler is not None and not await self._socket_handler.client.is_connected():
            problems.append("slack: Socket Mode is not connected")
        try:
            assert self.store is not None
            await self.store.ping()
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        if self.scheduler is None or not self.scheduler.running:
            problems.append("scheduler: not running")
        return problems

    async def run_until_stopped(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Stop taking work, let running work finish (a grace period), hand back what we hold."""
        grace = self.settings.shutdown_grace_seconds
        scheduler = self.scheduler if self.scheduler is not None and self.scheduler.running else None
        if scheduler is not None:  # it was running (a start that failed says its one line only)
            log.info("stopping: finishing the work in hand (grace period %g s)", grace)
            # no new ticks; not shutdown() yet: it would cancel the running ones wherever they are (a card
            # posted and not yet recorded, a poll answered and not yet written)
            scheduler.pause()
        if self._socket_handler is not None:
            await self._socket_handler.close_async()
        if self.http is not None:
            await self.http.stop()
        if hasattr(self, "tasks"):
            await self.tasks.drain(grace)
        # let the ticks finish what they claimed, rather than close the clients and the database under them
        if scheduler is not None and not await self.jobs.wait(grace):
            log.warning("a scheduled job outlived the grace period: it is cut off, its leases are released")
        if hasattr(self, "poller"):
            # polls and list calls a tick left running (a slow provider): they finish, or are cut off after the grace
            try:
                await asyncio.wait_for(asyncio.gather(self.poller.idle(), self.watcher.idle()), grace)
            except TimeoutError:
                log.warning("a poll or list call outlived the grace period; its leases are released")
        if scheduler is not None:
            # what outlived the grace period is cut off: one warning above, not an ERROR traceback per job
            logging.getLogger("apscheduler.executors.default").setLevel(logging.CRITICAL)
            scheduler.shutdown(wait=False)  # cancels what is still running
        if self.store is not None:
            try:  # what is already decided goes out now, paced as always, within the grace period
                deadline = time.monotonic() + self.settings.shutdown_grace_seconds
                while await self.store.outbox_pending() and time.monotonic() < deadline:
                    await self.deliverer.tick()
                    await asyncio.sleep(0.2)
            except Exception:
                log.exception("final delivery failed; it will resume at the next start")
            await self.store.release_leases(self.owner)
            await self.pool.aclose()
            await self.store.close()
        if hasattr(self, "secrets"):
            PROCESS.exclude(self.secrets)
        if self._lock is not None:
            self._lock.release()  # last: the file is no longer ours to write
            self._lock = None



def _group_members(client: AsyncWebClient) -> Callable[[str], Awaitable[frozenset[str]]]:
    async def members(group_id: str) -> frozenset[str]:
        answer = await client.usergroups_users_list(usergroup=group_id)
        return frozenset(answer.get("users") or [])

    return members
