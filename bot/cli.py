"""``pipeline-bot``: run | check | emulate | demo.

The only place, with the app factory and the demo, that reads settings and wires parts together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.catalog import Catalog
from bot.catalog.load import load_catalog, referenced_values
from bot.checks.names import names_in
from bot.checks.online import DEADLINE, online_checks, render
from bot.config import Settings, environment, load_settings, sqlite_folder_problem, unfilled_placeholders
from bot.errors import ConfigError, StartupError
from bot.ops.logs import setup_logging
from bot.ops.memory import tune_malloc
from bot.ops.plain import safe_text
from bot.ops.redact import PROCESS, Redactor
from bot.providers.registry import provider

if TYPE_CHECKING:
    from bot.runtime import Runtime

__all__ = ["main"]

EMULATED = ("rivery", "tailer", "invision", "datakitchen", "pagerduty")


EXIT_CODES = """exit codes:
  0  ok
  1  problems found (each listed on stderr with what would fix it)
  2  usage error (an unknown option, a missing argument)
  130  interrupted (Ctrl-C)"""

#: per provider: what its emulator's scenario file may say besides jobs, default and faults
SCENARIO_KEYS: dict[str, str] = {
    "rivery": "tokens (accepted API tokens), account_id, environment_id, legacy_prefix (/api, or '' as on the EU "
    "host), failure_code (E or F), running_code, omit_waiting_status, omit_run_id, success_spelling, "
    "async_operations, operation_polls, operation_error, stats_shape, tasks_status_shape, next_page_as "
    "(url/path/number/string), next_page_base, cancel_answer, log_polls, river_names, river_runs_per_minute, "
    "token_runs_per_minute (0: no limit), strict",
    "tailer": "tokens (accepted JWTs), refresh_tokens, firebase_api_key, service_accounts (client e-mail → public "
    "key), audience, newest_for_any_run, strict",
    "invision": "api_keys (accepted x-api-key values), prefix (default /invision/), omit_run_id, strict",
    "datakitchen": "users (username → password), token_ttl_s, kitchens (kitchen → recipes → variations), "
    "refreshed_token_header, quoted_token, create_keys, strict",
    "pagerduty": "routing_keys (accepted integration keys; empty: any 32-character key), events_per_minute (429 past "
    "it; 0: no limit), retry_after (Retry-After on that 429). Alerts: GET /_emulator/alerts",
}
EMULATED_NAMES = {
    "rivery": "Rivery", "tailer": "Tailer", "invision": "Profitbase InVision", "datakitchen": "DataKitchen",
    "pagerduty": "PagerDuty Events v2",
}


def _sub(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str, description: str, example: str
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"example:\n  {example}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-bot",
        description="Run, watch and fix Rivery, Tailer, InVision and DataKitchen pipelines from Slack.",
        epilog="examples:\n  pipeline-bot check            validate .env and pipelines.yml\n"
        "  pipeline-bot check --online   and try every connection, Slack, channels and people\n"
        "  pipeline-bot run              start the bot\n"
        "  pipeline-bot demo --open      try it all on this machine\n\n"
        f"{EXIT_CODES}\n\nEach command's --help says more.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _sub(
        sub, "run", "start the bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT)",
        "Start the bot: settings from the environment and --env-file, the catalog from PIPELINES_FILE. Every\n"
        "problem is listed before anything starts; catalog names (#channel, @group, e-mail) are resolved to ids.",
        "pipeline-bot run --env-file .env",
    )
    run.add_argument("--env-file", type=Path, default=Path(".env"), help="dotenv file to read (default .env)")

    check = _sub(
        sub, "check", "validate settings and the catalog, list every problem",
        "Validate the settings and the catalog without starting the bot, listing every problem with its fix.\n"
        "--online then tries each connection with a harmless read, Slack's auth.test, each channel (does it\n"
        "exist, is the bot in it) and each person and user group the catalog names.",
        "pipeline-bot check --online",
    )
    check.add_argument("--catalog", type=Path, help="catalog file (default: PIPELINES_FILE or pipelines.yml)")
    check.add_argument("--env-file", type=Path, default=Path(".env"), help="dotenv file to read (default .env)")
    check.add_argument("--catalog-only", action="store_true", help="do not check the Slack settings")
    check.add_argument(
        "--online",
        action="store_true",
        help="after the offline checks, try every connection, Slack, the channels, people and user groups "
        "(each with its own deadline; a few seconds in all)",
    )

    emulate = _sub(
        sub, "emulate", "run one provider's emulator on its own",
        "Serve one provider's API on this machine, in real time, for trying the bot or a client without an\n"
        "account. With no scenario any credentials and job ids are accepted and each run succeeds in seconds.\n"
        "`pipeline-bot emulate PROVIDER --help` lists that provider's scenario keys.",
        "pipeline-bot emulate rivery --port 8081 --scenario scenario.yml",
    )
    providers = emulate.add_subparsers(dest="provider", metavar="PROVIDER", required=True)
    for key in EMULATED:
        one = providers.add_parser(
            key,
            help=f"the {EMULATED_NAMES[key]} API",
            description=f"Serve {EMULATED_NAMES[key]}'s API on this machine (bot/emulators/{key}.py).",
            epilog="scenario file (YAML): jobs (job id → outcome, or a list of outcomes), default (null: unknown "
            "jobs are refused), faults, and for " + EMULATED_NAMES[key] + ":\n  "
            + "\n  ".join(textwrap.wrap(SCENARIO_KEYS[key], 100))
            + f"\n\nexample:\n  pipeline-bot emulate {key} --port 0 --scenario scenario.yml\n\n{EXIT_CODES}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        one.add_argument("--port", type=_port, default=0, help="port to listen on (default: a free one)")
        one.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        one.add_argument("--scenario", type=Path, help="YAML: jobs, outcomes, faults, credentials (keys below)")
        one.add_argument(
            "--strict",
            action="store_true",
            help="serve only what a vendor source documents: refuse requests that rely on an assumption and "
            "leave out fields no source names (docs/PROVIDERS.md, provenance)",
        )

    demo = _sub(
        sub, "demo", "everything on this machine: emulated providers, the bot, and a Slack-like page to try it in",
        "Start the four emulators, a fake Slack with a Slack-like page, and the bot with a demo catalog:\n"
        "type /pipeline help on the page. Nothing leaves this machine.",
        "pipeline-bot demo --open",
    )
    demo.add_argument("--port", type=_port, default=8765, help="port of the page (default 8765; 0: a free one)")
    demo.add_argument("--host", default="127.0.0.1", help="address of the page (default 127.0.0.1)")
    demo.add_argument("--open", action="store_true", help="open the page in the default browser")
    return parser


def _port(text: str) -> int:
    """A ``--port``: argparse says what is wrong (exit 2), not a bind() traceback."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port: use a number from 0 (a free one) to 65535")
    return port


