"""``pipeline-bot demo``: emulators, the fake Slack with its page, and the real bot, in one process.

Wired the way ``tests/scenario/harness.py`` wires a scenario test, with a real clock instead of a manual one:

* the four provider emulators on free local ports, each pipeline of ``catalog.yml`` given a scripted outcome of
  a few seconds (``OUTCOMES``): most succeed, ``orders-eu`` fails with a provider message and a failed task
  (its retry succeeds), ``churn-scores`` (DataKitchen) succeeds then fails with a 250-line log, which its
  failure's thread shows and its Full log pages through, ``refunds-us`` does the same on Rivery's legacy API
  (the ``rivery-legacy`` connection: its log is ``activities/runs/logs``), ``inventory-snapshot`` never ends and
  outlives its expected duration; the other Rivery pipelines on its v1 API, so that, with Tailer and DataKitchen,
  runs started outside Slack can be watched; each emulator serves a page per run (``/console/runs/<id>``), where
  a card's "Open in console" leads;
* ``FakeSlack`` on the page's port: the Web API the bot calls, and the page at ``/`` where a person types
  ``/pipeline …`` and clicks, sent to the bot signed as Slack sends them;
* the bot (``Runtime``) in HTTP mode on a free port, with a SQLite file in a temporary directory and fast
  polling, so a card moves within a second of its run; its first run (#1, ``inventory-snapshot`` in #general)
  started before the URL is printed, so help's ``status 1`` and ``cancel 1`` have a run in flight. The catalog
  also has a workflow with an approval step and a schedule every other minute: every example of
  ``/pipeline help`` works here (``tests/e2e/test_demo_page.py`` types each one).

Nothing outlives the process: Ctrl-C or SIGTERM stops everything and removes the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from bot.catalog.catalog import Catalog
from bot.catalog.load import parse_catalog
from bot.catalog.model import Pipeline
from bot.config import Settings
from bot.emulators._core import EmulatorState, Outcome, RealClock
from bot.emulators._server import EmulatorServer
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.invision import InVisionEmulator
from bot.emulators.pagerduty import PagerDutyEmulator
from bot.emulators.rivery import RiveryEmulator
from bot.emulators.slack import FakeSlack
from bot.emulators.tailer import TailerEmulator
from bot.errors import ConfigError
from bot.models import JsonValue
from bot.ops.logs import setup_logging
from bot.runtime import Runtime
from bot.service.permissions import Actor

__all__ = ["CREDENTIALS", "OUTCOMES", "Demo", "demo_catalog", "job_key", "main", "run_demo", "start_demo"]

DEFAULT_PORT = 8765

#: made-up credentials: the emulators check them, the catalog reads them as ${…} like real secrets
CREDENTIALS: dict[str, str] = {
    "DEMO_RIVERY_TOKEN": "demo-rivery-api-token",
    "DEMO_TAILER_TOKEN": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJkZW1vIn0.demo",
    "DEMO_INVISION_KEY": "demo-invision-api-key",
    "DEMO_DATAKITCHEN_USER": "demo-bot@example.com",
    "DEMO_DATAKITCHEN_PASSWORD": "demo-datakitchen-password",
    "DEMO_PD_ROUTING_KEY": "demopagerdutyroutingkey000000000",  # 32 characters, as PagerDuty's keys
}

ORDERS_FAILURE = Outcome(
    result="fail",
    queued_s=1,
    running_s=3,
    message=(
        "Target load failed in step load_orders: BigQuery error: Not found: Table "
        "shopify-eu:raw.orders_2024 was not found in location EU (job <bqjob_r5e1c0ffee_0001> & 1 retry)"
    ),
    tasks=("extract_orders", "load_orders", "merge_orders"),
    failed_tasks=("load_orders",),
)
ORDERS_SUCCESS = Outcome(queued_s=1, running_s=3, tasks=("extract_orders", "load_orders", "merge_orders"))
CHURN_STEPS = ("build_features", "score_customers", "publish_scores")
#: a DataKitchen failure with a log long enough to page through
CHURN_FAILURE = Outcome(
    result="fail",
    queued_s=1,
    running_s=4,
    message="Model scoring failed: column tenure_days is null in 1,204 rows (feature table <crm.features> & v2)",
    tasks=CHURN_STEPS,
    failed_tasks=("score_customers",),
    log_lines=240,
)
CHURN_SUCCESS = Outcome(queued_s=1, running_s=3, tasks=CHURN_STEPS)
REFUNDS_STEPS = ("extract_refunds", "load_refunds")
#: a Rivery failure on the legacy API (the demo's refunds-us): its thread shows Rivery's log
REFUNDS_FAILURE = Outcome(
    result="fail",
    queued_s=1,
    running_s=3,
    message="Load failed: Snowflake error: Numeric value 'n/a' is not recognized (file <refunds_1107.csv> & row 42)",
    tasks=REFUNDS_STEPS,
    failed_tasks=("load_refunds",),
    log_lines=240,
)
REFUNDS_SUCCESS = Outcome(queued_s=1, running_s=3, tasks=REFUNDS_STEPS)

#: per pipeline of catalog.yml, the outcome of its runs (a list: one per run, the last repeats)
OUTCOMES: dict[str, Outcome | list[Outcome]] = {
    "leads-ods": Outcome(queued_s=1, running_s=4, tasks=("extract_leads", "load_ods")),
    "orders-eu": [ORDERS_FAILURE, ORDERS_SUCCESS] * 100,  # each run fails, each retry succeeds
    "iowa-liquor-pda": Outcome(queued_s=1, running_s=4, tasks=("prepare_pda", "check_rows")),
    "budget-consolidation": Outcome(queued_s=1, running_s=3),
    "sales-dashboard": Outcome(queued_s=1, running_s=4, tasks=("extract", "transform", "publish")),
    "inventory-snapshot": Outcome(result="hang", queued_s=1, running_s=0, tasks=("snapshot",)),
    # a success to compare with, then a failure (its log in the thread); its resume (or the next run) succeeds
    "churn-scores": [CHURN_SUCCESS, CHURN_FAILURE] * 100,
    # the same on Rivery's legacy API, whose log (activities/runs/logs) the thread shows; no resume on Rivery
    "refunds-us": [REFUNDS_SUCCESS, REFUNDS_FAILURE] * 100,
}
#: the demo's Rivery connections (catalog.yml) use this account and environment: `rivery` its v1 API, `rivery-legacy`
#: its legacy API (under /api), both on the one emulator
RIVERY_ACCOUNT, RIVERY_ENVIRONMENT = "demo-account", "demo-environment"
#: started when the demo starts, so it is run #1 and in flight: `/pipeline status 1` and `cancel 1` (help's
#: examples) have a run to show; posted in #general
FIRST_RUN, FIRST_RUN_CHANNEL, DEMO_USER = "inventory-snapshot", "C0GENERAL", "U0ALICE"
#: ad-hoc targets (admins may type /pipeline run rivery:<river_id>) succeed after a few seconds
DEFAULT_OUTCOME = Outcome(queued_s=1, running_s=4)


def job_key(pipeline: Pipeline) -> str:
    """The id an emulator files a pipeline's runs under (its ``EmulatorState.script`` key)."""
    job: Mapping[str, JsonValue] = pipeline.job.model_dump()
    if pipeline.provider == "rivery":
        return str(job["river_id"])
    if pipeline.provider == "datakitchen":
        return f"{job['kitchen']}/{job['recipe']}/{job['variation']}"
    if pipeline.provider == "invision":
        return str(job["dataflow_id"])
    if pipeline.provider == "tailer":
        configuration, suffix = str(job["configuration_id"]), f"_{job['environment']}"
        if job["configuration_type"] == "table-to-table" and not configuration.endswith(suffix):
            return configuration + suffix  # Tailer's id of a table-to-table configuration carries its environment
        return configuration
    raise ValueError(f"no emulator for provider {pipeline.provider!r}")


