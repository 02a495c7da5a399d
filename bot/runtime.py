"""The composition root: every part built from the settings, then the jobs installed, then the bot served.

``build`` makes one frozen ``Components`` (store, provider clients, services, the Slack side, the jobs' objects,
the HTTP server), each part given what it needs in its constructor; ``install_jobs`` puts the periodic work on
the scheduler; ``Runtime`` starts and stops them in that order. APScheduler's ``AsyncIOScheduler`` drives the
periodic work with in-memory jobs defined here; the durable state (runs, cards, messages, leases) lives in the
bot's own database, so a restart resumes where the last process stopped and several processes can share the work.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.catalog.catalog import Catalog
from bot.checks.names import catalog_with_ids
from bot.config import Settings
from bot.delivery.answers import slack_error
from bot.delivery.pagerduty import PagerDutyEvents
from bot.delivery.paging import PageSender
from bot.delivery.sender import Deliverer
from bot.errors import StartupError
from bot.ops.jobs import RunningJobs
from bot.ops.memory import trim_heap
from bot.ops.metrics import OUTBOX_PENDING, RUNS, Metrics
from bot.ops.outages import Outages
from bot.ops.redact import PROCESS, Redactor
from bot.service.alerts import REMOVED_QUIET, Alerter
from bot.service.audited import Audited
from bot.service.clients import ClientPool
from bot.service.escalation import Escalator
from bot.service.function_steps import StepService
from bot.service.log_access import LogAccess
from bot.service.notify import Notifier
from bot.service.outcomes import Changes, Outcomes
from bot.service.paging import Pager
from bot.service.permissions import Authorizer
from bot.service.queries import RunQueries
from bot.service.recovery import Recovery
from bot.service.retries import Retrier, WaitingStarts
from bot.service.runs import RunService
from bot.service.subscribers import Subscribers
from bot.service.subscriptions import SubscriptionService
from bot.service.triage import Triage
from bot.service.workflows import WorkflowEngine
from bot.slack.app import build_app, web_client
from bot.slack.context import Services
from bot.slack.http import HttpServer
from bot.slack.intake import Signatures
from bot.slack.replays import Replays
from bot.slack.reporter import SlackReporter
from bot.slack.tasks import TaskSet
from bot.store.away import database_away
from bot.store.clock import RETRY_FIRST, DatabaseClock
from bot.store.engine import open_database, sqlite_file, writable_problem
from bot.store.lock import ProcessLock
from bot.store.records import RunOrigin
from bot.store.store import Store
from bot.tracking.digest import digest_job, schedule_digest
from bot.tracking.intervals import PollIntervals
from bot.tracking.poller import Poller
from bot.tracking.schedules import ScheduleRunner
from bot.tracking.stuck import StuckDetector
from bot.tracking.watch import Watcher

if TYPE_CHECKING:
    from bot.slack.socket_mode import ReplaySafeSocketModeHandler

__all__ = ["Components", "Runtime", "build", "install_jobs", "utcnow"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Readiness:
    """What ``/readyz`` says is wrong: Slack, the database, the scheduler."""

    def __init__(
        self,
        store: Store,
        scheduler: AsyncIOScheduler,
        slack_check: SlackCheck,
        socket_mode: ReplaySafeSocketModeHandler | None,
    ) -> None:
        self.store = store
        self.scheduler = scheduler
        self.slack_check = slack_check
        self.socket_mode = socket_mode

    async def problems(self) -> list[str]:
        problems = []
        if self.slack_check.problem:
            problems.append(self.slack_check.problem)
        if self.socket_mode is not None and not await self.socket_mode.client.is_connected():
            problems.append("slack: Socket Mode is not connected")
        try:
            await self.store.ping()
        except Exception as exc:
            problems.append(f"database: {type(exc).__name__}")
        if not self.scheduler.running:
            problems.append("scheduler: not running")
        return problems


class SlackCheck:
    """Whether Slack's Web API answers us (HTTP mode has no connection of its own to watch)."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self.problem = ""
        self.url: str | None = None  # the workspace's address, for links to messages

    async def tick(self) -> None:
        try:
            answer = await self.client.auth_test()
        except Exception as exc:
            self.problem = f"slack: {type(exc).__name__}"
        else:
            self.problem = ""
            url = answer.get("url")
            if isinstance(url, str) and url.startswith(("https://", "http://")):
                self.url = url