def _version() -> str:
    try:
        return metadata.version("pipeline-bot")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.env_file)
    if args.command == "check":
        return _check(args.catalog, args.env_file, catalog_only=args.catalog_only, online=args.online)
    if args.command == "emulate":
        from bot.emulators.standalone import serve_forever

        try:
            return asyncio.run(
                serve_forever(args.provider, host=args.host, port=args.port, scenario=args.scenario, strict=args.strict)
            )
        except KeyboardInterrupt:
            return 0
    if args.command == "demo":
        from bot.demo.run import main as demo

        return demo(host=args.host, port=args.port, open_browser=args.open)
    parser.print_help()
    return 2


def dotenv_problems(env_file: Path | None) -> list[str]:
    """Each line of the dotenv file python-dotenv cannot read, at its place. python-dotenv only logs a warning naming
    no file (once per read, and it is read twice) and skips the line, so its variable is "not set" while a person
    sees it in .env; its warning is silenced here and the line is a problem instead."""
    logging.getLogger("dotenv.main").setLevel(logging.ERROR)
    if env_file is None or not env_file.is_file():
        return []
    from dotenv.parser import parse_stream

    try:
        with env_file.open(encoding="utf-8") as stream:
            bad = [binding.original.line for binding in parse_stream(stream) if binding.error]
    except (OSError, UnicodeDecodeError):  # load_settings says why it cannot be read
        return []
    return [f"{env_file}:{line}: not a NAME=value line (a quote left open?): it is ignored; fix it or remove it"
            for line in bad]