def make_emulators() -> dict[str, EmulatorServer]:
    def state() -> EmulatorState:
        return EmulatorState(clock=RealClock(), default=DEFAULT_OUTCOME)

    return {
        "rivery": _rivery(state()),
        "tailer": TailerEmulator(state(), tokens=[CREDENTIALS["DEMO_TAILER_TOKEN"]]),
        "invision": InVisionEmulator(state(), api_keys=[CREDENTIALS["DEMO_INVISION_KEY"]]),
        "datakitchen": DataKitchenEmulator(
            state(), users={CREDENTIALS["DEMO_DATAKITCHEN_USER"]: CREDENTIALS["DEMO_DATAKITCHEN_PASSWORD"]}
        ),
        # the on-call hand-off: orders-eu's alert is triggered, acknowledged and resolved there
        "pagerduty": PagerDutyEmulator(state(), routing_keys=[CREDENTIALS["DEMO_PD_ROUTING_KEY"]]),
    }


def _rivery(state: EmulatorState) -> RiveryEmulator:
    """Rivery's v1 and legacy APIs for the catalog's account and environment; its limits loosened to the
    catalog's."""
    emulator = RiveryEmulator(
        state, tokens=[CREDENTIALS["DEMO_RIVERY_TOKEN"]], account_id=RIVERY_ACCOUNT, environment_id=RIVERY_ENVIRONMENT
    )
    emulator.river_runs_per_minute, emulator.token_runs_per_minute = 30, 60
    return emulator