@dataclass(frozen=True, slots=True, kw_only=True)
class Components:
    """Every part of one running bot, built once from the settings by ``build``."""

    settings: Settings
    catalog: Catalog
    owner: str  # this process, as the owner of leases
    now: Now
    lock: ProcessLock | None  # held on a SQLite file's folder; a server database needs none
    store: Store
    pool: ClientPool
    metrics: Metrics
    auth: Authorizer
    reporter: SlackReporter
    notifier: Notifier
    alerter: Alerter
    runs: RunService
    retrier: Retrier
    workflows: WorkflowEngine
    outcomes: Outcomes
    triage: Triage  # a failure's evidence in its thread, read by a job of its own off the failure's path
    recovery: Recovery
    waiting: WaitingStarts
    schedules: ScheduleRunner
    tasks: TaskSet
    services: Services
    app: AsyncApp
    replays: Replays
    poller: Poller
    watcher: Watcher
    stuck: StuckDetector
    escalator: Escalator
    deliverer: Deliverer
    pages: PageSender | None  # built only when some pipeline pages PagerDuty
    slack_check: SlackCheck
    socket_mode: ReplaySafeSocketModeHandler | None  # Socket Mode instead of Slack's requests over HTTP
    scheduler: AsyncIOScheduler
    readiness: Readiness
    http: HttpServer
    clock: DatabaseClock | None = None  # on PostgreSQL: ``now`` is the database's clock, measured again each minute


async def build(settings: Settings, catalog: Catalog, *, owner: str, now: Now, secrets: Redactor) -> Components:
    """Every part, from the settings. Raises StartupError (one line) when the database cannot be used; what was
    taken before that (the SQLite file's lock) is given back."""
    s = settings
    lock = None
    database = sqlite_file(s.database_url)
    if database is not None and database.resolve().parent.is_dir():  # open_database reports a missing one
        # before anything touches the file: a second process must not hand back the first one's leases
        lock = ProcessLock(database)
        lock.acquire()
    try:
        engine = await open_database(s.database_url)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    try:
        clock = None
        if engine.dialect.name == "postgresql" and now is utcnow:  # replicas compare times: the database's clock
            clock = DatabaseClock(engine)
            await clock.measure()
            now = clock.now
        return _assemble(s, catalog, Store(engine), lock, owner=owner, now=now, secrets=secrets, clock=clock)
    except BaseException:
        await engine.dispose()
        if lock is not None:
            lock.release()
        raise


