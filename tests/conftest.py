from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.engine import make_engine, migrate
from bot.store.store import Store
from tests.postgres import create_postgres_database, drop_postgres_database


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await migrate(engine)
    store = Store(engine)
    yield store
    await store.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    else:
        url = await create_postgres_database()
    engine = make_engine(url)
    await migrate(engine)
    s = Store(engine)
    yield s
    await s.close()
    if request.param == "postgresql":
        await drop_postgres_database(url)