def demo_catalog(urls: Mapping[str, str]) -> Catalog:
    """``catalog.yml`` with the emulators' URLs (provider → base URL) and the demo credentials."""
    text = resources.files("bot.demo").joinpath("catalog.yml").read_text(encoding="utf-8")
    env = {**CREDENTIALS, **{f"DEMO_{provider.upper()}_URL": url for provider, url in urls.items()}}
    return parse_catalog(yaml.safe_load(text), env, source="bot/demo/catalog.yml")


def demo_settings(slack: FakeSlack, workdir: Path, *, pagerduty_url: str | None = None) -> Settings:
    events = f"{pagerduty_url}/v2/enqueue" if pagerduty_url else Settings.model_fields["pagerduty_events_url"].default
    return Settings(
        _env_file=None,
        slack_bot_token=slack.bot_token,
        slack_signing_secret=slack.signing_secret,
        slack_app_token=None,  # HTTP mode, whatever the environment says
        slack_api_url=slack.api_url,
        slack_command="/pipeline",
        slack_admins=["U0ALICE"],
        database_url=f"sqlite+aiosqlite:///{workdir / 'demo.db'}",
        host="127.0.0.1",
        port=0,
        poll_interval_seconds=1.0,
        poll_interval_max_seconds=2.0,
        poll_tick_seconds=0.25,
        delivery_tick_seconds=0.1,
        unknown_after_seconds=30.0,
        shutdown_grace_seconds=2.0,
        # alerting at demo pace: failures announced within seconds, stuck runs noticed soon after their time
        alert_group_seconds=2.0,
        stuck_check_seconds=2.0,
        watch_interval_seconds=10.0,
        digest_time=None,
        pagerduty_events_url=events,
    )


@dataclass
class Demo:
    """A running demo: stop it with ``await demo.stop()``."""

    url: str
    slack: FakeSlack
    runtime: Runtime
    emulators: dict[str, EmulatorServer]
    catalog: Catalog
    _stack: contextlib.AsyncExitStack = field(repr=False)

    async def stop(self) -> None:
        await self._stack.aclose()