def _assemble(
    s: Settings,
    catalog: Catalog,
    store: Store,
    lock: ProcessLock | None,
    *,
    owner: str,
    now: Now,
    secrets: Redactor,
    clock: DatabaseClock | None = None,
) -> Components:
    pool = ClientPool.for_catalog(catalog)
    secrets.include(pool.redactor)
    paged = catalog.paged()
    secrets.add(*(p.pagerduty.routing_key.get_secret_value() for p in paged if p.pagerduty is not None))
    pager = Pager(store, catalog, pool, now) if paged else None
    client = web_client(s)
    metrics = Metrics()
    lease = s.lease_seconds
    first_poll = s.poll_interval_seconds
    auth_cache_s = s.usergroup_cache_seconds.total_seconds()
    auth = Authorizer(s.slack_admins, _group_members(client), cache_s=auth_cache_s)
    slack_check = SlackCheck(client)
    page_links = {p.name: p.pagerduty.url for p in catalog.pipelines.values() if p.pagerduty and p.pagerduty.url}
    reporter = SlackReporter(
        store,
        now,
        paging=pager is not None,
        page_links=page_links,
        command=s.slack_command,
        workspace_url=lambda: slack_check.url,
    )
    notifier = Notifier(store, catalog, pool, reporter, now, unknown_after=s.unknown_after_seconds)
    # the longest wait between two polls of a failing connection: a connection another replica still polls is heard
    # of at least this often, so one this replica's catalog lacks is taken for removed only after three of them (with
    # POLL_INTERVAL_MAX_SECONDS of 30 minutes, the fixed 15 closed it as removed between two polls)
    error_max = max(s.poll_interval_max_seconds, 5 * s.poll_interval_seconds)
    alerter = Alerter(
        store,
        catalog,
        pool,
        reporter,
        now,
        metrics=metrics,
        group_window=s.alert_group_seconds,
        suppress=s.alert_suppress_seconds,
        down_after=s.provider_down_after_seconds,
        removed_quiet=max(REMOVED_QUIET, 3 * error_max),
        pager=pager,
        console_url=notifier.console_url,
    )
    changes = Changes()
    runs = RunService(
        store,
        pool,
        auth,
        notifier,
        now,
        first_poll=first_poll,
        owner=owner,
        lease=lease,
        changes=changes,
        pager=pager,
        alerts_changed=alerter.story_changed,
    )
    retrier = Retrier(store, catalog, notifier, now=now)
    workflows = WorkflowEngine(store, catalog, runs, notifier, auth, now=now)
    subscribers = Subscribers(store, catalog, notifier, reporter, now)
    steps = StepService(store, runs, now)  # Workflow Builder's "Run a pipeline" step
    outcomes = Outcomes(store, notifier, alerter, retrier, workflows, subscribers, steps)
    changes.subscribe(outcomes.on_change)
    tasks = TaskSet()
    services = Services(
        settings=s, catalog=catalog, pool=pool, auth=auth, notifier=notifier, runs=runs, tasks=tasks, now=now,
        workflows=workflows, queries=RunQueries(store, pool, now), audited=Audited(store, auth, now),
        subscriptions=SubscriptionService(store, catalog, auth, now),
        triage=Triage(store, pool, notifier.reporter, now), steps=steps,
        log_access=LogAccess(store, catalog, runs.guard, _channel_members(client), cache_s=auth_cache_s),
    )
    app = build_app(s, services, client)
    replays = Replays(store.requests, now, metrics)
    secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
    socket_mode = _socket_mode(s, app, replays, metrics)
    scheduler = AsyncIOScheduler(timezone=UTC)
    readiness = Readiness(store, scheduler, slack_check, socket_mode)

    async def scheduled_start(kind: str, name: str, parameters: dict[str, str]) -> None:
        """A schedule's slot came: start the pipeline or workflow as the bot, into its own channel."""
        if kind == "workflow":
            await workflows.start(None, name, parameters, channel=None, origin=RunOrigin.SCHEDULE)
            return
        await runs.start(
            None, catalog.pipelines[name], parameters, channel=None, origin=RunOrigin.SCHEDULE, authorized=True
        )

    parts = Components(
        settings=s,
        catalog=catalog,
        owner=owner,
        now=now,
        lock=lock,
        store=store,
        pool=pool,
        metrics=metrics,
        auth=auth,
        reporter=reporter,
        notifier=notifier,
        alerter=alerter,
        runs=runs,
        retrier=retrier,
        workflows=workflows,
        outcomes=outcomes,
        triage=Triage(store, pool, reporter, now),
        recovery=Recovery(store, notifier, outcomes, now),
        waiting=WaitingStarts(
            store, catalog, pool, notifier, outcomes, now=now, owner=owner, lease=lease, first_poll=first_poll
        ),
        schedules=ScheduleRunner(store, catalog, scheduled_start, owner=owner, now=now),
        tasks=tasks,
        services=services,
        app=app,
        replays=replays,
        poller=Poller(
            store,
            pool,
            owner=owner,
            now=now,
            on_change=outcomes.on_change,
            tells=outcomes.tells,  # a change that tells nobody is marked notified with itself: one transaction
            on_unknown=notifier.refresh_shown,
            on_provider_error=alerter.connection_failed,
            on_provider_ok=alerter.connection_ok,
            metrics=metrics,
            lease=lease,
            # a tick that waited a whole period for its polls made the scheduler skip the next one (a job does not
            # overlap itself): ticks every 2 s, not 1, and polls up to 2 s late. Polls outliving the wait go on alone
            tick_wait=s.poll_tick_seconds.total_seconds() / 2,
            intervals=PollIntervals(
                base=first_poll,
                longest=s.poll_interval_max_seconds,
                error_max=error_max,
            ),
        ),
        watcher=Watcher(
            store,
            catalog,
            pool,
            now=now,
            on_change=outcomes.on_change,
            interval=s.watch_interval_seconds,
            metrics=metrics,
        ),
        stuck=StuckDetector(store, catalog, notifier, now=now),
        escalator=Escalator(store, catalog, pool, reporter, now, story_changed=alerter.story_changed),
        deliverer=Deliverer(
            store,
            web_client(s, retry_rate_limits=False),
            owner=owner,
            now=now,
            fallback=s.fallback_channel or catalog.defaults.channel,
            metrics=metrics,
            lease=lease,
            edit_gap=s.message_edit_gap_seconds.total_seconds(),
            on_linked=outcomes.linked,
        ),
        pages=_page_sender(s, catalog, store, alerter, secrets, owner=owner, now=now) if pager else None,
        slack_check=slack_check,
        socket_mode=socket_mode,
        clock=clock,
        scheduler=scheduler,
        readiness=readiness,
        http=HttpServer(
            None if s.socket_mode else app,
            ready=readiness.problems,
            metrics=metrics,
            signatures=Signatures(secret) if secret else None,
            replays=replays,
            read_timeout=s.http_read_timeout_seconds.total_seconds(),
        ),
    )
    metrics.source(RUNS, _runs_by_state(store))
    metrics.source(OUTBOX_PENDING, _outbox_pending(store))
    return parts


