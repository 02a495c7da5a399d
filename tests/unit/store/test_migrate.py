"""Migrations at start: a schema already at the head is left alone without loading Alembic (issue 16's memory)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from bot.store.engine import MIGRATIONS, UnknownSchema, head_revision, make_engine, migrate


def test_the_head_read_from_the_files_is_alembic_s_own() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


async def _version(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return [row[0] for row in await conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        await engine.dispose()


async def test_an_older_schema_is_brought_to_the_head(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)
    try:
        await migrate(engine, "0009")
        assert await _version(url) == ["0009"]
        await migrate(engine)
    finally:
        await engine.dispose()
    assert await _version(url) == [head_revision()]


async def test_a_schema_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = make_engine(url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
        with pytest.raises(UnknownSchema, match="9999_future"):
            await migrate(engine)
    finally:
        await engine.dispose()


_START = """
import asyncio, sys
from bot.store.engine import make_engine, migrate
async def main():
    engine = make_engine(sys.argv[1])
    await migrate(engine)
    await engine.dispose()
asyncio.run(main())
print("alembic" in sys.modules)
"""


def _start(url: str) -> str:
    done = subprocess.run([sys.executable, "-c", _START, url], capture_output=True, text=True, check=True, timeout=60)
    return done.stdout.strip()


def test_alembic_is_loaded_only_when_there_is_something_to_migrate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    assert _start(url) == "True"  # a new database: Alembic creates the schema
    assert _start(url) == "False"  # at the head: nothing to do, nothing loaded