async def start_demo(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, workdir: Path) -> Demo:
    """Start everything; on any failure, what was started is stopped again before the error propagates."""
    stack = contextlib.AsyncExitStack()
    try:
        emulators = make_emulators()
        for emulator in emulators.values():
            await emulator.start("127.0.0.1", 0)
            stack.push_async_callback(emulator.stop)
        catalog = demo_catalog({name: e.url for name, e in emulators.items()})
        for name, outcome in OUTCOMES.items():
            pipeline = catalog.pipelines[name]
            emulators[pipeline.provider].state.script(job_key(pipeline), outcome)

        slack = FakeSlack()
        await slack.start(host, port)
        stack.push_async_callback(slack.stop)
        runtime = Runtime(demo_settings(slack, workdir, pagerduty_url=emulators["pagerduty"].url), catalog)
        stack.push_async_callback(runtime.stop)
        await runtime.start()
        assert runtime.http is not None
        slack.app_url = f"{runtime.http.url}/slack/events"
        first = catalog.pipelines[FIRST_RUN]
        await runtime.services.runs.start(Actor(DEMO_USER, FIRST_RUN_CHANNEL), first, {}, channel=FIRST_RUN_CHANNEL)
    except BaseException:
        await stack.aclose()
        raise
    shown = slack.url.replace("://0.0.0.0:", "://127.0.0.1:")  # how to reach an all-interfaces bind
    return Demo(f"{shown}/", slack, runtime, emulators, catalog, stack)


def banner(demo: Demo) -> str:
    lines = [
        f"pipeline-bot demo: open {demo.url} in your browser",
        "",
        f"  the page and the Slack stand-in   {demo.url}  (Web API at {demo.slack.api_url})",
        f"  the bot, in HTTP mode             {demo.slack.app_url}",
    ]
    lines += [f"  {name + ' emulator':<32}  {e.url}" for name, e in demo.emulators.items()]
    lines += ["", "  pipelines:"]
    notes = {
        "orders-eu": "fails: an alert in #data-alerts, paged on the PagerDuty emulator; Acknowledge or Retry it",
        "inventory-snapshot": "never ends: stuck after 10s; run #1 is one, in #general: cancel it",
        "budget-consolidation": "scheduled every other minute (/pipeline schedules)",
        "churn-scores": "succeeds, then fails: its thread shows the log (Full log pages it) and Resume",
        "refunds-us": "succeeds, then fails: its thread shows Rivery's log (legacy API; Full log pages it)",
    }
    for pipeline in demo.catalog.pipelines.values():
        note = notes.get(pipeline.name, "succeeds in a few seconds")
        if pipeline.watch:
            note += "; watched"
        lines.append(f"    {pipeline.name:<22} {pipeline.provider:<12} {note}")
    lines += ["", "  workflows:"]
    steps = "leads-ods, iowa-liquor-pda, an approval (Approve on its card), sales-dashboard"
    lines += [f"    {name:<35} {steps}" for name in demo.catalog.workflows]
    lines += ["", "Type /pipeline help in the page. Ctrl-C stops everything; nothing is kept."]
    return "\n".join(lines)


async def run_demo(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, open_browser: bool = False, *, stop: asyncio.Event | None = None
) -> int:
    """Run the demo until Ctrl-C / SIGTERM (or ``stop`` is set). Returns the exit status."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="pipeline-bot-demo-") as tmp:
        try:
            demo = await start_demo(host, port, workdir=Path(tmp))
        except OSError as exc:
            print(f"pipeline-bot demo: cannot listen on {host}:{port}: {exc.strerror or exc}; "
                  "pass --port N (0 picks a free port)", file=sys.stderr)
            return 1
        except ConfigError as exc:  # the packaged catalog is broken: a bug, said plainly
            print("pipeline-bot demo: the demo catalog has problems:", *exc.problems, sep="\n  - ", file=sys.stderr)
            return 1
        handled: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
                handled.append(sig)
        try:
            print(banner(demo), flush=True)
            if open_browser:
                webbrowser.open(demo.url)
            await stop.wait()
            print("pipeline-bot demo: stopping…", flush=True)
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)
            await demo.stop()
    return 0


def main(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, open_browser: bool = False, log_level: str = "WARNING"
) -> int:
    """The ``pipeline-bot demo`` command: readable logs on stderr, warnings and up."""
    setup_logging(log_level, "text")
    try:
        return asyncio.run(run_demo(host, port, open_browser))
    except KeyboardInterrupt:
        return 0
