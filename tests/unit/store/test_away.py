"""Which real database errors count as "the database away" (retried quietly, one WARNING per job) and which are the
bot's own (an ERROR with its traceback at once): asked of the real drivers, SQLite and PostgreSQL, not of
hand-built exceptions, since the class SQLAlchemy gives an error depends on the driver's."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.away import database_away


def _join_new_workers(before: set[threading.Thread]) -> None:
    """aiosqlite stops the worker thread of a connection that failed to open without awaiting it; the thread then
    answers on the test's event loop, closed by then on a busy machine ("Event loop is closed" in the next test)."""
    for thread in set(threading.enumerate()) - before:
        if "_connection_worker_thread" in thread.name:
            thread.join(timeout=10)
            assert not thread.is_alive(), thread.name


async def _error(url: str, statement: str) -> BaseException:
    before = set(threading.enumerate())
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
        _join_new_workers(before)
    raise AssertionError(f"{statement!r} did not fail")


@pytest.mark.parametrize(
    "statement",
    [
        "select 1/0",  # division by zero (22012)
        "select 2147483647::int + 1",  # integer out of range (22003): an id past int4, say
        "select 'x'::int",  # invalid input syntax (22P02)
        "select nope from nothing",  # undefined table (42P01)
    ],
)
async def test_a_statement_postgresql_refuses_is_not_the_database_away(postgres_url: str, statement: str) -> None:
    assert not database_away(await _error(postgres_url, statement))


async def test_postgresql_gone_or_its_connection_cut_is_the_database_away(postgres_url: str) -> None:
    assert database_away(await _error(postgres_url, "select pg_terminate_backend(pg_backend_pid())"))
    closed = postgres_url.replace(":5432/", ":1/")  # nothing listens there: the connection is refused
    assert database_away(await _error(closed, "select 1"))


@pytest.mark.parametrize("statement", ["select nope from nothing", "selec 1", "select * from t where x = ?"])
async def test_a_statement_sqlite_refuses_is_not_the_database_away(tmp_path: Path, statement: str) -> None:
    assert not database_away(await _error(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", statement))


async def test_a_postgresql_database_that_only_reads_is_the_database_away(postgres_url: str) -> None:
    """The tenth pass: a standby after a failover (or a database set read-only for maintenance) refuses every write
    with 25006, in a class otherwise of the bot's own mistakes; counted as a bug, every tick logged a traceback."""
    engine = create_async_engine(postgres_url)
    async with engine.begin() as conn:
        await conn.execute(text("create table t (x text)"))
        name = postgres_url.rsplit("/", 1)[1]
        await conn.execute(text(f"alter database {name} set default_transaction_read_only = on"))
    await engine.dispose()
    refused = await _error(postgres_url, "insert into t values ('y')")
    assert "read-only" in str(refused) and database_away(refused)


async def _sqlite_error(url: str, *statements: str) -> BaseException:
    before = set(threading.enumerate())
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    except Exception as exc:
        return exc
    finally:
        await engine.dispose()
        _join_new_workers(before)
    raise AssertionError(f"{statements!r} did not fail")


async def test_a_sqlite_disk_full_or_read_only_is_the_database_away(tmp_path: Path) -> None:
    """The tenth pass: a disk full (SQLITE_FULL) and a file or volume the bot can no longer write (SQLITE_READONLY: a
    filesystem remounted read-only after disk errors) are outages of the database, as PostgreSQL's disk full (53100)
    is; counted as bugs, every tick of every job logged an ERROR with its traceback (on the full disk, too)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("create table t (x text)"))
    await engine.dispose()
    # SQLite's own "database or disk is full": the file may not grow past two pages
    full = await _sqlite_error(
        url, "pragma max_page_count = 2", *["insert into t values (printf('%.4000c', 'x'))"] * 4
    )
    assert "full" in str(full) and database_away(full)
    # SQLite's own "attempt to write a readonly database": the file opened read-only, as on a read-only mount
    read_only = await _sqlite_error(f"sqlite+aiosqlite:///file:{tmp_path / 'bot.db'}?mode=ro&uri=true",
                                    "insert into t values ('y')")
    assert "readonly" in str(read_only) and database_away(read_only)


async def test_a_sqlite_file_that_cannot_be_opened_is_the_database_away(tmp_path: Path) -> None:
    assert database_away(await _error(f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'bot.db'}", "select 1"))


async def test_a_postgresql_server_that_does_not_answer_or_resolve_is_the_database_away(postgres_url: str) -> None:
    """Eleventh pass: during a failover the old address answers nothing (asyncpg's connect raises a bare
    ``TimeoutError``) and the name may not resolve for a while (``socket.gaierror``). Neither counted as the database
    away: a trigger's answer was not waited for (the run given up though it started at the provider) and every job's
    tick logged an ERROR with its traceback."""

    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepts, never answers: the bot gives up at its connect timeout

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        engine = create_async_engine(postgres_url.replace(":5432/", f":{port}/"), connect_args={"timeout": 0.5})
        with pytest.raises(TimeoutError) as timed_out:
            async with engine.connect():
                pass
        await engine.dispose()
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert database_away(timed_out.value)
    unresolved = postgres_url.replace("127.0.0.1", "db.failing-over.invalid")
    engine = create_async_engine(unresolved)
    with pytest.raises(socket.gaierror) as not_found:
        async with engine.connect():
            pass
    await engine.dispose()
    assert database_away(not_found.value)
    assert not database_away(FileNotFoundError(2, "No such file or directory"))  # an OSError of the bot's own