def _check(catalog_path: Path | None, env_file: Path, *, catalog_only: bool, online: bool = False) -> int:
    problems: list[str] = dotenv_problems(env_file)
    settings = None
    try:
        settings = load_settings(env_file=env_file)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if settings is not None and not catalog_only:
        problems.extend(settings.problems())
        if folder := sqlite_folder_problem(settings.database_url):
            problems.append(f"DATABASE_URL: {folder}")
    path = catalog_path or (settings.pipelines_file if settings else Path("pipelines.yml"))
    catalog = None
    env: dict[str, str] = {}
    try:
        env = environment(env_file)
        catalog = load_catalog(path, env)
    except ConfigError as exc:
        problems.extend(p for p in exc.problems if p not in problems)  # a bad .env is said once
    if problems:
        print(f"pipeline-bot check: {len(problems)} problem(s)", file=sys.stderr)
        secrets = _secrets_of(settings, catalog, path, env)
        for line in problems:
            print(f"  - {safe_text(secrets.redact(line))}", file=sys.stderr)
        if online:
            print("pipeline-bot check --online: not tried: fix the problems above first", file=sys.stderr)
        return 1
    assert catalog is not None
    warnings = [*(settings.warnings() if settings is not None and not catalog_only else []), *catalog.warnings]
    used = _used_variables(path, env)  # an optional one nobody refers to (PD_ROUTING_KEY) may keep its placeholder
    warnings += [  # a copied .env.example checks out but cannot work: say so before Slack or a provider does
        f"{name} still holds the example value from .env.example: put your own there (docs/FIRST-HOUR.md)"
        for name in unfilled_placeholders(env)
        if not (catalog_only and name.startswith("SLACK_")) and (name.startswith("SLACK_") or name in used)
    ]
    for line in warnings:  # worth fixing, not worth refusing to run
        print(f"pipeline-bot check: warning: {line}", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in catalog.counts_by_provider().items())
    schedules = sum(1 for p in catalog.pipelines.values() if p.schedule) + sum(
        1 for w in catalog.workflows.values() if w.schedule
    )
    print(
        f"pipeline-bot check: ok: {path}: {len(catalog.connections)} connection(s), "
        f"{len(catalog.pipelines)} pipeline(s) ({counts}), {len(catalog.workflows)} workflow(s), "
        f"{schedules} schedule(s)"
    )
    for pipeline in catalog.pipelines.values():  # fine to watch, but `run` will say no: tell them now
        refusal = pipeline.job.run_refusal()
        if refusal is not None:
            print(f"  note: pipelines.{pipeline.name}: not runnable: {refusal}")
    for line in _assumption_notes(catalog):
        print(f"  note: {line}")
    names = names_in(catalog).unresolved()
    if names and not online:
        print(f"  note: {len(names)} name(s) ({', '.join(names[:5])}{', …' if len(names) > 5 else ''}) will be "
              "resolved to Slack ids when the bot starts; `pipeline-bot check --online` resolves them now")
    if not online:
        return 0
    secrets = _secrets_of(settings, catalog, path, env)
    return asyncio.run(_check_online(settings if not catalog_only else None, catalog, secrets))


