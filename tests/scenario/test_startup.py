"""Start-up as an operator meets it, through the real CLI in its own process: a database the bot cannot use
is refused by ``check`` with the form to use; one it cannot reach stops ``run`` with one line naming where it
is; a second process on one SQLite file refuses to start and leaves the first one's work alone; DEBUG logs
are the bot's, not a line per SQLite query."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from bot.emulators._core import Fault, ManualClock
from bot.emulators.slack import FakeSlack
from tests.scenario.harness import (
    BotProcess,
    bot_command,
    bot_env,
    card_runs,
    catalog_text,
    make_emulators,
    wait,
)

pytestmark = pytest.mark.slow

CATALOG = """
connections:
  rivery: {provider: rivery, base_url: "http://127.0.0.1:9/api", api_token: "${RIVERY_TOKEN}"}
pipelines:
  leads-ods: {connection: rivery, river_id: 5e8e1eb46b028e37b73f44f0}
"""


def cli(tmp: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    catalog = tmp / "pipelines.yml"
    catalog.write_text(CATALOG)
    env = bot_env(SLACK_BOT_TOKEN="xoxb-test", SLACK_SIGNING_SECRET="s3cret-signing", PIPELINES_FILE=str(catalog),
                  HOST="127.0.0.1", PORT="0", LOG_FORMAT="json", SLACK_API_URL="http://127.0.0.1:9/api/")
    env.update(settings)
    return subprocess.run(bot_command(tmp, *args), env=env, capture_output=True, text=True, timeout=120)


def test_check_refuses_a_database_url_the_bot_cannot_open_and_says_which_form_to_use(tmp_path: Path) -> None:
    result = cli(tmp_path, "check", DATABASE_URL="postgresql://bot:pa55word@db.internal/pipeline_bot")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DATABASE_URL: use postgresql+asyncpg://… (got postgresql://)" in result.stderr
    assert "pa55word" not in result.stdout + result.stderr
    ok = cli(tmp_path, "check", DATABASE_URL="postgresql+asyncpg://bot:pa55word@db.internal/pipeline_bot")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql+asyncpg://bot:pa55word@127.0.0.1:1/pipeline_bot",
         "pipeline-bot: cannot start: cannot connect to the database, PostgreSQL at 127.0.0.1:1, database "
         "pipeline_bot: Connection refused; check DATABASE_URL and that the database is up"),
        ("sqlite+aiosqlite:///{tmp}/missing/folder/bot.db",
         "pipeline-bot: cannot start: the folder {tmp}/missing/folder of the SQLite file in DATABASE_URL does not "
         "exist; create it (a volume, in a container) or correct DATABASE_URL"),
    ],
    ids=["unreachable-postgresql", "sqlite-in-a-missing-folder"],
)
def test_run_on_a_database_it_cannot_reach_says_so_in_one_line_and_exits_non_zero(
    tmp_path: Path, url: str, said: str
) -> None:
    tmp = tmp_path.resolve()
    result = cli(tmp, "run", DATABASE_URL=url.format(tmp=tmp))
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert "Traceback" not in output, output[-3000:]
    assert output.splitlines() == [said.format(tmp=tmp)]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("text", "cannot connect to the database, the SQLite file {db}: file is not a database; check DATABASE_URL"),
        ("future", "the schema of the SQLite file {db} is not one this version knows (Can't locate revision "
                   "identified by '9999_future'): was it written by a newer pipeline-bot?"),
    ],
    ids=["not-a-database", "schema-from-a-newer-version"],
)
def test_run_on_a_file_it_cannot_use_says_so_in_one_line(tmp_path: Path, content: str, said: str) -> None:
    db = tmp_path.resolve() / "bot.db"
    if content == "text":
        db.write_text("not a database\n" * 20)
    else:
        with sqlite3.connect(db) as conn:
            conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
            conn.execute("INSERT INTO alembic_version VALUES ('9999_future')")
    result = cli(tmp_path, "run", DATABASE_URL=f"sqlite+aiosqlite:///{db}")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert len(output.splitlines()) == 1, output[-3000:]
    assert output.startswith("pipeline-bot: cannot start: " + said.format(db=db)), output


def test_run_on_a_port_already_taken_says_so_in_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(tmp_path, "run", PORT=str(port), DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert output.splitlines() == [
        f"pipeline-bot: cannot start: cannot listen on 127.0.0.1:{port} (HOST, PORT): Address already in use"
    ], output[-3000:]


async def test_a_second_process_on_one_sqlite_file_refuses_and_leaves_the_first_its_work(tmp_path: Path) -> None:
    clock = ManualClock()
    emulators = make_emulators(clock)
    slack = FakeSlack()
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators))
    first = BotProcess(tmp_path, slack, catalog)
    second: BotProcess | None = None
    try:
        await first.ready()
        slack.app_url = f"{first.url}/slack/events"
        # the provider answers status calls late: the first process holds the run's lease while it waits
        emulators["rivery"].state.add_fault(Fault(route="status", kind="delay", delay=25, times=None))
        assert (await slack.command("run leads-ods", user="U0ALICE")).ok
        await wait(lambda: len(card_runs(slack, "C0GENERAL")) == 1, 15, "the card", slack)

        def leases() -> list[str]:
            with sqlite3.connect(tmp_path / "bot.db") as db:
                return [r[0] for r in db.execute("SELECT lease_owner FROM runs WHERE lease_owner IS NOT NULL")]

        await wait(lambda: bool(leases()), 15, "the first process to hold the run's lease", slack)
        held = leases()
        assert all(f":{first.proc.pid}:" in owner for owner in held), held

        second = BotProcess(tmp_path, slack, catalog)
        deadline = asyncio.get_running_loop().time() + 60
        async with httpx.AsyncClient() as client:
            while second.proc.poll() is None:
                assert asyncio.get_running_loop().time() < deadline, "the second process neither started nor quit"
                try:
                    ready = (await client.get(f"{second.url}/readyz")).status_code == 200
                except httpx.TransportError:
                    ready = False
                assert not ready, "a second process on the same SQLite file started"
                await asyncio.sleep(0.1)
        assert second.proc.returncode != 0
        second.stop()
        said = await asyncio.to_thread(Path(second.log.name).read_text)
        assert said.strip() == (
            f"pipeline-bot: cannot start: another pipeline-bot is running on {(tmp_path / 'bot.db').resolve()} "
            f"(pid {first.proc.pid}); use PostgreSQL to run several"
        ), said[-3000:]

        # the first goes on: ready, and still the holder of its lease
        assert first.proc.poll() is None
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{first.url}/readyz")).status_code == 200
        assert leases() == held
    finally:
        if second is not None:
            second.stop()
        if first.proc.poll() is None:
            first.kill()  # its status call hangs for 25 s: no need to wait for it
        first.stop()
        for e in emulators.values():
            await e.stop()
        await slack.stop()


async def test_debug_logs_are_the_bots_own_not_a_line_per_query(tmp_path: Path) -> None:
    clock = ManualClock()
    emulators = make_emulators(clock)
    slack = FakeSlack()
    await slack.start()
    for e in emulators.values():
        await e.start()
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(catalog_text(emulators))
    bot = BotProcess(tmp_path, slack, catalog, {"LOG_LEVEL": "DEBUG"})
    try:
        await bot.ready()
        slack.app_url = f"{bot.url}/slack/events"
        assert (await slack.command("run leads-ods", user="U0ALICE")).ok
        await wait(lambda: len(card_runs(slack, "C0GENERAL")) == 1, 15, "the card", slack)
        clock.advance(60)
        await wait(lambda: "succeeded" in "".join(card_runs(slack, "C0GENERAL").values()), 15, "the end", slack)
    finally:
        await asyncio.to_thread(bot.stop)
        for e in emulators.values():
            await e.stop()
        await slack.stop()
    text = await asyncio.to_thread(Path(bot.log.name).read_text)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    loggers = {r["logger"] for r in records}
    assert "bot.runtime" in loggers  # the log was written, at all
    chatty = sorted(n for n in loggers if n.split(".")[0] in ("aiosqlite", "sqlalchemy", "asyncio", "hpack"))
    assert not chatty, f"{len(records)} lines, from {chatty}"


# -- second independent pass ------------------------------------------------------------------------------------


def test_check_reports_a_sqlite_file_in_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    folder = tmp_path.resolve() / "missing"
    result = cli(tmp_path, "check", DATABASE_URL=f"sqlite+aiosqlite:///{folder}/bot.db")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"DATABASE_URL: the folder {folder} of the SQLite file does not exist" in result.stderr, result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="makes a file read-only for another user: needs root to switch")
def test_run_on_an_existing_sqlite_file_it_cannot_write_says_so_in_one_line(tmp_path: Path) -> None:
    """The file opens and its schema is current, but the first write (handing back leases) is refused."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ro-db-"))
    try:
        folder.chmod(0o777)  # the lock file beside the database can be created; the database cannot be written
        db = folder / "bot.db"
        from bot.store.engine import open_database

        async def migrated() -> None:  # a database the bot wrote before, at the current schema
            await (await open_database(f"sqlite+aiosqlite:///{db}")).dispose()

        asyncio.run(migrated())
        for leftover in folder.glob("bot.db*"):
            leftover.chmod(0o444)
        catalog = folder / "pipelines.yml"
        catalog.write_text(CATALOG)
        catalog.chmod(0o644)
        env = bot_env(SLACK_BOT_TOKEN="xoxb-test-token", SLACK_SIGNING_SECRET="s3cret-signing",
                      PIPELINES_FILE=str(catalog), HOST="127.0.0.1", PORT="0", SLACK_API_URL="http://127.0.0.1:9/api/",
                      DATABASE_URL=f"sqlite+aiosqlite:///{db}", HOME=str(folder))
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *bot_command(folder, "run")],
            env=env, capture_output=True, text=True, timeout=120, cwd=folder,
        )
        output = (result.stdout + result.stderr).strip()
        assert result.returncode == 1, output[-3000:]
        assert output.splitlines() == [
            f"pipeline-bot: cannot start: cannot write to the database, the SQLite file {db}: attempt to write a "
            "readonly database; a read-only file, folder or volume? The bot needs to write its state"
        ], output[-3000:]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
