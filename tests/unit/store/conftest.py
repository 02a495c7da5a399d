"""Fixtures of the store's tests beside ``tests/conftest.py``'s ``store``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.postgres import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database's URL, on each of the two (the test migrates or upgrades it as it needs)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    made = await create_postgres_database()
    yield made
    await drop_postgres_database(made)