async def _check_online(settings: Settings | None, catalog: Catalog, secrets: Redactor) -> int:
    """Each connection, Slack, the channels and the people, at once: ✓/✗ per item, exit 1 on any ✗."""
    token = settings.slack_bot_token if settings is not None else None
    client = None
    if settings is not None and token is not None:
        client = AsyncWebClient(token=token.get_secret_value(), base_url=settings.slack_api_url,
                                timeout=int(DEADLINE))
    # the quotes in the results (a provider's or a gateway's page) are redacted before they are cut, with the
    # process's secrets: without these among them, a token where a quote was cut was printed in part, past the
    # redaction of each line
    PROCESS.include(secrets)
    try:
        results = await online_checks(catalog, client, deadline=DEADLINE)
    finally:
        PROCESS.exclude(secrets)
    for line in render(results):
        print(f"  {secrets.redact(line)}")
    failed = sum(1 for r in results if not r.ok)
    if failed:
        print(f"pipeline-bot check --online: {failed} of {len(results)} check(s) failed", file=sys.stderr)
        return 1
    print(f"pipeline-bot check --online: ok: {len(results)} check(s)" + ("" if client else " (Slack not tried)"))
    return 0


def _used_variables(path: Path, env: dict[str, str]) -> set[str]:
    """The environment variables the catalog file refers to with ``${NAME}`` and ``env`` sets."""
    with contextlib.suppress(OSError):  # load_catalog read it a moment ago
        text = path.read_text(encoding="utf-8", errors="replace")
        values = set(referenced_values(text, env))
        return {name for name, value in env.items() if value in values}
    return set()


def _assumption_notes(catalog: Catalog) -> list[str]:
    """What a pipeline relies on that no vendor source documents: said once per pipeline, never an error."""
    notes = []
    for name, pipeline in sorted(catalog.pipelines.items()):
        assumption = provider(pipeline.provider).client.parameters_assumption
        if pipeline.parameters and assumption:
            notes.append(f"pipelines.{name} declares parameters ({', '.join(pipeline.parameters)}): {assumption}.")
    return notes


def _run(env_file: Path) -> int:
    """Validate everything first: a bot with a bad config exits non-zero listing every problem.

    Whatever start-up still raises is one redacted line and exit 1 (a traceback is for a developer, and may
    quote a secret); Ctrl-C while starting is one line and 130."""
    settings: Settings | None = None
    tune_malloc()  # before any thread: glibc's settings for a long-lived process (bot/ops/memory.py)
    unreadable = dotenv_problems(env_file)
    try:
        settings = load_settings(env_file=env_file)
        ready = _prepare(settings, env_file, unreadable)
    except ConfigError as exc:
        return _fail([*unreadable, *exc.problems])
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # the last resort: every known failure has its own message
        return _unexpected(exc, settings)
    if isinstance(ready, int):
        return ready
    catalog, secrets = ready
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(_serve(settings, catalog, secrets))
    except KeyboardInterrupt:  # before the signal handlers were in place
        return _interrupted()
    except Exception as exc:  # whatever escaped the running bot: one line, not a traceback holding what it holds
        return _crashed("stopped", exc, secrets)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (a dependency on Linux and macOS): the bot's own work per poll is
    small beside the loop's and the HTTP stack's, and uvloop's loop costs less per callback and per socket event.
    Elsewhere (Windows), asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _interrupted() -> int:
    print("pipeline-bot: interrupted while starting", file=sys.stderr)
    return 130


def _unexpected(exc: BaseException, settings: Settings | None, known: Redactor | None = None) -> int:
    said = (str(exc).strip().splitlines() or [""])[0][:300]
    line = f"pipeline-bot: cannot start: {type(exc).__name__}" + (f": {said}" if said else "")
    secrets = _secrets_of(settings, None, settings.pipelines_file if settings else Path("pipelines.yml"), {})
    if known is not None:
        secrets.include(known)
    print(secrets.redact(line), file=sys.stderr)
    return 1


