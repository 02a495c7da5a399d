"""A migration cut midway on SQLite (issue 11's thirteenth pass): all of it or none of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import StartupError
from bot.store.engine import head_revision, make_engine, migrate, open_database


async def _columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return {row[1] for row in await conn.execute(text(f"PRAGMA table_info({table})"))}
    finally:
        await engine.dispose()


async def test_a_migration_failing_midway_on_sqlite_leaves_the_schema_as_it_was(tmp_path: Path) -> None:
    """Python's sqlite3 opens a transaction before a data change only: each ALTER and CREATE of a migration was
    committed on its own. 0009 adds a column to ``runs``, then one to ``cards``; the second failing (here: the
    column is there already; a process killed between the two is the same) left ``runs`` altered and the schema
    at 0008, and every later start tried 0009 again and failed on "duplicate column name: card_draws", for good,
    told "a read-only file, folder or volume?"."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)
    try:
        await migrate(engine, "0008")
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE cards ADD COLUMN drawn INTEGER NOT NULL DEFAULT 0"))
        with pytest.raises(SQLAlchemyError):
            await migrate(engine)
    finally:
        await engine.dispose()
    assert "card_draws" not in await _columns(url, "runs"), "0009's first step undone with the rest"

    engine = make_engine(url)  # the stray column gone (what a person fixing it would do): the next start migrates
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE cards DROP COLUMN drawn"))
        await migrate(engine)
    finally:
        await engine.dispose()
    assert "card_draws" in await _columns(url, "runs")


async def test_a_schema_that_does_not_migrate_is_not_called_read_only(tmp_path: Path) -> None:
    """A start whose migration the database refuses for a reason other than a read-only file says the database's
    words and that the schema could not be brought to this version's, not "a read-only file, folder or volume?"."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)
    try:
        await migrate(engine, "0008")
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE cards ADD COLUMN drawn INTEGER NOT NULL DEFAULT 0"))
    finally:
        await engine.dispose()
    with pytest.raises(StartupError) as err:
        await open_database(url)
    said = str(err.value)
    assert "duplicate column name: drawn" in said and "read-only" not in said
    assert head_revision() in said and "0008" in said