async def prepare(parts: Components) -> None:
    """The first writes: a read-only file or volume says so here, in one line (StartupError)."""
    try:
        if parts.store.single_process:
            await parts.store.release_leases()  # a lease in a SQLite file can only be from a process that died
        await parts.recovery.recover_starting(timedelta(seconds=30))
        # a process that died between recording a change and writing its card leaves it unnotified
        await parts.recovery.recover_unnotified(
            timedelta(seconds=0) if parts.store.single_process else timedelta(seconds=10)
        )
        await parts.alerter.health_untold()  # an outage's message a stop kept from being written
    except SQLAlchemyError as exc:
        raise writable_problem(exc, parts.settings.database_url) from None


async def install_jobs(parts: Components, jobs: RunningJobs) -> None:
    """The periodic work, on the (not yet started) scheduler; ``jobs`` follows every one of them, so a stop lets
    the running ones finish. Missed schedule slots are caught up."""
    s, scheduler = parts.settings, parts.scheduler

    turn = _watch_turn(parts.catalog)

    async def watch() -> None:
        """One watch cycle per interval across the replicas with this catalog: the slot is claimed in the database."""
        seconds = s.watch_interval_seconds.total_seconds()
        slot = f"{int(parts.now().timestamp() // seconds):012d}"
        if await parts.store.slots.claim(turn, slot, parts.owner, now=parts.now()):
            await parts.watcher.cycle()

    async def recover() -> None:
        await parts.recovery.recover_starting(timedelta(seconds=30))
        await parts.recovery.recover_unnotified(timedelta(seconds=10))
        await parts.alerter.health_untold()

    async def fail_stale_steps() -> None:
        if parts.services.steps is not None:
            await parts.services.steps.fail_stale_claims()

    second = timedelta(seconds=1)
    periodic: tuple[tuple[str, Callable[[], Awaitable[object]], timedelta], ...] = (
        ("poll", parts.poller.tick, s.poll_tick_seconds),
        ("deliver", parts.deliverer.tick, s.delivery_tick_seconds),
        # a dead starter's runs are given up within about a lease after it stopped renewing them
        ("recover", recover, min(timedelta(seconds=30), s.lease_seconds)),
        ("alerts", parts.alerter.flush, min(second, max(s.alert_group_seconds / 4, second / 20))),
        ("watch", watch, s.watch_interval_seconds),
        ("stuck", parts.stuck.tick, s.stuck_check_seconds),
        ("credentials", parts.alerter.check_credentials, s.stuck_check_seconds),  # the same kind of slow check
        # alerts nobody acknowledged: each ping once across replicas (the store's compare-and-set), so every one ticks
        ("escalate", parts.escalator.tick, s.stuck_check_seconds),
        ("slack", parts.slack_check.tick, timedelta(minutes=1)),
        ("retries", parts.waiting.tick, s.poll_tick_seconds),
        ("evidence", parts.triage.sweep, s.poll_tick_seconds),
        ("approvals", parts.workflows.expire_approvals, timedelta(seconds=5)),
        ("steps", parts.workflows.begin_stale_claims, timedelta(seconds=30)),  # steps whose claimer died first
        # Workflow Builder steps claimed by a bot that stopped before their run was recorded
        ("function_steps", fail_stale_steps, s.stuck_check_seconds),
        # Slack requests remembered against replays, past their time
        ("requests", parts.replays.prune, timedelta(minutes=1)),
        # the free pages inside glibc's heaps given back (after a burst of polls: bot/ops/memory.py)
        ("memory", trim_heap, timedelta(minutes=1)),
    )
    if parts.clock is not None:
        # every minute; every few seconds while no measure was quick enough to keep (a stall at start)
        periodic += (("clock", parts.clock.tick, timedelta(seconds=RETRY_FIRST)),)
    if parts.pages is not None:  # its own job: PagerDuty down or slow never holds Slack's deliveries back
        periodic += (("pagerduty", parts.pages.tick, s.delivery_tick_seconds),)
    for job_id, func, every in periodic:
        seconds = every.total_seconds()
        scheduler.add_job(
            func,
            "interval",
            seconds=seconds,
            id=job_id,
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(seconds * 5)),
            next_run_time=utcnow(),  # the scheduler's clock is the local one
        )
    if s.digest_time:
        post = digest_job(parts.store, parts.catalog, parts.reporter, s, owner=parts.owner, now=parts.now)
        schedule_digest(scheduler, s, post)
    # a tick still running when the next is due is normal under load: not worth a warning each time
    parts.schedules.install(scheduler)
    # every job, whoever added it: stop() lets the running ones finish; the database away is one line per job
    outages = Outages(database_away)
    for job in scheduler.get_jobs():
        job.modify(func=jobs.track(outages.quiet(job.id, job.func)))
    await parts.schedules.catch_up()
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)


