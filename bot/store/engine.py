"""Engine creation and migrations. SQLite (default) and PostgreSQL through the same code."""

from __future__ import annotations

import functools
import os
import re
import socket
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bot.errors import StartupError

__all__ = [
    "MIGRATIONS",
    "SQLITE_CACHE_KIB",
    "UnknownSchema",
    "describe",
    "head_revision",
    "make_engine",
    "migrate",
    "open_database",
    "sqlite_file",
    "writable_problem",
]

MIGRATIONS = Path(__file__).parent / "migrations"


#: SQLite's page cache per connection, in KiB (SQLite's default: 2,000). Each aiosqlite connection keeps its own,
#: and the pool holds about nine at 5,000 runs in flight; the file's pages are in the OS's cache anyway. 256 KiB:
#: -8 MB RSS at 5,000 runs, the lag and CPU unchanged (docs/PERFORMANCE.md, "Eighth pass")
SQLITE_CACHE_KIB = 256


def make_engine(url: str, **kw: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL, a busy timeout, enforced foreign keys and a small page cache."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kw)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, **kw)


class UnknownSchema(Exception):
    """The database's schema is at a revision this version's migrations do not know (a newer bot wrote it)."""


@functools.cache
def head_revision() -> str:
    """The newest migration's revision id, read from the migration files' ``revision``/``down_revision`` lines:
    the one no other names as its parent. No Alembic import: at most starts the schema is already there, and
    Alembic (about 10 MB once imported) is then never loaded (docs/PERFORMANCE.md, issue 16's memory)."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        text_ = path.read_text()
        revision = re.search(r'^revision = "([^"]+)"$', text_, re.MULTILINE)
        parent = re.search(r'^down_revision = (?:"([^"]+)"|None)$', text_, re.MULTILINE)
        if revision is None or parent is None:
            raise RuntimeError(f"{path} does not say its revision and down_revision as the others do")
        revisions[revision.group(1)] = parent.group(1)
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {sorted(heads)}")
    return heads.pop()


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command  # imported only when there is something to migrate: see head_revision
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, revision)
    except CommandError as exc:  # a revision it does not know: a newer bot wrote the schema
        raise UnknownSchema(str(exc)) from None


async def _current(engine: AsyncEngine) -> str | None:
    """The schema's revision; None for a database without one yet (or that cannot say: then Alembic decides)."""
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    except SQLAlchemyError:  # no such table: a new database
        return None
    return rows[0][0] if len(rows) == 1 else None


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to call at every start and from several replicas. Raises
    ``UnknownSchema`` for a schema this version does not know."""
    if revision in ("head", head_revision()) and await _current(engine) == head_revision():
        return  # the usual start: nothing to do, and no Alembic to load
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # one replica migrates at a time; the others wait, then find nothing to do
            await conn.execute(text("SELECT pg_advisory_xact_lock(74210001)"))
        elif conn.dialect.name == "sqlite":
            # Python's sqlite3 begins a transaction before a data change only: each CREATE and ALTER was committed
            # on its own, and a start killed (or failing) midway left half a migration that every later start
            # tried again and failed on ("duplicate column name"). One transaction, its write lock taken first
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        await conn.run_sync(_upgrade, revision)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and for an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.database.startswith("file:"):  # a URI filename (?uri=true): SQLite reads it, we do not
        return None
    return Path(parsed.database)


def describe(url: str) -> str:
    """Where a URL points, for a person: host and port, never the password."""
    path = sqlite_file(url)
    if path is not None:
        return f"the SQLite file {path.resolve()}"
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "an in-memory SQLite database"
    name = f", database {parsed.database}" if parsed.database else ""
    return f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}{name}"


async def open_database(url: str, **kw: str) -> AsyncEngine:
    """An engine whose database answers, at the current schema. A database that cannot be reached raises
    StartupError in one line naming where it is (never the password), not a driver's traceback."""
    path = sqlite_file(url)
    if path is not None and not path.resolve().parent.is_dir():
        raise StartupError(
            f"the folder {path.resolve().parent} of the SQLite file in DATABASE_URL does not exist; "
            "create it (a volume, in a container) or correct DATABASE_URL"
        )
    engine: AsyncEngine | None = None
    try:
        # in the try: a driver that is not installed, or a query argument it cannot take (?timeout=abc),
        # fails here or at the first connection, and is one line like an unreachable host
        engine = make_engine(url, **kw)
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # drivers raise their own kinds (OSError, asyncpg's, sqlite3's) wrapped or not
        if engine is not None:
            await engine.dispose()
        raise StartupError(
            f"cannot connect to the database, {_where(url)}: {_reason(exc, _password(url))}; "
            "check DATABASE_URL and that the database is up"
        ) from None
    try:
        await migrate(engine)
    except UnknownSchema as exc:  # a revision this version does not know: a newer bot wrote the schema
        await engine.dispose()
        raise StartupError(
            f"the schema of {describe(url)} is not one this version knows ({exc}): was it written by a newer "
            "pipeline-bot? Run that version, or point DATABASE_URL at this version's database"
        ) from None
    except SQLAlchemyError as exc:  # it answered, but refuses to create the tables (read-only file or replica)
        if not _schema_problem(exc):
            await engine.dispose()
            raise writable_problem(exc, url) from None
        # not a read-only file: the schema is not what its revision says (changed by hand, its revision lost)
        current = await _current(engine) or "none (its alembic_version table is empty or missing)"
        await engine.dispose()
        raise StartupError(
            f"the schema of {describe(url)} could not be brought from revision {current} to this version's "
            f"({head_revision()}): {_reason(exc, _password(url))}; was it changed by hand? Restore the database "
            "from a backup (or correct the schema to its revision) and start again"
        ) from None
    return engine


#: PostgreSQL's SQLSTATEs of a schema unlike its revision (a duplicate or missing table or column); SQLite's words
_SCHEMA_STATES = ("42P07", "42701", "42P01", "42703", "42710")
_SCHEMA_WORDS = ("duplicate column name", "already exists", "no such table", "no such column", "has no column")


def _schema_problem(exc: SQLAlchemyError) -> bool:
    """Whether a migration failed on the schema itself (not on a read-only file, a replica, a lost connection)."""
    cause = getattr(exc, "orig", None) or exc
    state = getattr(cause, "sqlstate", None) or getattr(getattr(cause, "__cause__", None), "sqlstate", None)
    return state in _SCHEMA_STATES or any(words in str(cause) for words in _SCHEMA_WORDS)


def _where(url: str) -> str:
    try:
        return describe(url)
    except Exception:  # a URL SQLAlchemy cannot read; `check` says why
        return "DATABASE_URL"


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except Exception:
        return None


def writable_problem(exc: BaseException, url: str) -> StartupError:
    """A database that opened but refuses a write (a read-only file or volume, a read-only replica): one line."""
    return StartupError(
        f"cannot write to the database, {_where(url)}: {_reason(exc, _password(url))}; a read-only file, "
        "folder or volume? The bot needs to write its state"
    )


def _reason(exc: BaseException, password: str | None) -> str:
    """The driver's own words, on one line, without the password should a driver quote the URL."""
    cause: BaseException = getattr(exc, "orig", None) or exc
    if isinstance(cause, socket.gaierror):
        said = f"the host name is unknown ({cause.strerror})"
    elif isinstance(cause, TimeoutError):
        said = "no answer (timed out)"
    elif isinstance(cause, OSError) and cause.errno:
        said = os.strerror(cause.errno)
    else:
        said = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if password:
        said = said.replace(password, "***")
    return said[:300]
