"""``pipeline-bot``: run | check | emulate | demo.

The only place, with the app factory and the demo, that reads settings and wires parts together.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.catalog.load import load_catalog, referenced_values
from bot.catalog.model import Catalog
from bot.config import Settings, environment, load_settings, sqlite_folder_problem
from bot.errors import ConfigError, StartupError
from bot.ops.logs import setup_logging
from bot.ops.plain import safe_text
from bot.ops.redact import PROCESS, Redactor
from bot.providers.registry import provider

__all__ = ["main"]

EMULATED = ("rivery", "tailer", "invision", "datakitchen")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline-bot",
        description="Run, watch and fix Rivery, Tailer, InVision and DataKitchen pipelines from Slack.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="start the bot (Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT)")
    run.add_argument("--env-file", type=Path, default=Path(".env"), help="dotenv file to read (default .env)")

    check = sub.add_parser("check", help="validate settings and the catalog, list every problem")
    check.add_argument("--catalog", type=Path, help="catalog file (default: PIPELINES_FILE or pipelines.yml)")
    check.add_argument("--env-file", type=Path, default=Path(".env"), help="dotenv file to read (default .env)")
    check.add_argument("--catalog-only", action="store_true", help="do not check the Slack settings")

    emulate = sub.add_parser("emulate", help="run one provider's emulator on its own")
    emulate.add_argument("provider", choices=EMULATED)
    emulate.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    emulate.add_argument("--host", default="127.0.0.1")
    emulate.add_argument("--scenario", type=Path, help="YAML: jobs, outcomes, faults, credentials")
    emulate.add_argument(
        "--strict",
        action="store_true",
        help="serve only what a vendor source documents: refuse requests that rely on an assumption and leave "
        "out fields no source names (docs/PROVIDERS.md, provenance)",
    )

    demo = sub.add_parser(
        "demo", help="everything on this machine: emulated providers, the bot, and a Slack-like page to try it in"
    )
    demo.add_argument("--port", type=int, default=8765, help="port of the page (default 8765; 0: a free one)")
    demo.add_argument("--host", default="127.0.0.1", help="address of the page (default 127.0.0.1)")
    demo.add_argument("--open", action="store_true", help="open the page in the default browser")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return _run(args.env_file)
    if args.command == "check":
        return _check(args.catalog, args.env_file, catalog_only=args.catalog_only)
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


def _check(catalog_path: Path | None, env_file: Path, *, catalog_only: bool) -> int:
    problems: list[str] = []
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
        return 1
    assert catalog is not None
    warnings = [*(settings.warnings() if settings is not None and not catalog_only else []), *catalog.warnings]
    for line in warnings:  # worth fixing, not worth refusing to run
        print(f"pipeline-bot check: warning: {line}", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in catalog.summary()["by_provider"].items())
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
    return 0


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
    try:
        settings = load_settings(env_file=env_file)
        ready = _prepare(settings, env_file)
    except ConfigError as exc:
        return _fail(exc.problems)
    except KeyboardInterrupt:
        return _interrupted()
    except Exception as exc:  # the last resort: every known failure has its own message
        return _unexpected(exc, settings)
    if isinstance(ready, int):
        return ready
    catalog, secrets = ready
    try:
        return asyncio.run(_serve(settings, catalog, secrets))
    except KeyboardInterrupt:  # before the signal handlers were in place
        return _interrupted()
    except Exception as exc:  # whatever escaped the running bot: one line, not a traceback holding what it holds
        return _crashed("stopped", exc, secrets)


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


def _prepare(settings: Settings, env_file: Path) -> tuple[Catalog, Redactor] | int:
    """The catalog to run and the secrets the log must never show, or the exit code after listing the problems."""
    problems = settings.problems()
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
        await runtime.start()
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