def _watch_turn(catalog: Catalog) -> str:
    """The name of the watch's turns this replica shares: those of the replicas with the same pipelines. One turn for
    the whole fleet was taken every interval by the same replica (their jobs keep their phases): one whose catalog
    lacked a watched pipeline (a rolling deploy) left its runs outside Slack unlisted for as long as it ran. Replicas
    whose catalogs differ each take their own turns; what both list is recorded once (a run's unique provider id)."""
    pipelines = sorted(
        (p.name, p.connection, p.provider, p.watch, p.job.model_dump(mode="json")) for p in catalog.pipelines.values()
    )
    digest = hashlib.sha256(json.dumps(pipelines, sort_keys=True, default=str).encode()).hexdigest()
    return f"watch:{digest[:16]}"


class Runtime:
    """Builds the parts (``build``), installs the jobs (``install_jobs``), serves; stops in the reverse order."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.now = utcnow
        # what the log filter redacts while this bot runs: its settings' secrets, then every connection's
        self.secrets = Redactor(settings.secret_values())
        self.jobs = RunningJobs()
        self._stopping = asyncio.Event()
        self._parts: Components | None = None  # the parts of a start; a stopped runtime keeps them to be read
        self._stopped = False

    @property
    def parts(self) -> Components:
        if self._parts is None:
            raise RuntimeError("the runtime has not started")
        return self._parts

    # what tests and the demo read of a running bot
    @property
    def store(self) -> Store:
        return self.parts.store

    @property
    def http(self) -> HttpServer:
        return self.parts.http

    @property
    def app(self) -> AsyncApp:
        return self.parts.app

    @property
    def replays(self) -> Replays:
        return self.parts.replays

    @property
    def metrics(self) -> Metrics:
        return self.parts.metrics

    @property
    def services(self) -> Services:
        return self.parts.services

    @property
    def schedules(self) -> ScheduleRunner:
        return self.parts.schedules

    @property
    def watcher(self) -> Watcher:
        return self.parts.watcher

    @property
    def recovery(self) -> Recovery:
        return self.parts.recovery

    async def start(self) -> None:
        """Raises StartupError (one line) when the database cannot be used or the port taken."""
        s = self.settings
        PROCESS.include(self.secrets)
        # #channel, @handle and e-mail entries become ids before any part reads the catalog
        self.catalog = await catalog_with_ids(web_client(s), self.catalog)
        parts = self._parts = await build(s, self.catalog, owner=self.owner, now=self.now, secrets=self.secrets)
        await prepare(parts)
        await install_jobs(parts, self.jobs)
        # the port first: a port taken stops the start before any tick runs (one line, no tick cut short)
        try:
            url = await parts.http.start(s.host, s.port)
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StartupError(f"cannot listen on {s.host}:{s.port} (HOST, PORT): {reason}") from None
        parts.scheduler.start()
        if parts.socket_mode is not None:
            await parts.socket_mode.connect_async()
            log.info("connected to Slack in Socket Mode; health on %s", url)
        else:
            log.info("listening for Slack on %s/slack/events", url)

    async def readiness(self) -> list[str]:
        return await self.parts.readiness.problems()

    async def run_until_stopped(self) -> None:
        await self._stopping.wait()

    def request_stop(self) -> None:
        self._stopping.set()

    async def stop(self) -> None:
        """Stop taking work, let running work finish (a grace period), hand back what we hold."""
        if self._stopped:
            return
        self._stopped = True
        parts = self._parts
        if parts is None:  # the start failed before the parts were built: build gave back what it took
            PROCESS.exclude(self.secrets)
            return
        grace = self.settings.shutdown_grace_seconds.total_seconds()
        scheduler = parts.scheduler if parts.scheduler.running else None
        if scheduler is not None:  # it was running (a start that failed says its one line only)
            log.info("stopping: finishing the work in hand (grace period %g s)", grace)
            # no new ticks; not shutdown() yet: it would cancel the running ones wherever they are (a card
            # posted and not yet recorded, a poll answered and not yet written)
            scheduler.pause()
        parts.waiting.stop()  # no more waiting runs triggered: they wait for the next process, not cut off
        if parts.socket_mode is not None:
            await parts.socket_mode.close_async()
        await parts.http.stop()
        await parts.tasks.drain(grace)
        # let the ticks finish what they claimed, rather than close the clients and the database under them
        if scheduler is not None and not await self.jobs.wait(grace):
            log.warning("a scheduled job outlived the grace period: it is cut off, its leases are released")
        await parts.triage.drain(grace)  # evidence reads a sweep left running (a log Rivery still prepares)
        # polls and list calls a tick left running (a slow provider): they finish, or are cut off after the grace
        try:
            await asyncio.wait_for(asyncio.gather(parts.poller.idle(), parts.watcher.idle()), grace)
        except TimeoutError:
            log.warning("a poll or list call outlived the grace period; its leases are released")
        if scheduler is not None:
            # what outlived the grace period is cut off: one warning above, not an ERROR traceback per job
            logging.getLogger("apscheduler.executors.default").setLevel(logging.CRITICAL)
            scheduler.shutdown(wait=False)  # cancels what is still running
        store = parts.store
        try:  # what is already decided goes out now, paced as always, within the grace period
            deadline = time.monotonic() + grace
            while await store.unsent() and time.monotonic() < deadline:
                await parts.deliverer.tick()
                await asyncio.sleep(0.2)
        except Exception:
            log.exception("final delivery failed; it will resume at the next start")
        if parts.pages is not None:  # what PagerDuty did not take stays recorded: the next start sends it
            await parts.pages.aclose()
        await store.release_leases(self.owner)
        await parts.pool.aclose()
        await store.close()
        PROCESS.exclude(self.secrets)
        if parts.lock is not None:
            parts.lock.release()  # last: the file is no longer ours to write


def _page_sender(
    s: Settings, catalog: Catalog, store: Store, alerter: Alerter, secrets: Redactor, *, owner: str, now: Now
) -> PageSender:
    """The PagerDuty sender: routing keys read from the catalog when each event is sent, never stored."""

    def routing_key(pipeline: str) -> SecretStr | None:
        found = catalog.pipelines.get(pipeline)
        return found.pagerduty.routing_key if found is not None and found.pagerduty is not None else None

    async def shown(alert_id: int) -> None:
        alert = await store.alerting.get(alert_id)
        if alert is not None:
            await alerter.rerender(alert)

    timeout = s.pagerduty_timeout_seconds.total_seconds()
    events = PagerDutyEvents(s.pagerduty_events_url, timeout_seconds=timeout, redactor=secrets)
    return PageSender(
        store,
        events,
        routing_key,
        owner=owner,
        now=now,
        lease=s.lease_seconds,
        retry=s.pagerduty_retry_seconds,
        on_trigger=shown,
    )


def _socket_mode(
    settings: Settings, app: AsyncApp, replays: Replays, metrics: Metrics
) -> ReplaySafeSocketModeHandler | None:
    if not settings.socket_mode:
        return None
    assert settings.slack_app_token is not None  # the settings require it in Socket Mode
    # imported here, at start-up, only when asked for: an HTTP bot leaves Socket Mode's 24 modules unloaded
    from bot.slack.socket_mode import ReplaySafeSocketModeHandler

    return ReplaySafeSocketModeHandler(app, settings.slack_app_token.get_secret_value(), replays, metrics)


def _group_members(client: AsyncWebClient) -> Callable[[str], Awaitable[frozenset[str]]]:
    async def members(group_id: str) -> frozenset[str]:
        answer = await client.usergroups_users_list(usergroup=group_id)
        return frozenset(answer.get("users") or [])

    return members


def _channel_members(client: AsyncWebClient) -> Callable[[str], Awaitable[frozenset[str]]]:
    async def members(channel: str) -> frozenset[str]:
        found: set[str] = set()
        cursor = ""
        while True:
            try:
                answer = await client.conversations_members(channel=channel, cursor=cursor or None, limit=1000)
            except SlackApiError as exc:
                if slack_error(exc.response) == "channel_not_found":
                    return frozenset()  # a channel the bot cannot see: nobody reads the log through it
                raise
            found.update(answer.get("members") or [])
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return frozenset(found)

    return members


def _runs_by_state(store: Store) -> Callable[[], Awaitable[dict[tuple[tuple[str, str], ...], float]]]:
    async def runs_by_state() -> dict[tuple[tuple[str, str], ...], float]:
        counts = await store.runs.count_by_state()
        return {
            (("final", "true" if final else "false"), ("state", state)): float(n)
            for (state, final), n in counts.items()
        }

    return runs_by_state


def _outbox_pending(store: Store) -> Callable[[], Awaitable[dict[tuple[tuple[str, str], ...], float]]]:
    async def outbox_pending() -> dict[tuple[tuple[str, str], ...], float]:
        return {(): float(await store.unsent())}

    return outbox_pending