def _prepare(settings: Settings, env_file: Path, unreadable: Sequence[str] = ()) -> tuple[Catalog, Redactor] | int:
    """The catalog to run and the secrets the log must never show, or the exit code after listing the problems.
    ``unreadable``: the dotenv file's lines that cannot be read, problems like any other."""
    problems = [*unreadable, *settings.problems()]
    catalog = None
    env = environment(env_file)
    try:
        catalog = load_catalog(settings.pipelines_file, env)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        secrets = _secrets_of(settings, catalog, settings.pipelines_file, env)
        return _fail([secrets.redact(line) for line in problems])
    assert catalog is not None
    setup_logging(settings.log_level, settings.log_format, settings.library_log_level)
    # the log filter knows the secrets from the first line on, before the runtime adds its own
    secrets = _secrets_of(settings, catalog, settings.pipelines_file, env)
    PROCESS.include(secrets)
    for line in settings.warnings():
        logging.getLogger("bot.config").warning("%s", line)
    for line in catalog.warnings:
        logging.getLogger("bot.catalog").warning("%s", line)
    return catalog, secrets


async def _serve(settings: Settings, catalog: Catalog, secrets: Redactor) -> int:
    import signal

    from bot.runtime import Runtime

    runtime = Runtime(settings, catalog)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.request_stop)
    try:
        if not await _started_unless_stopped(runtime):  # Ctrl-C while Slack is still being reached
            with contextlib.suppress(Exception):
                await runtime.stop()
            return _interrupted()
    except Exception as exc:
        if isinstance(exc, StartupError):  # one line saying why: an operator reads it, not a traceback
            print(f"pipeline-bot: cannot start: {exc}", file=sys.stderr)
        else:  # the last resort: redacted with every secret the runtime knows by now
            secrets.include(runtime.secrets)
            _crashed("cannot start", exc, secrets)
        # undo what was set up; what fails there (the database that refused the start, say) was said above
        with contextlib.suppress(Exception):
            await runtime.stop()
        return 1
    try:
        await runtime.run_until_stopped()
    finally:
        await runtime.stop()
    return 0


async def _started_unless_stopped(runtime: Runtime) -> bool:
    """``runtime.start()``, cut short when a stop is asked for meanwhile (False then): in Socket Mode slack_sdk
    retries the connection for ever while Slack cannot be reached, and Ctrl-C or SIGTERM must still stop the bot."""
    starting = asyncio.ensure_future(runtime.start())
    stopping = asyncio.ensure_future(runtime.run_until_stopped())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if starting.done():
        starting.result()  # what the start raised, raised here
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    return False


def _crashed(what: str, exc: BaseException, secrets: Redactor) -> int:
    """An unexpected exception as one redacted line on stderr and exit 1. Its traceback may quote settings
    (a database URL, a token, in pieces no redactor recognises): it goes to the log at DEBUG only, through the
    redacting filter, never to stderr as Python would print it."""
    logging.getLogger("bot.cli").debug("%s: unexpected error", what, exc_info=exc)
    said = secrets.excerpt(f"{type(exc).__name__}: {exc}", 300)
    print(f"pipeline-bot: {what}: {said} (LOG_LEVEL=DEBUG logs the traceback)", file=sys.stderr)
    return 1


def _secrets_of(
    settings: Settings | None, catalog: Catalog | None, path: Path, env: dict[str, str]
) -> Redactor:
    """What a problem line must never show: the settings' secrets and the catalog's, in any wire form, and every
    variable the catalog file refers to with ``${NAME}`` (a catalog with problems has no connections to ask)."""
    secrets = Redactor(settings.secret_values() if settings is not None else ())
    for connection in catalog.connections.values() if catalog is not None else ():
        secrets.add(*connection.secret_values())
    with contextlib.suppress(OSError):  # load_catalog said why it cannot be read
        secrets.add(*referenced_values(path.read_text(encoding="utf-8", errors="replace"), env))
    return secrets


def _fail(problems: list[str]) -> int:
    print(f"pipeline-bot: cannot start: {len(problems)} problem(s)", file=sys.stderr)
    for line in problems:
        print(f"  - {safe_text(line)}", file=sys.stderr)
    return 1
